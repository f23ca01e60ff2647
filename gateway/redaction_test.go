package gateway

import (
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/agw-dev/agw/gateway/deny"
	"github.com/agw-dev/agw/gateway/scrub"
	"github.com/agw-dev/agw/store"
)

func TestResponseHeadersDoNotEchoSecret(t *testing.T) {
	t.Parallel()
	for _, mode := range []store.InjectMode{store.InjectHeader, store.InjectBasic, store.InjectQuery} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, withBackend(func(b *store.Backend) { b.Inject, b.QueryParam, b.BasicUser = mode, "key", "u" }),
				withHandler(func(w http.ResponseWriter, r *http.Request) {
					for k, vv := range r.Header {
						for _, v := range vv {
							w.Header().Add("X-Echo-"+k, v)
						}
					}
					w.Header().Set("X-Echo-Url", r.URL.String())
					w.Header().Set("Trailer", "X-Trailer-Echo")
					w.WriteHeader(200)
					_, _ = io.WriteString(w, "ok")
					w.Header().Set("X-Trailer-Echo", r.Header.Get("X-Api-Key")+r.Header.Get("Authorization")+r.URL.RawQuery)
				}))
			res, body := h.get("/v1/echo", "Authorization", "Bearer "+h.token)
			if res.StatusCode != 200 {
				t.Fatalf("status %d: %s", res.StatusCode, body)
			}
			enc := base64.StdEncoding.EncodeToString([]byte("u:" + canary))
			redacted := 0
			for _, hdr := range []http.Header{res.Header, res.Trailer} {
				for k, vv := range hdr {
					for _, v := range vv {
						if strings.Contains(v, canary) || strings.Contains(v, enc) {
							t.Errorf("response header %s echoes the secret: %q", k, v)
						}
						if v == scrub.Marker {
							redacted++
						}
					}
				}
			}
			if redacted < 2 {
				t.Errorf("expected the echo headers and trailer redacted, got %d redactions: %v %v", redacted, res.Header, res.Trailer)
			}
		})
	}
}

func TestQuerySecretNeverInErrors(t *testing.T) {
	t.Parallel()
	// A closed port: listen, note the address, close.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	h := newHarness(t, withBackend(func(b *store.Backend) {
		b.Inject, b.QueryParam, b.Upstream = store.InjectQuery, "key", "https://"+closed+"/base"
	}))
	res, body := h.get("/v1/models?alt=json", "Authorization", "Bearer "+h.token)
	e := agwError(t, body)
	if res.StatusCode != 502 || e.Type != deny.Upstream || !strings.Contains(e.Message, "could not be reached") {
		t.Fatalf("status %d %+v", res.StatusCode, e)
	}
	if strings.Contains(string(body), canary) || strings.Contains(h.logs.String(), canary) {
		t.Fatalf("secret leaked: body %s logs %s", body, h.logs.String())
	}
	if !strings.Contains(h.logs.String(), "upstream error") {
		t.Errorf("upstream error not logged: %s", h.logs.String())
	}
	if ev := h.nextAudit(); ev.Status != 502 || ev.Decision != store.Allow || strings.Contains(ev.Reason, canary) {
		t.Errorf("audit %+v", ev)
	}
	if st := h.p.Stats(); st.UpstreamErrs != 1 {
		t.Errorf("stats %+v", st)
	}
}
