package dns

import (
	"testing"

	mdns "github.com/miekg/dns"
)

// FuzzServeDNS feeds raw packets through Unpack and the handler: whatever
// unpacks must get a reply that packs, and nothing may panic. Upstreams are
// absent so the fuzzer stays off the network; forwarding answers REFUSED.
func FuzzServeDNS(f *testing.F) {
	seeds := []*mdns.Msg{
		query("api.openai.com.", mdns.TypeA),
		query("aPi.OpenAI.cOm.", mdns.TypeAAAA),
		query("eu.crm.example.com.", mdns.TypeHTTPS),
		query("api.openai.com.", mdns.TypeANY),
		withEDNS(query("example.org.", mdns.TypeTXT), 4096),
		{MsgHdr: mdns.MsgHdr{Id: 1}},
	}
	for _, m := range seeds {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	s, err := New(Config{
		Intercept: mustHostSet(f, "api.openai.com", "*.crm.example.com"),
		Advertise: addrs("10.0.0.5", "2001:db8::5"),
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := new(mdns.Msg)
		if err := r.Unpack(b); err != nil {
			return
		}
		for _, tcp := range []bool{false, true} {
			w := &recorder{tcp: tcp}
			s.ServeDNS(w, r)
			if r.Response {
				continue // responses are ignored
			}
			if w.msg == nil {
				t.Fatalf("no reply (or unpackable reply) to %v", r)
			}
			if w.msg.Id != r.Id {
				t.Fatalf("reply id %d, want %d", w.msg.Id, r.Id)
			}
			if !tcp && r.IsEdns0() == nil && w.size > mdns.MinMsgSize {
				t.Fatalf("UDP reply of %d bytes to a query without EDNS0", w.size)
			}
		}
	})
}
