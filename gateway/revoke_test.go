package gateway

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agw-dev/agw/store"
)

// wsBackend upgrades and then holds the connection open, sending a text
// frame every 20 ms until the gateway closes it.
func wsBackend(w http.ResponseWriter, r *http.Request) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", base64.StdEncoding.EncodeToString(sum[:]))
	brw.Flush()
	for range 1000 {
		if _, err := brw.Write([]byte{0x81, 4, 't', 'i', 'c', 'k'}); err != nil {
			return
		}
		if brw.Flush() != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readUntilClose reads frames until a close frame, returning its status
// code and reason; it fails the test if none comes before the connection
// ends or the deadline passes.
func readUntilClose(t *testing.T, br *bufio.Reader) (int, string) {
	t.Helper()
	for {
		hdr := make([]byte, 2)
		if _, err := io.ReadFull(br, hdr); err != nil {
			t.Fatalf("connection ended without a close frame: %v", err)
		}
		payload := make([]byte, int(hdr[1]&0x7f))
		if _, err := io.ReadFull(br, payload); err != nil {
			t.Fatal(err)
		}
		if hdr[0]&0x0f == 0x8 {
			return int(binary.BigEndian.Uint16(payload)), string(payload[2:])
		}
	}
}

// A WebSocket open through the gateway is closed with 1008 within a second
// of its token being revoked, its agent disabled, its grant removed or its
// backend's credential rotated, and the audit record says why.
func TestRevocationClosesWebSocket(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		change func(h *harness) store.Change
		reason string
	}{
		{"token revoked", func(h *harness) store.Change {
			tok := *h.st.Token(h.tokenID)
			tok.RevokedAt = time.Now()
			return store.Change{Kind: store.KindToken, Name: tok.ID, Token: &tok}
		}, "was revoked"},
		{"agent disabled", func(h *harness) store.Change {
			a := *h.st.Agent("bot")
			a.Disabled = true
			return store.Change{Kind: store.KindAgent, Name: "bot", Agent: &a}
		}, "was disabled"},
		{"grant removed", func(h *harness) store.Change {
			return store.Change{Kind: store.KindGrant, GrantAgent: "bot", Name: "api", Deleted: true}
		}, "no grant"},
		{"grant narrowed", func(h *harness) store.Change {
			g := *h.st.Grant("bot", "api")
			g.Paths = []string{"/v2/**"}
			return store.Change{Kind: store.KindGrant, GrantAgent: "bot", Name: "api", Grant: &g}
		}, "not in grant patterns"},
		{"credential rotated", func(h *harness) store.Change {
			b := h.st.Backend("api").Backend
			b.CredentialVersion++
			return store.Change{Kind: store.KindBackend, Name: "api", Backend: &b}
		}, "was rotated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, func(s *harnessSetup) { s.noHTTP2 = true }, withHandler(wsBackend))
			c, err := h.tlsConn(testHost)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprintf(c, "GET /v1/ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer %s\r\n\r\n", testHost, h.token)
			br := bufio.NewReader(c)
			res, err := http.ReadResponse(br, nil)
			if err != nil || res.StatusCode != 101 {
				t.Fatalf("upgrade: %v %v", res, err)
			}
			tick := make([]byte, 6)
			if _, err := io.ReadFull(br, tick); err != nil || string(tick[2:]) != "tick" {
				t.Fatalf("first frame %q %v", tick, err)
			}
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			changedAt := time.Now()
			if err := h.st.Apply(store.ChangeSet{Revision: h.st.Revision() + 1, Changes: []store.Change{tc.change(h)}}, h.keys, time.Now()); err != nil {
				t.Fatal(err)
			}
			code, reason := readUntilClose(t, br)
			if code != 1008 || !strings.Contains(reason, tc.reason) {
				t.Errorf("close frame %d %q, want 1008 naming %q", code, reason, tc.reason)
			}
			if _, err := br.ReadByte(); err == nil {
				t.Error("the connection stayed open after the close frame")
			}
			if d := time.Since(changedAt); d > 2*time.Second {
				t.Errorf("closed %v after the change, want within a second", d)
			}
			if ev := h.nextAudit(); ev.Status != 101 || !strings.Contains(ev.Reason, "closed mid-flight") || !strings.Contains(ev.Reason, tc.reason) {
				t.Errorf("audit %+v", ev)
			}
		})
	}
}

// A long response stream in flight ends when its token is revoked, over
// HTTP/1.1 and HTTP/2.
func TestRevocationEndsStream(t *testing.T) {
	t.Parallel()
	for _, http2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("http2=%v", http2), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, withHandler(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				for i := range 500 {
					if _, err := fmt.Fprintf(w, "data: %d\n\n", i); err != nil {
						return
					}
					http.NewResponseController(w).Flush()
					select {
					case <-r.Context().Done():
						return
					case <-time.After(20 * time.Millisecond):
					}
				}
			}))
			req, _ := http.NewRequest("GET", "https://"+testHost+"/v1/stream", nil)
			req.Header.Set("Authorization", "Bearer "+h.token)
			res, err := h.client(http2).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			br := bufio.NewReader(res.Body)
			if _, err := br.ReadString('\n'); err != nil {
				t.Fatal(err)
			}
			tok := *h.st.Token(h.tokenID)
			tok.RevokedAt = time.Now()
			changedAt := time.Now()
			if err := h.st.Apply(store.ChangeSet{Revision: h.st.Revision() + 1, Changes: []store.Change{{Kind: store.KindToken, Name: tok.ID, Token: &tok}}}, h.keys, time.Now()); err != nil {
				t.Fatal(err)
			}
			_, err = io.Copy(io.Discard, br)
			if err == nil {
				t.Error("the stream ended cleanly; the agent must see it cut off")
			}
			if d := time.Since(changedAt); d > 2*time.Second {
				t.Errorf("stream ended %v after the revocation", d)
			}
			if ev := h.nextAudit(); !strings.Contains(ev.Reason, "was revoked") {
				t.Errorf("audit %+v", ev)
			}
		})
	}
}
