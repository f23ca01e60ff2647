package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"os/user"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/agw-dev/agw/enforce"
)

type enforceFlags struct {
	apply, remove, check bool
	netns                string
	gateway              []string
	dnsPort, httpsPort   uint16
	proxyPort            uint16
	allow, doh, uids     []string
	cgroups              []string
}

func (a *app) newEnforceCmd() *cobra.Command {
	var f enforceFlags
	cmd := &cobra.Command{
		Use:   "enforce [--apply | --remove | --check] --gateway IP [flags]",
		Short: "Print or install nftables rules so agents reach nothing but agw",
		Long: `Produce nftables rules for a host or network namespace that runs agents: their
traffic may reach agw's DNS, HTTPS and proxy ports (--gateway, --dns-port,
--https-port, --proxy-port) and the destinations given with --allow; DNS to any
other resolver, DNS over TLS (853) and the DNS-over-HTTPS endpoints given with
--doh-block are dropped; everything else is rejected. --uid and --cgroup scope
the rules to agent processes; without them every process is bound.

Without --apply the rules are printed. --apply installs them with the nft
tool (package nftables) as the table inet agw_enforce, replacing an earlier
copy atomically; --remove deletes exactly that table; --check exits 0 when it
is in place and 1 when it is not. --netns NAME runs nft inside that network
namespace. Applying and removing need root (CAP_NET_ADMIN).`,
		Example: `  agw enforce --gateway 10.0.0.5 --proxy-port 3128 --uid agent --allow 10.1.0.0/16:5432
  agw enforce --apply --netns agents --gateway 127.0.0.1 --doh-block dns.google`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			n := 0
			for _, b := range []bool{f.apply, f.remove, f.check} {
				if b {
					n++
				}
			}
			if n > 1 {
				return usagef(cmd, "give at most one of --apply, --remove and --check")
			}
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			switch {
			case f.remove:
				if _, err := runNft(ctx, f.netns, enforce.Remove(), "-f", "-"); err != nil {
					return err
				}
				fmt.Fprintf(out, "removed table %s %s%s\n", enforce.Family, enforce.Table, inNetns(f.netns))
				return nil
			case f.check:
				if _, err := runNft(ctx, f.netns, "", "list", "chain", enforce.Family, enforce.Table, "agents"); err != nil {
					fmt.Fprintf(out, "not in place: no table %s %s%s\n", enforce.Family, enforce.Table, inNetns(f.netns))
					return &exitCodeError{code: exitError}
				}
				fmt.Fprintf(out, "in place: table %s %s%s\n", enforce.Family, enforce.Table, inNetns(f.netns))
				return nil
			}
			cfg, err := f.config(ctx)
			if err != nil {
				return usagef(cmd, "%v", err)
			}
			rules, err := enforce.Rules(cfg)
			if err != nil {
				return usagef(cmd, "%v", err)
			}
			if !f.apply {
				_, err := fmt.Fprint(out, rules)
				return err
			}
			if _, err := runNft(ctx, f.netns, rules, "-f", "-"); err != nil {
				return err
			}
			fmt.Fprintf(out, "applied table %s %s%s\n", enforce.Family, enforce.Table, inNetns(f.netns))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.apply, "apply", false, "install the rules with nft")
	fl.BoolVar(&f.remove, "remove", false, "remove the rules agw installed")
	fl.BoolVar(&f.check, "check", false, "exit 0 if the rules are in place, 1 if not")
	fl.StringVar(&f.netns, "netns", "", "network namespace `NAME` to act in (ip netns exec)")
	fl.StringArrayVar(&f.gateway, "gateway", nil, "`IP` agents reach agw at; repeat for several")
	fl.Uint16Var(&f.dnsPort, "dns-port", 53, "agw's DNS `PORT` (0: none)")
	fl.Uint16Var(&f.httpsPort, "https-port", 443, "agw's HTTPS `PORT` (0: none)")
	fl.Uint16Var(&f.proxyPort, "proxy-port", 0, "agw's proxy listener `PORT` (0: none)")
	fl.StringArrayVar(&f.allow, "allow", nil, "further destination `CIDR:PORT` agents may reach; repeat for several")
	fl.StringArrayVar(&f.doh, "doh-block", nil, "DNS-over-HTTPS endpoint `HOST` or IP to drop; repeat for several")
	fl.StringArrayVar(&f.uids, "uid", nil, "scope to processes of this `USER` (name or number); repeat for several")
	fl.StringArrayVar(&f.cgroups, "cgroup", nil, "scope to processes in this cgroup v2 `PATH`; repeat for several")
	return cmd
}

func inNetns(ns string) string {
	if ns == "" {
		return ""
	}
	return " in network namespace " + ns
}

func (f *enforceFlags) config(ctx context.Context) (enforce.Config, error) {
	cfg := enforce.Config{DNSPort: f.dnsPort, HTTPSPort: f.httpsPort, ProxyPort: f.proxyPort, CGroups: f.cgroups}
	for _, s := range f.gateway {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return cfg, fmt.Errorf("invalid --gateway %q: give an IP address", s)
		}
		cfg.Gateway = append(cfg.Gateway, ip.Unmap())
	}
	for _, s := range f.allow {
		d, err := enforce.ParseDest(s)
		if err != nil {
			return cfg, fmt.Errorf("invalid --allow: %v", err)
		}
		cfg.Allow = append(cfg.Allow, d)
	}
	for _, s := range f.doh {
		if ip, err := netip.ParseAddr(s); err == nil {
			cfg.DoH = append(cfg.DoH, ip.Unmap())
			continue
		}
		// Resolved now, with the system resolver: the rules hold addresses.
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", s)
		if err != nil {
			return cfg, fmt.Errorf("invalid --doh-block %q: cannot resolve it (%v); give its addresses instead", s, err)
		}
		for _, ip := range ips {
			cfg.DoH = append(cfg.DoH, ip.Unmap())
		}
	}
	for _, s := range f.uids {
		uid, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			u, uerr := user.Lookup(s)
			if uerr != nil {
				return cfg, fmt.Errorf("invalid --uid %q: no such user", s)
			}
			uid, _ = strconv.ParseUint(u.Uid, 10, 32)
		}
		cfg.UIDs = append(cfg.UIDs, uint32(uid))
	}
	return cfg, nil
}

// runNft runs the nft tool (in netns when set) with stdin.
func runNft(ctx context.Context, netns, stdin string, args ...string) (string, error) {
	name := "nft"
	if _, err := exec.LookPath(name); err != nil {
		return "", errors.New("the nft tool is not installed: install the nftables package (apt-get install nftables), or print the rules without --apply and load them yourself")
	}
	if netns != "" {
		args = append([]string{"netns", "exec", netns, name}, args...)
		name = "ip"
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("nft %s%s: %v: %s", strings.Join(args, " "), inNetns(netns), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
