package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/store"
)

const mintedValue = "agw_tok123_0123456789abcdefghijklmnop"

func mintedFixture() admin.MintedToken {
	return admin.MintedToken{
		Token: store.Token{ID: "tok123", Agent: "bot", Label: "ci", CreatedAt: time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC),
			ExpiresAt: time.Date(2026, 3, 31, 11, 0, 0, 0, time.UTC)},
		Value: mintedValue,
	}
}

func TestTokenMintTable(t *testing.T) {
	d := newFakeDaemon(t)
	d.reply("POST /v1/tokens", http.StatusCreated, mintedFixture())
	r := newCLI(t, d.socket).run("", "token", "mint", "bot", "--ttl", "30d", "--label", "ci")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if r.stdout != mintedValue+"\n" {
		t.Errorf("stdout %q; want only the token and a newline", r.stdout)
	}
	if !strings.Contains(r.stderr, "store it now; it cannot be shown again") || !strings.Contains(r.stderr, "tok123") {
		t.Errorf("stderr %q; want the once-only note and the id", r.stderr)
	}
	if strings.Contains(r.stderr, mintedValue) {
		t.Errorf("the token was also written to stderr")
	}
	var req admin.MintRequest
	if err := json.Unmarshal(d.only().Body, &req); err != nil {
		t.Fatal(err)
	}
	want := admin.MintRequest{Agent: "bot", TTL: store.Duration(30 * 24 * time.Hour), Label: "ci"}
	if req != want {
		t.Errorf("mint request %+v, want %+v", req, want)
	}
}

func TestTokenMintJSON(t *testing.T) {
	d := newFakeDaemon(t)
	d.reply("POST /v1/tokens", http.StatusCreated, mintedFixture())
	r := newCLI(t, d.socket).run("", "token", "mint", "bot", "-o", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var got admin.MintedToken
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("stdout is not a MintedToken: %v\n%s", err, r.stdout)
	}
	if got.Value != mintedValue || got.ID != "tok123" || got.Agent != "bot" {
		t.Errorf("got %+v", got)
	}
	var fields map[string]any
	_ = json.Unmarshal([]byte(r.stdout), &fields)
	for _, k := range []string{"id", "agent", "token", "created_at", "expires_at"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, r.stdout)
		}
	}
}

func TestTokenListStates(t *testing.T) {
	d := newFakeDaemon(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	d.reply("GET /v1/tokens", http.StatusOK, []store.Token{
		{ID: "tokactive", Agent: "bot", CreatedAt: now.Add(-time.Hour)},
		{ID: "tokrevoked", Agent: "bot", CreatedAt: now.Add(-time.Hour), RevokedAt: now.Add(-time.Minute)},
		{ID: "tokexpired", Agent: "bot", CreatedAt: now.Add(-48 * time.Hour), ExpiresAt: now.Add(-time.Hour)},
	})
	cl := newCLI(t, d.socket)
	cl.now = now
	r := cl.run("", "token", "list", "--agent", "bot")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if q := d.only().Query; q != "agent=bot" {
		t.Errorf("query %q, want agent=bot", q)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	want := map[string]string{"tokactive": "active", "tokrevoked": "revoked", "tokexpired": "expired"}
	if len(lines) != 4 {
		t.Fatalf("want a header and 3 rows:\n%s", r.stdout)
	}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if want[f[0]] != f[len(f)-1] {
			t.Errorf("row %q: state %q, want %q", l, f[len(f)-1], want[f[0]])
		}
	}
}

func TestTokenRevoke(t *testing.T) {
	d := newFakeDaemon(t)
	d.reply("POST /v1/tokens/{id}/revoke", http.StatusOK, store.Token{ID: "tok123", Agent: "bot", RevokedAt: time.Now()})
	r := newCLI(t, d.socket).run("", "token", "revoke", "tok123")
	if r.code != 0 || !strings.Contains(r.stdout, "revoked token tok123") {
		t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if p := d.only().Path; p != "/v1/tokens/tok123/revoke" {
		t.Errorf("path %q", p)
	}
}
