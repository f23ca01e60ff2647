package gateway

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agw-dev/agw/dns"
	"github.com/agw-dev/agw/gateway/deny"
	"github.com/agw-dev/agw/store"
)

func TestUpstreamLoopback(t *testing.T) {
	t.Parallel()
	h := newHarness(t,
		withBackend(func(b *store.Backend) { b.Upstream = "-" }),
		func(s *harnessSetup) {
			s.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
				if addr != testHost+":443" {
					return nil, fmt.Errorf("dialed %s", addr)
				}
				return nil, fmt.Errorf("lookup %s: %w", testHost, dns.ErrLoopback)
			}
		})
	res, body := h.get("/v1/models", "Authorization", "Bearer "+h.token)
	if e := agwError(t, body); res.StatusCode != 502 || !strings.Contains(e.Message, "resolution loops back to the gateway") {
		t.Fatalf("status %d %+v", res.StatusCode, e)
	}
}

func TestUpstreamTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	h := newHarness(t,
		withBackend(func(b *store.Backend) { b.Timeout = store.Duration(50 * time.Millisecond) }),
		withHandler(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
	defer close(release)
	res, body := h.get("/v1/slow", "Authorization", "Bearer "+h.token)
	if e := agwError(t, body); res.StatusCode != 504 || e.Type != deny.UpstreamTimeout {
		t.Fatalf("status %d %+v", res.StatusCode, e)
	}
}
