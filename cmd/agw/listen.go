package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/agw-dev/agw/dns"
)

// Where DNS listens when --dns-listen is not given. Listening on every
// address (":53") fails on a host running systemd-resolved, which holds
// 127.0.0.53:53, and would answer on every interface; agw listens on the
// one address its DNS answers point agents at instead.

// dnsDefault is the DNS listener chosen for a serve command line, and the
// advertised addresses that go with it.
type dnsDefault struct {
	listen    string
	advertise []netip.Addr // set when chosen here, nil when the flags said
	why       string       // for the log line
}

// defaultRouteFunc finds the address of the interface holding the default
// route; routeAddr is the real one.
type defaultRouteFunc func() (iface string, ip netip.Addr, err error)

// chooseDNSListen picks the DNS listener for --https-listen https (already
// defaulted) and the --advertise-ip values: port 53 for root or when HTTPS
// is on 443, else 8053; on the first advertised address, else on the HTTPS
// listener's address, else (a wildcard or no HTTPS listener) on the address
// of the interface holding the default route, which is then also the
// advertised one. With none of those, loopback.
func chooseDNSListen(https string, advertise []netip.Addr, root bool, route defaultRouteFunc) dnsDefault {
	port := "8053"
	httpsHost, httpsPort, splitErr := net.SplitHostPort(https)
	if root || (splitErr == nil && httpsPort == "443") {
		port = "53"
	}
	if len(advertise) > 0 {
		ip := advertise[0]
		return dnsDefault{listen: net.JoinHostPort(ip.String(), port), why: "the first --advertise-ip"}
	}
	if splitErr == nil {
		if ip, err := netip.ParseAddr(httpsHost); err == nil && !ip.IsUnspecified() {
			return dnsDefault{listen: net.JoinHostPort(ip.Unmap().String(), port), why: "the --https-listen address"}
		}
	}
	if iface, ip, err := route(); err == nil {
		return dnsDefault{
			listen:    net.JoinHostPort(ip.String(), port),
			advertise: []netip.Addr{ip},
			why:       fmt.Sprintf("%s; DNS answers point agents at it (choose with --advertise-ip)", iface),
		}
	}
	return dnsDefault{listen: net.JoinHostPort("127.0.0.1", port), why: "loopback: no default route to take an address from (choose with --advertise-ip or --dns-listen)"}
}

// routeAddr is the default advertised address for a wildcard listener
// (dns.DefaultAdvertise: the interface holding the default route, never a
// container bridge), with the reason for the log line.
func routeAddr() (string, netip.Addr, error) {
	addrs, reason := dns.DefaultAdvertise(netip.IPv4Unspecified())
	if len(addrs) == 0 || addrs[0].IsLoopback() {
		return "", netip.Addr{}, errors.New(reason)
	}
	return reason, addrs[0], nil
}
