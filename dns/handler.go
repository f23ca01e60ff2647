package dns

import (
	"context"
	"net"
	"strings"

	mdns "github.com/miekg/dns"
)

// ServeDNS answers one query from a client in the allow list: intercepted
// names authoritatively with the advertised addresses, everything else from
// the cache or the upstreams. It never forwards a query for an intercepted
// name. Clients outside the allow list get REFUSED for every query.
func (s *Server) ServeDNS(w mdns.ResponseWriter, r *mdns.Msg) {
	s.serve(context.Background(), w, r)
}

func (s *Server) serve(ctx context.Context, w mdns.ResponseWriter, r *mdns.Msg) {
	s.queries.Add(1)
	if r == nil || r.Response {
		return // not a query: answering responses invites reflection loops
	}
	opt := r.IsEdns0()
	if !s.allow.contains(w.RemoteAddr()) {
		// Intercepted names are refused too: their answers would tell anyone
		// which backends the gateway fronts, and one rule ("outside the list,
		// nothing") is the one an operator can check.
		s.refused.Add(1)
		if !s.warnedRefused.Swap(true) {
			s.log.Warn("dns: refusing a client outside the allow list (logged once; see the refused counter); allow its network with --dns-allow", "client", w.RemoteAddr().String())
		}
		s.write(w, opt, errorReply(r, mdns.RcodeRefused)) // no RA: scanners must not list agw as a resolver
		return
	}
	if r.Opcode != mdns.OpcodeQuery {
		s.reply(w, r, opt, errorReply(r, mdns.RcodeNotImplemented))
		return
	}
	if len(r.Question) != 1 {
		s.reply(w, r, opt, errorReply(r, mdns.RcodeFormatError))
		return
	}
	if opt != nil && opt.Version() != 0 {
		m := errorReply(r, mdns.RcodeBadVers) // RFC 6891 6.1.3; WriteMsg puts the extended rcode into the OPT record
		s.reply(w, r, opt, m)
		return
	}

	q := r.Question[0]
	name := canonicalName(q.Name)
	if s.intercept.Intercepts(name) {
		s.intercepted.Add(1)
		s.reply(w, r, opt, s.answerIntercepted(r, q))
		return
	}
	switch q.Qtype {
	case mdns.TypeANY:
		s.reply(w, r, opt, s.answerANY(r, q, false))
		return
	case mdns.TypeAXFR, mdns.TypeIXFR:
		s.reply(w, r, opt, errorReply(r, mdns.RcodeRefused))
		return
	}
	if s.fwd == nil {
		s.reply(w, r, opt, errorReply(r, mdns.RcodeRefused))
		return
	}

	key := cacheKey{name: name, qtype: q.Qtype, qclass: q.Qclass, do: opt != nil && opt.Do(), cd: r.CheckingDisabled}
	resp, hit, err := s.fwd.resolve(ctx, key, r.RecursionDesired)
	if err != nil {
		s.failures.Add(1)
		s.log.Debug("dns: forward failed", "name", name, "type", mdns.TypeToString[q.Qtype], "err", err)
		s.reply(w, r, opt, errorReply(r, mdns.RcodeServerFailure))
		return
	}
	s.forwarded.Add(1)
	if hit {
		s.cacheHits.Add(1)
	}
	// resp is our own copy: make it a reply to r, echoing the question as asked.
	resp.Id = r.Id
	resp.Response = true
	resp.Opcode = mdns.OpcodeQuery
	resp.RecursionDesired = r.RecursionDesired
	resp.CheckingDisabled = r.CheckingDisabled
	resp.Question = r.Question
	resp.Extra = stripOPT(resp.Extra)
	s.reply(w, r, opt, resp)
}

// answerIntercepted builds the authoritative answer for an intercepted name:
// the advertised addresses for A and AAAA, NODATA for every other type, and
// never anything learnt from upstream.
func (s *Server) answerIntercepted(r *mdns.Msg, q mdns.Question) *mdns.Msg {
	if q.Qclass != mdns.ClassINET {
		return errorReply(r, mdns.RcodeRefused)
	}
	if q.Qtype == mdns.TypeANY {
		return s.answerANY(r, q, true)
	}
	m := newReply(r)
	m.Authoritative = true
	hdr := mdns.RR_Header{Name: q.Name, Rrtype: q.Qtype, Class: mdns.ClassINET, Ttl: s.ttl}
	switch q.Qtype {
	case mdns.TypeA:
		if adv := s.adv.Load(); len(adv.v4) > 0 {
			rrs := make([]mdns.A, len(adv.v4))
			m.Answer = make([]mdns.RR, len(adv.v4))
			for i, ip := range adv.v4 {
				rrs[i] = mdns.A{Hdr: hdr, A: ip}
				m.Answer[i] = &rrs[i]
			}
		}
	case mdns.TypeAAAA:
		if adv := s.adv.Load(); len(adv.v6) > 0 {
			rrs := make([]mdns.AAAA, len(adv.v6))
			m.Answer = make([]mdns.RR, len(adv.v6))
			for i, ip := range adv.v6 {
				rrs[i] = mdns.AAAA{Hdr: hdr, AAAA: ip}
				m.Answer[i] = &rrs[i]
			}
		}
	}
	return m
}

// answerANY gives the minimal RFC 8482 answer: a single synthesised HINFO.
func (s *Server) answerANY(r *mdns.Msg, q mdns.Question, authoritative bool) *mdns.Msg {
	m := newReply(r)
	m.Authoritative = authoritative
	m.Answer = []mdns.RR{&mdns.HINFO{
		Hdr: mdns.RR_Header{Name: q.Name, Rrtype: mdns.TypeHINFO, Class: q.Qclass, Ttl: s.ttl},
		Cpu: "RFC8482",
	}}
	return m
}

// reply sizes m for the client's transport and writes it. Queries with EDNS0
// get an OPT record back; UDP replies are truncated (TC set, so the client
// retries over TCP) to the client's buffer size, 512 bytes without EDNS0,
// and never more than ourUDPSize whatever the client claims: a spoofed
// source then gets at most 1232 bytes for a query.
func (s *Server) reply(w mdns.ResponseWriter, r *mdns.Msg, opt *mdns.OPT, m *mdns.Msg) {
	if s.fwd != nil {
		m.RecursionAvailable = true
	}
	s.write(w, opt, m)
}

// write sizes m as reply describes and sends it.
func (s *Server) write(w mdns.ResponseWriter, opt *mdns.OPT, m *mdns.Msg) {
	size := mdns.MinMsgSize
	if opt != nil {
		m.SetEdns0(ourUDPSize, opt.Do()) // WriteMsg moves extended rcodes (BADVERS) into it
		if us := int(opt.UDPSize()); us > size {
			size = min(us, ourUDPSize)
		}
	}
	if isTCP(w) {
		size = mdns.MaxMsgSize
	}
	m.Truncate(size)
	if err := w.WriteMsg(m); err != nil {
		s.log.Debug("dns: write reply", "err", err)
	}
}

func isTCP(w mdns.ResponseWriter) bool {
	_, ok := w.RemoteAddr().(*net.TCPAddr)
	return ok
}

// newReply starts a NOERROR reply to r that echoes its question as asked
// (so a 0x20-randomised name comes back in the caller's case).
func newReply(r *mdns.Msg) *mdns.Msg {
	m := &mdns.Msg{Question: r.Question}
	m.Id = r.Id
	m.Response = true
	m.Opcode = r.Opcode
	m.RecursionDesired = r.RecursionDesired
	m.CheckingDisabled = r.CheckingDisabled
	return m
}

func errorReply(r *mdns.Msg, rcode int) *mdns.Msg {
	m := newReply(r)
	m.Rcode = rcode
	if len(r.Question) > 1 {
		m.Question = nil
	}
	return m
}

// canonicalName lower-cases name and drops the root dot; it allocates only
// when name has upper-case letters.
func canonicalName(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

func stripOPT(rrs []mdns.RR) []mdns.RR {
	out := rrs[:0]
	for _, rr := range rrs {
		if rr.Header().Rrtype != mdns.TypeOPT {
			out = append(out, rr)
		}
	}
	return out
}
