package tui

import (
	"testing"
	"time"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/store"
)

func TestAudit(t *testing.T) {
	t.Run("live", func(t *testing.T) {
		h := start(t, newFakeAPI(), 0)
		h.press("7")
		h.waitFor("● live", "no grant for backend hr")
		golden(t, h.finish())
	})

	t.Run("filter", func(t *testing.T) {
		api := newFakeAPI()
		h := start(t, api, 0)
		h.press("7")
		h.waitFor("no grant for backend hr")
		h.press("f")
		h.waitFor("Filter the audit stream")
		h.typ("build-bot")
		h.press("enter", "enter")
		h.typ("deny")
		h.press("enter")
		h.waitFor("filter: agent=build-bot decision=deny  2 shown")
		m := h.finish()
		q := api.lastAudit()
		if q.Agent != "build-bot" || q.Decision != store.Deny || q.Backend != "" {
			t.Errorf("re-subscribed with %+v, want agent build-bot and decision deny", q)
		}
		golden(t, m)
	})

	t.Run("pause and missed", func(t *testing.T) {
		api := newFakeAPI()
		h := start(t, api, 0)
		h.press("7")
		h.waitFor("no grant for backend hr")
		h.press("p")
		h.waitFor("paused, 0 new")
		for i := range 3 {
			api.live <- admin.StreamMessage{Event: &store.AuditEvent{
				Seq: uint64(9 + i), Time: t0.Add(time.Duration(i) * time.Second), Kind: store.KindRequest,
				Agent: "build-bot", Backend: "openai", Method: "POST", Path: "/v1/embeddings", Status: 200, Decision: store.Allow,
			}}
		}
		api.live <- admin.StreamMessage{Missed: 42}
		h.waitFor("paused, 3 new", "42 records were skipped")
		h.press("p")
		h.waitFor("/v1/embeddings")
		golden(t, h.finish())
	})

	t.Run("detail", func(t *testing.T) {
		h := start(t, newFakeAPI(), 0)
		h.press("7")
		h.waitFor("no grant for backend hr")
		h.press("up", "up", "up", "enter")
		h.waitFor("Audit record 5")
		golden(t, h.finish())
	})
}
