package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/store"
)

var auditFixture = []admin.StreamMessage{
	{Event: &store.AuditEvent{Seq: 7, Time: time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC), Kind: store.KindRequest,
		Agent: "bot", Backend: "openai", Method: "POST", Host: "api.openai.com", Path: "/v1/chat/completions",
		Status: 200, Decision: store.Allow, TotalMillis: 812.4}},
	{Missed: 3, MissedFrom: 8, MissedTo: 10},
	{Event: &store.AuditEvent{Seq: 11, Time: time.Date(2026, 3, 1, 11, 0, 1, 0, time.UTC), Kind: store.KindRequest,
		Agent: "bot", Backend: "crm", Method: "DELETE", Host: "crm.example.com", Path: "/v1/tickets/9",
		Status: 403, Decision: store.Deny, Reason: "no grant allows DELETE /v1/tickets/9"}},
	{Event: &store.AuditEvent{Seq: 12, Time: time.Date(2026, 3, 1, 11, 0, 2, 0, time.UTC), Kind: store.KindAdmin,
		Action: "token.mint", Target: "tok123", PeerUID: 1000}},
}

func (d *fakeDaemon) replyAudit(msgs []admin.StreamMessage) {
	d.mux.HandleFunc("GET /v1/audit", func(w http.ResponseWriter, _ *http.Request) {
		enc := json.NewEncoder(w)
		for _, m := range msgs {
			_ = enc.Encode(m)
		}
	})
}

func TestAuditTailTable(t *testing.T) {
	d := newFakeDaemon(t)
	d.replyAudit(auditFixture)
	r := newCLI(t, d.socket).run("", "audit", "tail", "--agent", "bot", "--decision", "deny")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	q, _ := url.ParseQuery(d.only().Query)
	want := url.Values{"agent": {"bot"}, "decision": {"deny"}, "last": {"20"}}
	if q.Encode() != want.Encode() {
		t.Errorf("query %v, want %v", q, want)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("want one line per event, got:\n%s", r.stdout)
	}
	for i, wants := range [][]string{
		{"allow", "200", "bot", "openai", "POST", "api.openai.com/v1/chat/completions", "812.4ms"},
		{"deny", "403", "crm", "DELETE", "crm.example.com/v1/tickets/9", "no grant allows"},
		{"admin", "token.mint", "tok123", "uid 1000"},
	} {
		for _, w := range wants {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %d %q lacks %q", i, lines[i], w)
			}
		}
	}
	if !strings.Contains(r.stderr, "3 records (seq 8 to 10)") ||
		!strings.Contains(r.stderr, "\n  agw audit query --after-seq 7 --before-seq 11 --agent bot --decision deny\n") {
		t.Errorf("stderr does not name the missed records and the command that re-reads them: %q", r.stderr)
	}
}

func TestAuditTailJSONLines(t *testing.T) {
	d := newFakeDaemon(t)
	d.replyAudit(auditFixture)
	r := newCLI(t, d.socket).run("", "audit", "tail", "-n", "5", "-f", "-o", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	q, _ := url.ParseQuery(d.only().Query)
	if q.Get("last") != "5" || q.Get("follow") != "1" {
		t.Errorf("query %v; want last=5 follow=1", q)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 JSON lines, got:\n%s", r.stdout)
	}
	for i, seq := range []uint64{7, 11, 12} {
		var ev store.AuditEvent
		if err := json.Unmarshal([]byte(lines[i]), &ev); err != nil {
			t.Fatalf("line %d %q: %v", i, lines[i], err)
		}
		if ev.Seq != seq {
			t.Errorf("line %d seq %d, want %d", i, ev.Seq, seq)
		}
	}
	if !strings.Contains(r.stderr, "agw audit query --after-seq 7 --before-seq 11 -o json\n") {
		t.Errorf("no missed warning with the re-read command on stderr: %q", r.stderr)
	}
}

func TestMissedWarningWithoutRange(t *testing.T) {
	// An older daemon sends only the count: the command starts after the
	// last event seen.
	got := missedWarning(admin.StreamMessage{Missed: 5}, store.AuditQuery{}, 41, false)
	if !strings.Contains(got, "5 records;") || !strings.Contains(got, "\n  agw audit query --after-seq 41\n") {
		t.Errorf("warning = %q", got)
	}
}

func TestAuditTailZeroFollowStartsNow(t *testing.T) {
	d := newFakeDaemon(t)
	d.replyAudit(nil)
	cl := newCLI(t, d.socket)
	if r := cl.run("", "audit", "tail", "-n", "0", "-f"); r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	q, _ := url.ParseQuery(d.only().Query)
	if q.Get("last") != "" || q.Get("since") != cl.now.Format(time.RFC3339Nano) {
		t.Errorf("query %v; want no last and since=now", q)
	}
}

func TestAuditQuery(t *testing.T) {
	d := newFakeDaemon(t)
	d.replyAudit(auditFixture[:1])
	cl := newCLI(t, d.socket)
	r := cl.run("", "audit", "query", "--since", "7d", "--until", "2026-03-01T10:00:00Z", "--backend", "openai", "--status", "429", "--limit", "50")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	q, _ := url.ParseQuery(d.only().Query)
	want := url.Values{
		"since":   {cl.now.Add(-7 * 24 * time.Hour).Format(time.RFC3339Nano)},
		"until":   {"2026-03-01T10:00:00Z"},
		"backend": {"openai"},
		"status":  {"429"},
		"limit":   {"50"},
	}
	if q.Encode() != want.Encode() {
		t.Errorf("query\n got %v\nwant %v", q, want)
	}

	d2 := newFakeDaemon(t)
	d2.replyAudit(nil)
	r = newCLI(t, d2.socket).run("", "audit", "query", "--after-seq", "7", "--before-seq", "11", "--kind", "admin")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	q, _ = url.ParseQuery(d2.only().Query)
	want = url.Values{"after_seq": {"7"}, "before_seq": {"11"}, "kind": {"admin"}}
	if q.Encode() != want.Encode() {
		t.Errorf("query\n got %v\nwant %v", q, want)
	}
	r = cl.run("", "audit", "query", "--after-seq", "7", "--before-seq", "8")
	if r.code != exitUsage || !strings.Contains(r.stderr, "--before-seq") {
		t.Errorf("empty seq range: exit %d, stderr %q", r.code, r.stderr)
	}

	r = cl.run("", "audit", "query", "--since", "2026-03-02T00:00:00Z", "--until", "1h")
	if r.code != exitUsage || !strings.Contains(r.stderr, "--since must be before --until") {
		t.Errorf("since after until: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestAuditExportIsJSONLines(t *testing.T) {
	d := newFakeDaemon(t)
	d.replyAudit(auditFixture)
	r := newCLI(t, d.socket).run("", "audit", "export")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, l := range strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n") {
		var ev store.AuditEvent
		if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.Seq == 0 {
			t.Errorf("line %q is not an event: %v", l, err)
		}
	}
}

func TestAuditVerify(t *testing.T) {
	cases := []struct {
		name     string
		result   admin.AuditVerifyResult
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{"ok", admin.AuditVerifyResult{Checked: 42, OK: true}, nil, 0, "42 records checked", ""},
		{"broken", admin.AuditVerifyResult{Checked: 17, Problem: "record 18: hash mismatch"}, nil, exitError, "", "record 18: hash mismatch"},
		{"broken json", admin.AuditVerifyResult{Checked: 17, Problem: "record 18: hash mismatch"}, []string{"-o", "json"}, exitError, `"ok": false`, "verification failed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := newFakeDaemon(t)
			d.reply("POST /v1/audit/verify", http.StatusOK, c.result)
			r := newCLI(t, d.socket).run("", append([]string{"audit", "verify"}, c.args...)...)
			if r.code != c.wantCode || !strings.Contains(r.stdout, c.wantOut) || !strings.Contains(r.stderr, c.wantErr) {
				t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
			}
		})
	}
}

func TestParseTimeFlag(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2026-02-01T08:00:00Z", time.Date(2026, 2, 1, 8, 0, 0, 0, time.UTC), true},
		{"24h", now.Add(-24 * time.Hour), true},
		{"7d", now.Add(-7 * 24 * time.Hour), true},
		{"2026-02-01", time.Date(2026, 2, 1, 0, 0, 0, 0, time.Local), true},
		{"yesterday", time.Time{}, false},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := parseTimeFlag(c.in, now)
			if (err == nil) != c.ok || !got.Equal(c.want) {
				t.Errorf("parseTimeFlag(%q) = %v, %v; want %v", c.in, got, err, c.want)
			}
		})
	}
}

// Text output escapes what would change how a line reads on a terminal.
func TestFormatEventEscapes(t *testing.T) {
	ev := &store.AuditEvent{Kind: store.KindRequest, Decision: store.Deny, Status: 400, Host: "api.example.com",
		Path: "/v1/files/\u202etxt.exe", Reason: "path contains\x1b[2J"}
	out := formatEvent(ev)
	if strings.ContainsAny(out, "\u202e\x1b") || !strings.Contains(out, `\u202E`) || !strings.Contains(out, `\u001B`) {
		t.Errorf("formatEvent = %q", out)
	}
}
