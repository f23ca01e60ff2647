package main

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/spf13/cobra"

	"github.com/agw-dev/agw/admin"
)

func (a *app) newStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the running daemon's listeners, object counts and traffic",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := a.client().Status(cmd.Context())
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				return writeJSON(cmd.OutOrStdout(), st)
			}
			return a.printStatus(cmd, st)
		},
	}
}

func (a *app) printStatus(cmd *cobra.Command, st *admin.Status) error {
	tw := newTable(cmd.OutOrStdout())
	row(tw, "version", st.Version)
	uptime := "-"
	if !st.StartedAt.IsZero() {
		uptime = fmt.Sprintf("%s (since %s)", fmtSpan(a.now().Sub(st.StartedAt)), fmtTime(st.StartedAt))
	}
	row(tw, "uptime", uptime)
	row(tw, "pid", fmt.Sprint(st.PID))
	row(tw, "data dir", st.DataDir)
	l := st.Listeners
	row(tw, "listeners", listenerList(
		"admin", l.Admin, "https", l.HTTPS, "dns", l.DNS, "metrics", l.Metrics))
	c := st.Counts
	row(tw, "objects", fmt.Sprintf("%d backends, %d agents, %d grants, %d active tokens, %d idps",
		c.Backends, c.Agents, c.Grants, c.Tokens, c.IdPs))
	g := st.Gateway
	row(tw, "gateway", fmt.Sprintf("%d requests: %d allowed, %d denied; %d TLS refused, %d upstream errors",
		g.Requests, g.Allowed, g.Denied, g.TLSRefused, g.UpstreamErrs))
	d := st.DNS
	row(tw, "dns", fmt.Sprintf("%d queries: %d intercepted, %d forwarded, %d failures",
		d.Queries, d.Intercepted, d.Forwarded, d.Failures))
	row(tw, "audit queue", fmt.Sprint(st.AuditQueue))
	config := fmt.Sprintf("revision %d", st.Revision)
	if !st.ConfirmedAt.IsZero() {
		config += fmt.Sprintf(", confirmed current %s ago", fmtSpan(a.now().Sub(st.ConfirmedAt)))
	}
	if st.Stale != "" {
		config += "; REFUSING REQUESTS: " + st.Stale
	}
	row(tw, "configuration", config)
	if rl := st.RateLimit; rl.Backend != "" {
		v := rl.Backend
		if rl.Degraded {
			v += " DEGRADED: deciding locally at limit ÷ replicas (" + rl.Reason + ")"
		}
		row(tw, "rate limits", v)
	}
	for _, r := range st.Replicas {
		state := "live"
		if !r.Live {
			state = "DEAD"
		}
		self := ""
		if r.Self {
			self = " (this one)"
		}
		row(tw, "replica "+r.ID, fmt.Sprintf("%s%s, %s, version %s, heartbeat %s ago", state, self,
			fmtAddrs(r.Addresses), r.Version, fmtSpan(r.Age.Std())))
	}
	return tw.Flush()
}

// listenerList shows name/address pairs, "off" for an empty address.
func listenerList(pairs ...string) string {
	var parts []string
	for i := 0; i+1 < len(pairs); i += 2 {
		addr := pairs[i+1]
		if addr == "" {
			addr = "off"
		}
		parts = append(parts, pairs[i]+" "+addr)
	}
	return strings.Join(parts, ", ")
}

func fmtAddrs(as []netip.Addr) string {
	if len(as) == 0 {
		return "no address"
	}
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = a.String()
	}
	return strings.Join(parts, " ")
}
