package gateway

import (
	"testing"

	"github.com/agw-dev/agw/gateway/deny"
	"github.com/agw-dev/agw/store"
)

func TestMisdirected(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.st.PutBackend(store.Backend{Name: "other", Hosts: []string{"other.example.com"}, Inject: store.InjectBearer}, h.st.Backend("api").Secret)
	auth := "Authorization: Bearer " + h.token + "\r\n"
	tests := []struct {
		name, req string
		want      int
	}{
		{"host differs from SNI", "GET /v1/models HTTP/1.1\r\nHost: other.example.com\r\n" + auth + "\r\n", 421},
		{"absolute-form names another host", "GET https://other.example.com/v1/models HTTP/1.1\r\nHost: " + testHost + "\r\n" + auth + "\r\n", 421},
		{"absolute-form names this host", "GET https://" + testHost + "/v1/models HTTP/1.1\r\nHost: " + testHost + "\r\n" + auth + "\r\n", 200},
		{"host with port and case", "GET /v1/models HTTP/1.1\r\nHost: API.example.com.:443\r\n" + auth + "\r\n", 200},
		// Go's server refuses these before the handler runs.
		{"duplicate Host", "GET /v1/models HTTP/1.1\r\nHost: " + testHost + "\r\nHost: other.example.com\r\n" + auth + "\r\n", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := h.raw(tt.req)
			if res.StatusCode != tt.want {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tt.want, body)
			}
			if tt.want == 421 {
				if e := agwError(t, body); e.Type != deny.Misdirected {
					t.Errorf("type %s", e.Type)
				}
			}
		})
	}
	if n := h.seenCount(); n != 2 {
		t.Errorf("backend received %d requests, want 2", n)
	}
}
