package e2e

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/agw-dev/agw/admin"
)

// The transparent tests run unmodified clients inside a network namespace
// whose only resolver is agw: the clients call https://api.openai.com as
// they always do and are told nothing of the gateway but its CA. Inside the
// namespace agw serves DNS on 127.0.0.53:53 and HTTPS on 127.0.0.1:443, and
// a fake api.openai.com (netns/fakebackend) serves on 127.0.0.2:443 with a
// certificate from a CA only agw trusts. Nothing leaves the namespace: agw's
// upstream resolver is a closed port on its loopback.

const (
	nsGatewayIP = "127.0.0.1"
	nsDNSAddr   = "127.0.0.53:53"
	nsBackendIP = "127.0.0.2"
	openAIHost  = "api.openai.com"
	// unregistered is a name agw has no backend for: it must not resolve to
	// the gateway (and cannot resolve at all, with no upstream reachable).
	unregistered = "unregistered.example.net"
)

// streamContent is what the fake backend's stream spells out, chunk by chunk.
var streamContent = []string{"Hello", " from", " the", " backend", ""}

var netnsSeq atomic.Int32

// netns is a network namespace made for one test, with its loopback up and
// /etc/netns/<name>/ holding the files `ip netns exec` lays over /etc.
type netns struct {
	t    *testing.T
	name string
}

// requireNetns skips (or fails, with AGW_E2E_REQUIRE=1) where a network
// namespace cannot be made.
func requireNetns(t *testing.T) {
	t.Helper()
	requireEnv(t, runtime.GOOS == "linux", "transparent tests need Linux network namespaces")
	requireEnv(t, os.Geteuid() == 0, "transparent tests need root to create a network namespace")
	_, err := exec.LookPath("ip")
	requireEnv(t, err == nil, "transparent tests need the ip command (iproute2)")
}

// newNetns creates the namespace and registers its removal, with every
// process left in it and its /etc/netns directory, even when the test fails.
func newNetns(t *testing.T) *netns {
	t.Helper()
	n := &netns{t: t, name: fmt.Sprintf("agwtest-%d-%d", os.Getpid(), netnsSeq.Add(1))}
	out, err := exec.Command("ip", "netns", "add", n.name).CombinedOutput()
	requireEnv(t, err == nil, fmt.Sprintf("cannot create a network namespace: ip netns add: %v: %s", err, out))
	t.Cleanup(n.remove)
	n.ip("-n", n.name, "link", "set", "lo", "up")

	etc := filepath.Join("/etc/netns", n.name)
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		// agw is the only resolver; one quick try so a failure shows fast.
		"resolv.conf": "nameserver " + strings.TrimSuffix(nsDNSAddr, ":53") + "\noptions timeout:2 attempts:1\n",
		// Nothing but files and DNS: no name service that would reach a
		// resolver outside the namespace, no host entry for the backend.
		"nsswitch.conf": "hosts: files dns\n",
		"hosts":         "127.0.0.1 localhost\n::1 localhost\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(etc, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

func (n *netns) ip(args ...string) {
	n.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		n.t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (n *netns) remove() {
	// Every process in the namespace was started by this test.
	out, _ := exec.Command("ip", "netns", "pids", n.name).Output()
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if out, err := exec.Command("ip", "netns", "del", n.name).CombinedOutput(); err != nil {
		n.t.Errorf("ip netns del %s: %v\n%s", n.name, err, out)
	}
	if err := os.RemoveAll(filepath.Join("/etc/netns", n.name)); err != nil {
		n.t.Error(err)
	}
}

// command prepares name to run inside the namespace with only the given
// environment (plus PATH and HOME): no proxy or key variables leak in.
func (n *netns) command(env []string, name string, args ...string) *exec.Cmd {
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.name, name}, args...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + n.t.TempDir()}, env...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// run runs a client to completion inside the namespace, killing it after
// two minutes, and returns its stdout; stderr goes to the test log.
func (n *netns) run(env []string, name string, args ...string) (string, error) {
	n.t.Helper()
	cmd := n.command(env, name, args...)
	var out, errOut syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		err = fmt.Errorf("%s did not finish within 2 minutes: %v", name, <-done)
	}
	if s := errOut.String(); s != "" {
		n.t.Logf("%s stderr:\n%s", name, s)
	}
	return out.String(), err
}

// startIn runs `agw serve` inside the namespace on the well-known ports and
// waits until its admin API answers; the CLI reaches it from outside through
// the socket file. extra flags come last, so they override the defaults.
func (e *env) startIn(n *netns, extra ...string) {
	e.t.Helper()
	args := append([]string{"netns", "exec", n.name, agwBin, "serve",
		"--data-dir", e.dataDir, "--socket", e.socket,
		"--https-listen", net.JoinHostPort(nsGatewayIP, "443"), "--dns-listen", nsDNSAddr,
		"--advertise-ip", nsGatewayIP, "--upstream-dns", "127.0.0.1:1", "--log-level", "debug"}, extra...)
	cmd := exec.Command("ip", args...)
	e.log = &syncBuffer{}
	e.logs = append(e.logs, e.log)
	cmd.Stdout, cmd.Stderr = e.log, e.log
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.daemon = cmd
	e.exited = make(chan error, 1)
	go func() { e.exited <- cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if out, _, code := e.run("", "status", "-o", "json"); code == 0 {
			if err := json.Unmarshal([]byte(out), &e.status); err != nil {
				e.t.Fatalf("status -o json: %v\n%s", err, out)
			}
			return
		}
		select {
		case err := <-e.exited:
			e.daemon = nil
			e.t.Fatalf("agw serve in %s exited before it was ready: %v\n%s", n.name, err, e.log.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("agw serve in %s not ready after 20s:\n%s", n.name, e.log.String())
		}
	}
}

// helpers builds the fake backend and the Go client once per run, beside
// the agw binary.
var helpers = sync.OnceValue(func() error {
	out, err := exec.Command("go", "build", "-o", filepath.Dir(agwBin)+"/", "./netns/fakebackend", "./netns/goclient").CombinedOutput()
	if err != nil {
		return fmt.Errorf("build e2e/netns helpers: %v\n%s", err, out)
	}
	return nil
})

// transparent is one namespace with agw and the fake api.openai.com in it,
// configured as an operator would: backend, agent, grant, token.
type transparent struct {
	*netns
	e          *env
	dir        string
	token      string // the gateway token the agent holds
	key        string // the real OpenAI key only the backend may see
	caFile     string // agw's CA, alone in its directory
	backendLog string
	stepDir    string
	backendOut *syncBuffer
}

func newTransparent(t *testing.T) *transparent {
	t.Helper()
	return newTransparentWith(t)
}

// newTransparentWith is newTransparent with extra `agw serve` flags.
func newTransparentWith(t *testing.T, serveFlags ...string) *transparent {
	t.Helper()
	requireNetns(t)
	if err := helpers(); err != nil {
		t.Fatal(err)
	}
	x := &transparent{netns: newNetns(t), dir: t.TempDir(), key: "sk-proj-real-" + randomHex(t, 16)}
	x.backendLog = filepath.Join(x.dir, "backend-requests.jsonl")
	x.stepDir = filepath.Join(x.dir, "steps")
	if err := os.Mkdir(x.stepDir, 0o755); err != nil {
		t.Fatal(err)
	}
	backendCA := x.startBackend()

	x.e = newEnv(t)
	x.e.startIn(x.netns, serveFlags...)
	x.e.ok(x.key+"\n", "backend", "add", "openai", "--host", openAIHost,
		"--upstream", "https://"+net.JoinHostPort(nsBackendIP, "443"), "--upstream-ca", backendCA,
		"--inject", "bearer", "--secret-stdin")
	x.e.ok("", "agent", "add", "coder", "--description", "an agent that calls OpenAI")
	x.e.ok("", "grant", "add", "coder", "openai", "--method", "POST", "--path", "/v1/chat/completions")
	var minted admin.MintedToken
	x.e.jsonOut(&minted, "token", "mint", "coder")
	if !strings.HasPrefix(minted.Value, "agw_") {
		t.Fatalf("token mint gave %q; want an agw_ token", minted.Value)
	}
	x.token = minted.Value
	trust := filepath.Join(x.dir, "trust")
	if err := os.Mkdir(trust, 0o755); err != nil {
		t.Fatal(err)
	}
	x.caFile = filepath.Join(trust, "agw-ca.pem")
	if err := os.WriteFile(x.caFile, []byte(x.e.ok("", "ca", "export")), 0o644); err != nil {
		t.Fatal(err)
	}
	return x
}

// startBackend issues the fake backend a certificate for api.openai.com
// and 127.0.0.2 from a fresh CA, starts it in the namespace and returns the
// CA's file, for agw's --upstream-ca.
func (x *transparent) startBackend() string {
	t := x.t
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fake OpenAI test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: openAIHost},
		DNSNames: []string{openAIHost}, IPAddresses: []net.IP{net.ParseIP(nsBackendIP)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leafKeyDER, err := x509.MarshalECPrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile, certFile, keyFile := filepath.Join(x.dir, "backend-ca.pem"), filepath.Join(x.dir, "backend.pem"), filepath.Join(x.dir, "backend.key")
	for f, b := range map[string]*pem.Block{
		caFile: {Type: "CERTIFICATE", Bytes: caDER}, certFile: {Type: "CERTIFICATE", Bytes: leafDER},
		keyFile: {Type: "EC PRIVATE KEY", Bytes: leafKeyDER},
	} {
		if err := os.WriteFile(f, pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	cmd := x.command([]string{"FAKE_BACKEND_KEY=" + x.key}, filepath.Join(filepath.Dir(agwBin), "fakebackend"),
		"-listen", net.JoinHostPort(nsBackendIP, "443"), "-cert", certFile, "-key", keyFile,
		"-log", x.backendLog, "-step-dir", x.stepDir)
	x.backendOut = &syncBuffer{}
	cmd.Stdout, cmd.Stderr = x.backendOut, x.backendOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("fake backend output:\n%s", x.backendOut.String())
			b, _ := os.ReadFile(x.backendLog)
			t.Logf("fake backend requests:\n%s", redactKey(string(b), x.key))
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(x.backendOut.String(), "ready") {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("fake backend exited: %v\n%s", err, x.backendOut.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("fake backend not ready after 20s:\n%s", x.backendOut.String())
		}
	}
	return caFile
}

// backendRecord is one request as the fake backend saw it.
type backendRecord struct {
	Method    string              `json:"method"`
	Path      string              `json:"path"`
	RawQuery  string              `json:"raw_query"`
	Host      string              `json:"host"`
	Header    map[string][]string `json:"header"`
	BasicUser string              `json:"basic_user"`
	BasicPass string              `json:"basic_pass"`
	Body      string              `json:"body"`
}

// assertBackendSaw checks that the backend received exactly want requests,
// each for api.openai.com carrying the real key, and never the gateway
// token: not in a header, the query, a Basic field or the body.
func (x *transparent) assertBackendSaw(want int) {
	t := x.t
	t.Helper()
	b, err := os.ReadFile(x.backendLog)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var recs []backendRecord
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var r backendRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("fake backend log line %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	if len(recs) != want {
		t.Errorf("fake backend received %d requests; want %d", len(recs), want)
	}
	// The token's secret part too, in case a header carries it re-encoded.
	needles := []string{x.token, strings.TrimPrefix(x.token, "agw_")}
	for i, r := range recs {
		where := fmt.Sprintf("request %d (%s %s)", i+1, r.Method, r.Path)
		if got := r.Header["Authorization"]; len(got) != 1 || got[0] != "Bearer "+x.key {
			t.Errorf("%s: Authorization = %q; want exactly the real key as a bearer token", where, redactKey(strings.Join(got, ", "), x.key))
		}
		if r.Host != openAIHost {
			t.Errorf("%s: Host = %q; want %s", where, r.Host, openAIHost)
		}
		fields := map[string]string{"query": r.RawQuery, "Basic user": r.BasicUser, "Basic password": r.BasicPass, "body": r.Body}
		for name, vals := range r.Header {
			fields["header "+name] = name + ": " + strings.Join(vals, "\n")
		}
		for field, v := range fields {
			for _, s := range needles {
				if strings.Contains(v, s) {
					t.Errorf("%s: the gateway token reached the backend in its %s", where, field)
					break
				}
			}
		}
	}
}

// assertClean checks the real key never reached the client and, once agw
// has stopped, that neither secret is in its logs, CLI output or data.
func (x *transparent) assertClean(clientOutputs ...string) {
	x.t.Helper()
	for _, o := range clientOutputs {
		if strings.Contains(o, x.key) {
			x.t.Errorf("the real backend key reached the client:\n%s", redactKey(o, x.key))
		}
	}
	x.e.stop()
	assertNoSecret(x.t, x.e, x.key, x.token)
}

// lockstep runs a streaming client in the namespace. The fake backend sends
// chunk i only after the step file <stream>.<i> exists, and lockstep creates
// it only once the client has printed chunk i-1: the stream completes only
// if every chunk reached the client before the next one left the backend.
// chunkIndex recognises a chunk in a line of the client's output. It returns
// the client's output and, for i >= 1, when chunk i was released.
func (x *transparent) lockstep(stream string, chunkIndex func(line string) (int, bool), env []string, name string, args ...string) (string, map[int]time.Time) {
	t := x.t
	t.Helper()
	cmd := x.command(env, name, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errOut syncBuffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var out strings.Builder
	released := map[int]time.Time{}
	// Shorter than the backend's own wait for a step, so a lump is reported
	// as such rather than as a stream cut short.
	const wait = 30 * time.Second
	timeout := time.After(wait)
	next := 0
loop:
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				break loop
			}
			out.WriteString(line + "\n")
			i, ok := chunkIndex(line)
			if !ok {
				continue
			}
			if i != next {
				t.Errorf("client printed chunk %d; want chunk %d next", i, next)
			}
			next = i + 1
			released[next] = time.Now()
			step := filepath.Join(x.stepDir, fmt.Sprintf("%s.%d", stream, next))
			if err := os.WriteFile(step, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		case <-timeout:
			_ = cmd.Process.Kill()
			for range lines {
			}
			_ = cmd.Wait()
			t.Fatalf("stream %s: the client has shown %d chunks after %v while the backend holds the next one "+
				"until then: the gateway delivered the stream in a lump, not chunk by chunk\nclient output:\n%s\nstderr:\n%s",
				stream, next, wait, out.String(), errOut.String())
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("%s: %v\nstdout:\n%s\nstderr:\n%s", name, err, out.String(), errOut.String())
	}
	t.Logf("stream %s: %d chunks, each released only after the client had shown the one before", stream, next)
	return out.String(), released
}

// assertHeldBack checks that no chunk reached the client before the test
// released it at the backend: the lock step really held the stream.
func assertHeldBack(t *testing.T, arrived []int64, released map[int]time.Time) {
	t.Helper()
	for i, ms := range arrived {
		if r, ok := released[i]; ok && ms < r.UnixMilli() {
			t.Errorf("chunk %d reached the client at %d, before it was released at %d: the backend did not hold it", i, ms, r.UnixMilli())
		}
	}
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", b)
}

// redactKey keeps the real key out of test logs.
func redactKey(s, key string) string { return strings.ReplaceAll(s, key, "[real key]") }
