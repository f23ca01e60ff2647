package tui

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"
)

// recorder keeps every byte the program wrote while tests read it, so a
// test can search all frames, not just the last.
type recorder struct {
	r   io.Reader
	mu  sync.Mutex
	all bytes.Buffer
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.mu.Lock()
	r.all.Write(p[:n])
	r.mu.Unlock()
	return n, err
}

func (r *recorder) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.all.Bytes())
}

// harness runs the TUI against a fake API at 80x24 without colour.
type harness struct {
	t     *testing.T
	tm    *teatest.TestModel
	api   *fakeAPI
	clock *fakeClock
	out   *recorder
}

func start(t *testing.T, api *fakeAPI, refresh time.Duration) *harness {
	t.Helper()
	return startWith(t, api, refresh, nil)
}

// startWith is start with a hook that adjusts the model before it runs.
func startWith(t *testing.T, api *fakeAPI, refresh time.Duration, tweak func(*model)) *harness {
	t.Helper()
	if refresh == 0 {
		refresh = time.Hour // polls happen only when a test asks
	}
	clock := &fakeClock{now: t0}
	m := newModel(api, Options{NoColor: true, Refresh: refresh, Version: "0.9.0-test"}, clock.Now)
	m.c.loc = time.UTC
	if tweak != nil {
		tweak(m)
	}
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(80, 24))
	return &harness{t: t, tm: tm, api: api, clock: clock, out: &recorder{r: tm.Output()}}
}

// press sends keys: names like "enter", "esc", "tab", "ctrl+u", or runes.
func (h *harness) press(keys ...string) {
	for _, k := range keys {
		switch k {
		case "enter", "esc":
			h.tm.Send(keyMsg(k))
		case "tab":
			h.tm.Send(tea.KeyMsg{Type: tea.KeyTab})
		case "shift+tab":
			h.tm.Send(tea.KeyMsg{Type: tea.KeyShiftTab})
		case "ctrl+u":
			h.tm.Send(tea.KeyMsg{Type: tea.KeyCtrlU})
		case "down":
			h.tm.Send(tea.KeyMsg{Type: tea.KeyDown})
		case "up":
			h.tm.Send(tea.KeyMsg{Type: tea.KeyUp})
		case "left":
			h.tm.Send(tea.KeyMsg{Type: tea.KeyLeft})
		case "right":
			h.tm.Send(tea.KeyMsg{Type: tea.KeyRight})
		default:
			h.tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)})
		}
	}
}

// typ types text into the focused input.
func (h *harness) typ(s string) { h.tm.Type(s) }

// waitFor waits until every one of want has been drawn since the last wait.
func (h *harness) waitFor(want ...string) {
	h.t.Helper()
	teatest.WaitFor(h.t, h.out, func(b []byte) bool {
		for _, w := range want {
			if !bytes.Contains(b, []byte(w)) {
				return false
			}
		}
		return true
	}, teatest.WithDuration(5*time.Second), teatest.WithCheckInterval(5*time.Millisecond))
}

// finish quits with q and returns the final model with all output read.
func (h *harness) finish() *model {
	h.t.Helper()
	h.press("q")
	return h.final()
}

// abort stops the program from outside, leaving the screen as it is (q
// would be typed into an open form).
func (h *harness) abort() *model {
	h.t.Helper()
	if err := h.tm.Quit(); err != nil {
		h.t.Fatal(err)
	}
	return h.final()
}

func (h *harness) final() *model {
	h.t.Helper()
	fm := h.tm.FinalModel(h.t, teatest.WithFinalTimeout(5*time.Second))
	_, _ = io.ReadAll(h.out)
	m := fm.(*model)
	m.close()
	return m
}

// golden compares the final screen with testdata/<test name>.golden;
// regenerate with go test ./tui -update.
func golden(t *testing.T, m *model) {
	t.Helper()
	view := m.View()
	if n := strings.Count(view, "\n") + 1; n != 24 {
		t.Errorf("view is %d lines, want 24", n)
	}
	teatest.RequireEqualOutput(t, []byte(view))
}

// keyMsg is the message for one named key, for driving a model directly.
func keyMsg(k string) tea.KeyMsg {
	switch k {
	case "enter":
		return tea.KeyMsg{Type: tea.KeyEnter}
	case "esc":
		return tea.KeyMsg{Type: tea.KeyEsc}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)}
}
