package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// readmeBlock is one fenced code block of README.md.
type readmeBlock struct {
	line int    // of the opening fence
	info string // the fence's info string: "sh", "sh norun: why", "json", ...
	code string
}

// Info strings of sh blocks the test does not run. Each must say why after
// the colon. norun-pending marks commands whose feature has not landed yet:
// they are meant to run once it has.
const (
	markNoRun        = "sh norun:"
	markNoRunPending = "sh norun-pending:"
)

func readmeBlocks(t *testing.T, path string) []readmeBlock {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		blocks []readmeBlock
		cur    *readmeBlock
		code   strings.Builder
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if !strings.HasPrefix(line, "```") {
			if cur != nil {
				code.WriteString(line + "\n")
			}
			continue
		}
		if cur == nil {
			cur = &readmeBlock{line: n, info: strings.TrimSpace(strings.TrimPrefix(line, "```"))}
			code.Reset()
			continue
		}
		if strings.TrimSpace(line) != "```" {
			t.Fatalf("%s:%d: a code block opens inside the block of line %d", path, n, cur.line)
		}
		cur.code = code.String()
		blocks = append(blocks, *cur)
		cur = nil
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("%s:%d: code block never closed", path, cur.line)
	}
	return blocks
}

// classifyReadmeBlocks sorts README blocks into those to run and those marked not to,
// and fails on blocks whose marking is missing or unknown, so no command in
// the README escapes the test unnoticed.
func classifyReadmeBlocks(t *testing.T, blocks []readmeBlock) (run []readmeBlock, pending []string) {
	t.Helper()
	for _, b := range blocks {
		lang, _, _ := strings.Cut(b.info, " ")
		switch {
		case b.info == "":
			t.Errorf("README.md:%d: a code block without an info string; say sh (run by this test), %q, or the language", b.line, markNoRun+" why")
		case lang == "bash" || lang == "shell" || lang == "console" || lang == "zsh":
			t.Errorf("README.md:%d: shell commands go in sh blocks, which this test runs (or marks norun with a reason)", b.line)
		case b.info == "sh":
			run = append(run, b)
		case strings.HasPrefix(b.info, markNoRunPending):
			reason := strings.TrimSpace(strings.TrimPrefix(b.info, markNoRunPending))
			if len(strings.Fields(reason)) < 3 {
				t.Errorf("README.md:%d: %q needs a reason: what has to land before it runs", b.line, b.info)
			}
			pending = append(pending, fmt.Sprintf("README.md:%d (%s): %s", b.line, reason, strings.TrimSpace(b.code)))
		case strings.HasPrefix(b.info, markNoRun):
			if reason := strings.TrimSpace(strings.TrimPrefix(b.info, markNoRun)); len(strings.Fields(reason)) < 3 {
				t.Errorf("README.md:%d: %q needs a reason why it cannot run in a test", b.line, b.info)
			}
		case lang == "sh":
			t.Errorf("README.md:%d: unknown marking %q: use sh, %q or %q", b.line, b.info, markNoRun+" why", markNoRunPending+" why")
		}
	}
	return run, pending
}

// TestREADMEQuickstart keeps the two quickstart commands in the README, and
// the test command in step with the one .ci/run runs.
func TestREADMEQuickstart(t *testing.T) {
	var cmds []string
	for _, b := range readmeBlocks(t, "../README.md") {
		if strings.HasPrefix(b.info, "sh") {
			cmds = append(cmds, strings.Split(strings.TrimSpace(b.code), "\n")...)
		}
	}
	for _, want := range []string{"go run ./cmd/agw serve", "go test -count=1 -timeout 12m ./..."} {
		found := false
		for _, c := range cmds {
			found = found || c == want
		}
		if !found {
			t.Errorf("README.md lost the quickstart command %q", want)
		}
	}
	ci, err := os.ReadFile("../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(ci), "\n") {
		if strings.HasPrefix(l, "go test ") && l != "go test -count=1 -timeout 12m ./..." {
			t.Errorf(".ci/run runs %q, but README.md tells operators to run go test -count=1 -timeout 12m ./...", l)
		}
	}
}

// Secrets the README's commands read from the environment, as an operator's
// shell would hold them. None may come back out of agw.
var readmeSecrets = map[string]string{
	"OPENAI_API_KEY":    canary + "-openai",
	"ANTHROPIC_API_KEY": canary + "-anthropic",
	"GITHUB_TOKEN":      canary + "-github",
	"HR_API_KEY":        canary + "-hr",
	"MAPS_API_KEY":      canary + "-maps",
	"CRM_CLIENT_SECRET": canary + "-crm",
}

// TestREADME runs every sh block of README.md, in order, in one bash, against
// a real daemon, as an operator following it would. What differs from an
// operator's machine is only where the network goes: every backend the README
// registers forwards to a local TLS backend, which is also the CRM's OAuth2
// token endpoint, and the Okta IdP is a local issuer (a shell function adds
// --upstream to `agw backend add` and swaps --token-url and Okta's --issuer);
// curl and git reach agw through a local HTTPS proxy (HTTPS_PROXY) that sends
// every connection to agw's listener, as DNS pointing at agw would, trusting
// agw's CA as an agent host would.
func TestREADME(t *testing.T) {
	run, pending := classifyReadmeBlocks(t, readmeBlocks(t, "../README.md"))
	for _, p := range pending {
		t.Logf("not run until its feature lands: %s", p)
	}
	if t.Failed() {
		return
	}
	for _, tool := range []string{"bash", "curl", "git", "base64"} {
		_, err := exec.LookPath(tool)
		requireEnv(t, err == nil, "the README's commands need "+tool)
	}

	e := newEnv(t)
	e.start()
	be := newReadmeBackend(t)
	okta := newE2EIssuer(t)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	okta.publish("k1", key)
	const crmSyncClient = "0oa9x8y7z6w5v4u3t2s1" // the README's crm-sync agent
	oktaToken := mintRS256(key, "k1", oktaClaims(okta.issuer(), "cid", crmSyncClient, "sub", crmSyncClient))
	proxy := newConnectProxy(t, e.status.Listeners.HTTPS)

	work := t.TempDir()
	home := filepath.Join(work, "home")
	trust := filepath.Join(work, "trust")
	for _, d := range []string{home, trust} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	caFile := filepath.Join(trust, "agw-ca.pem")
	if err := os.WriteFile(caFile, []byte(e.ok("", "ca", "export")), 0o644); err != nil {
		t.Fatal(err)
	}
	// curl fails on HTTP errors, so a denied call fails the README.
	if err := os.WriteFile(filepath.Join(home, ".curlrc"), []byte("fail-with-body\nsilent\nshow-error\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	var script strings.Builder
	script.WriteString(`set -euo pipefail
agw() {
	local args=() prev=
	for a in "$@"; do
		case "$prev" in
		--token-url) a=$README_UPSTREAM/oauth2/token ;;
		--issuer) [ "${2-}" = add ] && [ "${3-}" = okta ] && a=$README_OKTA_ISSUER ;;
		esac
		args+=("$a")
		prev=$a
	done
	if [ "${1-}" = backend ] && [ "${2-}" = add ]; then
		args+=(--upstream "$README_UPSTREAM" --upstream-ca "$README_UPSTREAM_CA")
	fi
	command agw "${args[@]}"
}
`)
	for _, b := range run {
		fmt.Fprintf(&script, "printf '\\n### README.md:%d\\n'\n%s", b.line, b.code)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "--norc", "--noprofile", "-c", script.String())
	cmd.Dir = work
	cmd.Env = readmeEnv(map[string]string{
		"PATH":                filepath.Dir(agwBin) + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME":                home,
		"AGW_SOCKET":          e.socket,
		"AGW_DATA_DIR":        e.dataDir,
		"HTTPS_PROXY":         "http://" + proxy,
		"https_proxy":         "http://" + proxy,
		"CURL_CA_BUNDLE":      caFile,
		"GIT_SSL_CAINFO":      caFile,
		"GIT_TERMINAL_PROMPT": "0",
		"GIT_CONFIG_NOSYSTEM": "1",
		"README_UPSTREAM":     be.srv.URL,
		"README_UPSTREAM_CA":  be.caFile,
		"README_OKTA_ISSUER":  okta.issuer(),
		"OKTA_ACCESS_TOKEN":   oktaToken,
	})
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("README.md commands failed (%v); the last block printed its line:\n%s", err, lastLines(string(out), 60))
	}
	for name, secret := range readmeSecrets {
		if strings.Contains(string(out), secret) {
			t.Errorf("the README's commands printed %s", name)
		}
	}

	t.Run("backends got the real credentials, never agw tokens", func(t *testing.T) {
		checks := []struct {
			path string
			got  func(r seenRequest) string
			want string
		}{
			{"/v1/models", func(r seenRequest) string { return r.Header.Get("Authorization") }, "Bearer " + readmeSecrets["OPENAI_API_KEY"]},
			{"/v1/chat/completions", func(r seenRequest) string { return r.Header.Get("Authorization") }, "Bearer " + readmeSecrets["OPENAI_API_KEY"]},
			{"/v1/messages", func(r seenRequest) string { return r.Header.Get("X-Api-Key") }, readmeSecrets["ANTHROPIC_API_KEY"]},
			{"/acme/agent-tools.git/info/refs", func(r seenRequest) string {
				u, p, _ := parseBasic(r.Header.Get("Authorization"))
				return u + ":" + p
			}, "x-access-token:" + readmeSecrets["GITHUB_TOKEN"]},
			{"/v2/employees/1042", func(r seenRequest) string { return r.Header.Get("Authorization") }, "ApiKey " + readmeSecrets["HR_API_KEY"]},
			{"/v1/geocode", func(r seenRequest) string {
				q, _ := url.ParseQuery(r.RawQuery)
				return q.Get("key")
			}, readmeSecrets["MAPS_API_KEY"]},
			{"/v2/accounts", func(r seenRequest) string { return r.Header.Get("Authorization") }, "Bearer " + crmAccessToken},
		}
		seen := be.requests()
		for _, c := range checks {
			found := false
			for _, r := range seen {
				if r.Path != c.path {
					continue
				}
				found = true
				if got := c.got(r); got != c.want {
					t.Errorf("%s: the backend got %q, want the real credential", c.path, got)
				}
			}
			if !found {
				t.Errorf("no README command reached %s", c.path)
			}
		}
		for _, r := range seen {
			if r.Path == "/v2/accounts" && strings.Contains(r.Header.Get("Authorization"), oktaToken) {
				t.Errorf("the agent's Okta token reached the CRM")
			}
			if strings.Contains(r.RawQuery, "agw_") || strings.Contains(r.Path, "agw_") {
				t.Errorf("%s: an agw token reached the backend in the URL", r.Path)
			}
			for k, vs := range r.Header {
				for _, v := range vs {
					u, p, _ := parseBasic(v)
					if strings.Contains(v, "agw_") || strings.Contains(u+p, "agw_") {
						t.Errorf("%s: an agw token reached the backend in header %s", r.Path, k)
					}
				}
			}
		}
	})

	e.stop()
	secrets := make([]string, 0, len(readmeSecrets))
	for _, s := range readmeSecrets {
		secrets = append(secrets, s)
	}
	assertNoSecret(t, e, secrets...)
}

// readmeEnv is this process's environment without proxy settings or agw's
// variables, plus set.
func readmeEnv(set map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "CURL_HOME", "SSL_CERT_FILE", "SSL_CERT_DIR":
			continue
		}
		if _, ok := set[k]; ok || strings.HasPrefix(k, "AGW_") || strings.HasPrefix(k, "GIT_") {
			continue
		}
		env = append(env, kv)
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	for k, v := range readmeSecrets {
		env = append(env, k+"="+v)
	}
	return env
}

func lastLines(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// readmeBackend stands in for every API the README registers: it serves a
// real git repository at /acme/agent-tools.git (git's smart HTTP, through
// git http-backend, for GitHub's credentials only) and answers anything else
// with a little JSON, recording every request.
type readmeBackend struct {
	srv    *httptest.Server
	caFile string
	git    http.Handler
	mu     sync.Mutex
	seen   []seenRequest
}

func newReadmeBackend(t *testing.T) *readmeBackend {
	t.Helper()
	repos := t.TempDir()
	src := filepath.Join(t.TempDir(), "src")
	gitRun := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=agw", "-c", "user.email=agw@example.com", "-c", "init.defaultBranch=main"}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+repos)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	gitRun("init", "-q", src)
	if err := os.WriteFile(filepath.Join(src, "README"), []byte("tools for agents\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitRun("-C", src, "add", "README")
	gitRun("-C", src, "commit", "-q", "-m", "first")
	gitRun("clone", "-q", "--bare", src, filepath.Join(repos, "acme", "agent-tools.git"))
	execPath, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatal(err)
	}
	b := &readmeBackend{git: &cgi.Handler{
		Path: filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + repos, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "HOME=" + repos},
	}}
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(b.serve))
	b.srv.EnableHTTP2 = true
	b.srv.StartTLS()
	t.Cleanup(b.srv.Close)
	b.caFile = filepath.Join(t.TempDir(), "backend-ca.pem")
	if err := os.WriteFile(b.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b.srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *readmeBackend) serve(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.seen = append(b.seen, seenRequest{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Host: r.Host, Header: r.Header.Clone()})
	b.mu.Unlock()
	if r.URL.Path == "/oauth2/token" {
		// The CRM's token endpoint: client credentials in Basic auth or the form.
		_ = r.ParseForm()
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		if r.PostForm.Get("grant_type") != "client_credentials" || id != "agw-gateway" || secret != readmeSecrets["CRM_CLIENT_SECRET"] {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintln(w, `{"error":"invalid_client"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600}`+"\n", crmAccessToken)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/acme/agent-tools.git/") {
		u, p, ok := parseBasic(r.Header.Get("Authorization"))
		if !ok || u != "x-access-token" || p != readmeSecrets["GITHUB_TOKEN"] {
			w.Header().Set("WWW-Authenticate", `Basic realm="GitHub"`)
			http.Error(w, "bad credentials", http.StatusUnauthorized)
			return
		}
		b.git.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"path":%q}`+"\n", r.URL.Path)
}

// crmAccessToken is what the README's CRM token endpoint issues.
const crmAccessToken = "crm-access-token-7f3a"

func (b *readmeBackend) requests() []seenRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]seenRequest(nil), b.seen...)
}

// newConnectProxy serves HTTP CONNECT on loopback and connects every tunnel
// to target, whatever host it names: for curl and git, the same as DNS
// answering agw's address. It returns the proxy's address.
func newConnectProxy(t *testing.T, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		up, err := net.DialTimeout("tcp", target, 5*time.Second)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer up.Close()
		down, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer down.Close()
		if _, err := io.WriteString(down, "HTTP/1.1 200 Connection Established\r\n\r\n"); err != nil {
			return
		}
		done := make(chan struct{}, 2)
		go func() {
			_, _ = io.Copy(up, io.MultiReader(bytes.NewReader(buffered(buf.Reader)), down))
			done <- struct{}{}
		}()
		go func() { _, _ = io.Copy(down, up); done <- struct{}{} }()
		<-done
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// buffered returns what the server already read past the CONNECT request.
func buffered(r *bufio.Reader) []byte {
	b, _ := r.Peek(r.Buffered())
	return b
}
