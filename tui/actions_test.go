package tui

import (
	"bytes"
	"slices"
	"testing"
)

// TestActions drives each write through its keys and checks what reached
// the API.
func TestActions(t *testing.T) {
	tests := []struct {
		name   string
		screen string
		ready  string
		steps  func(h *harness)
		done   string
		want   []string
	}{
		{"rotate", "2", "hr-api.corp.net", func(h *harness) {
			h.press("r")
			h.waitFor("Rotate the secret of github")
			h.typ("n3w-s3cret")
			h.press("enter")
		}, "rotated the secret of github", []string{"rotate github n3w-s3cret"}},
		{"remove backend after yes", "2", "hr-api.corp.net", func(h *harness) {
			h.press("down", "x")
			h.waitFor("Remove backend openai?")
			h.press("y")
		}, "removed backend openai", []string{"remove backend openai"}},
		{"remove backend, no", "2", "hr-api.corp.net", func(h *harness) {
			h.press("x")
			h.waitFor("Remove backend github?")
			h.press("n")
		}, "NAME", nil},
		{"add agent", "3", "support-agent", func(h *harness) {
			h.press("a")
			h.typ("q-bot")
			h.press("enter")
			h.typ("answers questions")
			h.press("enter")
		}, "added agent q-bot", []string{"add agent q-bot (answers questions)"}},
		{"disable", "3", "support-agent", func(h *harness) {
			h.press("e")
		}, "disabled agent build-bot", []string{"update agent build-bot disabled=true"}},
		{"enable", "3", "support-agent", func(h *harness) {
			h.press("down", "e")
		}, "enabled agent support-agent", []string{"update agent support-agent disabled=false"}},
		{"revoke", "4", "Tok1aaaaaaaa", func(h *harness) {
			h.press("x")
			h.waitFor("Revoke token Tok1aaaaaaaa of build-bot?")
			h.press("y")
		}, "revoked token Tok1aaaaaaaa of build-bot", []string{"revoke Tok1aaaaaaaa"}},
		{"revoke a revoked token", "4", "Tok1aaaaaaaa", func(h *harness) {
			h.press("G", "x")
		}, "✗ Error: could not revoke token Tok0zzzzzzzz: it is already revoked 2d ago", nil},
		{"add grant", "5", "support-agent", func(h *harness) {
			h.press("a")
			h.waitFor("Add a grant")
			h.press("right", "tab", "right", "tab") // support-agent, then openai after github
			h.typ("get, head")
			h.press("enter")
			h.typ("/people/*, /teams/**")
			h.press("enter")
		}, "added the grant of support-agent on openai", []string{"grant support-agent openai [GET HEAD] [/people/* /teams/**]"}},
		{"edit grant", "5", "support-agent", func(h *harness) {
			h.press("down", "e")
			h.waitFor("Edit the grant of build-bot on openai")
			h.press("ctrl+u")
			h.typ("POST")
			h.press("enter", "enter")
		}, "changed the grant of build-bot on openai", []string{"grant build-bot openai [POST] [/v1/**]"}},
		{"remove grant", "5", "support-agent", func(h *harness) {
			h.press("G", "x")
			h.waitFor("Remove the grant of support-agent on hr?")
			h.press("y")
		}, "removed the grant of support-agent on hr", []string{"ungrant support-agent hr"}},
		{"add idp", "6", "login.corp.example", func(h *harness) {
			h.press("a")
			h.waitFor("Add an identity provider")
			h.typ("okta")
			h.press("enter")
			h.typ("https://example.okta.com/oauth2/default")
			h.press("enter")
			h.typ("api://agw")
			h.press("enter")
			h.typ("a") // claim: azp, picked by its initial
			h.press("enter")
		}, "added identity provider okta", []string{"add idp okta https://example.okta.com/oauth2/default api://agw azp"}},
		{"remove idp", "6", "login.corp.example", func(h *harness) {
			h.press("x")
			h.waitFor("Remove identity provider corp?")
			h.press("y")
		}, "removed identity provider corp", []string{"remove idp corp"}},
		{"remove agent", "3", "support-agent", func(h *harness) {
			h.press("down", "x")
			h.waitFor("Remove agent support-agent?")
			h.press("y")
		}, "removed agent support-agent", []string{"remove agent support-agent"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeAPI()
			h := start(t, api, 0)
			h.press(tt.screen)
			h.waitFor(tt.ready)
			tt.steps(h)
			h.waitFor(tt.done)
			h.finish()
			if got := api.recorded(); !slices.Equal(got, tt.want) {
				t.Errorf("API writes = %q, want %q", got, tt.want)
			}
			if bytes.Contains(h.out.bytes(), []byte("n3w-s3cret")) {
				t.Error("a typed secret was drawn")
			}
		})
	}
}
