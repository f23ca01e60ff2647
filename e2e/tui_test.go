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

// press sends key until the screen shows want: a key that reaches the
// terminal while the TUI is still starting (it queries the terminal then)
// can be lost on a loaded machine. The key is sent again only while the
// screen still shows unless (the state the key acts on), so a key that did
// land is never typed twice into the next screen.
func (s *tmuxSession) press(key, want, unless string) {
	s.t.Helper()
	for range 3 {
		s.keys(key)
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if strings.Contains(s.screen(), want) {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		if sc := s.screen(); unless != "" && !strings.Contains(sc, unless) {
			break
		}
	}
	s.waitFor(want)
}

// TestTUIInTmux drives `agw tui` against a real daemon as a person would:
// add a header-mode backend through the form, see it through the CLI, then
// watch a request through the gateway appear in the audit screen.
func TestTUIInTmux(t *testing.T) {
	e := newEnv(t)
	e.start()
	const secret = canary + "-typed-in-tui"
	s := newTmux(t, fmt.Sprintf("NO_COLOR=1 %s --socket %s tui", agwBin, e.socket))
	s.waitFor("Overview")

	s.press("2", "No backends yet", "")
	s.press("a", "secret", "No backends yet")
	s.typeText("tuibackend")
	s.keys("Enter")
	s.typeText("tui.example.com")
	s.keys("Enter")
	s.keys("Enter") // upstream: the host itself
	s.keys("Enter") // upstream CA: the system roots
	s.keys("Enter") // timeout: the gateway's default
	s.typeText("10/s")
	s.waitFor("burst")
	s.keys("Enter")
	s.typeText("5")
	s.keys("Enter")
	s.keys("Enter") // scrub: the prefilled yes
	s.keys("C-u")   // inject: replace the prefilled bearer
	s.typeText("header")
	s.waitFor("header mode: header name")
	s.keys("Enter")
	s.typeText("X-Api-Key")
	s.keys("Enter")
	s.typeText("Token ")
	s.keys("Enter")
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
	if len(backends) != 1 || backends[0].Name != "tuibackend" || backends[0].Hosts[0] != "tui.example.com" ||
		backends[0].Inject != store.InjectHeader || backends[0].Header != "X-Api-Key" || backends[0].Prefix != "Token " ||
		backends[0].Rate != "10/s" || backends[0].Burst != 5 || backends[0].NoScrub {
		t.Fatalf("backend list after the TUI form = %+v", backends)
	}

	// A request through the gateway (refused: it carries no token) shows up
	// live in the audit screen.
	s.press("4", "[4 Audit]", "")
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
