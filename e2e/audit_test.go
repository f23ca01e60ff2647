package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/store"
)

// trafficSetup registers backend hr on a recording backend, agents a1 and
// a2 granted GET /v1/** on it, and returns a client and a token for each.
type traffic struct {
	e      *env
	be     *recordingBackend
	c      *http.Client
	port   string
	tokens map[string]string
}

func newTraffic(t *testing.T, e *env) *traffic {
	t.Helper()
	be := newRecordingBackend(t)
	e.ok(canary+"\n", "backend", "add", "hr", "--host", "hr.corp.net", "--inject", "header", "--header", "x-api-key",
		"--upstream", be.srv.URL, "--upstream-ca", be.caFile, "--secret-stdin")
	tr := &traffic{e: e, be: be, c: gatewayClient(t, e), port: portOf(e.status.Listeners.HTTPS), tokens: map[string]string{}}
	for _, a := range []string{"a1", "a2"} {
		e.ok("", "agent", "add", a)
		e.ok("", "grant", "add", a, "hr", "--method", "GET", "--path", "/v1/**")
		var m admin.MintedToken
		e.jsonOut(&m, "token", "mint", a)
		tr.tokens[a] = m.Value
	}
	return tr
}

// call sends one request as agent and returns the status and request id.
func (tr *traffic) call(agent, method, path string) (int, string, error) {
	req, err := http.NewRequest(method, "https://hr.corp.net:"+tr.port+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("x-api-key", tr.tokens[agent])
	resp, err := tr.c.Do(req)
	if err != nil {
		return 0, "", err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, "", err
	}
	return resp.StatusCode, resp.Header.Get("X-Agw-Request-Id"), nil
}

func (tr *traffic) mustCall(t *testing.T, agent, method, path string, want int) string {
	t.Helper()
	status, id, err := tr.call(agent, method, path)
	if err != nil || status != want {
		t.Fatalf("%s %s as %s: status %d, %v; want %d", method, path, agent, status, err, want)
	}
	return id
}

// parseEvents decodes JSON lines of audit events.
func parseEvents(t *testing.T, out string) []store.AuditEvent {
	t.Helper()
	var evs []store.AuditEvent
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var ev store.AuditEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// query runs agw audit query with args and -o json.
func query(t *testing.T, e *env, args ...string) []store.AuditEvent {
	t.Helper()
	return parseEvents(t, e.ok("", append(append([]string{"audit", "query"}, args...), "-o", "json")...))
}

func requestIDs(evs []store.AuditEvent) []string {
	var ids []string
	for _, ev := range evs {
		if ev.Kind == store.KindRequest {
			ids = append(ids, ev.RequestID)
		}
	}
	slices.Sort(ids)
	return ids
}

// waitStored waits until the audit trail holds every request id given.
func waitStored(t *testing.T, e *env, ids []string) {
	t.Helper()
	var missing int
	eventually(t, 20*time.Second, func() bool {
		got := map[string]bool{}
		for _, id := range requestIDs(query(t, e, "--kind", "request")) {
			got[id] = true
		}
		missing = 0
		for _, id := range ids {
			if !got[id] {
				missing++
			}
		}
		return missing == 0
	})
	if missing > 0 {
		t.Fatalf("%d of %d requests have no audit record", missing, len(ids))
	}
}

// TestAuditQueryAndExport: every filter of agw audit query, and export,
// against a real daemon's trail, over a time range given both as RFC 3339
// and as a relative duration.
func TestAuditQueryAndExport(t *testing.T) {
	e := newEnv(t)
	e.start()
	tr := newTraffic(t, e)

	var early []string
	early = append(early, tr.mustCall(t, "a1", "GET", "/v1/early", 200))
	early = append(early, tr.mustCall(t, "a2", "DELETE", "/v1/early", 403))
	waitStored(t, e, early)
	// Audit times come from the daemon's clock, which is this machine's.
	split := time.Now()
	var late []string
	for i := range 3 {
		late = append(late, tr.mustCall(t, "a1", "GET", fmt.Sprintf("/v1/late/%d", i), 200))
		late = append(late, tr.mustCall(t, "a2", "GET", fmt.Sprintf("/v1/late/%d", i), 200))
	}
	late = append(late, tr.mustCall(t, "a2", "POST", "/v1/late", 403))
	waitStored(t, e, late)

	splitArg := split.UTC().Format(time.RFC3339Nano)
	all := append(slices.Clone(early), late...)
	slices.Sort(all)
	slices.Sort(early)
	slices.Sort(late)
	cases := []struct {
		name  string
		args  []string
		want  []string // request ids, sorted
		check func(store.AuditEvent) bool
	}{
		{"since relative", []string{"--since", "1h"}, all, nil},
		{"since RFC 3339", []string{"--since", splitArg}, late, nil},
		{"until RFC 3339", []string{"--since", "24h", "--until", splitArg}, early, nil},
		{"until relative excludes everything", []string{"--since", "7d", "--until", "1h"}, nil, nil},
		{"agent", []string{"--since", splitArg, "--agent", "a1"}, nil, func(ev store.AuditEvent) bool { return ev.Agent == "a1" }},
		{"backend", []string{"--backend", "hr", "--kind", "request"}, all, nil},
		{"decision", []string{"--decision", "deny"}, nil, func(ev store.AuditEvent) bool { return ev.Decision == store.Deny && ev.Status == 403 }},
		{"status", []string{"--status", "403"}, nil, func(ev store.AuditEvent) bool { return ev.Status == 403 }},
		{"agent and decision", []string{"--agent", "a2", "--decision", "allow", "--since", splitArg}, nil, func(ev store.AuditEvent) bool {
			return ev.Agent == "a2" && ev.Decision == store.Allow
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			evs := query(t, e, tc.args...)
			if tc.check == nil {
				if got := requestIDs(evs); !slices.Equal(got, tc.want) {
					t.Errorf("request ids\n got %v\nwant %v", got, tc.want)
				}
				return
			}
			if len(evs) == 0 {
				t.Fatal("no events")
			}
			for _, ev := range evs {
				if !tc.check(ev) {
					t.Errorf("event does not match the filter: %+v", ev)
				}
			}
		})
	}
	t.Run("counts", func(t *testing.T) {
		if n := len(query(t, e, "--agent", "a1", "--since", splitArg)); n != 3 {
			t.Errorf("a1 since split: %d events, want 3", n)
		}
		if n := len(query(t, e, "--decision", "deny")); n != 2 {
			t.Errorf("denies: %d, want 2", n)
		}
	})

	t.Run("export is JSON lines over a time range", func(t *testing.T) {
		out := e.ok("", "audit", "export", "--since", splitArg)
		evs := parseEvents(t, out)
		if got := requestIDs(evs); !slices.Equal(got, late) {
			t.Errorf("export request ids\n got %v\nwant %v", got, late)
		}
		if q := e.ok("", "audit", "query", "--since", splitArg, "-o", "json"); q != out {
			t.Errorf("export and query -o json differ:\n%s\n---\n%s", out, q)
		}
		for i := 1; i < len(evs); i++ {
			if evs[i].Seq <= evs[i-1].Seq || evs[i].PrevHash != evs[i-1].Hash {
				t.Errorf("export is not the chain in order at %d", evs[i].Seq)
			}
		}
	})

	t.Run("bad times are refused", func(t *testing.T) {
		_, errOut, code := e.run("", "audit", "query", "--since", "yesterday")
		if code != 2 || !strings.Contains(errOut, "RFC 3339") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
	e.stop()
	assertNoSecret(t, e, canary, tr.tokens["a1"], tr.tokens["a2"])
}

// TestAuditWhoRotated answers "who rotated the HR key" from the trail:
// admin actions carry the admin's uid.
func TestAuditWhoRotated(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.ok("one\n", "backend", "add", "hr", "--host", "hr.corp.net", "--secret-stdin")
	e.ok("", "agent", "add", "hr-bot")
	e.ok("", "agent", "disable", "hr-bot")
	var m admin.MintedToken
	e.jsonOut(&m, "token", "mint", "hr-bot")
	e.ok("two\n", "backend", "rotate", "hr", "--secret-stdin")

	evs := query(t, e, "--kind", "admin")
	actions := map[string]store.AuditEvent{}
	for _, ev := range evs {
		if ev.Kind != store.KindAdmin {
			t.Errorf("--kind admin returned %+v", ev)
		}
		actions[ev.Action] = ev
	}
	rot, ok := actions["backend.rotate"]
	if !ok || rot.Target != "hr" || rot.PeerUID != os.Getuid() || rot.PeerPID == 0 {
		t.Fatalf("backend.rotate event = %+v (found %v); want target hr by uid %d", rot, ok, os.Getuid())
	}
	for _, a := range []string{"backend.add", "agent.add", "agent.disable", "token.mint"} {
		if ev, ok := actions[a]; !ok || ev.PeerUID != os.Getuid() {
			t.Errorf("%s: %+v (found %v)", a, ev, ok)
		}
	}
	text := e.ok("", "audit", "query", "--kind", "admin")
	if !strings.Contains(text, "backend.rotate") || !strings.Contains(text, fmt.Sprintf("uid %d", os.Getuid())) {
		t.Errorf("table output does not say who rotated:\n%s", text)
	}
}

var (
	tamperOnce sync.Once
	tamperBin  string
	tamperErr  error
)

// buildTamper builds the test-only tool that edits a stopped store.
func buildTamper(t *testing.T) string {
	t.Helper()
	tamperOnce.Do(func() {
		tamperBin = filepath.Join(filepath.Dir(agwBin), "tamper")
		out, err := exec.Command("go", "build", "-o", tamperBin, "../store/badgerstore/internal/tamper").CombinedOutput()
		if err != nil {
			tamperErr = fmt.Errorf("build tamper: %v\n%s", err, out)
		}
	})
	if tamperErr != nil {
		t.Fatal(tamperErr)
	}
	return tamperBin
}

// copyEnv is a new installation holding a copy of e's stopped data directory.
func copyEnv(t *testing.T, e *env) *env {
	t.Helper()
	c := newEnv(t)
	if out, err := exec.Command("cp", "-a", e.dataDir, c.dataDir).CombinedOutput(); err != nil {
		t.Fatalf("copy data directory: %v\n%s", err, out)
	}
	return c
}

// TestAuditVerifyTamper: verify passes on a real daemon's trail; on copies
// of its data directory with one record edited, or one deleted, behind the
// daemon's back, verify fails naming that record.
func TestAuditVerifyTamper(t *testing.T) {
	e := newEnv(t)
	e.start()
	tr := newTraffic(t, e)
	var ids []string
	for i := range 10 {
		ids = append(ids, tr.mustCall(t, []string{"a1", "a2"}[i%2], "GET", "/v1/x", 200))
	}
	waitStored(t, e, ids)
	out := e.ok("", "audit", "verify")
	if !strings.Contains(out, "audit trail intact") {
		t.Fatalf("verify on an untouched trail: %s", out)
	}
	var res admin.AuditVerifyResult
	e.jsonOut(&res, "audit", "verify")
	if !res.OK || res.Checked < 15 {
		t.Fatalf("verify -o json = %+v", res)
	}
	e.stop()
	tamper := buildTamper(t)

	const target = 12 // a request record in the middle of the trail
	cases := []struct {
		name, flag, want string
	}{
		{"edited record", "-edit", fmt.Sprintf("audit seq %d: hash mismatch (record edited)", target)},
		{"deleted record", "-delete", fmt.Sprintf("audit seq %d: record missing", target)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := copyEnv(t, e)
			if out, err := exec.Command(tamper, "-dir", filepath.Join(c.dataDir, "db"), tc.flag, fmt.Sprint(target)).CombinedOutput(); err != nil {
				t.Fatalf("tamper: %v\n%s", err, out)
			}
			c.start()
			out, errOut, code := c.run("", "audit", "verify")
			if code != 1 || !strings.Contains(errOut, tc.want) {
				t.Errorf("verify: exit %d\nstdout %s\nstderr %s\nwant exit 1 naming %q", code, out, errOut, tc.want)
			}
			var res admin.AuditVerifyResult
			jout, _, code := c.run("", "audit", "verify", "-o", "json")
			if err := json.Unmarshal([]byte(jout), &res); err != nil || code != 1 || res.OK || res.Checked != target-1 {
				t.Errorf("verify -o json: exit %d, %+v, %v; want not ok after %d records", code, res, err, target-1)
			}
		})
	}
	// The original is untouched by what was done to the copies.
	e.start()
	e.ok("", "audit", "verify")
}

// TestAuditRetention: with a tiny retention, records older than it are
// removed oldest first while the daemon runs, the prune is itself recorded,
// and the kept trail verifies from the prune anchor.
func TestAuditRetention(t *testing.T) {
	e := newEnv(t)
	e.start("--audit-retention", "2s")
	e.ok("", "agent", "add", "early")
	first := query(t, e)
	if len(first) == 0 || first[0].Seq != 1 {
		t.Fatalf("trail before pruning: %+v", first)
	}
	var prune store.AuditEvent
	eventually(t, 30*time.Second, func() bool {
		for _, ev := range query(t, e, "--kind", "admin") {
			if ev.Action == "audit.prune" {
				prune = ev
				return true
			}
		}
		return false
	})
	if prune.Action == "" {
		t.Fatal("no audit.prune event after 30s with a 2s retention")
	}
	if !strings.HasSuffix(prune.Target, " records") || prune.PeerUID != os.Getuid() || !strings.Contains(prune.Reason, "audit retention 2s") {
		t.Errorf("prune event = %+v", prune)
	}
	kept := query(t, e)
	if len(kept) == 0 || kept[0].Seq == 1 {
		t.Errorf("seq 1 is still stored: %+v", kept)
	}
	for _, ev := range kept {
		if ev.Action == "agent.add" && ev.Target == "early" {
			t.Errorf("the expired agent.add record is still there: %+v", ev)
		}
	}
	e.ok("", "agent", "add", "late")
	if out := e.ok("", "audit", "verify"); !strings.Contains(out, "intact") {
		t.Errorf("verify after pruning: %s", out)
	}
	// The kept trail verifies across a restart too (the anchor is stored).
	e.stop()
	e.start("--audit-retention", "2s")
	if out := e.ok("", "audit", "verify"); !strings.Contains(out, "intact") {
		t.Errorf("verify after restart: %s", out)
	}
}

// TestAuditFollowStalledReader: an agw audit tail -f whose output nobody
// reads never holds up the gateway; when it reads again it is told which
// records it missed, and the command it prints re-reads exactly those.
func TestAuditFollowStalledReader(t *testing.T) {
	const maxLag = 200
	e := newEnv(t)
	e.start("--audit-follow-max-lag", fmt.Sprint(maxLag))
	tr := newTraffic(t, e)

	tail := exec.Command(agwBin, "--socket", e.socket, "audit", "tail", "-f", "-n", "0", "-o", "json")
	stdout, err := tail.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	tail.Stderr = stderr
	if err := tail.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tail.Process.Kill(); _ = tail.Wait() })

	// Nothing reads the tail's stdout while the gateway serves all of
	// these: far more records than the pipe and socket buffers hold.
	const n = 3000
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []string
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				status, _, err := tr.call("a1", "GET", fmt.Sprintf("/v1/item/%d", i))
				if err != nil || status != 200 {
					mu.Lock()
					failed = append(failed, fmt.Sprintf("%d: %d %v", i, status, err))
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(failed) > 0 || tr.be.count() != n {
		t.Fatalf("with a stalled reader the gateway served %d of %d requests; failures: %.5v", tr.be.count(), n, failed)
	}
	var head uint64
	eventually(t, 20*time.Second, func() bool {
		evs := query(t, e, "--kind", "request")
		if len(evs) == n {
			head = evs[len(evs)-1].Seq
		}
		return head != 0
	})
	if head == 0 {
		t.Fatalf("the trail does not hold all %d requests", n)
	}

	// The reader resumes.
	type line struct {
		seq uint64
		err error
	}
	lines := make(chan line, 1024)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var ev store.AuditEvent
			err := json.Unmarshal(sc.Bytes(), &ev)
			lines <- line{ev.Seq, err}
		}
		close(lines)
	}()
	var seen []uint64
	deadline := time.After(60 * time.Second)
	// One more request after the skip shows the stream goes on past the head.
	poke := time.NewTicker(200 * time.Millisecond)
	defer poke.Stop()
	for len(seen) == 0 || seen[len(seen)-1] <= head {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("tail -f ended; stderr: %s", stderr.String())
			}
			if l.err != nil {
				t.Fatal(l.err)
			}
			seen = append(seen, l.seq)
		case <-poke.C:
			tr.mustCall(t, "a2", "GET", "/v1/after", 200)
		case <-deadline:
			t.Fatalf("tail -f did not reach past seq %d; saw %d events; stderr: %s", head, len(seen), stderr.String())
		}
	}

	warn := stderr.String()
	var cmdLine string
	for _, l := range strings.Split(warn, "\n") {
		if s, ok := strings.CutPrefix(l, "  agw "); ok {
			cmdLine = s
		}
	}
	if !strings.Contains(warn, "fell behind") || cmdLine == "" {
		t.Fatalf("no missed warning with a command on stderr:\n%s", warn)
	}
	var from, to uint64
	if _, err := fmt.Sscanf(warn[strings.Index(warn, "(seq "):], "(seq %d to %d)", &from, &to); err != nil {
		t.Fatalf("warning does not name the seq range: %v\n%s", err, warn)
	}
	if to-from+1 <= maxLag {
		t.Errorf("skipped range %d-%d is within the lag limit %d", from, to, maxLag)
	}
	reread := query(t, e, strings.Fields(strings.TrimSuffix(cmdLine, " -o json"))[2:]...)
	if len(reread) != int(to-from+1) || reread[0].Seq != from || reread[len(reread)-1].Seq != to {
		t.Fatalf("the printed command %q re-read %d records; want exactly seq %d to %d", cmdLine, len(reread), from, to)
	}
	// Stream before the gap, the re-read range and the stream after it are
	// one unbroken run of sequence numbers: nothing lost, nothing twice.
	all := slices.Clone(seen)
	for _, ev := range reread {
		all = append(all, ev.Seq)
	}
	slices.Sort(all)
	for i := 1; i < len(all); i++ {
		if all[i] != all[i-1]+1 {
			t.Fatalf("stream plus re-read is not contiguous at %d -> %d (range %d-%d)", all[i-1], all[i], from, to)
		}
	}
	for _, s := range seen {
		if s >= from && s <= to {
			t.Errorf("seq %d was streamed and also reported missed", s)
		}
	}
	t.Logf("stalled reader: streamed %d records, skipped %d (seq %d-%d), re-read them with: agw %s", len(seen), to-from+1, from, to, cmdLine)
}
