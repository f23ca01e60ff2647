package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/agw-dev/agw/store"
)

// tmuxSession runs a command in a detached tmux session of a fixed size.
type tmuxSession struct {
	t    *testing.T
	name string
}

func newTmux(t *testing.T, cmdline string) *tmuxSession {
	t.Helper()
	_, err := exec.LookPath("tmux")
	requireEnv(t, err == nil, "tmux is not installed (apt-get install tmux)")
	s := &tmuxSession{t: t, name: fmt.Sprintf("agwtui%d", os.Getpid())}
	out, err := exec.Command("tmux", "new-session", "-d", "-s", s.name, "-x", "100", "-y", "30", cmdline).CombinedOutput()
	if err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("tmux", "kill-session", "-t", s.name).Run() })
	return s
}

func (s *tmuxSession) keys(keys ...string) {
	s.t.Helper()
	args := append([]string{"send-keys", "-t", s.name}, keys...)
	if out, err := exec.Command("tmux", args...).CombinedOutput(); err != nil {
		s.t.Fatalf("tmux send-keys %v: %v\n%s", keys, err, out)
	}
}

// typeText sends literal text (no key-name interpretation).
func (s *tmuxSession) typeText(text string) {
	s.t.Helper()
	if out, err := exec.Command("tmux", "send-keys", "-t", s.name, "-l", text).CombinedOutput(); err != nil {
		s.t.Fatalf("tmux send-keys -l: %v\n%s", err, out)
	}
}

func (s *tmuxSession) screen() string {
	out, err := exec.Command("tmux", "capture-pane", "-p", "-t", s.name).Output()
	if err != nil {
		return ""
	}
	return string(out)
}

// waitFor waits until the screen shows text and returns the screen.
func (s *tmuxSession) waitFor(text string) string {
	s.t.Helper()
	var screen string
	eventually(s.t, 15*time.Second, func() bool {
		screen = s.screen()
		return strings.Contains(screen, text)
	})
	if !strings.Contains(screen, text) {
		s.t.Fatalf("the TUI never showed %q; screen:\n%s", text, screen)
	}
	return screen
}

// TestTUIInTmux drives `agw tui` against a real daemon as a person would:
// add a backend through the form, see it through the CLI, then watch a
// request through the gateway appear in the audit screen.
func TestTUIInTmux(t *testing.T) {
	e := newEnv(t)
	e.start()
	const secret = canary + "-typed-in-tui"
	s := newTmux(t, fmt.Sprintf("NO_COLOR=1 %s --socket %s tui", agwBin, e.socket))
	s.waitFor("Overview")

	s.keys("2")
	s.waitFor("Backends")
	s.keys("a")
	s.waitFor("secret")
	s.typeText("tuibackend")
	s.keys("Enter")
	s.typeText("tui.example.com")
	s.keys("Enter")
	s.keys("Enter") // upstream: the host itself
	s.keys("Enter") // inject: bearer (prefilled)
	s.keys("Enter") // header: not used by bearer
	s.typeText(secret)
	if strings.Contains(s.screen(), secret) {
		t.Fatal("the secret is visible while typed")
	}
	s.keys("Enter")
	s.waitFor("tui.example.com")

	var backends []store.Backend
	eventually(t, 10*time.Second, func() bool {
		e.jsonOut(&backends, "backend", "list")
		return len(backends) == 1
	})
	if len(backends) != 1 || backends[0].Name != "tuibackend" || backends[0].Hosts[0] != "tui.example.com" || backends[0].Inject != store.InjectBearer {
		t.Fatalf("backend list after the TUI form = %+v", backends)
	}

	// A request through the gateway (refused: it carries no token) shows up
	// live in the audit screen.
	s.keys("4")
	s.waitFor("Audit")
	c := gatewayClient(t, e)
	status, _ := doReq(t, c, "GET", "https://tui.example.com:"+portOf(e.status.Listeners.HTTPS)+"/tmuxprobe", nil)
	if status != 401 {
		t.Fatalf("request without a token: status %d, want 401", status)
	}
	screen := s.waitFor("/tmuxprobe")
	if strings.Contains(screen, secret) {
		t.Errorf("the audit screen shows the secret:\n%s", screen)
	}
	s.keys("q")
	assertNoSecret(t, e, secret)
}
