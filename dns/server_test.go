package dns

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// TestServe runs the server on real 127.0.0.1 sockets, as the gateway does.
func TestServe(t *testing.T) {
	up := startUpstream(t)
	s := newTestServer(t, Config{Upstreams: []string{up.addr}})
	pc, ln := listenPair(t)
	addr := pc.LocalAddr().String()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, pc, ln) }()

	tests := []struct {
		name    string
		net     string
		q       *mdns.Msg
		answers int
		tc      bool
	}{
		{name: "UDP intercepted", net: "udp", q: query("api.openai.com.", mdns.TypeA), answers: 2},
		{name: "TCP intercepted", net: "tcp", q: query("api.openai.com.", mdns.TypeAAAA), answers: 1},
		{name: "UDP forwarded", net: "udp", q: query("example.org.", mdns.TypeA), answers: 1},
		{name: "UDP reply is capped at 1232 bytes whatever buffer the client claims", net: "udp", q: withEDNS(query("tc.example.org.", mdns.TypeTXT), 65535), tc: true},
		{name: "TCP retry after TC carries the answer agw fetched over TCP", net: "tcp", q: withEDNS(query("tc.example.org.", mdns.TypeTXT), 65535), answers: 40},
		{name: "UDP without EDNS0 is truncated for the client", net: "udp", q: query("big.example.org.", mdns.TypeTXT), tc: true},
		{name: "TCP carries the whole answer", net: "tcp", q: query("big.example.org.", mdns.TypeTXT), answers: 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &mdns.Client{Net: tt.net, Timeout: 5 * time.Second}
			m, _, err := c.Exchange(tt.q, addr)
			if err != nil {
				t.Fatal(err)
			}
			if m.Truncated != tt.tc {
				t.Errorf("truncated %v, want %v", m.Truncated, tt.tc)
			}
			if !tt.tc && len(m.Answer) != tt.answers {
				t.Errorf("%d answers, want %d", len(m.Answer), tt.answers)
			}
		})
	}
	if n := up.count("tc.example.org.", mdns.TypeTXT); n != 2 {
		t.Errorf("upstream asked tc.example.org %d times, want 2 (UDP then TCP, then the cache)", n)
	}

	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve after cancel = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("TCP listener still open after Serve returned")
	}
}

func TestServeArguments(t *testing.T) {
	s := newTestServer(t, Config{})
	tests := []struct {
		name string
		run  func() error
		want bool // an error is expected
	}{
		{name: "no listener", run: func() error { return s.Serve(context.Background(), nil, nil) }, want: true},
		{name: "closed listener", run: func() error {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			ln.Close()
			return s.Serve(context.Background(), nil, ln)
		}, want: true},
		{name: "UDP only, cancelled", run: func() error {
			pc, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return s.Serve(ctx, pc, nil)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if (err != nil) != tt.want {
				t.Errorf("err = %v, want error %v", err, tt.want)
			}
			if err != nil && errors.Is(err, context.Canceled) {
				t.Errorf("err = %v: cancellation must return nil", err)
			}
		})
	}
}
