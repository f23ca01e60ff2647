// Command benchserver answers "api.openai.com A" on a 127.0.0.1 UDP port so
// that dns/bench/dnsperf.sh can compare agw's handler (--mode agw) with a
// bare miekg server giving the same answer (--mode bare).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	"github.com/agw-dev/agw/dns"
	mdns "github.com/miekg/dns"
)

func main() {
	mode := flag.String("mode", "agw", "agw: dns.Server with a static interceptor; bare: plain miekg handler")
	port := flag.Int("port", 8053, "UDP port on 127.0.0.1")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		log.Fatal(err)
	}
	gw := netip.MustParseAddr("10.0.0.5")

	switch *mode {
	case "agw":
		hosts, err := dns.NewHostSet("api.openai.com")
		if err != nil {
			log.Fatal(err)
		}
		s, err := dns.New(dns.Config{Intercept: hosts, Advertise: []netip.Addr{gw}})
		if err != nil {
			log.Fatal(err)
		}
		if err := s.Serve(ctx, pc, nil); err != nil {
			log.Fatal(err)
		}
	case "bare":
		rr := &mdns.A{Hdr: mdns.RR_Header{Name: "api.openai.com.", Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 30}, A: gw.AsSlice()}
		h := mdns.HandlerFunc(func(w mdns.ResponseWriter, r *mdns.Msg) {
			m := new(mdns.Msg)
			m.SetReply(r)
			m.Authoritative = true
			if len(r.Question) == 1 && r.Question[0].Qtype == mdns.TypeA {
				m.Answer = []mdns.RR{rr}
			}
			w.WriteMsg(m)
		})
		srv := &mdns.Server{PacketConn: pc, Handler: h}
		go func() {
			<-ctx.Done()
			srv.Shutdown()
		}()
		if err := srv.ActivateAndServe(); err != nil && ctx.Err() == nil {
			log.Fatal(err)
		}
	default:
		log.Fatalf("unknown --mode %q: use agw or bare", *mode)
	}
}
