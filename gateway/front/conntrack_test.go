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
