package dns

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

func TestResolverLookupNetIP(t *testing.T) {
	up := startUpstream(t)
	closed, _ := deadUpstreams(t)
	r := NewResolver([]string{up.addr}, addrs("10.0.0.5", "2001:db8::5"), time.Second)
	tests := []struct {
		name    string
		r       *Resolver
		host    string
		want    []netip.Addr
		wantErr error
	}{
		{name: "A and AAAA are merged, IPv4 first", host: "example.org", want: addrs("93.184.216.34", "2606:2800:220:1::1")},
		{name: "trailing dot and case do not matter", host: "Example.ORG.", want: addrs("93.184.216.34", "2606:2800:220:1::1")},
		{name: "CNAME chain is followed and strays ignored", host: "www.example.org", want: addrs("93.184.216.34")},
		{name: "NODATA for one family", host: "v4only.example.org", want: addrs("192.0.2.7")},
		{name: "intercepted host resolves to its real address", host: "api.openai.com", want: addrs("162.159.140.245")},
		{name: "IPv4 literal is returned as is", host: "192.0.2.1", want: addrs("192.0.2.1")},
		{name: "bracketed IPv6 literal is returned as is", host: "[2001:db8::1]", want: addrs("2001:db8::1")},
		{name: "NXDOMAIN", host: "nope.example.org", wantErr: ErrNXDomain},
		{name: "answer pointing at the gateway is a loop", host: "loop.example.org", wantErr: ErrLoopback},
		{name: "SERVFAIL", host: "fail.example.org", wantErr: ErrNoUpstream},
		{name: "upstream down", r: NewResolver([]string{closed}, nil, time.Second), host: "example.org", wantErr: ErrNoUpstream},
		{name: "no upstream", r: NewResolver(nil, nil, time.Second), host: "example.org", wantErr: ErrNoUpstream},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := tt.r
			if res == nil {
				res = r
			}
			got, err := res.LookupNetIP(context.Background(), tt.host)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestResolverLoopbackMessage(t *testing.T) {
	up := startUpstream(t)
	r := NewResolver([]string{up.addr}, addrs("10.0.0.5"), time.Second)
	_, err := r.LookupNetIP(context.Background(), "loop.example.org")
	if err == nil || !errors.Is(err, ErrLoopback) || ErrLoopback.Error() != "resolution loops back to the gateway" {
		t.Fatalf("err = %v", err)
	}
}

func TestResolverCacheHonoursTTL(t *testing.T) {
	up := startUpstream(t)
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	r := NewResolver([]string{up.addr}, nil, time.Second)
	r.fwd.cache.now = clock.Now
	steps := []struct {
		name    string
		advance time.Duration
		asked   int // upstream A questions so far
	}{
		{name: "first lookup asks", asked: 1},
		{name: "within TTL is cached", advance: 299 * time.Second, asked: 1},
		{name: "after TTL asks again", advance: time.Second, asked: 2},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			clock.Advance(st.advance)
			if _, err := r.LookupNetIP(context.Background(), "example.org"); err != nil {
				t.Fatal(err)
			}
			if got := up.count("example.org.", mdns.TypeA); got != st.asked {
				t.Errorf("upstream asked %d times, want %d", got, st.asked)
			}
		})
	}
}

func TestResolverDialContext(t *testing.T) {
	up := startUpstream(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	r := NewResolver([]string{up.addr}, addrs("10.0.0.5"), time.Second)
	tests := []struct {
		name    string
		addr    string
		wantErr error
	}{
		{name: "literal address dials", addr: net.JoinHostPort("127.0.0.1", port)},
		{name: "loop is refused before dialing", addr: net.JoinHostPort("loop.example.org", port), wantErr: ErrLoopback},
		{name: "unknown host", addr: net.JoinHostPort("nope.example.org", port), wantErr: ErrNXDomain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := r.DialContext(context.Background(), "tcp", tt.addr)
			if c != nil {
				c.Close()
			}
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestSystemResolvers(t *testing.T) {
	tests := []struct {
		name    string
		conf    string
		want    []string
		wantErr bool
	}{
		{name: "IPv4 and IPv6", conf: "# generated\nsearch corp.net\nnameserver 192.0.2.53\nnameserver 2001:db8::53\noptions edns0\n",
			want: []string{"192.0.2.53:53", "[2001:db8::53]:53"}},
		{name: "zone kept, garbage skipped", conf: "nameserver fe80::1%eth0\nnameserver not-an-ip\n; nameserver 192.0.2.9\n",
			want: []string{"[fe80::1%eth0]:53"}},
		{name: "no nameserver", conf: "search corp.net\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "resolv.conf")
			if err := os.WriteFile(path, []byte(tt.conf), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := SystemResolvers(path)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			for _, u := range got {
				if _, err := netip.ParseAddrPort(u); err != nil {
					t.Errorf("%q is not usable as an upstream: %v", u, err)
				}
			}
		})
	}
	if _, err := SystemResolvers(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing file: want error")
	}
}
