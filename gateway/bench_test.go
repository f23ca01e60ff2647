package gateway

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agw-dev/agw/crypto"
	"github.com/agw-dev/agw/state"
	"github.com/agw-dev/agw/store"
)

// cannedUpstream answers every request in memory, so the benchmark measures
// the gateway's own work and not the network.
type cannedUpstream struct{}

const cannedBody = `{"id":"chatcmpl-1","object":"chat.completion","choices":[{"message":{"role":"assistant","content":"ok"}}]}`

func (cannedUpstream) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	return &http.Response{
		StatusCode:    200,
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(strings.NewReader(cannedBody)),
		ContentLength: int64(len(cannedBody)),
		Request:       req,
	}, nil
}

func benchProxy(b *testing.B) (*Gateway, string) {
	b.Helper()
	keys, err := crypto.NewKeyring()
	if err != nil {
		b.Fatal(err)
	}
	ca, err := crypto.NewCA("bench CA", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	sealed, _ := keys.Seal([]byte(canary))
	tok, id, hash, _ := crypto.MintToken()
	st, err := state.Load(&store.Snapshot{
		Backends:    []store.Backend{{Name: "api", Hosts: []string{testHost}, Upstream: "https://127.0.0.1:1", Inject: store.InjectHeader, Header: "X-Api-Key", CredentialVersion: 1}},
		Credentials: []store.Credential{{Backend: "api", Version: 1, Sealed: sealed}},
		Agents:      []store.Agent{{Name: "bot"}},
		Grants:      []store.Grant{{Agent: "bot", Backend: "api", Methods: []string{"POST"}, Paths: []string{"/v1/**"}}},
		Tokens:      []store.Token{{ID: id, Agent: "bot", Hash: hash}},
	}, keys)
	if err != nil {
		b.Fatal(err)
	}
	p := New(Config{State: st, CA: ca, Audit: func(store.AuditEvent) {}})
	p.ups.roundTripper = cannedUpstream{}
	return p, string(tok.Reveal())
}

func benchRequest(token string) *http.Request {
	r := httptest.NewRequest("POST", "https://"+testHost+"/v1/chat/completions", strings.NewReader(`{"model":"m","messages":[]}`))
	r.TLS = &tls.ConnectionState{ServerName: testHost, HandshakeComplete: true}
	r.RemoteAddr = "127.0.0.1:40000"
	r.Header.Set("Authorization", "Bearer "+token)
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("User-Agent", "OpenAI/Python 1.0")
	return r
}

// BenchmarkProxyOverhead measures identify + authorize + swap + audit
// record per request through ServeHTTP, with an in-memory upstream. The
// "harness" sub-benchmark is the cost of building the test request and
// recorder alone, to subtract.
func BenchmarkProxyOverhead(b *testing.B) {
	p, token := benchProxy(b)
	b.Run("harness", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r := benchRequest(token)
			w := httptest.NewRecorder()
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(200)
		}
	})
	b.Run("proxy", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r := benchRequest(token)
			w := httptest.NewRecorder()
			p.ServeHTTP(w, r)
			if w.Code != 200 {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	})
}
