package tui

import (
	"fmt"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/store"
)

// TestUnreachableDaemon shows the failure in the TUI, keeps retrying on
// the refresh tick, and fills in once the daemon answers.
func TestUnreachableDaemon(t *testing.T) {
	tests := []struct {
		name string
		err  error
		bar  string
	}{
		{"not running",
			fmt.Errorf("%w (no daemon answers on /run/agw/admin.sock): start it with `agw serve`", admin.ErrDaemonNotRunning),
			"agw daemon is not running: start it with `agw serve`; retrying"},
		{"forbidden",
			fmt.Errorf("%w: permission denied on /run/agw/admin.sock", store.ErrForbidden),
			"admin socket: permission denied"},
		{"admin error",
			&admin.Error{Status: 500, Code: admin.CodeInternal, Message: "read store: disk on fire"},
			"read store: disk on fire"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeAPI()
			api.setDown(tt.err)
			h := start(t, api, 10*time.Millisecond)
			h.waitFor(tt.bar, "Cannot reach the agw daemon")
			h.press("7")
			h.waitFor("○ stopped", "audit stream:")
			api.setDown(nil)
			h.waitFor("● live", "connected · refreshing")
			h.press("1")
			h.waitFor("Latest denies")
			m := h.finish()
			if m.err != nil || m.status == nil {
				t.Errorf("after recovery: err %v, status %v", m.err, m.status)
			}
			if m.audit.err != nil {
				t.Errorf("audit stream not resumed: %v", m.audit.err)
			}
		})
	}
}

func TestResize(t *testing.T) {
	h := start(t, newFakeAPI(), 0)
	h.press("2")
	h.waitFor("hr-api.corp.net")
	h.tm.Send(tea.WindowSizeMsg{Width: 100, Height: 30})
	h.waitFor("hr.corp.net, hr-api.corp.net                        ")
	h.tm.Send(tea.WindowSizeMsg{Width: 80, Height: 24})
	h.press("?")
	h.waitFor("shift+tab")
	golden(t, h.finish())
}

func TestDaemonDown(t *testing.T) {
	api := newFakeAPI()
	api.setDown(fmt.Errorf("%w (no daemon answers on /run/agw/admin.sock): start it with `agw serve`, or point --socket/AGW_SOCKET at the running daemon's socket", admin.ErrDaemonNotRunning))
	h := start(t, api, 0)
	h.waitFor("Cannot reach the agw daemon")
	golden(t, h.finish())
}
