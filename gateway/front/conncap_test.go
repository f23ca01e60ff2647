package front

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/agw-dev/agw/crypto"
)

type allHosts struct{}

func (allHosts) Intercepts(string) bool { return true }

// Connections over a cap are closed at once; closing one frees its slot.
func TestConnectionCaps(t *testing.T) {
	t.Parallel()
	ca, err := crypto.NewCA("agw test CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{CA: ca, Hosts: allHosts{}, Handler: http.NotFoundHandler(), MaxConns: 3, MaxConnsPerClient: 2})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })

	dialFrom := func(src string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// closedSoon reports whether the server closed c (a read returns
	// before the deadline with an error other than a timeout).
	closedSoon := func(c net.Conn) bool {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err := c.Read(make([]byte, 1))
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return false
		}
		return err != nil
	}
	waitOpen := func(n int64) {
		t.Helper()
		for i := 0; s.Stats().OpenConns != n; i++ {
			if i > 500 {
				t.Fatalf("open connections %d, want %d", s.Stats().OpenConns, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	a1, _ := dialFrom("127.0.0.1"), dialFrom("127.0.0.1")
	waitOpen(2)
	if c := dialFrom("127.0.0.1"); !closedSoon(c) {
		t.Error("a third connection from one client was kept (per-client cap 2)")
	}
	dialFrom("127.0.0.2")
	waitOpen(3)
	if c := dialFrom("127.0.0.3"); !closedSoon(c) {
		t.Error("a fourth connection was kept (cap 3)")
	}
	if got := s.Stats().ConnsRefused; got != 2 {
		t.Errorf("refused %d, want 2", got)
	}
	a1.Close()
	waitOpen(2)
	if c := dialFrom("127.0.0.3"); closedSoon(c) {
		t.Error("a connection was refused after a slot was freed")
	}
}
