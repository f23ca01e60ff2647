package dns

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// The real addresses of the intercepted test hosts, as an upstream would
// give them. Any of them reaching a client is a way around the gateway.
var realBackendAddrs = []string{"203.0.113.10", "2001:db8:bad::10"}

// realUpstream is a recursive resolver on 127.0.0.1 that knows the real
// records (A, AAAA, HTTPS and SVCB with address hints) of every name, and
// counts what it was asked.
type realUpstream struct {
	addr  netip.AddrPort
	mu    sync.Mutex
	asked map[string]int // lower-case name without the dot → questions
}

func (u *realUpstream) count(name string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.asked[name]
}

func startRealUpstream(t *testing.T) *realUpstream {
	t.Helper()
	u := &realUpstream{asked: map[string]int{}}
	h := mdns.HandlerFunc(func(w mdns.ResponseWriter, r *mdns.Msg) {
		m := new(mdns.Msg)
		m.SetReply(r)
		m.RecursionAvailable = true
		q := r.Question[0]
		u.mu.Lock()
		u.asked[canonicalName(q.Name)]++
		u.mu.Unlock()
		hints := "alpn=h2 ipv4hint=" + realBackendAddrs[0] + " ipv6hint=" + realBackendAddrs[1]
		switch q.Qtype {
		case mdns.TypeA:
			m.Answer = []mdns.RR{mustRR(q.Name + " 300 IN A " + realBackendAddrs[0])}
		case mdns.TypeAAAA:
			m.Answer = []mdns.RR{mustRR(q.Name + " 300 IN AAAA " + realBackendAddrs[1])}
		case mdns.TypeHTTPS:
			m.Answer = []mdns.RR{mustRR(q.Name + " 300 IN HTTPS 1 . " + hints)}
		case mdns.TypeSVCB:
			m.Answer = []mdns.RR{mustRR(q.Name + " 300 IN SVCB 1 . " + hints)}
		default:
			m.Ns = []mdns.RR{mustRR(". 300 IN SOA a.root. b.root. 1 7200 3600 1209600 60")}
		}
		if opt := r.IsEdns0(); opt != nil {
			m.SetEdns0(ourUDPSize, false)
		}
		w.WriteMsg(m)
	})
	pc, ln := listenPair(t)
	u.addr = netip.MustParseAddrPort(pc.LocalAddr().String())
	serveMiekg(t, &mdns.Server{PacketConn: pc, Handler: h})
	serveMiekg(t, &mdns.Server{Listener: ln, Handler: h})
	return u
}

// resolverBinary finds a resolver's program, skipping the test (failing it
// under AGW_E2E_REQUIRE=1) when the machine does not have it.
func resolverBinary(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if p := filepath.Join("/usr/sbin", name); fileExists(p) {
			return p
		}
		if os.Getenv("AGW_E2E_REQUIRE") == "1" {
			t.Fatalf("%s is not installed (AGW_E2E_REQUIRE=1; apt-get install -y %s)", name, pkg)
		}
		t.Skipf("%s is not installed: apt-get install -y %s to load the export into it", name, pkg)
	}
	return path
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// freePort returns a port free on 127.0.0.1 for both UDP and TCP.
func freePort(t *testing.T) int {
	t.Helper()
	pc, ln := listenPair(t)
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	ln.Close()
	return port
}

// resolverCase is one Debian-packaged resolver: how to configure it on a
// loopback port with its own directory, forwarding to the test upstream,
// with agw's export loaded.
type resolverCase struct {
	format string // export format loaded
	binary string
	pkg    string // Debian package providing binary
	// addressesOnly: the format can hold addresses and nothing else (a
	// hosts file), so only A, and AAAA when agw has an IPv6 address, are
	// promised; the export's header says so.
	addressesOnly bool
	// setup writes the configuration into dir and returns the arguments
	// that run the resolver in the foreground.
	setup func(t *testing.T, dir, export string, port int, up netip.AddrPort) []string
}

var resolverCases = []resolverCase{
	{format: "dnsmasq", binary: "dnsmasq", pkg: "dnsmasq-base", setup: func(t *testing.T, dir, export string, port int, up netip.AddrPort) []string {
		conf := writeFile(t, dir, "agw.conf", export)
		return dnsmasqArgs(conf, port, up)
	}},
	{format: "hosts", binary: "dnsmasq", pkg: "dnsmasq-base", addressesOnly: true, setup: func(t *testing.T, dir, export string, port int, up netip.AddrPort) []string {
		hosts := writeFile(t, dir, "agw.hosts", export)
		return append(dnsmasqArgs("/dev/null", port, up), "--addn-hosts="+hosts)
	}},
	{format: "unbound", binary: "unbound", pkg: "unbound", setup: func(t *testing.T, dir, export string, port int, up netip.AddrPort) []string {
		inc := writeFile(t, dir, "agw.conf", export)
		conf := writeFile(t, dir, "unbound.conf", fmt.Sprintf(`server:
	interface: 127.0.0.1
	port: %d
	do-ip6: no
	do-daemonize: no
	username: ""
	chroot: ""
	directory: "%s"
	pidfile: "%s/unbound.pid"
	use-syslog: no
	logfile: ""
	verbosity: 1
	module-config: "iterator"
	do-not-query-localhost: no
	access-control: 127.0.0.0/8 allow
	msg-cache-size: 0
	rrset-cache-size: 0
include: "%s"
remote-control:
	control-enable: no
forward-zone:
	name: "."
	forward-addr: %s@%d
`, port, dir, dir, inc, up.Addr(), up.Port()))
		return []string{"-d", "-c", conf}
	}},
	{format: "bind", binary: "named", pkg: "bind9", setup: func(t *testing.T, dir, export string, port int, up netip.AddrPort) []string {
		writeFile(t, dir, "agw.rpz", export)
		conf := writeFile(t, dir, "named.conf", fmt.Sprintf(`options {
	directory "%s";
	pid-file "%s/named.pid";
	session-keyfile "%s/session.key";
	managed-keys-directory "%s";
	listen-on port %d { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion yes;
	allow-query { 127.0.0.1; };
	allow-recursion { 127.0.0.1; };
	forwarders { %s port %d; };
	forward only;
	dnssec-validation no;
	max-cache-size 1m;
	%s
};
controls { };
zone "agw.rpz" { type primary; file "agw.rpz"; };
`, dir, dir, dir, dir, port, up.Addr(), up.Port(), BindPolicyOptions))
		return []string{"-g", "-n", "1", "-c", conf}
	}},
}

func dnsmasqArgs(conf string, port int, up netip.AddrPort) []string {
	var user []string
	if os.Geteuid() == 0 {
		// dnsmasq reads hosts files after dropping to its own user, which
		// cannot enter the test's private temporary directory.
		user = []string{"--user=root"}
	}
	return append(user, "--keep-in-foreground", "--conf-file="+conf, "--no-resolv", "--no-hosts",
		"--listen-address=127.0.0.1", "--bind-interfaces", fmt.Sprintf("--port=%d", port),
		fmt.Sprintf("--server=%s#%d", up.Addr(), up.Port()), "--cache-size=0", "--pid-file=", "--log-facility=-")
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// startResolver runs the resolver until the test ends and waits until it
// answers a forwarded name.
func startResolver(t *testing.T, bin string, args []string, port int) string {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(bin), out.String())
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	c := &mdns.Client{Timeout: 500 * time.Millisecond}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for {
		if m, _, err := c.Exchange(query("ready.example.net.", mdns.TypeA), addr); err == nil && len(m.Answer) > 0 {
			return addr
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("%s exited before answering: %v", filepath.Base(bin), err)
		case <-deadline:
			t.Fatalf("%s did not answer on %s", filepath.Base(bin), addr)
		case <-tick.C:
		}
	}
}

// TestExportInRealResolvers loads each export into the resolver Debian
// packages for it and checks that, for intercepted names, no record type a
// client can ask (A, AAAA, HTTPS, SVCB) hands out the backend's real address
// or its service hints, while other names still resolve through upstream.
func TestExportInRealResolvers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts dnsmasq, unbound and named")
	}
	hosts := []string{"api.openai.com", "*.crm.example.com"}
	for _, rc := range resolverCases {
		t.Run(rc.format, func(t *testing.T) {
			bin := resolverBinary(t, rc.binary, rc.pkg)
			for _, gw := range [][]netip.Addr{addrs("10.0.0.5"), addrs("10.0.0.5", "2001:db8::5")} {
				t.Run(fmt.Sprint(gw), func(t *testing.T) {
					testResolver(t, rc, bin, hosts, gw)
				})
			}
		})
	}
}

func testResolver(t *testing.T, rc resolverCase, bin string, hosts []string, gw []netip.Addr) {
	up := startRealUpstream(t)
	var export bytes.Buffer
	if err := Export(&export, rc.format, hosts, gw, 60); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	port := freePort(t)
	addr := startResolver(t, bin, rc.setup(t, dir, export.String(), port, up.addr), port)

	var v4, v6 []string
	for _, a := range gw {
		if a.Is4() {
			v4 = append(v4, a.String())
		} else {
			v6 = append(v6, a.String())
		}
	}
	names := []string{"api.openai.com."}
	if rc.format != "hosts" { // a hosts file cannot hold a wildcard
		names = append(names, "eu.crm.example.com.")
	}
	c := &mdns.Client{Timeout: 5 * time.Second}
	for _, name := range names {
		for _, qt := range []uint16{mdns.TypeA, mdns.TypeAAAA, mdns.TypeHTTPS, mdns.TypeSVCB} {
			t.Run(strings.TrimSuffix(name, ".")+"/"+mdns.TypeToString[qt], func(t *testing.T) {
				if rc.addressesOnly && (qt != mdns.TypeA && qt != mdns.TypeAAAA || qt == mdns.TypeAAAA && len(v6) == 0) {
					t.Skipf("a %s export holds addresses only and cannot stop %s lookups reaching DNS (its header says so)", rc.format, mdns.TypeToString[qt])
				}
				m, _, err := c.Exchange(withEDNS(query(name, qt), 1232), addr)
				if err != nil {
					t.Fatal(err)
				}
				if m.Rcode != mdns.RcodeSuccess {
					t.Errorf("rcode %s, want NOERROR", mdns.RcodeToString[m.Rcode])
				}
				var want []string
				switch qt {
				case mdns.TypeA:
					want = v4
				case mdns.TypeAAAA:
					want = v6
				}
				if got := addressesIn(m.Answer); !sameSet(got, want) {
					t.Errorf("answer %v, want agw's addresses %v (NODATA when none)", m.Answer, want)
				}
				if qt == mdns.TypeHTTPS || qt == mdns.TypeSVCB {
					if len(m.Answer) != 0 {
						t.Errorf("answer %v, want NODATA: service records steer clients around the gateway", m.Answer)
					}
				}
				for _, rr := range append(append(m.Answer, m.Ns...), m.Extra...) {
					for _, real := range realBackendAddrs {
						if strings.Contains(rr.String(), real) {
							t.Errorf("reply carries the backend's real address %s: %v", real, rr)
						}
					}
				}
			})
		}
	}
	for _, name := range names {
		if n := up.count(canonicalName(name)); n != 0 && !rc.addressesOnly {
			t.Errorf("the resolver asked upstream about intercepted %s %d times", name, n)
		}
	}
	// Names agw does not intercept (a subdomain of an exact host among them)
	// still resolve to their real records.
	for _, name := range []string{"other.example.net.", "x.api.openai.com."} {
		for _, qt := range []uint16{mdns.TypeA, mdns.TypeAAAA, mdns.TypeHTTPS} {
			m, _, err := c.Exchange(withEDNS(query(name, qt), 1232), addr)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Answer) != 1 || m.Answer[0].Header().Rrtype != qt {
				t.Errorf("%s %s: %s answer %v, want the upstream's record", name, mdns.TypeToString[qt], mdns.RcodeToString[m.Rcode], m.Answer)
			}
		}
	}
}

// addressesIn lists the A and AAAA addresses in rrs.
func addressesIn(rrs []mdns.RR) []string {
	var out []string
	for _, rr := range rrs {
		switch rr := rr.(type) {
		case *mdns.A:
			out = append(out, rr.A.String())
		case *mdns.AAAA:
			out = append(out, rr.AAAA.String())
		}
	}
	return out
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		if seen[s] == 0 {
			return false
		}
		seen[s]--
	}
	return true
}
