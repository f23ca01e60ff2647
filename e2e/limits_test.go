package e2e

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agw-dev/agw/admin"
)

// limitsSetup is an installation with one backend, one agent and its token.
func limitsSetup(t *testing.T, extra ...string) (e *env, be *recordingBackend, c *http.Client, url, tok string) {
	t.Helper()
	e = newEnv(t)
	e.start(extra...)
	be = newRecordingBackend(t)
	e.ok(canary+"\n", "backend", "add", "llm", "--host", "api.llm.example.com", "--inject", "bearer",
		"--upstream", be.srv.URL, "--upstream-ca", be.caFile, "--secret-stdin")
	e.ok("", "agent", "add", "bot")
	var minted admin.MintedToken
	e.jsonOut(&minted, "token", "mint", "bot")
	c = gatewayClient(t, e)
	return e, be, c, "https://api.llm.example.com:" + portOf(e.status.Listeners.HTTPS) + "/v1/models", minted.Value
}

// get sends one request with the token and returns status, Retry-After and body.
func getWithToken(t *testing.T, c *http.Client, url, tok string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := readAll(res)
	return res.StatusCode, res.Header.Get("Retry-After"), body
}

// TestRateLimits drives the limits through the CLI and the real binary:
// over the limit a request gets 429 agw_rate_limited with Retry-After, is
// audited as a deny naming the limit and never reaches the backend; after
// waiting Retry-After it passes; a changed limit applies to the next
// request.
func TestRateLimits(t *testing.T) {
	e, be, c, url, tok := limitsSetup(t)

	t.Run("grant rate, then recovery after Retry-After", func(t *testing.T) {
		e.ok("", "grant", "add", "bot", "llm", "--rate", "2/s", "--burst", "1")
		if st, _, body := getWithToken(t, c, url, tok); st != 200 {
			t.Fatalf("first request: %d %s", st, body)
		}
		before := be.count()
		st, ra, body := getWithToken(t, c, url, tok)
		if st != http.StatusTooManyRequests || errType(t, body).Error.Type != "agw_rate_limited" {
			t.Fatalf("second request at once: %d %s", st, body)
		}
		secs, err := strconv.Atoi(ra)
		if err != nil || secs < 1 || secs > 1 {
			t.Fatalf("Retry-After %q, want 1 (0.5s rounded up)", ra)
		}
		if be.count() != before {
			t.Error("a rate-limited request reached the backend")
		}
		// Wait as a client would: until Retry-After has passed, polling a
		// clock rather than sleeping a guess.
		until := time.Now().Add(time.Duration(secs) * time.Second)
		eventually(t, 3*time.Second, func() bool { return time.Now().After(until) })
		if st, _, body := getWithToken(t, c, url, tok); st != 200 {
			t.Fatalf("after Retry-After: %d %s", st, body)
		}
		var found bool
		for _, ev := range auditEvents(t, e, "--decision", "deny") {
			if ev.Status == 429 && ev.Reason == "grant rate 2/s" && ev.Agent == "bot" && ev.Backend == "llm" {
				found = true
			}
		}
		if !found {
			t.Error("no deny audit record naming the grant rate")
		}
	})

	t.Run("changing a limit takes effect at once", func(t *testing.T) {
		e.ok("", "grant", "add", "bot", "llm", "--rate", "1/h")
		getWithToken(t, c, url, tok)
		if st, ra, _ := getWithToken(t, c, url, tok); st != 429 || ra == "" {
			t.Fatalf("at 1/h: %d, Retry-After %q", st, ra)
		}
		e.ok("", "grant", "add", "bot", "llm", "--rate", "100/s")
		for i := range 5 {
			if st, _, body := getWithToken(t, c, url, tok); st != 200 {
				t.Fatalf("request %d after raising the limit: %d %s", i, st, body)
			}
		}
		e.ok("", "grant", "add", "bot", "llm") // no limit
	})

	t.Run("agent rate across backends", func(t *testing.T) {
		e.ok("", "agent", "update", "bot", "--rate", "1/h", "--burst", "1")
		getWithToken(t, c, url, tok)
		st, _, body := getWithToken(t, c, url, tok)
		if st != 429 || !strings.Contains(body, "agent rate 1/h") {
			t.Fatalf("%d %s", st, body)
		}
		e.ok("", "agent", "update", "bot", "--rate", "")
		if st, _, body := getWithToken(t, c, url, tok); st != 200 {
			t.Fatalf("after removing the agent rate: %d %s", st, body)
		}
	})

	t.Run("backend rate across agents", func(t *testing.T) {
		e.ok("", "backend", "update", "llm", "--rate", "1/h")
		getWithToken(t, c, url, tok)
		st, _, body := getWithToken(t, c, url, tok)
		if st != 429 || !strings.Contains(body, "backend rate 1/h") {
			t.Fatalf("%d %s", st, body)
		}
		e.ok("", "backend", "update", "llm", "--rate", "")
		if st, _, body := getWithToken(t, c, url, tok); st != 200 {
			t.Fatalf("after removing the backend rate: %d %s", st, body)
		}
	})

	t.Run("agent max concurrent", func(t *testing.T) {
		e.ok("", "agent", "update", "bot", "--max-concurrent", "1")
		sse := strings.Replace(url, "/v1/models", "/sse", 1)
		req, _ := http.NewRequest("GET", sse, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := c.Do(req) // the stream holds the only slot until it ends
		if err != nil {
			t.Fatal(err)
		}
		st, ra, body := getWithToken(t, c, url, tok)
		if st != 429 || ra != "1" || !strings.Contains(body, "agent max concurrent 1") {
			t.Errorf("while a stream is open: %d %q %s", st, ra, body)
		}
		be.sse <- struct{}{}
		be.sse <- struct{}{}
		_, _ = readAll(res)
		var last int
		eventually(t, 5*time.Second, func() bool {
			last, _, _ = getWithToken(t, c, url, tok)
			return last == 200
		})
		if last != 200 {
			t.Errorf("after the stream ended: %d", last)
		}
		e.ok("", "agent", "update", "bot", "--max-concurrent", "0")
	})
}

// TestAuthFailureThrottle: guessing tokens from one address is slowed to
// 10 failures a minute, answered 429 before any lookup.
func TestAuthFailureThrottle(t *testing.T) {
	_, be, c, url, tok := limitsSetup(t)
	bad := alterLast(tok)
	for i := range 10 {
		if st, _, body := getWithToken(t, c, url, bad); st != 401 {
			t.Fatalf("guess %d: %d %s", i, st, body)
		}
	}
	st, ra, body := getWithToken(t, c, url, bad)
	if st != 429 || ra == "" || errType(t, body).Error.Type != "agw_rate_limited" {
		t.Fatalf("11th guess: %d %q %s", st, ra, body)
	}
	if be.count() != 0 {
		t.Errorf("backend saw %d requests", be.count())
	}
}

// readAll reads and closes a response body.
func readAll(res *http.Response) (string, error) {
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return string(b), err
}
