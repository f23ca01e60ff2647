package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/store"
)

// testPostgres is the PostgreSQL server the cluster tests use: the
// machine's, over loopback, unless AGW_TEST_POSTGRES names another.
func testPostgres() string {
	if u := os.Getenv("AGW_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// clusterDatabase creates a database of the test's own, dropped at the
// end, and returns its URL; it skips (fails under AGW_E2E_REQUIRE=1)
// without a server.
func clusterDatabase(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, testPostgres())
	requireEnv(t, err == nil, fmt.Sprintf("no PostgreSQL server for the cluster tests (set AGW_TEST_POSTGRES): %v", err))
	t.Cleanup(func() { conn.Close(context.Background()) })
	var b [6]byte
	rand.Read(b[:])
	name := "agw_e2e_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })
	u, _ := url.Parse(testPostgres())
	u.Path = "/" + name
	return u.String()
}

// TestClusterReplicas runs three replicas of the real binary on one
// PostgreSQL database and checks that they behave as one gateway.
func TestClusterReplicas(t *testing.T) {
	dbURL := clusterDatabase(t)
	idFile := filepath.Join(t.TempDir(), "cluster-identity")
	first := newEnv(t)
	first.ok("", "cluster", "init", "--identity", idFile)
	replicas := []*env{first, newEnv(t), newEnv(t)}
	for i, e := range replicas {
		e.start("--store", dbURL, "--cluster-identity", idFile, "--replica-id", fmt.Sprintf("r%d", i+1))
	}
	a, b, c := replicas[0], replicas[1], replicas[2]

	// One CA for every replica.
	pem := a.ok("", "ca", "export")
	for _, e := range replicas[1:] {
		if got := e.ok("", "ca", "export"); got != pem {
			t.Fatal("replicas present different CAs")
		}
	}
	be := newRecordingBackend(t)
	secretV1, secretV2 := canary+"-cluster-v1", canary+"-cluster-v2"
	a.ok(secretV1+"\n", "backend", "add", "hr", "--host", "hr.corp.net", "--inject", "header", "--header", "x-api-key",
		"--upstream", be.srv.URL, "--upstream-ca", be.caFile, "--secret-stdin")
	a.ok("", "agent", "add", "bot")
	a.ok("", "grant", "add", "bot", "hr", "--method", "GET", "--path", "/v1/**")
	clients := make([]*http.Client, len(replicas))
	for i, e := range replicas {
		clients[i] = gatewayClient(t, e)
	}
	call := func(i int, tok string) int {
		req, _ := http.NewRequest("GET", "https://hr.corp.net:"+portOf(replicas[i].status.Listeners.HTTPS)+"/v1/x", nil)
		req.Header.Set("x-api-key", tok)
		res, err := clients[i].Do(req)
		if err != nil {
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}
	mint := func(e *env) string {
		var m admin.MintedToken
		e.jsonOut(&m, "token", "mint", "bot")
		return m.Value
	}

	// A token minted on A works on B and C at once (each write waits only
	// for its own replica; the others follow the change feed).
	tok := mint(a)
	for i := range replicas {
		eventually(t, 5*time.Second, func() bool { return call(i, tok) == 200 })
	}

	// Revoked on B, it is refused on A and C: measured over 20 trials.
	var lat []time.Duration
	for range 20 {
		tok := mint(a)
		for i := range replicas {
			eventually(t, 5*time.Second, func() bool { return call(i, tok) == 200 })
		}
		var tokens []store.Token
		b.jsonOut(&tokens, "token", "list", "--agent", "bot")
		id := ""
		for _, tk := range tokens {
			if strings.HasPrefix(tok, "agw_"+tk.ID) && tk.RevokedAt.IsZero() {
				id = tk.ID
			}
		}
		if id == "" {
			t.Fatal("minted token not listed")
		}
		b.ok("", "token", "revoke", id)
		revoked := time.Now()
		for _, i := range []int{0, 2} {
			deadline := revoked.Add(10 * time.Second)
			for call(i, tok) != 401 {
				if time.Now().After(deadline) {
					t.Fatalf("a token revoked on B still works on replica %d after 10s", i+1)
				}
			}
			lat = append(lat, time.Since(revoked))
		}
	}
	slices.Sort(lat)
	t.Logf("revocation on B refused on A and C: p50 %v, max %v over %d observations",
		lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond), len(lat))
	if max := lat[len(lat)-1]; max > 3*time.Second {
		t.Errorf("revocation took %v to reach another replica; the goal is under a second", max)
	}

	// Rotated on C, the next request through A injects the new version.
	c.ok(secretV2+"\n", "backend", "rotate", "hr", "--secret-stdin")
	eventually(t, 5*time.Second, func() bool {
		return call(0, mint(a)) == 200 && be.last(t).Header.Get("X-Api-Key") == secretV2
	})

	// Every replica's records, in one trail, verified chain by chain.
	if out := a.ok("", "audit", "verify"); !strings.Contains(out, "intact") {
		t.Errorf("audit verify: %s", out)
	}
	if out := c.ok("", "status"); !strings.Contains(out, "replica r1") || !strings.Contains(out, "replica r3") || !strings.Contains(out, "(this one)") {
		t.Errorf("status does not list the replicas:\n%s", out)
	}

	// kill -9 of one replica: the others keep serving.
	_ = c.daemon.Process.Kill()
	<-c.exited
	c.daemon = nil
	live := mint(a)
	for _, i := range []int{0, 1} {
		eventually(t, 5*time.Second, func() bool { return call(i, live) == 200 })
	}

	// A dump of the database holds neither secret nor the identity.
	dump, err := exec.Command("pg_dump", "--data-only", dbURL).Output()
	requireEnv(t, err == nil, fmt.Sprintf("pg_dump: %v", err))
	ident, err := os.ReadFile(idFile)
	if err != nil {
		t.Fatal(err)
	}
	secretKey := ""
	for _, l := range strings.Split(string(ident), "\n") {
		if strings.HasPrefix(l, "AGE-SECRET-KEY-") {
			secretKey = l
		}
	}
	for _, needle := range []string{secretV1, secretV2, secretKey} {
		for _, form := range []string{needle, base64.StdEncoding.EncodeToString([]byte(needle)), hex.EncodeToString([]byte(needle)), strings.ToLower(needle)} {
			if form != "" && strings.Contains(string(dump), form) {
				t.Errorf("the database dump holds a secret (%d bytes form)", len(form))
			}
		}
	}
}

// TestClusterRefusesWrongIdentity: a replica started with another identity
// than the cluster's refuses to start and says why; one with none says
// what is missing.
func TestClusterRefusesWrongIdentity(t *testing.T) {
	dbURL := clusterDatabase(t)
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good"), filepath.Join(dir, "bad")
	e := newEnv(t)
	e.ok("", "cluster", "init", "--identity", good)
	e.ok("", "cluster", "init", "--identity", bad)
	e.start("--store", dbURL, "--cluster-identity", good, "--replica-id", "r1")
	e.stop()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--cluster-identity", bad}, "not the identity the cluster was set up with"},
		{nil, "agw cluster init"},
	} {
		f := newEnv(t)
		args := append([]string{"serve", "--data-dir", f.dataDir, "--socket", f.socket, "--https-listen", "127.0.0.1:0",
			"--dns-listen", "off", "--store", dbURL, "--replica-id", "r2"}, tc.args...)
		cmd := exec.Command(agwBin, args...)
		cmd.Env = append(os.Environ(), "CREDENTIALS_DIRECTORY=")
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("serve %v: %v\n%s\nwant a refusal naming %q", tc.args, err, out, tc.want)
		}
	}
}

// cuttableProxy forwards TCP connections to target until cut, when it
// closes every connection and refuses new ones; resume lets them in again.
type cuttableProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  []net.Conn
}

func newCuttableProxy(t *testing.T, target string) *cuttableProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cuttableProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.setCut(true) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.cut {
				p.mu.Unlock()
				c.Close()
				continue
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				p.mu.Unlock()
				c.Close()
				continue
			}
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
	return p
}

func (p *cuttableProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

// TestClusterDatabaseOutage: with the database unreachable, a replica
// fails closed within --max-staleness (503 agw_unavailable, not ready),
// and serves again by itself when the database is back, with nothing of
// the configuration lost.
func TestClusterDatabaseOutage(t *testing.T) {
	dbURL := clusterDatabase(t)
	u, _ := url.Parse(dbURL)
	proxy := newCuttableProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	idFile := filepath.Join(t.TempDir(), "cluster-identity")
	e := newEnv(t)
	e.ok("", "cluster", "init", "--identity", idFile)
	ml, _ := net.Listen("tcp", "127.0.0.1:0")
	metrics := ml.Addr().String()
	ml.Close()
	e.start("--store", u.String(), "--cluster-identity", idFile, "--replica-id", "r1", "--max-staleness", "2s", "--metrics-listen", metrics)
	tr := newTraffic(t, e)
	tr.mustCall(t, "a1", "GET", "/v1/x", 200)
	readyz := func() int {
		res, err := http.Get("http://" + metrics + "/readyz")
		if err != nil {
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}

	proxy.setCut(true)
	cutAt := time.Now()
	eventually(t, 15*time.Second, func() bool {
		code, _, _ := tr.call("a1", "GET", "/v1/x")
		return code == 503
	})
	t.Logf("refusing %v after the database became unreachable (--max-staleness 2s)", time.Since(cutAt).Round(100*time.Millisecond))
	if code := readyz(); code != 503 {
		t.Errorf("/readyz %d while the database is unreachable", code)
	}

	proxy.setCut(false)
	backAt := time.Now()
	eventually(t, 30*time.Second, func() bool {
		code, _, _ := tr.call("a1", "GET", "/v1/x")
		return code == 200
	})
	t.Logf("serving again %v after the database came back", time.Since(backAt).Round(100*time.Millisecond))
	if code := readyz(); code != 200 {
		t.Errorf("/readyz %d after recovery", code)
	}
	if out := e.ok("", "agent", "list"); !strings.Contains(out, "a1") || !strings.Contains(out, "a2") {
		t.Errorf("configuration lost:\n%s", out)
	}
}

// TestClusterMigrate: a single-node installation copied into a cluster
// database serves the same agents with the same tokens and CA, and its
// audit trail comes along verified; a second copy into the same database
// is refused.
func TestClusterMigrate(t *testing.T) {
	dbURL := clusterDatabase(t)
	old := newEnv(t)
	old.start()
	tr := newTraffic(t, old)
	tr.mustCall(t, "a1", "GET", "/v1/before", 200)
	oldPEM := old.ok("", "ca", "export")
	old.stop()

	idFile := filepath.Join(t.TempDir(), "cluster-identity")
	old.ok("", "cluster", "init", "--identity", idFile)
	out := old.ok("", "migrate", "--from-data-dir", old.dataDir, "--to", dbURL, "--cluster-identity", idFile, "--replica-id", "gw1")
	if !strings.Contains(out, "copied 1 backends, 2 agents") || !strings.Contains(out, "verified after") {
		t.Errorf("migrate said:\n%s", out)
	}
	if _, errOut, code := old.run("", "migrate", "--from-data-dir", old.dataDir, "--to", dbURL, "--cluster-identity", idFile); code == 0 || !strings.Contains(errOut, "--force") {
		t.Errorf("a second copy: exit %d %s", code, errOut)
	}

	c := newEnv(t)
	c.start("--store", dbURL, "--cluster-identity", idFile, "--replica-id", "gw1")
	if got := c.ok("", "ca", "export"); got != oldPEM {
		t.Error("the cluster presents another CA than the installation's")
	}
	tr.e, tr.c, tr.port = c, gatewayClient(t, c), portOf(c.status.Listeners.HTTPS)
	tr.mustCall(t, "a1", "GET", "/v1/after", 200)
	if got := tr.be.last(t).Header.Get("X-Api-Key"); got != canary {
		t.Error("the migrated credential is not the installation's")
	}
	found := false
	for _, ev := range query(t, c, "--kind", "request") {
		if ev.Path == "/v1/before" {
			found = true
		}
	}
	if !found {
		t.Error("the installation's audit records were not copied")
	}
	if out := c.ok("", "audit", "verify"); !strings.Contains(out, "intact") {
		t.Errorf("verify after migrate: %s", out)
	}
}
