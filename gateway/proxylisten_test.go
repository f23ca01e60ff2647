package gateway

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/agw-dev/agw/gateway/front/tunnel"
	"github.com/agw-dev/agw/store"
)

// startProxy runs the proxy listener of h's gateway on a loopback port.
func startProxy(t testing.TB, h *harness) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- h.p.ServeProxy(ctx, ln, tunnel.Allow{netip.MustParsePrefix("127.0.0.0/8")})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeProxy: %v", err)
		}
	})
	return ln.Addr().String()
}

func proxyClient(h *harness, proxyURL string) *http.Client {
	u, _ := url.Parse(proxyURL)
	tr := &http.Transport{Proxy: http.ProxyURL(u), TLSClientConfig: &tls.Config{RootCAs: h.caPool()}, ForceAttemptHTTP2: true}
	h.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func (h *harness) nextAuditOf(kind string) store.AuditEvent {
	h.t.Helper()
	for {
		if ev := h.nextAudit(); ev.Kind == kind {
			return ev
		}
	}
}

// TestProxyListener: a CONNECT tunnel carrying the token in the handshake
// reaches a registered backend through the whole pipeline, is audited as
// having come through the proxy listener, and stops working the moment its
// token is revoked.
func TestProxyListener(t *testing.T) {
	h := newHarness(t)
	addr := startProxy(t, h)
	for _, scheme := range []string{"http", "socks5h"} {
		t.Run(scheme, func(t *testing.T) {
			c := proxyClient(h, scheme+"://bot:"+h.token+"@"+addr)
			res, err := c.Get("https://" + testHost + "/v1/items")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				t.Fatalf("status %d: %s", res.StatusCode, body)
			}
			if got := h.lastSeen().Header.Get("X-Api-Key"); got != canary {
				t.Errorf("backend saw X-Api-Key %q; want the real key", got)
			}
			h.assertNoToken(h.lastSeen())
			ev := h.nextAuditOf(store.KindRequest)
			if ev.Via != store.ViaProxy || ev.Agent != "bot" || ev.Decision != store.Allow {
				t.Errorf("audit %+v; want agent bot, via proxy, allowed", ev)
			}
		})
	}

	t.Run("inner credential of another agent", func(t *testing.T) {
		c := proxyClient(h, "http://bot:"+h.token+"@"+addr)
		req, _ := http.NewRequest("GET", "https://"+testHost+"/v1/items", nil)
		req.Header.Set("X-Api-Key", "agw_notthesameagent000000000000000000")
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("status %d; want 401", res.StatusCode)
		}
	})

	t.Run("unregistered host refused", func(t *testing.T) {
		c := proxyClient(h, "http://"+addr)
		_, err := c.Get("https://unregistered.example.net/")
		if err == nil || !strings.Contains(err.Error(), "Forbidden") {
			t.Errorf("err %v; want the CONNECT refused with 403", err)
		}
		ev := h.nextAuditOf(store.KindTunnel)
		if ev.Decision != store.Deny || ev.Via != store.ViaProxy || !strings.Contains(ev.Reason, "passthrough") {
			t.Errorf("audit %+v; want a denied tunnel naming agw passthrough", ev)
		}
	})

	t.Run("revoked while open", func(t *testing.T) {
		c := proxyClient(h, "http://bot:"+h.token+"@"+addr)
		get := func() int {
			res, err := c.Get("https://" + testHost + "/v1/items")
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			return res.StatusCode
		}
		if s := get(); s != 200 {
			t.Fatalf("status %d before revocation", s)
		}
		tok := *h.st.Token(h.tokenID)
		tok.RevokedAt = time.Now()
		h.st.PutToken(tok)
		// The same keep-alive tunnel carries the next request.
		if s := get(); s != http.StatusUnauthorized {
			t.Errorf("status %d after revocation; want 401", s)
		}
	})
}

// TestProxyPassThrough: a listed host gets a plain tunnel to the real
// server: the client sees the server's own certificate, nothing is
// injected, and the tunnel is audited as pass-through with its bytes.
func TestProxyPassThrough(t *testing.T) {
	var h *harness
	h = newHarness(t, func(s *harnessSetup) {
		s.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr != "pass.example.org:443" {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			}
			return (&net.Dialer{}).DialContext(ctx, network, h.backend.Listener.Addr().String())
		}
	})
	addr := startProxy(t, h)
	c := func() *http.Client {
		u, _ := url.Parse("http://" + addr)
		tr := &http.Transport{Proxy: http.ProxyURL(u), TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}
	if _, err := c().Get("https://pass.example.org/v1/x"); err == nil || !strings.Contains(err.Error(), "Forbidden") {
		t.Fatalf("unlisted host: err %v; want 403", err)
	}
	h.nextAuditOf(store.KindTunnel)

	h.st.PutPassthrough(store.Passthrough{Host: "*.example.org"})
	cl := c()
	res, err := cl.Get("https://pass.example.org/v1/x")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if !res.TLS.PeerCertificates[0].Equal(h.backend.Certificate()) {
		t.Error("the client did not see the real server's certificate")
	}
	if got := h.lastSeen().Header.Get("X-Api-Key"); got != "" {
		t.Errorf("a pass-through request carried X-Api-Key %q; want nothing injected", got)
	}
	cl.Transport.(*http.Transport).CloseIdleConnections()
	ev := h.nextAuditOf(store.KindTunnel)
	if ev.Decision != store.Allow || ev.Via != store.ViaProxy || ev.BytesIn == 0 || ev.BytesOut == 0 || !strings.Contains(ev.Reason, "pass-through") {
		t.Errorf("audit %+v; want an allowed pass-through with bytes both ways", ev)
	}
}

// BenchmarkWaysIn compares requests/s through the proxy listener (a
// CONNECT tunnel carrying the token) with the DNS-steered path (TLS straight
// to the HTTPS port) against the same backend, in one run, over parallel
// keep-alive HTTP/1.1 connections.
//
//	go test ./gateway -run '^$' -bench WaysIn -benchtime 3s
func BenchmarkWaysIn(b *testing.B) {
	h := newHarness(b)
	// Nobody reads the audit records here; keep them from backing up.
	go func() {
		for range h.auditc {
		}
	}()
	proxyAddr := startProxy(b, h)
	clients := map[string]func() *http.Client{
		"dns": func() *http.Client {
			tr := &http.Transport{
				TLSClientConfig: &tls.Config{RootCAs: h.caPool()},
				DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, network, h.addr)
				},
				MaxIdleConnsPerHost: 64,
			}
			b.Cleanup(tr.CloseIdleConnections)
			return &http.Client{Transport: tr}
		},
		"proxy": func() *http.Client {
			u, _ := url.Parse("http://bot:" + h.token + "@" + proxyAddr)
			tr := &http.Transport{Proxy: http.ProxyURL(u), TLSClientConfig: &tls.Config{RootCAs: h.caPool()}, MaxIdleConnsPerHost: 64}
			b.Cleanup(tr.CloseIdleConnections)
			return &http.Client{Transport: tr}
		},
	}
	for _, name := range []string{"dns", "proxy"} {
		b.Run(name, func(b *testing.B) {
			c := clients[name]()
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("GET", "https://"+testHost+"/v1/items", nil)
					req.Header.Set("Authorization", "Bearer "+h.token)
					res, err := c.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != 200 {
						b.Errorf("status %d", res.StatusCode)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
		})
	}
}
