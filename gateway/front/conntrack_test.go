package front

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/agw-dev/agw/store"
)

// Closing the listener (shutdown) closes connections still in their TLS
// handshake instead of waiting out the handshake timeout.
func TestTLSListenerCloseDropsHandshakes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newTLSListener(ln, &tls.Config{}, time.Hour, New(Config{}))
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; ; i++ { // wait for the handshake to start
		l.mu.Lock()
		n := len(l.pending)
		l.mu.Unlock()
		if n == 1 {
			break
		}
		if i == 500 {
			t.Fatal("the connection never reached its handshake")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read after Close: %v, want the connection closed", err)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
	}
}

// A connection that closes after request bytes the server never answered
// is recorded as a request cut off; one that closes after an answered
// request, or after nothing, is not.
func TestCutOffRequestAudited(t *testing.T) {
	var got []store.AuditEvent
	p := New(Config{Record: func(ev store.AuditEvent) { got = append(got, ev) }})
	a, b := net.Pipe()
	defer b.Close()
	c := &h1Conn{Conn: tls.Server(a, &tls.Config{}), t: &trackedConn{}}

	c.t.read.Add(40)     // a request...
	c.t.owed.Store(true) // ...in the pipeline
	p.connState(c, http.StateIdle)
	c.t.read.Add(12) // half of the next one
	p.connState(c, http.StateClosed)
	if len(got) != 1 || got[0].Reason != ReasonCutOff || got[0].Status != 0 || got[0].Decision != store.Deny {
		t.Fatalf("records %+v, want one cut-off deny", got)
	}

	got = nil
	c = &h1Conn{Conn: tls.Server(a, &tls.Config{}), t: &trackedConn{}}
	c.t.read.Add(40)
	c.t.owed.Store(true)
	p.connState(c, http.StateIdle)
	p.connState(c, http.StateClosed)
	if len(got) != 0 {
		t.Fatalf("records %+v for a connection closed while idle", got)
	}
}

// The framing scan finds a request header block with both framing headers
// however the bytes are split across reads, and not a body that quotes them.
func TestFramingScan(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		want     int
	}{
		{"both", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n", 1},
		{"lower case", "POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\ncontent-length: 4\r\n\r\n", 1},
		{"one only", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 0},
		{"body quotes both", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n30\r\nX: 1\nContent-Length: 1\nTransfer-Encoding: chunked\n\n", 0},
		{"two requests", "GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 1},
	} {
		for split := 1; split <= len(tc.in); split += 7 {
			f := newFraming()
			for b := []byte(tc.in); len(b) > 0; {
				n := min(split, len(b))
				f.scan(b[:n])
				b = b[n:]
			}
			if f.conflicts != tc.want {
				t.Errorf("%s, reads of %d: %d conflicts, want %d", tc.name, split, f.conflicts, tc.want)
			}
		}
	}
}
