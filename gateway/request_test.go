package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agw-dev/agw/gateway/deny"
	"github.com/agw-dev/agw/gateway/front"
	"github.com/agw-dev/agw/store"
)

func TestRequestSmuggling(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	auth := "Authorization: Bearer " + h.token + "\r\n"
	// CL and TE together: refused, and the connection closed, whatever the
	// case and order of the headers; the backend sees nothing.
	for _, hdrs := range []string{
		"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
		"transfer-encoding: chunked\r\ncontent-length: 4\r\n",
		"Content-Length: 4\r\nTransfer-Encoding: chunked\r\nX-Pad: 1\r\n",
	} {
		req := "POST /v1/x HTTP/1.1\r\nHost: " + testHost + "\r\n" + auth + hdrs + "\r\n" +
			"5\r\nhello\r\n0\r\n\r\n"
		res, body := h.raw(req)
		if res.StatusCode != 400 || !res.Close || !strings.Contains(string(body), "Content-Length and Transfer-Encoding") {
			t.Errorf("CL+TE %q: status %d close=%v: %s", hdrs, res.StatusCode, res.Close, body)
		}
	}
	if n := h.seenCount(); n != 0 {
		t.Errorf("backend saw %d requests", n)
	}
	// Chunked alone, and a body that mentions both headers, still pass.
	res, body := h.raw("POST /v1/x HTTP/1.1\r\nHost: " + testHost + "\r\n" + auth + "Transfer-Encoding: chunked\r\n\r\n" +
		"32\r\nContent-Length: 1\nTransfer-Encoding: chunked\n\n0123\r\n0\r\n\r\n")
	if res.StatusCode != 200 {
		t.Errorf("chunked request: %d %s", res.StatusCode, body)
	}
	for name, req := range map[string]string{
		"two Content-Lengths": "POST /v1/x HTTP/1.1\r\nHost: " + testHost + "\r\n" + auth + "Content-Length: 4\r\nContent-Length: 5\r\n\r\nhello",
		"unknown coding":      "POST /v1/x HTTP/1.1\r\nHost: " + testHost + "\r\n" + auth + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
	} {
		res, body := h.raw(req)
		if res.StatusCode < 400 || res.StatusCode >= 500 && res.StatusCode != 501 {
			t.Errorf("%s: status %d: %s", name, res.StatusCode, body)
		}
	}
}

func TestAmbiguousPathsRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, p := range []string{"/v1/a%2Fb", "/v1/a%2fb", "/v1/a%5Cb", "/v1/%2E%2E/admin", "/v1/../admin", "/v1/./x", "/v1//x", "/v1/..;/admin", "/v1/a\\b", "/v1/a%00b"} {
		res, body := h.raw("GET " + p + " HTTP/1.1\r\nHost: " + testHost + "\r\nAuthorization: Bearer " + h.token + "\r\n\r\n")
		if res.StatusCode != 400 {
			t.Errorf("%s: status %d, want 400: %s", p, res.StatusCode, body)
			continue
		}
		if e := agwError(t, body); e.Type != deny.BadRequest {
			t.Errorf("%s: type %s", p, e.Type)
		}
	}
	if n := h.seenCount(); n != 0 {
		t.Errorf("backend received %d requests", n)
	}
}

func TestHopByHop(t *testing.T) {
	t.Parallel()
	h := newHarness(t) // header mode, X-Api-Key
	// The agent names the injected header in Connection: it must not
	// remove the injected credential.
	res, body := h.raw("GET /v1/models HTTP/1.1\r\nHost: " + testHost + "\r\nX-Api-Key: " + h.token +
		"\r\nConnection: x-api-key, keep-alive, X-Drop-Me\r\nX-Drop-Me: 1\r\nX-Forwarded-For: 10.9.9.9\r\nX-Forwarded-Port: 1\r\nForwarded: for=10.9.9.9\r\n\r\n")
	if res.StatusCode != 200 {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	s := h.lastSeen()
	if got := s.Header.Values("X-Api-Key"); len(got) != 1 || got[0] != canary {
		t.Errorf("X-Api-Key at backend = %q, want the injected secret", got)
	}
	for _, k := range []string{"X-Drop-Me", "X-Forwarded-For", "X-Forwarded-Port", "Forwarded"} {
		if v := s.Header.Values(k); len(v) != 0 {
			t.Errorf("backend saw %s: %q", k, v)
		}
	}
	h.assertNoToken(s)

	// h2c upgrade attempts are stripped.
	res, body = h.raw("GET /v1/models HTTP/1.1\r\nHost: " + testHost + "\r\nAuthorization: Bearer " + h.token +
		"\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
	if res.StatusCode != 200 {
		t.Fatalf("h2c: status %d: %s", res.StatusCode, body)
	}
	s = h.lastSeen()
	for _, k := range []string{"Upgrade", "Http2-Settings", "Connection"} {
		if v := s.Header.Values(k); len(v) != 0 {
			t.Errorf("backend saw %s: %q", k, v)
		}
	}
}

// Requests Go's HTTP server refuses while reading them never reach the
// pipeline; each still gets exactly one audit record, and a request that
// does reach it gets only its own.
func TestRefusedByServerAudited(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	auth := "Authorization: Bearer " + h.token + "\r\n"
	good := "GET /v1/models HTTP/1.1\r\nHost: " + testHost + "\r\n" + auth + "\r\n"
	tests := []struct {
		name, req string
		status    int  // 0: the client hangs up without an answer
		reset     bool // the client resets the connection after sending req
	}{
		{"duplicate Host", "GET /v1/models HTTP/1.1\r\nHost: " + testHost + "\r\nHost: other.example.com\r\n" + auth + "\r\n", 400, false},
		{"two Content-Lengths", "POST /v1/x HTTP/1.1\r\nHost: " + testHost + "\r\n" + auth + "Content-Length: 4\r\nContent-Length: 5\r\n\r\nhello", 400, false},
		{"unknown transfer coding", "POST /v1/x HTTP/1.1\r\nHost: " + testHost + "\r\n" + auth + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501, false},
		{"unsupported Expect", "GET /v1/models HTTP/1.1\r\nHost: " + testHost + "\r\n" + auth + "Expect: 200-ok\r\n\r\n", 417, false},
		{"header block over the limit", "GET /v1/models HTTP/1.1\r\nHost: " + testHost + "\r\n" + auth + "X-Big: " + strings.Repeat("a", 2<<20) + "\r\n\r\n", 431, false},
		{"garbage request line", "GET\x00/ HTTP/9\r\n\r\n", 400, false},
		// A closed half-request gets a 400 from Go's server; a reset one
		// gets nothing.
		{"closed mid-headers", "GET /v1/models HTTP/1.1\r\nHost: " + testHost + "\r\nAuthorization: Bea", 400, false},
		{"reset mid-headers", "GET /v1/models HTTP/1.1\r\nHost: " + testHost + "\r\nAuthorization: Bea", 0, true},
	}
	for _, tt := range tests {
		c, err := h.tlsConn(testHost)
		if err != nil {
			t.Fatal(err)
		}
		// A served request first: the refused one that follows on the same
		// connection must get its own record, not be taken for this one.
		br := bufio.NewReader(c)
		if _, err := io.WriteString(c, good); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if ev := h.nextAudit(); ev.Decision != store.Allow || ev.Status != 200 {
			t.Fatalf("%s: record of the served request: %+v", tt.name, ev)
		}
		if strings.HasSuffix(tt.req, "Bea") {
			if _, err := io.WriteString(c, tt.req); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond) // let the partial request arrive
			if tt.reset {                     // no close_notify, and an RST
				_ = c.NetConn().(*net.TCPConn).SetLinger(0)
				c.NetConn().Close()
			}
			c.Close()
		} else {
			go func() { _, _ = io.WriteString(c, tt.req) }() // the server may answer before reading it all
		}
		if tt.status != 0 && !strings.HasSuffix(tt.req, "Bea") {
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			res.Body.Close()
			if res.StatusCode != tt.status {
				t.Errorf("%s: status %d, want %d", tt.name, res.StatusCode, tt.status)
			}
		}
		c.Close()
		ev := h.nextAudit()
		reason := front.ReasonRefusedByServer
		if tt.status == 0 {
			reason = front.ReasonCutOff
		}
		if tt.reset && ev.Status == 400 {
			// The reset can reach the server as a plain end of stream,
			// which it answers 400 (unsent).
			tt.status, reason = 400, front.ReasonRefusedByServer
		}
		if ev.Kind != store.KindRequest || ev.Decision != store.Deny || ev.Reason != reason || ev.Status != tt.status ||
			ev.Host != testHost || !strings.HasPrefix(ev.Client, "127.0.0.1:") || ev.RequestID == "" {
			t.Errorf("%s: audit %+v, want a deny %d %q", tt.name, ev, tt.status, reason)
		}
	}
	select {
	case ev := <-h.auditc:
		t.Errorf("extra audit record: %+v", ev)
	case <-time.After(100 * time.Millisecond):
	}
	// A connection that sends nothing is not a request.
	c, err := h.tlsConn(testHost)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case ev := <-h.auditc:
		t.Errorf("record for a connection that sent no request: %+v", ev)
	case <-time.After(100 * time.Millisecond):
	}
	if st := h.p.Stats(); st.Requests != uint64(2*len(tests)) || st.Denied != uint64(len(tests)) {
		t.Errorf("stats %+v, want %d requests, %d denied", st, 2*len(tests), len(tests))
	}
	if n := h.seenCount(); n != len(tests) {
		t.Errorf("backend received %d requests, want %d", n, len(tests))
	}
}

// OPTIONS * is refused, not answered 200 by the HTTP server, and audited
// exactly once, over HTTP/1.1 and HTTP/2.
func TestOptionsAsteriskRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	res, body := h.raw("OPTIONS * HTTP/1.1\r\nHost: " + testHost + "\r\nAuthorization: Bearer " + h.token + "\r\n\r\n")
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("HTTP/1.1 OPTIONS *: %d %s", res.StatusCode, body)
	}
	if ev := h.nextAudit(); ev.Method != "OPTIONS" || ev.Decision != store.Deny || ev.Status != 400 {
		t.Errorf("audit %+v", ev)
	}
	req, _ := http.NewRequest("OPTIONS", "https://"+testHost, nil)
	req.URL.Opaque = "*"
	req.Header.Set("Authorization", "Bearer "+h.token)
	res2, err := h.client(true).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res2.Body.Close()
	if res2.StatusCode != http.StatusBadRequest || res2.ProtoMajor != 2 {
		t.Fatalf("HTTP/2 OPTIONS *: %d over %s", res2.StatusCode, res2.Proto)
	}
	if ev := h.nextAudit(); ev.Method != "OPTIONS" || ev.Status != 400 {
		t.Errorf("audit %+v", ev)
	}
	select {
	case ev := <-h.auditc:
		t.Errorf("a second record: %+v", ev)
	default:
	}
	if n := h.seenCount(); n != 0 {
		t.Errorf("the backend saw %d requests", n)
	}
}

// A client that trickles a declared body after its request was refused
// does not hold the connection: it gets its answer and the connection is
// closed within a few seconds, however slowly it keeps sending.
func TestRefusedBodyDoesNotHoldConnection(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c, err := h.tlsConn(testHost)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /v1/x HTTP/1.1\r\nHost: %s\r\nContent-Length: 100000\r\n\r\nab", testHost)
	start := time.Now()
	stop := make(chan struct{})
	defer close(stop)
	go func() { // one byte every 100 ms, for up to a minute
		for range 600 {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if _, err := c.Write([]byte("x")); err != nil {
				return
			}
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	if res.StatusCode != http.StatusUnauthorized || !res.Close {
		t.Errorf("answer %d close=%v, want 401 with Connection: close", res.StatusCode, res.Close)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Error("more data after the refusal")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the connection stayed open %v", d)
	}
}
