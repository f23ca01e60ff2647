package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/store"
)

// requireTool skips a test when a program it needs is missing, or fails it
// when AGW_E2E_REQUIRE=1 says the machine must have it (.ci/run installs it).
func requireTool(t *testing.T, name string, required bool) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if required && os.Getenv("AGW_E2E_REQUIRE") == "1" {
		t.Fatalf("%s is not installed (AGW_E2E_REQUIRE=1; .ci/run installs it)", name)
	}
	t.Skipf("%s is not installed", name)
	return ""
}

// TestCompletionScriptsParse checks each committed completion script with
// its shell's syntax check, where that shell is installed.
func TestCompletionScriptsParse(t *testing.T) {
	cases := []struct {
		shell    string
		args     []string
		file     string
		required bool // installed by .ci/run
	}{
		{"bash", []string{"-n"}, "agw.bash", true},
		{"zsh", []string{"-n"}, "_agw", true},
		{"fish", []string{"--no-execute"}, "agw.fish", false},
		{"pwsh", []string{"-NoProfile", "-NonInteractive", "-Command", "$null = [scriptblock]::Create((Get-Content -Raw $args[0]))"}, "agw.ps1", false},
	}
	for _, c := range cases {
		t.Run(c.shell, func(t *testing.T) {
			sh := requireTool(t, c.shell, c.required)
			path := filepath.Join(repoRoot, "completions", c.file)
			out, err := exec.Command(sh, append(c.args, path)...).CombinedOutput()
			if err != nil || len(out) > 0 {
				t.Errorf("%s %s: %v\n%s", c.shell, path, err, out)
			}
		})
	}
}

// nameDaemon is a fake daemon that knows a few objects of each kind.
func nameDaemon(t *testing.T) *fakeDaemon {
	d := newFakeDaemon(t)
	d.reply("GET /v1/backends", http.StatusOK, []store.Backend{{Name: "crm"}, {Name: "openai"}})
	d.reply("GET /v1/agents", http.StatusOK, []admin.AgentSummary{{Agent: store.Agent{Name: "support-bot"}}, {Agent: store.Agent{Name: "etl"}}})
	d.reply("GET /v1/idps", http.StatusOK, []store.IdP{{Name: "okta"}})
	d.reply("GET /v1/tokens", http.StatusOK, []store.Token{
		{ID: "tok_live", Agent: "support-bot", Label: "prod"},
		{ID: "tok_gone", Agent: "etl", RevokedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
	})
	return d
}

// TestNameCompletion asks for completions the way the shell scripts do
// (`agw __complete ...`) at every argument and flag that names an object.
func TestNameCompletion(t *testing.T) {
	backends := []string{"crm", "openai"}
	agents := []string{"support-bot", "etl"}
	cases := []struct {
		line []string
		want []string
	}{
		{[]string{"backend", "show", ""}, backends},
		{[]string{"backend", "remove", ""}, backends},
		{[]string{"backend", "rm", ""}, backends},
		{[]string{"backend", "rotate", ""}, backends},
		{[]string{"backend", "update", ""}, backends},
		{[]string{"agent", "show", ""}, agents},
		{[]string{"agent", "disable", ""}, agents},
		{[]string{"agent", "enable", ""}, agents},
		{[]string{"agent", "update", ""}, agents},
		{[]string{"agent", "remove", ""}, agents},
		{[]string{"grant", "add", ""}, agents},
		{[]string{"grant", "add", "etl", ""}, backends},
		{[]string{"grant", "remove", ""}, agents},
		{[]string{"grant", "remove", "etl", ""}, backends},
		{[]string{"grant", "list", "--agent", ""}, agents},
		{[]string{"token", "mint", ""}, agents},
		{[]string{"token", "list", "--agent", ""}, agents},
		{[]string{"token", "revoke", ""}, []string{"tok_live\tsupport-bot prod"}},
		{[]string{"idp", "remove", ""}, []string{"okta"}},
		{[]string{"agent", "add", "x", "--idp", ""}, []string{"okta"}},
		{[]string{"audit", "tail", "--agent", ""}, agents},
		{[]string{"audit", "query", "--backend", ""}, backends},
	}
	d := nameDaemon(t)
	for _, c := range cases {
		t.Run(strings.Join(c.line, " "), func(t *testing.T) {
			r := newCLI(t, d.socket).run("", append([]string{"__complete"}, c.line...)...)
			got := completionNames(r.stdout)
			if r.code != 0 || strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("exit %d, completions %q; want %q\nstderr: %s", r.code, got, c.want, r.stderr)
			}
			if strings.Contains(r.stdout, "tok_gone") {
				t.Errorf("a revoked token is offered for revoke")
			}
		})
	}

	t.Run("no daemon", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "none.sock")
		for _, c := range cases {
			r := newCLI(t, sock).run("", append([]string{"__complete"}, c.line...)...)
			if got := completionNames(r.stdout); r.code != 0 || len(got) != 0 {
				t.Errorf("%v without a daemon: exit %d, completions %q; want none, silently", c.line, r.code, got)
			}
		}
	})
}

// completionNames drops the directive line (":4") and cobra's trailing
// "Completion ended with directive" note from `agw __complete` output.
func completionNames(out string) []string {
	var names []string
	for _, l := range strings.Split(out, "\n") {
		if l == "" || strings.HasPrefix(l, ":") || strings.HasPrefix(l, "Completion ended") {
			continue
		}
		names = append(names, l)
	}
	return names
}

// TestBashCompletionAsksTheDaemon sources the committed bash script in a
// real bash, as bash-completion would, and completes a backend name: the
// script calls the agw binary on PATH, which asks the daemon.
func TestBashCompletionAsksTheDaemon(t *testing.T) {
	bash := requireTool(t, "bash", true)
	const bashCompletion = "/usr/share/bash-completion/bash_completion"
	if _, err := os.Stat(bashCompletion); err != nil {
		if os.Getenv("AGW_E2E_REQUIRE") == "1" {
			t.Fatalf("bash-completion is not installed (AGW_E2E_REQUIRE=1; .ci/run installs it)")
		}
		t.Skip("bash-completion is not installed: the script needs its _get_comp_words_by_ref")
	}
	if testing.Short() {
		t.Skip("builds the agw binary")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "agw"), ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	d := nameDaemon(t)
	script, err := filepath.Abs(filepath.Join(repoRoot, "completions", "agw.bash"))
	if err != nil {
		t.Fatal(err)
	}
	complete := func(socket, line string) []string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bash, "--norc", "--noprofile", "-c", `
source "$1"
source "$2"
compopt() { :; } # only works inside a completion bash is running itself
COMP_LINE=$3
COMP_POINT=${#COMP_LINE}
read -r -a COMP_WORDS <<<"$COMP_LINE"
[[ $COMP_LINE == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
__start_agw agw
printf '%s\n' "${COMPREPLY[@]}"
`, "bash", bashCompletion, script, line)
		cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "AGW_SOCKET="+socket)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || stderr.Len() > 0 {
			t.Fatalf("bash completion of %q: %v\n%s", line, err, stderr.String())
		}
		return strings.Fields(string(out))
	}
	if got := complete(d.socket, "agw backend show "); strings.Join(got, " ") != "crm openai" {
		t.Errorf("agw backend show <TAB> offered %q; want crm openai", got)
	}
	if got := complete(d.socket, "agw grant add support-bot o"); strings.Join(got, " ") != "openai" {
		t.Errorf("agw grant add support-bot o<TAB> offered %q; want openai", got)
	}
	if got := complete(filepath.Join(t.TempDir(), "none.sock"), "agw agent show "); len(got) != 0 {
		t.Errorf("without a daemon, agw agent show <TAB> offered %q; want nothing", got)
	}
}
