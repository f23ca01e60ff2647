package gateway

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/agw-dev/agw/store"
)

func TestUnknownSNIRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, sni := range []string{"unknown.example.org", ""} {
		c, err := tls.Dial("tcp", h.addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
		if err == nil {
			c.Close()
			t.Fatalf("handshake for SNI %q succeeded", sni)
		}
		ev := h.nextAudit()
		want := "unknown SNI " + sni
		if sni == "" {
			want = "missing SNI"
		}
		if ev.Kind != store.KindTLS || ev.Decision != store.Deny || ev.Reason != want || !strings.HasPrefix(ev.Client, "127.0.0.1:") {
			t.Errorf("audit %+v, want tls deny %q", ev, want)
		}
	}
	if got := h.p.Stats().TLSRefused; got != 2 {
		t.Errorf("TLSRefused = %d, want 2", got)
	}
}

func TestCertificates(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	leaf := func(sni string) *tls.ConnectionState {
		c, err := h.tlsConn(sni)
		if err != nil {
			t.Fatalf("handshake for %s: %v", sni, err)
		}
		defer c.Close()
		st := c.ConnectionState()
		return &st
	}
	a, b := leaf(testHost), leaf("API.Example.com.")
	if !a.PeerCertificates[0].Equal(b.PeerCertificates[0]) {
		t.Error("a second handshake minted a new leaf instead of using the cache")
	}
	w := leaf("acme.crm.example.com")
	if err := w.PeerCertificates[0].VerifyHostname("acme.crm.example.com"); err != nil {
		t.Errorf("wildcard host leaf: %v", err)
	}
}

// Plain HTTP sent to the HTTPS port gets a hint and a TLS refusal record.
func TestPlainHTTPOnHTTPSPort(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /v1/models HTTP/1.1\r\nHost: "+testHost+"\r\nAuthorization: Bearer "+h.token+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 400 || !strings.Contains(string(body), "https://") {
		t.Errorf("status %d body %q, want 400 naming https://", res.StatusCode, body)
	}
	if ev := h.nextAudit(); ev.Kind != store.KindTLS || ev.Decision != store.Deny || ev.Reason != "plain HTTP on the HTTPS port" {
		t.Errorf("audit %+v", ev)
	}
	if n := h.seenCount(); n != 0 {
		t.Errorf("backend received %d requests", n)
	}
	if st := h.p.Stats(); st.TLSRefused != 1 || st.Requests != 0 {
		t.Errorf("stats %+v, want 1 TLS refusal and no request", st)
	}
}
