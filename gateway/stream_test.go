package gateway

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/agw-dev/agw/store"
)

func TestHTTP2EndToEnd(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	res, body := h.get("/v1/models", "Authorization", "Bearer "+h.token)
	if res.StatusCode != 200 || res.ProtoMajor != 2 {
		t.Fatalf("status %d proto %s: %s", res.StatusCode, res.Proto, body)
	}
	if s := h.lastSeen(); s.Proto != "HTTP/2.0" {
		t.Errorf("backend saw %s, want HTTP/2.0 upstream", s.Proto)
	}
}

// Streamed events reach the agent one at a time, for Server-Sent Events and
// for any other body of unknown length (a chunked NDJSON stream), over
// HTTP/1.1 and HTTP/2: the backend writes the next event only after the
// client has read the previous one, so buffering anywhere in the gateway
// would deadlock the test instead of passing it.
func TestSSEStreamsEventByEvent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		contentType string
		h2          bool
	}{{"text/event-stream", false}, {"text/event-stream", true}, {"application/x-ndjson", false}, {"application/x-ndjson", true}} {
		t.Run(fmt.Sprintf("%s/http2=%v", tc.contentType, tc.h2), func(t *testing.T) {
			t.Parallel()
			h2 := tc.h2
			next := make(chan struct{})
			h := newHarness(t, withHandler(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.contentType)
				for i := range 5 {
					fmt.Fprintf(w, "data: event %d\n\n", i)
					http.NewResponseController(w).Flush()
					select {
					case <-next:
					case <-r.Context().Done():
						return
					}
				}
			}))
			req, _ := http.NewRequest("GET", "https://"+testHost+"/v1/stream", nil)
			req.Header.Set("Authorization", "Bearer "+h.token)
			res, err := h.client(h2).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			br := bufio.NewReader(res.Body)
			for i := range 5 {
				line, err := br.ReadString('\n')
				if err != nil {
					t.Fatalf("event %d: %v", i, err)
				}
				if want := fmt.Sprintf("data: event %d\n", i); line != want {
					t.Fatalf("got %q, want %q", line, want)
				}
				if _, err := br.ReadString('\n'); err != nil {
					t.Fatal(err)
				}
				next <- struct{}{}
			}
		})
	}
}

// TestWebSocketEcho upgrades through the gateway to a minimal WebSocket
// echo backend (handshake and one unmasked text frame back).
func TestWebSocketEcho(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(s *harnessSetup) { s.noHTTP2 = true }, withHandler(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "not a websocket", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", base64.StdEncoding.EncodeToString(sum[:]))
		brw.Flush()
		// Read one masked client frame (short payload) and echo it unmasked.
		hdr := make([]byte, 2)
		if _, err := io.ReadFull(brw, hdr); err != nil {
			return
		}
		n := int(hdr[1] & 0x7f)
		mask := make([]byte, 4)
		io.ReadFull(brw, mask)
		payload := make([]byte, n)
		io.ReadFull(brw, payload)
		for i := range payload {
			payload[i] ^= mask[i%4]
		}
		brw.Write(append([]byte{0x81, byte(n)}, payload...))
		brw.Flush()
	}))
	c, err := h.tlsConn(testHost)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /v1/ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: agw_%s\r\nAuthorization: Bearer %s\r\n\r\n", testHost, "x", h.token)
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 101 {
		body, _ := io.ReadAll(res.Body)
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	msg := []byte("hello")
	mask := []byte{1, 2, 3, 4}
	frame := []byte{0x81, 0x80 | byte(len(msg))}
	frame = append(frame, mask...)
	for i, b := range msg {
		frame = append(frame, b^mask[i%4])
	}
	c.Write(frame)
	got := make([]byte, 2+len(msg))
	if _, err := io.ReadFull(br, got); err != nil {
		t.Fatal(err)
	}
	if string(got[2:]) != "hello" {
		t.Fatalf("echo %q", got[2:])
	}
	s := h.lastSeen()
	if s.Header.Get("X-Api-Key") != canary {
		t.Error("handshake lacks the injected credential")
	}
	if strings.Contains(s.Header.Get("Authorization"), "agw_") {
		t.Error("handshake carried the gateway token")
	}
	c.Close()
	// The audit record counts the frames each way, not only the handshake.
	if ev := h.nextAudit(); ev.Status != 101 || ev.Decision != store.Allow ||
		ev.BytesIn != int64(len(frame)) || ev.BytesOut != int64(len(got)) {
		t.Errorf("audit %+v, want status 101, allow, %d bytes in and %d out", ev, len(frame), len(got))
	}
}
