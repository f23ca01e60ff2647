package daemon

import (
	"net"
	"strings"
	"testing"
)

// TestListenDNSPortTakenOverTCP: with port 0, a UDP port whose TCP twin is
// already taken costs a retry, not the daemon's start; with an explicit
// port, the error says which address and what to do.
func TestListenDNSPortTakenOverTCP(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	busy := taken.Addr().String()
	var calls int
	listenPacket := func(network, addr string) (net.PacketConn, error) {
		calls++
		if calls == 1 {
			// The system "picks" the port whose TCP side is taken.
			return net.ListenPacket(network, busy)
		}
		return net.ListenPacket(network, addr)
	}
	udp, tcp, err := listenDNS("127.0.0.1:0", listenPacket)
	if err != nil {
		t.Fatalf("listenDNS: %v", err)
	}
	defer udp.Close()
	defer tcp.Close()
	if calls != 2 {
		t.Errorf("%d UDP listens, want 2 (one retry)", calls)
	}
	if udp.LocalAddr().String() == busy || tcp.Addr().String() != udp.LocalAddr().String() {
		t.Errorf("UDP on %s and TCP on %s; want the same port, not %s", udp.LocalAddr(), tcp.Addr(), busy)
	}
	// The first try's UDP socket was given back.
	if c, err := net.ListenPacket("udp", busy); err != nil {
		t.Errorf("the abandoned UDP port %s is still held: %v", busy, err)
	} else {
		c.Close()
	}

	// An explicit port is the operator's choice: no retry, a clear error.
	_, _, err = listenDNS(busy, net.ListenPacket)
	if err == nil || !strings.Contains(err.Error(), "listen for DNS on tcp "+busy) || !strings.Contains(err.Error(), "--dns-listen") {
		t.Errorf("listenDNS on a taken port = %v; want an error naming tcp %s and --dns-listen", err, busy)
	}
}
