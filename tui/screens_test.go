package tui

import (
	"bytes"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/store"
)

func TestTokens(t *testing.T) {
	t.Run("list", func(t *testing.T) {
		h := start(t, newFakeAPI(), 0)
		h.press("4")
		h.waitFor("Tok0zzzzzzzz", "revoked 2d ago")
		golden(t, h.finish())
	})

	t.Run("mint and dismiss", func(t *testing.T) {
		api := newFakeAPI()
		h := start(t, api, 0)
		h.press("4")
		h.waitFor("Tok0zzzzzzzz")
		h.press("m")
		h.waitFor("Mint a token", "agent  ← build-bot →")
		h.press("right", "enter") // support-agent
		h.typ("laptop")
		h.press("enter")
		h.typ("30d")
		h.press("enter")
		h.waitFor(api.mintValue, "only time the token is shown", "shift+drag")
		h.press("enter")
		h.waitFor("STATE")
		m := h.finish()

		want := admin.MintRequest{Agent: "support-agent", Label: "laptop", TTL: store.Duration(30 * 24 * time.Hour)}
		if len(api.mints) != 1 || api.mints[0] != want {
			t.Errorf("MintToken got %+v, want one call with %+v", api.mints, want)
		}
		if n := bytes.Count(h.out.bytes(), []byte(api.mintValue)); n != 1 {
			t.Errorf("token drawn %d times, want once", n)
		}
		if strings.Contains(m.View(), api.mintValue) {
			t.Error("the token is still on the screen after dismissing")
		}
		if m.screens[3].(*tokensScreen).reveal != nil {
			t.Error("the model still holds the minted token")
		}
		golden(t, m)
	})

	t.Run("reveal", func(t *testing.T) {
		api := newFakeAPI()
		h := start(t, api, 0)
		h.press("4")
		h.waitFor("Tok0zzzzzzzz")
		h.press("m", "enter", "enter", "enter")
		h.waitFor(api.mintValue)
		golden(t, h.abort())
	})

	t.Run("bad expiry keeps the form", func(t *testing.T) {
		api := newFakeAPI()
		h := start(t, api, 0)
		h.press("4")
		h.waitFor("Tok0zzzzzzzz")
		h.press("m", "enter")
		h.typ("laptop")
		h.press("enter")
		h.typ("soon")
		h.press("enter")
		h.waitFor("✗ Error: expires in")
		m := h.abort()
		f := m.screens[3].(*tokensScreen).form
		if f == nil || f.value(1) != "laptop" || f.value(2) != "soon" {
			t.Fatalf("the rejected mint form lost what was typed: %+v", f)
		}
		if len(api.mints) != 0 {
			t.Errorf("a refused form minted %+v", api.mints)
		}
	})
}

func TestGrants(t *testing.T) {
	t.Run("by agent", func(t *testing.T) {
		h := start(t, newFakeAPI(), 0)
		h.press("5")
		h.waitFor("/people/*", "sorted by agent")
		golden(t, h.finish())
	})

	t.Run("by backend", func(t *testing.T) {
		h := start(t, newFakeAPI(), 0)
		h.press("5")
		h.waitFor("/people/*")
		h.press("s")
		h.waitFor("sorted by backend")
		golden(t, h.finish())
	})

	t.Run("form starts empty", func(t *testing.T) {
		h := start(t, newFakeAPI(), 0)
		h.press("5")
		h.waitFor("/people/*")
		h.press("a")
		h.waitFor("Add a grant", "An empty methods or paths field is")
		m := h.abort()
		f := m.screens[4].(*grantsScreen).form
		if f.value(gfMethods) != "" || f.value(gfPaths) != "" {
			t.Errorf("the grant form starts with methods %q and paths %q, want both empty", f.value(gfMethods), f.value(gfPaths))
		}
		golden(t, m)
	})

	t.Run("empty methods refused", func(t *testing.T) {
		api := newFakeAPI()
		h := start(t, api, 0)
		h.press("5")
		h.waitFor("/people/*")
		h.press("a", "right", "tab", "right", "tab", "tab")
		h.typ("/v1/**")
		h.press("enter")
		h.waitFor("✗ Error: methods is empty")
		m := h.abort()
		f := m.screens[4].(*grantsScreen).form
		if f.focus != gfMethods || f.value(gfPaths) != "/v1/**" {
			t.Errorf("focus %d, paths %q; want the focus on methods and the paths kept", f.focus, f.value(gfPaths))
		}
		if len(api.recorded()) != 0 {
			t.Errorf("a refused grant reached the API: %q", api.recorded())
		}
	})

	t.Run("edit", func(t *testing.T) {
		h := start(t, newFakeAPI(), 0)
		h.press("5")
		h.waitFor("/people/*")
		h.press("e")
		h.waitFor("Edit the grant of build-bot on github", "(fixed:")
		golden(t, h.abort())
	})
}

func TestIdPs(t *testing.T) {
	t.Run("list", func(t *testing.T) {
		h := start(t, newFakeAPI(), 0)
		h.press("6")
		h.waitFor("login.corp.example", "CLAIM")
		golden(t, h.finish())
	})
	t.Run("form", func(t *testing.T) {
		h := start(t, newFakeAPI(), 0)
		h.press("6")
		h.waitFor("login.corp.example")
		h.press("a", "tab", "tab", "tab")
		h.waitFor("← sub →")
		golden(t, h.abort())
	})
}

func TestEditBackend(t *testing.T) {
	api := newFakeAPI()
	h := start(t, api, 0)
	h.press("2")
	h.waitFor("hr-api.corp.net")
	h.press("G", "e")
	h.waitFor("Edit backend hr", "(read-only)", "the admin API updates")
	h.press("tab") // timeout → rate
	h.typ("20/s")
	h.press("tab") // burst shows with a rate
	h.typ("40")
	h.press("tab")
	h.press("right") // scrub: yes → no
	h.waitFor("! scrub is off")
	h.press("enter")
	h.waitFor("changed backend hr: rate none → 20/s, burst 0 → 40, scrub yes → no")
	m := h.finish()
	if len(api.updates) != 1 {
		t.Fatalf("UpdateBackend calls = %d, want 1", len(api.updates))
	}
	u := api.updates[0]
	if u.Rate == nil || *u.Rate != "20/s" || u.Burst == nil || *u.Burst != 40 || u.NoScrub == nil || !*u.NoScrub || u.Timeout != nil {
		t.Errorf("UpdateBackend got %+v", u)
	}
	golden(t, m)

	t.Run("form", func(t *testing.T) {
		h := start(t, newFakeAPI(), 0)
		h.press("2")
		h.waitFor("hr-api.corp.net")
		h.press("G", "e")
		h.waitFor("Edit backend hr")
		golden(t, h.abort())
	})
}

// TestKeys checks the conventional keys on a list: g and G move, / filters
// and the selection follows, : jumps by name, ? lists every key.
func TestKeys(t *testing.T) {
	t.Run("g and G", func(t *testing.T) {
		api := newFakeAPI()
		h := start(t, api, 0)
		h.press("2")
		h.waitFor("hr-api.corp.net")
		h.press("G")
		h.waitFor("›hr ")
		h.press("g")
		h.waitFor("›github ")
		golden(t, h.finish())
		if len(api.recorded()) != 0 {
			t.Errorf("g/G wrote %q", api.recorded())
		}
	})

	t.Run("filter", func(t *testing.T) {
		api := newFakeAPI()
		h := start(t, api, 0)
		h.press("2")
		h.waitFor("hr-api.corp.net")
		h.press("/")
		h.typ("open")
		h.waitFor("1 of 3 shown")
		h.press("enter", "x")
		h.waitFor("Remove backend openai?")
		h.press("n")
		h.waitFor("filter: open")
		golden(t, h.finish())
	})

	t.Run("filter matching nothing disables actions", func(t *testing.T) {
		api := newFakeAPI()
		h := start(t, api, 0)
		h.press("2")
		h.waitFor("hr-api.corp.net")
		h.press("/")
		h.typ("zzz")
		h.press("enter", "x", "y")
		h.waitFor("nothing matches the filter")
		h.finish()
		if len(api.recorded()) != 0 {
			t.Errorf("an action applied to a row nobody sees: %q", api.recorded())
		}
	})

	t.Run("jump by name", func(t *testing.T) {
		h := start(t, newFakeAPI(), 0)
		h.press(":")
		h.waitFor("screen name:")
		h.typ("gra")
		h.press("enter")
		h.waitFor("[5 Grants]")
		h.press(":")
		h.typ("nope")
		h.press("enter")
		h.waitFor(`✗ Error: no screen is called "nope"`)
		golden(t, h.finish())
	})

	t.Run("help lists every key", func(t *testing.T) {
		h := start(t, newFakeAPI(), 0)
		h.press("5", "?")
		h.waitFor("sort by agent/backend", "go to screen by name", "clear filter")
		golden(t, h.finish())
	})
}

// TestResizeKeepsSelection shrinks the window under a selection near the
// bottom: the selected row stays drawn and is the one x acts on.
func TestResizeKeepsSelection(t *testing.T) {
	api := newFakeAPI()
	for _, n := range []string{"a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9", "b1", "b2", "b3"} {
		api.backends = append(api.backends, store.Backend{Name: n, Hosts: []string{n + ".example"}, Inject: store.InjectBearer,
			CredentialVersion: 1, CredentialSetAt: t0, CreatedAt: t0})
	}
	h := start(t, api, 0)
	h.press("2")
	h.waitFor("hr-api.corp.net")
	h.press("G")
	h.waitFor("›b3 ")
	h.tm.Send(tea.WindowSizeMsg{Width: 80, Height: 10})
	h.press("x")
	h.waitFor("Remove backend b3?")
	h.press("n")
	h.tm.Send(tea.WindowSizeMsg{Width: 80, Height: 24})
	h.waitFor("b3.example")
	m := h.finish()
	m.resize(80, 10)
	if v := m.View(); !strings.Contains(v, "›b3 ") {
		t.Errorf("after shrinking, the selected row is not drawn:\n%s", v)
	}
	m.resize(80, 24)
	golden(t, m)
}
