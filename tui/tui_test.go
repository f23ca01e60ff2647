package tui

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/charmbracelet/x/exp/teatest"

	"github.com/agw-dev/agw/admin"
)

// TestRealClientNoDaemon runs the TUI on the real admin client with no
// daemon behind its socket: the client's error must reach the status bar.
func TestRealClientNoDaemon(t *testing.T) {
	api := &admin.Client{Socket: filepath.Join(t.TempDir(), "admin.sock")}
	tm := teatest.NewTestModel(t, NewModel(api, Options{NoColor: true}), teatest.WithInitialTermSize(80, 24))
	h := &harness{t: t, tm: tm, out: &recorder{r: tm.Output()}}
	h.waitFor("agw daemon is not running: start it with `agw serve`; retrying", "Cannot reach the agw daemon")
	h.finish()
}

func TestNoColorEnv(t *testing.T) {
	t.Setenv("NO_COLOR", "1")
	opts := Options{}
	if !opts.noColor() {
		t.Fatal("NO_COLOR is set but colour stays on")
	}
	st := newStyles(opts.noColor())
	for name, s := range map[string]string{
		"deny":      st.Deny.Render("deny"),
		"active":    st.ActiveTab.Render("[1 Overview]"),
		"selection": st.Selected.Render(markSelected(" row")),
		"error":     st.ErrorBar.Render("✗ Error: x"),
	} {
		if strings.Contains(s, "\x1b[") {
			t.Errorf("%s renders escape codes with NO_COLOR: %q", name, s)
		}
	}
	if got := st.Selected.Render(markSelected(" row")); !strings.HasPrefix(got, "›") {
		t.Errorf("selected row without colour = %q, want a › marker", got)
	}
}
