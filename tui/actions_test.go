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
		{"grant", "3", "support-agent", func(h *harness) {
			h.press("g")
			h.waitFor("Grant build-bot a backend")
			h.typ("hr")
			h.press("enter", "ctrl+u")
			h.typ("get, head")
			h.press("enter", "ctrl+u")
			h.typ("/people/*, /teams/**")
			h.press("enter")
		}, "granted build-bot on hr", []string{"grant build-bot hr [GET HEAD] [/people/* /teams/**]"}},
		{"ungrant", "3", "support-agent", func(h *harness) {
			h.press("G")
			h.waitFor("Remove which grant of build-bot?")
			h.press("down", "enter")
			h.waitFor("Remove the grant of build-bot on openai?")
			h.press("y")
		}, "removed the grant of build-bot on openai", []string{"ungrant build-bot openai"}},
		{"revoke", "3", "support-agent", func(h *harness) {
			h.press("t")
			h.waitFor("Revoke which token of build-bot?")
			h.press("enter")
			h.waitFor("Revoke token Tok1aaaaaaaa of build-bot?")
			h.press("y")
		}, "revoked token Tok1aaaaaaaa", []string{"revoke Tok1aaaaaaaa"}},
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
