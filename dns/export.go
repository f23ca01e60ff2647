package dns

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
)

// ExportFormats lists the formats Export writes.
var ExportFormats = []string{"hosts", "dnsmasq", "unbound", "coredns", "bind"}

// Export prints the overrides an enterprise loads into its own DNS so that
// hosts resolve to addrs (the gateway). Hosts may be wildcards
// ("*.crm.example.com"). Output is sorted, so the same input always gives the
// same bytes. It fails on an unknown format (listing the valid ones), a host
// that is not a DNS name, or no address; nothing is written then.
func Export(w io.Writer, format string, hosts []string, addrs []netip.Addr, ttl uint32) error {
	if !slices.Contains(ExportFormats, format) {
		return fmt.Errorf("unknown export format %q: use one of %s", format, strings.Join(ExportFormats, ", "))
	}
	set, err := newExportSet(hosts, addrs, ttl)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	switch format {
	case "hosts":
		set.hosts(&b)
	case "dnsmasq":
		set.dnsmasq(&b)
	case "unbound":
		set.unbound(&b)
	case "coredns":
		set.coredns(&b)
	case "bind":
		set.bind(&b)
	}
	_, err = w.Write(b.Bytes())
	return err
}

// exportSet is the validated, sorted input of Export.
type exportSet struct {
	exact []string     // "api.openai.com"
	wild  []string     // bases of wildcards: "crm.example.com" for "*.crm.example.com"
	addrs []netip.Addr // IPv4 first, then IPv6
	ttl   uint32
}

func newExportSet(hosts []string, addrs []netip.Addr, ttl uint32) (*exportSet, error) {
	s := &exportSet{ttl: ttl}
	if s.ttl == 0 {
		s.ttl = defaultTTL
	}
	for _, h := range hosts {
		name := canonicalName(strings.TrimSpace(h))
		base, wild := strings.CutPrefix(name, "*.")
		if !validHostName(base) {
			return nil, fmt.Errorf("export: %q is not a host name (letters, digits, '-', '_' and dots; a wildcard only as a leading \"*.\")", h)
		}
		if wild {
			s.wild = append(s.wild, base)
		} else {
			s.exact = append(s.exact, base)
		}
	}
	slices.Sort(s.exact)
	s.exact = slices.Compact(s.exact)
	slices.Sort(s.wild)
	s.wild = slices.Compact(s.wild)
	for _, a := range addrs {
		if !a.IsValid() {
			return nil, fmt.Errorf("export: invalid address")
		}
		s.addrs = append(s.addrs, a.Unmap().WithZone(""))
	}
	slices.SortFunc(s.addrs, func(a, b netip.Addr) int {
		if a.Is4() != b.Is4() {
			if a.Is4() {
				return -1
			}
			return 1
		}
		return a.Compare(b)
	})
	s.addrs = slices.Compact(s.addrs)
	if len(s.addrs) == 0 {
		return nil, fmt.Errorf("export: no gateway address to point the hosts at; give at least one advertise address")
	}
	return s, nil
}

// validHostName accepts only what is safe to paste into every output format:
// no quotes, spaces, newlines or comment characters can reach a config file.
func validHostName(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func rrType(a netip.Addr) string {
	if a.Is4() {
		return "A"
	}
	return "AAAA"
}

func (s *exportSet) hosts(b *bytes.Buffer) {
	b.WriteString("# agw DNS overrides in hosts(5) format: these names resolve to the gateway.\n")
	b.WriteString("# A hosts file holds addresses only: lookups of other types (HTTPS, SVCB, and AAAA\n")
	b.WriteString("# when no IPv6 address is listed) still go to DNS and can return the backend's real\n")
	b.WriteString("# address. Where clients use a resolver, load the dnsmasq, unbound, coredns or bind\n")
	b.WriteString("# export into it instead.\n")
	for _, h := range s.exact {
		for _, a := range s.addrs {
			fmt.Fprintf(b, "%s\t%s\n", a, h)
		}
	}
	for _, base := range s.wild {
		fmt.Fprintf(b, "# cannot express *.%s in a hosts file\n", base)
	}
}

// dnsmasq answers A and AAAA from host-record (exact names) and address
// (wildcards). Since dnsmasq 2.86 both forward every other type upstream,
// which would hand clients the backend's real AAAA and its HTTPS/SVCB
// hints, so each name is also made local: answered from these records
// only, NODATA for any other type, never forwarded.
func (s *exportSet) dnsmasq(b *bytes.Buffer) {
	b.WriteString("# agw DNS overrides for dnsmasq (conf-file): these names resolve to the gateway.\n")
	b.WriteString("# local= keeps dnsmasq from forwarding other types (AAAA, HTTPS, SVCB) for them.\n")
	for _, h := range s.exact {
		// host-record matches the name only; local= would also swallow its
		// subdomains, which server=/*.h/# sends upstream again.
		for _, a := range s.addrs {
			fmt.Fprintf(b, "host-record=%s,%s,%d\n", h, a, s.ttl)
		}
		fmt.Fprintf(b, "local=/%s/\n", h)
		fmt.Fprintf(b, "server=/*.%s/#\n", h)
	}
	for _, base := range s.wild {
		fmt.Fprintf(b, "# *.%s: address=/%s/ also covers %s itself and names at any depth below it\n", base, base, base)
		for _, a := range s.addrs {
			fmt.Fprintf(b, "address=/%s/%s\n", base, a)
		}
		fmt.Fprintf(b, "local=/%s/\n", base)
	}
}

func (s *exportSet) unbound(b *bytes.Buffer) {
	b.WriteString("# agw DNS overrides for unbound (include: from unbound.conf): these names resolve to the gateway.\n")
	b.WriteString("server:\n")
	for _, h := range s.exact {
		for _, a := range s.addrs {
			fmt.Fprintf(b, "\tlocal-data: \"%s. %d IN %s %s\"\n", h, s.ttl, rrType(a), a)
		}
	}
	for _, base := range s.wild {
		fmt.Fprintf(b, "\t# *.%s: a redirect zone also covers %s itself and names at any depth below it\n", base, base)
		fmt.Fprintf(b, "\tlocal-zone: \"%s.\" redirect\n", base)
		for _, a := range s.addrs {
			fmt.Fprintf(b, "\tlocal-data: \"%s. %d IN %s %s\"\n", base, s.ttl, rrType(a), a)
		}
	}
}

// coredns writes a server block with template plugins: one answering A, one
// AAAA, and a last one giving NODATA for every other type, so that HTTPS/SVCB
// records of the real host never steer clients around the gateway.
func (s *exportSet) coredns(b *bytes.Buffer) {
	var zones, alts []string
	for _, h := range s.exact {
		zones = append(zones, h+".")
		alts = append(alts, regexpName(h))
	}
	for _, base := range s.wild {
		zones = append(zones, base+".")
		alts = append(alts, "[^.]+[.]"+regexpName(base))
	}
	match := fmt.Sprintf(`"(?i)^(%s)[.]$"`, strings.Join(alts, "|"))
	zoneList := strings.Join(zones, " ")

	b.WriteString("# agw DNS overrides for CoreDNS: these names resolve to the gateway.\n")
	b.WriteString("# Use this server block as is, or copy its template blocks into yours, before forward.\n")
	b.WriteString(". {\n")
	if len(zones) == 0 {
		b.WriteString("\tforward . /etc/resolv.conf\n}\n")
		return
	}
	for _, typ := range []string{"A", "AAAA"} {
		fmt.Fprintf(b, "\ttemplate IN %s %s {\n", typ, zoneList)
		fmt.Fprintf(b, "\t\tmatch %s\n", match)
		for _, a := range s.addrs {
			if rrType(a) == typ {
				fmt.Fprintf(b, "\t\tanswer \"{{ .Name }} %d IN %s %s\"\n", s.ttl, typ, a)
			}
		}
		b.WriteString("\t\tfallthrough\n\t}\n")
	}
	fmt.Fprintf(b, "\ttemplate IN ANY %s {\n", zoneList)
	fmt.Fprintf(b, "\t\tmatch %s\n", match)
	b.WriteString("\t\trcode NOERROR\n\t\tfallthrough\n\t}\n")
	b.WriteString("\tforward . /etc/resolv.conf\n}\n")
}

// regexpName quotes a validated host name for a regexp without backslashes,
// which Corefile quoting would otherwise have to preserve.
func regexpName(name string) string {
	return strings.ReplaceAll(name, ".", "[.]")
}

// BindPolicyOptions is the response-policy statement the bind export asks
// for in named.conf's options. qname-wait-recurse no keeps BIND from asking
// upstream about intercepted names before rewriting them; break-dnssec yes
// rewrites answers from signed zones too, which BIND would otherwise hand
// (real addresses included) to clients that set the DO bit.
const BindPolicyOptions = `response-policy { zone "agw.rpz"; } qname-wait-recurse no break-dnssec yes;`

// bind writes a response policy zone: local data for each trigger name. RPZ
// local data answers NODATA for the types it does not list.
func (s *exportSet) bind(b *bytes.Buffer) {
	b.WriteString("; agw DNS overrides as a BIND response policy zone (RPZ): these names resolve to the gateway.\n")
	b.WriteString("; named.conf:  zone \"agw.rpz\" { type primary; file \"agw.rpz\"; };\n")
	b.WriteString(";              options { " + BindPolicyOptions + " };\n")
	b.WriteString("; Raise the SOA serial when secondaries must pick up a changed file.\n")
	fmt.Fprintf(b, "$TTL %d\n", s.ttl)
	fmt.Fprintf(b, "@\tIN\tSOA\tlocalhost. hostmaster.localhost. 1 3600 600 86400 %d\n", s.ttl)
	b.WriteString("@\tIN\tNS\tlocalhost.\n")
	for _, h := range s.exact {
		for _, a := range s.addrs {
			fmt.Fprintf(b, "%s\tIN\t%s\t%s\n", h, rrType(a), a)
		}
	}
	for _, base := range s.wild {
		fmt.Fprintf(b, "; *.%s matches names at any depth below %s, not %s itself\n", base, base, base)
		for _, a := range s.addrs {
			fmt.Fprintf(b, "*.%s\tIN\t%s\t%s\n", base, rrType(a), a)
		}
	}
}
