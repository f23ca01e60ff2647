package gateway

import (
	"bufio"
	"crypto/rsa"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
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

// An unknown name is refused with the unrecognized_name alert, and a client
// that offers only RSA signature schemes gets an RSA leaf for a registered
// name; one that offers ECDSA keeps the ECDSA leaf.
func TestTLSAlertsAndRSALeaf(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	_, err := tls.Dial("tcp", h.addr, &tls.Config{RootCAs: h.caPool(), ServerName: "unknown.example.org"})
	if err == nil || !strings.Contains(err.Error(), "unrecognized name") {
		t.Errorf("unknown SNI: %v, want the unrecognized_name alert", err)
	}
	for _, tc := range []struct {
		name    string
		schemes []tls.SignatureScheme
		maxVer  uint16
		wantRSA bool
	}{
		{"default client", nil, 0, false},
		{"RSA-only TLS 1.2", []tls.SignatureScheme{tls.PKCS1WithSHA256, tls.PSSWithSHA256}, tls.VersionTLS12, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &tls.Config{RootCAs: h.caPool(), ServerName: testHost, MaxVersion: tc.maxVer}
			if tc.schemes != nil {
				cfg.CipherSuites = []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}
			}
			c, err := tls.Dial("tcp", h.addr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, isRSA := c.ConnectionState().PeerCertificates[0].PublicKey.(*rsa.PublicKey)
			if isRSA != tc.wantRSA {
				t.Errorf("RSA leaf = %v, want %v", isRSA, tc.wantRSA)
			}
		})
	}
	// TLS 1.3 with only RSA-PSS signature schemes: Go's client cannot be
	// told that, OpenSSL's can.
	t.Run("RSA-only TLS 1.3 (openssl)", func(t *testing.T) {
		if _, err := exec.LookPath("openssl"); err != nil {
			if os.Getenv("AGW_E2E_REQUIRE") == "1" {
				t.Fatal("openssl is required (AGW_E2E_REQUIRE=1)")
			}
			t.Skip("openssl is not installed")
		}
		cmd := exec.Command("openssl", "s_client", "-connect", h.addr, "-servername", testHost, "-tls1_3",
			"-sigalgs", "rsa_pss_rsae_sha256:rsa_pss_rsae_sha384")
		cmd.Stdin = strings.NewReader("")
		out, _ := cmd.CombinedOutput()
		if !strings.Contains(string(out), "RSA-PSS") && !strings.Contains(string(out), "2048 bit") {
			t.Errorf("openssl with RSA-only schemes did not get an RSA leaf:\n%s", out)
		}
	})
}
