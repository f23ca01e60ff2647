package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/agw-dev/agw/store"
)

// tmuxSessions numbers the sessions of this process, so no two share a name.
var tmuxSessions int

// tmuxSession runs a command in a detached tmux session of a fixed size.
type tmuxSession struct {
	t    *testing.T
	name string
}

func newTmux(t *testing.T, cmdline string) *tmuxSession {
	t.Helper()
	_, err := exec.LookPath("tmux")
	requireEnv(t, err == nil, "tmux is not installed (apt-get install tmux)")
	tmuxSessions++
	s := &tmuxSession{t: t, name: fmt.Sprintf("agwtui%d-%d", os.Getpid(), tmuxSessions)}
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
	s.keys("Enter") // scrub: the preselected yes
	s.typeText("h") // inject: a choice; its initial picks header
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
	s.press("7", "[7 Audit]", "")
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

// TestTUIManageInTmux uses the screens an operator manages access with,
// against a real daemon: a refused backend form keeps what was typed, a
// token is minted and shown once, a grant is added with the form, and
// g/G, / and : move around as in other terminal programs.
func TestTUIManageInTmux(t *testing.T) {
	e := newEnv(t)
	e.start()
	const secret = canary + "-tui-manage"
	e.ok(secret+"\n", "backend", "add", "hr", "--host", "hr.corp.net", "--secret-stdin")
	e.ok(secret+"-crm\n", "backend", "add", "crm", "--host", "crm.corp.net", "--secret-stdin")
	e.ok("", "agent", "add", "bot")
	s := newTmux(t, fmt.Sprintf("NO_COLOR=1 %s --socket %s tui", agwBin, e.socket))
	s.waitFor("Overview")

	// g and G move to the first and the last row; / filters.
	s.press("2", "crm.corp.net", "")
	s.keys("G")
	s.waitFor("›hr ")
	s.keys("g")
	s.waitFor("›crm ")
	s.keys("/")
	s.typeText("hr.corp")
	screen := s.waitFor("1 of 2 shown")
	if strings.Contains(screen, "crm.corp.net") {
		t.Errorf("the filter still shows crm:\n%s", screen)
	}
	s.keys("Escape")
	s.waitFor("crm.corp.net")

	// A backend the daemon refuses (the name is taken) keeps the form as
	// typed, the secret included, and says so as an error.
	const typed = canary + "-retyped"
	s.keys("a")
	s.waitFor("Add a backend")
	s.typeText("hr")
	s.keys("Enter")
	s.typeText("other.corp.net")
	for range 7 { // hosts, upstream, upstream CA, timeout, rate, scrub, inject
		s.keys("Enter")
	}
	s.typeText(typed)
	s.keys("Enter")
	screen = s.waitFor("✗ Error: could not add backend hr")
	if !strings.Contains(screen, strings.Repeat("•", len(typed))) || !strings.Contains(screen, "other.corp.net") {
		t.Errorf("the refused form lost what was typed:\n%s", screen)
	}
	if strings.Contains(screen, "✓") {
		t.Errorf("a refusal is shown as a success:\n%s", screen)
	}
	s.keys("Escape")
	s.waitFor("crm.corp.net")

	// Mint a token: shown once, then gone; the gateway knows it.
	s.keys(":")
	s.typeText("tokens")
	s.keys("Enter")
	s.waitFor("[4 Tokens]")
	s.keys("m")
	s.waitFor("Mint a token")
	s.keys("Enter") // agent: bot, the only one
	s.typeText("tmux")
	s.keys("Enter", "Enter")
	screen = s.waitFor("only time the token is shown")
	tok := regexp.MustCompile(`agw_[A-Za-z0-9_]+`).FindString(screen)
	if tok == "" {
		t.Fatalf("no token on the screen:\n%s", screen)
	}
	s.keys("Enter")
	screen = s.waitFor("STATE")
	if strings.Contains(screen, tok) {
		t.Errorf("the token is still shown after dismissing:\n%s", screen)
	}
	var tokens []store.Token
	e.jsonOut(&tokens, "token", "list")
	if len(tokens) != 1 || tokens[0].Agent != "bot" || tokens[0].Label != "tmux" {
		t.Fatalf("token list after minting in the TUI = %+v", tokens)
	}
	c := gatewayClient(t, e)
	url := "https://hr.corp.net:" + portOf(e.status.Listeners.HTTPS) + "/v1/people"
	if status, _ := doReq(t, c, "GET", url, map[string]string{"Authorization": "Bearer " + tok}); status != 403 {
		t.Errorf("request with the minted token and no grant: status %d, want 403 (known token, no grant)", status)
	}

	// Add a grant with the form, which starts empty.
	s.press("5", "[5 Grants]", "")
	s.keys("a")
	screen = s.waitFor("Add a grant")
	if strings.Contains(screen, "/**  ") || strings.Contains(screen, "methods  *") {
		t.Errorf("the grant form is prefilled:\n%s", screen)
	}
	s.keys("Enter") // agent: bot
	s.typeText("h") // backend: hr, by its initial
	s.waitFor("← hr →")
	s.keys("Enter")
	s.typeText("get")
	s.keys("Enter")
	s.typeText("/v1/**")
	s.keys("Enter")
	s.waitFor("added the grant of bot on hr")
	var grants []store.Grant
	e.jsonOut(&grants, "grant", "list")
	if len(grants) != 1 || grants[0].Agent != "bot" || grants[0].Backend != "hr" ||
		strings.Join(grants[0].Methods, ",") != "GET" || strings.Join(grants[0].Paths, ",") != "/v1/**" {
		t.Fatalf("grant list after the TUI form = %+v", grants)
	}
	s.keys("?")
	s.waitFor("go to screen by name")
	s.keys("q")
	assertNoSecret(t, e, secret, typed, tok)
}
