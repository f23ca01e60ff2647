package tui

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/store"
)

func TestBackends(t *testing.T) {
	t.Run("list", func(t *testing.T) {
		h := start(t, newFakeAPI(), 0)
		h.press("2")
		h.waitFor("CRED", "hr-api.corp.net")
		golden(t, h.finish())
	})

	t.Run("detail", func(t *testing.T) {
		h := start(t, newFakeAPI(), 0)
		h.press("2")
		h.waitFor("hr-api.corp.net")
		h.press("down", "down", "enter")
		h.waitFor("Backend hr", "support-agent → hr")
		golden(t, h.finish())
	})

	t.Run("add", func(t *testing.T) {
		const secret = "s3cr3t-Value-Nobody-Sees"
		api := newFakeAPI()
		h := start(t, api, 0)
		h.press("2")
		h.waitFor("hr-api.corp.net")
		h.press("a")
		h.waitFor("Add a backend")
		h.typ("weather")
		h.press("enter")
		h.typ("api.weather.example, Maps.Weather.example")
		h.press("enter")
		h.typ("https://10.1.2.3:8443")
		h.press("enter", "enter", "enter", "enter", "enter") // no upstream CA, default timeout, no rate, scrubbed
		h.press("left")                                      // inject: bearer to header, by arrow
		h.press("enter")
		h.typ("X-Api-Key")
		h.press("enter", "enter") // no prefix
		h.typ(secret)
		h.waitFor(strings.Repeat("•", len(secret)))
		h.press("enter")
		h.waitFor("added backend weather", "weather         api.weather.example")
		m := h.finish()

		want := admin.AddBackendRequest{
			Backend: store.Backend{
				Name:     "weather",
				Hosts:    []string{"api.weather.example", "maps.weather.example"},
				Upstream: "https://10.1.2.3:8443",
				Inject:   store.InjectHeader,
				Header:   "X-Api-Key",
			},
			Secret: admin.SecretInput{Value: secret},
		}
		if len(api.added) != 1 || !reflect.DeepEqual(api.added[0], want) {
			t.Errorf("AddBackend got %+v, want one call with %+v", api.added, want)
		}
		if bytes.Contains(h.out.bytes(), []byte(secret)) {
			t.Error("the secret appeared in a rendered frame")
		}
		if strings.Contains(m.View(), secret) {
			t.Error("the secret is in the final view")
		}
		golden(t, m)
	})

	t.Run("form", func(t *testing.T) {
		h := start(t, newFakeAPI(), 0)
		h.press("2")
		h.waitFor("hr-api.corp.net")
		h.press("a")
		h.typ("weather")
		h.press("enter")
		h.typ("api.weather.example")
		h.press("tab", "tab", "tab", "tab", "tab", "tab", "tab") // upstream, CA, timeout, rate, scrub, inject, secret
		h.typ("hunter2")
		h.waitFor("•••••••")
		m := h.abort()
		if strings.Contains(m.View(), "hunter2") {
			t.Error("the secret field shows its value")
		}
		golden(t, m)
	})

	t.Run("add form keeps q and numbers", func(t *testing.T) {
		api := newFakeAPI()
		h := start(t, api, 0)
		h.press("2")
		h.waitFor("hr-api.corp.net")
		h.press("a")
		h.waitFor("Add a backend")
		h.typ("q1")
		h.waitFor("q1")
		h.press("esc")
		h.waitFor("hr-api.corp.net")
		m := h.finish()
		if m.active != 1 {
			t.Errorf("active screen = %d, want 1 (Backends)", m.active)
		}
		if len(api.added) != 0 {
			t.Errorf("a cancelled form added %+v", api.added)
		}
	})
}
