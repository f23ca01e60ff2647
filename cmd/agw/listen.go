package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
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
			why:       fmt.Sprintf("the address of %s, which holds the default route; DNS answers point agents at it (choose with --advertise-ip)", iface),
		}
	}
	return dnsDefault{listen: net.JoinHostPort("127.0.0.1", port), why: "loopback: no default route to take an address from (choose with --advertise-ip or --dns-listen)"}
}

// routeAddr returns the interface holding the IPv4 default route (the IPv6
// one when there is none) and its first global unicast address of that
// family. Linux only; elsewhere it returns an error.
func routeAddr() (string, netip.Addr, error) {
	for _, v6 := range []bool{false, true} {
		iface, err := defaultRouteIface(v6)
		if err != nil {
			continue
		}
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			continue
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			pfx, err := netip.ParsePrefix(a.String())
			if err != nil {
				continue
			}
			ip := pfx.Addr().Unmap()
			if ip.Is6() == v6 && ip.IsGlobalUnicast() {
				return iface, ip, nil
			}
		}
	}
	return "", netip.Addr{}, errors.New("no interface holds a default route with a global address")
}

// defaultRouteIface reads the kernel's routing table for the default route
// with the lowest metric.
func defaultRouteIface(v6 bool) (string, error) {
	path := "/proc/net/route"
	if v6 {
		path = "/proc/net/ipv6_route"
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	best, bestMetric := "", uint64(1<<63)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		var iface, metric string
		switch {
		case !v6 && len(fields) >= 8 && fields[1] == "00000000" && fields[7] == "00000000":
			flags, err := strconv.ParseUint(fields[3], 16, 32)
			if err != nil || flags&1 == 0 { // RTF_UP
				continue
			}
			iface, metric = fields[0], fields[6]
		case v6 && len(fields) >= 10 && fields[0] == strings.Repeat("0", 32) && fields[1] == "00" && fields[9] != "lo":
			iface, metric = fields[9], fields[5]
		default:
			continue
		}
		base := 10
		if v6 {
			base = 16
		}
		m, err := strconv.ParseUint(metric, base, 64)
		if err == nil && m < bestMetric {
			best, bestMetric = iface, m
		}
	}
	if best == "" {
		return "", errors.New("no default route")
	}
	return best, sc.Err()
}
