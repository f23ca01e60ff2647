package dns

import (
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

func query(name string, qtype uint16) *mdns.Msg {
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

func withEDNS(m *mdns.Msg, size uint16) *mdns.Msg {
	m.SetEdns0(size, false)
	return m
}

func newTestServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.Intercept == nil {
		cfg.Intercept = mustHostSet(t, "api.openai.com", "*.crm.example.com")
	}
	if cfg.Advertise == nil {
		cfg.Advertise = addrs("10.0.0.5", "10.0.0.6", "2001:db8::5")
	}
	if cfg.TTL == 0 {
		cfg.TTL = 45
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// answers renders a section as "name TTL TYPE data" strings.
func answers(rrs []mdns.RR) []string {
	var out []string
	for _, rr := range rrs {
		out = append(out, strings.Join(strings.Fields(rr.String()), " "))
	}
	return out
}

func TestServeDNS(t *testing.T) {
	up := startUpstream(t)
	full := newTestServer(t, Config{Upstreams: []string{up.addr}})
	v4only := newTestServer(t, Config{Upstreams: []string{up.addr}, Advertise: addrs("10.0.0.5")})

	tests := []struct {
		name      string
		srv       *Server
		q         *mdns.Msg
		tcp       bool
		rcode     int
		aa        bool
		answer    []string // nil: not checked; empty: must be empty
		upstream  bool     // the upstream must have been asked the question
		tc        bool
		opt       bool // reply carries an OPT record
		maxSize   int  // reply must fit, when set
		question  string
		checkFunc func(t *testing.T, m *mdns.Msg)
	}{
		{name: "intercepted A gives every IPv4 advertise address", q: query("api.openai.com.", mdns.TypeA),
			aa: true, answer: []string{"api.openai.com. 45 IN A 10.0.0.5", "api.openai.com. 45 IN A 10.0.0.6"}},
		{name: "intercepted AAAA gives the IPv6 advertise address", q: query("api.openai.com.", mdns.TypeAAAA),
			aa: true, answer: []string{"api.openai.com. 45 IN AAAA 2001:db8::5"}},
		{name: "intercepted AAAA without IPv6 address is NODATA, not the real AAAA", srv: v4only, q: query("api.openai.com.", mdns.TypeAAAA),
			aa: true, answer: []string{}},
		{name: "intercepted HTTPS is NODATA", q: query("api.openai.com.", mdns.TypeHTTPS), aa: true, answer: []string{}},
		{name: "intercepted SVCB is NODATA", q: query("api.openai.com.", mdns.TypeSVCB), aa: true, answer: []string{}},
		{name: "intercepted MX is NODATA", q: query("api.openai.com.", mdns.TypeMX), aa: true, answer: []string{}},
		{name: "intercepted TXT is NODATA", q: query("api.openai.com.", mdns.TypeTXT), aa: true, answer: []string{}},
		{name: "intercepted CNAME is NODATA", q: query("api.openai.com.", mdns.TypeCNAME), aa: true, answer: []string{}},
		{name: "intercepted NS is NODATA", q: query("api.openai.com.", mdns.TypeNS), aa: true, answer: []string{}},
		{name: "0x20 case matches and the question is echoed as asked", q: query("aPi.OpenAI.cOm.", mdns.TypeA),
			aa: true, question: "aPi.OpenAI.cOm.", answer: []string{"aPi.OpenAI.cOm. 45 IN A 10.0.0.5", "aPi.OpenAI.cOm. 45 IN A 10.0.0.6"}},
		{name: "wildcard matches one extra label", q: query("eu.crm.example.com.", mdns.TypeA),
			aa: true, answer: []string{"eu.crm.example.com. 45 IN A 10.0.0.5", "eu.crm.example.com. 45 IN A 10.0.0.6"}},
		{name: "wildcard does not match two extra labels", q: query("a.b.crm.example.com.", mdns.TypeA),
			rcode: mdns.RcodeNameError, upstream: true},
		{name: "wildcard does not match its base", q: query("crm.example.com.", mdns.TypeA),
			rcode: mdns.RcodeNameError, upstream: true},
		{name: "ANY on intercepted name is the RFC 8482 HINFO", q: query("api.openai.com.", mdns.TypeANY),
			aa: true, answer: []string{`api.openai.com. 45 IN HINFO "RFC8482" ""`}},
		{name: "ANY on other name is the RFC 8482 HINFO, not forwarded", q: query("example.org.", mdns.TypeANY),
			answer: []string{`example.org. 45 IN HINFO "RFC8482" ""`}},
		{name: "other name is forwarded", q: query("example.org.", mdns.TypeA),
			upstream: true, answer: []string{"example.org. 300 IN A 93.184.216.34"}},
		{name: "NXDOMAIN is passed through", q: query("nope.example.org.", mdns.TypeA),
			rcode: mdns.RcodeNameError, upstream: true, answer: []string{}},
		{name: "SERVFAIL is passed through", q: query("fail.example.org.", mdns.TypeA),
			rcode: mdns.RcodeServerFailure, upstream: true},
		{name: "truncated upstream answer is fetched over TCP", q: withEDNS(query("tc.example.org.", mdns.TypeTXT), 4096), tcp: true,
			upstream: true, opt: true, checkFunc: func(t *testing.T, m *mdns.Msg) {
				if len(m.Answer) != 40 {
					t.Errorf("got %d TXT records, want 40", len(m.Answer))
				}
			}},
		{name: "UDP reply is capped at 1232 bytes even for a 4096-byte buffer", q: withEDNS(query("tc.example.org.", mdns.TypeTXT), 4096),
			tc: true, opt: true, maxSize: 1232, checkFunc: func(t *testing.T, m *mdns.Msg) {
				if len(m.Answer) == 0 || len(m.Answer) >= 40 {
					t.Errorf("got %d TXT records, want some but not all 40", len(m.Answer))
				}
			}},
		{name: "UDP reply is capped at 1232 bytes for a 65535-byte buffer", q: withEDNS(query("tc.example.org.", mdns.TypeTXT), 65535),
			tc: true, opt: true, maxSize: 1232},
		{name: "EDNS0 query gets an OPT record", q: withEDNS(query("api.openai.com.", mdns.TypeA), 1232), aa: true, opt: true},
		{name: "query without EDNS0 gets at most 512 bytes", q: query("big.example.org.", mdns.TypeTXT),
			upstream: true, tc: true, maxSize: 512},
		{name: "EDNS0 buffer size is honoured", q: withEDNS(query("big.example.org.", mdns.TypeTXT), 1000),
			tc: true, opt: true, maxSize: 1000},
		{name: "TCP reply is not truncated", q: query("big.example.org.", mdns.TypeTXT), tcp: true,
			checkFunc: func(t *testing.T, m *mdns.Msg) {
				if len(m.Answer) != 40 {
					t.Errorf("got %d TXT records, want 40", len(m.Answer))
				}
			}},
		{name: "no question is FORMERR", q: &mdns.Msg{MsgHdr: mdns.MsgHdr{Id: 7}}, rcode: mdns.RcodeFormatError},
		{name: "two questions is FORMERR", q: func() *mdns.Msg {
			m := query("api.openai.com.", mdns.TypeA)
			m.Question = append(m.Question, m.Question[0])
			return m
		}(), rcode: mdns.RcodeFormatError},
		{name: "UPDATE opcode is NOTIMP", q: func() *mdns.Msg {
			m := query("api.openai.com.", mdns.TypeA)
			m.Opcode = mdns.OpcodeUpdate
			return m
		}(), rcode: mdns.RcodeNotImplemented},
		{name: "CHAOS class on intercepted name is REFUSED", q: func() *mdns.Msg {
			m := query("api.openai.com.", mdns.TypeA)
			m.Question[0].Qclass = mdns.ClassCHAOS
			return m
		}(), rcode: mdns.RcodeRefused},
		{name: "EDNS version 1 is BADVERS", q: func() *mdns.Msg {
			m := withEDNS(query("example.org.", mdns.TypeA), 1232)
			m.IsEdns0().SetVersion(1)
			return m
		}(), rcode: mdns.RcodeBadVers, opt: true},
		{name: "AXFR is REFUSED", q: query("example.org.", mdns.TypeAXFR), rcode: mdns.RcodeRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := tt.srv
			if srv == nil {
				srv = full
			}
			before := 0
			if len(tt.q.Question) == 1 {
				before = up.count(tt.q.Question[0].Name, tt.q.Question[0].Qtype)
			}
			tt.q.Id = 4242
			w := &recorder{tcp: tt.tcp}
			srv.ServeDNS(w, tt.q)
			m := w.msg
			if m == nil {
				t.Fatal("no reply written")
			}
			if m.Id != tt.q.Id || !m.Response {
				t.Errorf("reply id %d response %v, want id %d response true", m.Id, m.Response, tt.q.Id)
			}
			if m.Rcode != tt.rcode {
				t.Errorf("rcode %s, want %s", mdns.RcodeToString[m.Rcode], mdns.RcodeToString[tt.rcode])
			}
			if m.Authoritative != tt.aa {
				t.Errorf("authoritative %v, want %v", m.Authoritative, tt.aa)
			}
			if tt.answer != nil && !slices.Equal(answers(m.Answer), tt.answer) {
				t.Errorf("answer\n got %q\nwant %q", answers(m.Answer), tt.answer)
			}
			if m.Truncated != tt.tc {
				t.Errorf("truncated %v, want %v", m.Truncated, tt.tc)
			}
			if (m.IsEdns0() != nil) != tt.opt {
				t.Errorf("OPT present %v, want %v", m.IsEdns0() != nil, tt.opt)
			}
			if tt.maxSize > 0 && w.size > tt.maxSize {
				t.Errorf("reply is %d bytes, want at most %d", w.size, tt.maxSize)
			}
			if tt.question != "" && (len(m.Question) != 1 || m.Question[0].Name != tt.question) {
				t.Errorf("question %v, want %q", m.Question, tt.question)
			}
			if len(tt.q.Question) == 1 {
				asked := up.count(tt.q.Question[0].Name, tt.q.Question[0].Qtype) > before
				if tt.upstream && !asked {
					t.Error("upstream was not asked")
				}
				if !tt.upstream && asked {
					t.Error("upstream was asked")
				}
			}
			if tt.checkFunc != nil {
				tt.checkFunc(t, m)
			}
		})
	}
	if n := up.count("api.openai.com.", mdns.TypeA) + up.count("api.openai.com.", mdns.TypeAAAA) + up.count("api.openai.com.", mdns.TypeHTTPS); n != 0 {
		t.Errorf("intercepted name was forwarded %d times", n)
	}
}

func TestServeDNSCache(t *testing.T) {
	up := startUpstream(t)
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	s := newTestServer(t, Config{Upstreams: []string{up.addr}})
	s.fwd.cache.now = clock.Now

	tests := []struct {
		name     string
		q        string
		qtype    uint16
		advance  time.Duration
		upstream int // upstream questions for q after this step
		ttl      uint32
		rcode    int
	}{
		{name: "first query goes upstream", q: "example.org.", qtype: mdns.TypeA, upstream: 1, ttl: 300},
		{name: "second query is a cache hit", q: "example.org.", qtype: mdns.TypeA, upstream: 1, ttl: 300},
		{name: "cached TTL counts down", q: "example.org.", qtype: mdns.TypeA, advance: 100 * time.Second, upstream: 1, ttl: 200},
		{name: "case differences share the entry", q: "EXAMPLE.org.", qtype: mdns.TypeA, upstream: 1, ttl: 200},
		{name: "expired entry goes upstream again", q: "example.org.", qtype: mdns.TypeA, advance: 200 * time.Second, upstream: 2, ttl: 300},
		{name: "NXDOMAIN goes upstream", q: "gone.example.org.", qtype: mdns.TypeA, upstream: 1, rcode: mdns.RcodeNameError},
		{name: "NXDOMAIN is cached by the SOA minimum", q: "gone.example.org.", qtype: mdns.TypeA, advance: 59 * time.Second, upstream: 1, rcode: mdns.RcodeNameError},
		{name: "negative entry expires", q: "gone.example.org.", qtype: mdns.TypeA, advance: time.Second, upstream: 2, rcode: mdns.RcodeNameError},
		{name: "SERVFAIL is not cached", q: "fail.example.org.", qtype: mdns.TypeA, upstream: 1, rcode: mdns.RcodeServerFailure},
		{name: "SERVFAIL asks again", q: "fail.example.org.", qtype: mdns.TypeA, upstream: 2, rcode: mdns.RcodeServerFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock.Advance(tt.advance)
			w := &recorder{}
			s.ServeDNS(w, query(tt.q, tt.qtype))
			if w.msg.Rcode != tt.rcode {
				t.Fatalf("rcode %s, want %s", mdns.RcodeToString[w.msg.Rcode], mdns.RcodeToString[tt.rcode])
			}
			if got := up.count(tt.q, tt.qtype); got != tt.upstream {
				t.Errorf("upstream asked %d times, want %d", got, tt.upstream)
			}
			if w.msg.Question[0].Name != tt.q {
				t.Errorf("question %q, want %q as asked", w.msg.Question[0].Name, tt.q)
			}
			if tt.ttl != 0 && (len(w.msg.Answer) != 1 || w.msg.Answer[0].Header().Ttl != tt.ttl) {
				t.Errorf("answer %v, want one record with TTL %d", w.msg.Answer, tt.ttl)
			}
		})
	}
	st := s.Stats()
	want := Stats{Queries: 10, Forwarded: 10, CacheHits: 4}
	if st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
}

func TestServeDNSUpstreamDown(t *testing.T) {
	closed, blackhole := deadUpstreams(t)
	const timeout = 300 * time.Millisecond
	tests := []struct {
		name      string
		upstreams []string
		q         *mdns.Msg
		rcode     int
		answers   int
	}{
		{name: "refused port gives SERVFAIL", upstreams: []string{closed}, q: query("example.org.", mdns.TypeA), rcode: mdns.RcodeServerFailure},
		{name: "silent upstream gives SERVFAIL after the timeout", upstreams: []string{blackhole}, q: query("example.org.", mdns.TypeA), rcode: mdns.RcodeServerFailure},
		{name: "intercepted name is still answered", upstreams: []string{blackhole}, q: query("api.openai.com.", mdns.TypeA), answers: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t, Config{Upstreams: tt.upstreams, Timeout: timeout})
			w := &recorder{}
			done := make(chan struct{})
			go func() {
				s.ServeDNS(w, tt.q)
				close(done)
			}()
			select {
			case <-done:
			case <-time.After(10 * timeout):
				t.Fatal("no answer long after the upstream timeout")
			}
			if w.msg.Rcode != tt.rcode || len(w.msg.Answer) != tt.answers {
				t.Errorf("rcode %s with %d answers, want %s with %d", mdns.RcodeToString[w.msg.Rcode], len(w.msg.Answer), mdns.RcodeToString[tt.rcode], tt.answers)
			}
			if tt.rcode == mdns.RcodeServerFailure && s.Stats().Failures != 1 {
				t.Errorf("failures = %d, want 1", s.Stats().Failures)
			}
		})
	}
}

func TestServeDNSUpstreamOrder(t *testing.T) {
	up := startUpstream(t)
	closed, _ := deadUpstreams(t)
	s := newTestServer(t, Config{Upstreams: []string{closed, up.addr}})
	w := &recorder{}
	s.ServeDNS(w, query("example.org.", mdns.TypeA))
	if w.msg.Rcode != mdns.RcodeSuccess || len(w.msg.Answer) != 1 {
		t.Fatalf("got %v, want the answer of the second upstream", w.msg)
	}
}

func TestServeDNSInterceptorChangesAtOnce(t *testing.T) {
	up := startUpstream(t)
	hosts := &switchableHosts{}
	s := newTestServer(t, Config{Intercept: hosts, Upstreams: []string{up.addr}})
	steps := []struct {
		name      string
		intercept bool
		want      string
	}{
		{name: "not registered resolves upstream", want: "162.159.140.245"},
		{name: "registered answers the gateway", intercept: true, want: "10.0.0.5"},
		{name: "removed resolves upstream again", want: "162.159.140.245"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			hosts.on.Store(st.intercept)
			w := &recorder{}
			s.ServeDNS(w, query("api.openai.com.", mdns.TypeA))
			if len(w.msg.Answer) == 0 || w.msg.Answer[0].(*mdns.A).A.String() != st.want {
				t.Errorf("answer %v, want %s first", w.msg.Answer, st.want)
			}
		})
	}
}

type switchableHosts struct{ on atomic.Bool }

func (h *switchableHosts) Intercepts(name string) bool {
	return h.on.Load() && name == "api.openai.com"
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "no interceptor", cfg: Config{}, wantErr: "no Intercept"},
		{name: "upstream without port", cfg: Config{Intercept: &HostSet{}, Upstreams: []string{"192.0.2.1"}}, wantErr: "not ip:port"},
		{name: "upstream is the gateway itself", cfg: Config{Intercept: &HostSet{}, Advertise: addrs("10.0.0.5"), Upstreams: []string{"10.0.0.5:53"}}, wantErr: "loop"},
		{name: "IPv6 upstream", cfg: Config{Intercept: &HostSet{}, Upstreams: []string{"[2001:db8::53]:53"}}},
		{name: "no upstream is allowed", cfg: Config{Intercept: &HostSet{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("New: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("New: %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestServeDNSNoUpstreamRefusesOthers(t *testing.T) {
	s := newTestServer(t, Config{})
	w := &recorder{}
	s.ServeDNS(w, query("example.org.", mdns.TypeA))
	if w.msg.Rcode != mdns.RcodeRefused {
		t.Errorf("rcode %s, want REFUSED", mdns.RcodeToString[w.msg.Rcode])
	}
}

// After a silent upstream timed out once, lookups go to the one that
// answered first, so a dead resolver costs one timeout rather than one per
// uncached name.
func TestServeDNSPrefersTheUpstreamThatAnswered(t *testing.T) {
	up := startUpstream(t)
	hole, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	var silentAsked atomic.Int32
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := hole.ReadFrom(buf); err != nil {
				return
			}
			silentAsked.Add(1)
		}
	}()
	s := newTestServer(t, Config{Upstreams: []string{hole.LocalAddr().String(), up.addr}, Timeout: 200 * time.Millisecond})
	for i, name := range []string{"a.example.org.", "b.example.org.", "c.example.org."} {
		w := &recorder{}
		s.ServeDNS(w, query(name, mdns.TypeA))
		if w.msg.Rcode != mdns.RcodeNameError || len(w.msg.Ns) != 1 {
			t.Fatalf("%s: got %v, want the answering upstream's NXDOMAIN", name, w.msg)
		}
		if got := silentAsked.Load(); got != 1 {
			t.Fatalf("after %d lookups the silent upstream was asked %d times, want once", i+1, got)
		}
	}
}
