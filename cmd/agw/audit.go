package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/store"
)

func (a *app) newAuditCmd() *cobra.Command {
	return newGroupCmd("audit", "Read and verify the audit trail",
		a.newAuditTailCmd(),
		a.newAuditQueryCmd(),
		a.newAuditExportCmd(),
		a.newAuditVerifyCmd(),
		a.newAuditCheckpointCmd(),
	)
}

// auditFilter holds the filter flags tail and query share.
type auditFilter struct {
	agent, backend, decision string
}

func (a *app) addAuditFilterFlags(cmd *cobra.Command, f *auditFilter) {
	fl := cmd.Flags()
	fl.StringVar(&f.agent, "agent", "", "only events of agent `A`")
	fl.StringVar(&f.backend, "backend", "", "only events on backend `B`")
	fl.Var(newEnumValue(&f.decision, "", store.Allow, store.Deny), "decision", "only allowed or denied requests: allow or deny")
	_ = cmd.RegisterFlagCompletionFunc("agent", a.completeFlag(agentNames))
	_ = cmd.RegisterFlagCompletionFunc("backend", a.completeFlag(backendNames))
	_ = cmd.RegisterFlagCompletionFunc("decision", fixedCompletion(store.Allow, store.Deny))
}

func (a *app) newAuditTailCmd() *cobra.Command {
	var (
		f      auditFilter
		follow bool
		n      int
	)
	cmd := &cobra.Command{
		Use:   "tail [-f] [-n N] [--agent A] [--backend B] [--decision allow|deny]",
		Short: "Show the newest audit events, and with -f new ones as they happen",
		Long: `Show the newest N audit events; with -f, keep printing new ones until
interrupted. With -o json, each event is one JSON object on its own line.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if n < 0 {
				return usagef(cmd, "invalid -n %d: give a number of events, 0 or more", n)
			}
			q := store.AuditQuery{Agent: f.agent, Backend: f.backend, Decision: f.decision, Last: n}
			if n == 0 {
				// Last 0 would mean every stored event; -n 0 means none of them.
				if !follow {
					return nil
				}
				q.Since = a.now()
			}
			return a.streamAudit(cmd, q, follow, a.jsonOutput())
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new events until interrupted")
	cmd.Flags().IntVarP(&n, "lines", "n", 20, "how many of the newest events to show first")
	a.addAuditFilterFlags(cmd, &f)
	return cmd
}

func (a *app) newAuditQueryCmd() *cobra.Command {
	var (
		f                  auditFilter
		since, until       string
		kind               string
		status             int
		limit              int
		afterSeq, beforeSq uint64
	)
	cmd := &cobra.Command{
		Use:   "query [--since T] [--until T] [--agent A] [--backend B] [--decision D] [--status N] [--kind K] [--after-seq S] [--before-seq S] [--limit N]",
		Short: "Search the audit trail",
		Long: `Search the audit trail, oldest first. T is an RFC 3339 time, a date, or a
duration meaning that long ago (24h, 7d). --after-seq and --before-seq bound
the records' sequence numbers (both exclusive), as in the command tail -f
prints when a slow reader missed records. With -o json, each event is one
JSON object on its own line.`,
		Example: `  agw audit query --since 24h --decision deny
  agw audit query --since 2026-01-01 --until 2026-01-02 --backend openai -o json
  agw audit query --kind admin --agent hr-bot
  agw audit query --after-seq 41000 --before-seq 52001`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := store.AuditQuery{Agent: f.agent, Backend: f.backend, Decision: f.decision, Kind: kind, Status: status, Limit: limit,
				AfterSeq: afterSeq, BeforeSeq: beforeSq}
			if beforeSq != 0 && beforeSq <= afterSeq+1 {
				return usagef(cmd, "--before-seq must be more than --after-seq plus 1, or nothing can match")
			}
			var err error
			if q.Since, q.Until, err = a.timeRange(cmd, since, until); err != nil {
				return err
			}
			if status < 0 || limit < 0 {
				return usagef(cmd, "--status and --limit must be 0 or more")
			}
			return a.streamAudit(cmd, q, false, a.jsonOutput())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&since, "since", "", "only events at or after `T`")
	fl.StringVar(&until, "until", "", "only events before `T`")
	fl.Var(newEnumValue(&kind, "", store.KindRequest, store.KindTLS, store.KindAdmin), "kind", "only events of one kind: request, tls or admin")
	fl.IntVar(&status, "status", 0, "only requests answered with HTTP status `N`")
	fl.IntVar(&limit, "limit", 0, "stop after `N` events (default all)")
	fl.Uint64Var(&afterSeq, "after-seq", 0, "only events with a sequence number above `S`")
	fl.Uint64Var(&beforeSq, "before-seq", 0, "only events with a sequence number below `S`")
	a.addAuditFilterFlags(cmd, &f)
	_ = cmd.RegisterFlagCompletionFunc("kind", fixedCompletion(store.KindRequest, store.KindTLS, store.KindAdmin))
	return cmd
}

func (a *app) newAuditExportCmd() *cobra.Command {
	var since, until string
	cmd := &cobra.Command{
		Use:     "export [--since T] [--until T]",
		Short:   "Write audit events as JSON lines, for archives and SIEMs",
		Example: `  agw audit export --since 7d > audit-week.jsonl`,
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var q store.AuditQuery
			var err error
			if q.Since, q.Until, err = a.timeRange(cmd, since, until); err != nil {
				return err
			}
			return a.streamAudit(cmd, q, false, true)
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "only events at or after `T` (RFC 3339, date, or 24h/7d ago)")
	cmd.Flags().StringVar(&until, "until", "", "only events before `T`")
	return cmd
}

func (a *app) newAuditVerifyCmd() *cobra.Command {
	var files []string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the audit trail's hash chain, indexes and signed checkpoints; exit 1 if it was tampered with",
		Long: `Check the audit trail: its hash chain, the per-agent and per-backend
indexes, and the signed checkpoints of the chain's head that the daemon
writes every minute beside the store. A record edited and the chain
re-hashed, the newest records removed, or an older copy of the store put
back all fail. --checkpoint adds checkpoints kept elsewhere (saved from
agw audit checkpoint), which also catch a rewrite of the checkpoint file.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cps []store.AuditCheckpoint
			for _, f := range files {
				more, err := readCheckpointFile(f)
				if err != nil {
					return usagef(cmd, "--checkpoint %s: %v", f, err)
				}
				cps = append(cps, more...)
			}
			r, err := a.client().AuditVerifyWith(cmd.Context(), cps)
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				if err := writeJSON(cmd.OutOrStdout(), r); err != nil {
					return err
				}
			} else if r.OK {
				fmt.Fprintf(cmd.OutOrStdout(), "audit trail intact: %d records checked, against %d signed checkpoints\n", r.Checked, r.Checkpoints)
			}
			if !r.OK {
				return &exitCodeError{code: exitError, msg: fmt.Sprintf("audit trail verification failed after %d records: %s", r.Checked, orDash(r.Problem))}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&files, "checkpoint", nil, "also verify against the checkpoints in `FILE` (JSON, one per line, from agw audit checkpoint)")
	return cmd
}

// readCheckpointFile reads checkpoints saved from `agw audit checkpoint`.
func readCheckpointFile(path string) ([]store.AuditCheckpoint, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []store.AuditCheckpoint
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		var cp store.AuditCheckpoint
		if err := dec.Decode(&cp); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("not a checkpoint: %v", err)
		}
		out = append(out, cp)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("holds no checkpoint")
	}
	return out, nil
}

func (a *app) newAuditCheckpointCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "checkpoint",
		Short: "Sign the audit chain's head now and print the checkpoint (JSON) to keep off this host",
		Long: `Have the daemon sign the audit chain's newest record and hash now, and
print the checkpoint as one line of JSON. Kept outside the gateway host (a
SIEM, a ticket, another machine), it lets agw audit verify --checkpoint
detect a trail rewritten by someone who controls this host.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cp, err := a.client().AuditCheckpoint(cmd.Context())
			if err != nil {
				return err
			}
			return writeJSON(cmd.OutOrStdout(), cp)
		},
	}
}

// timeRange parses --since and --until.
func (a *app) timeRange(cmd *cobra.Command, since, until string) (s, u time.Time, err error) {
	now := a.now()
	if since != "" {
		if s, err = parseTimeFlag(since, now); err != nil {
			return s, u, usagef(cmd, "invalid --since %q: %v", since, err)
		}
	}
	if until != "" {
		if u, err = parseTimeFlag(until, now); err != nil {
			return s, u, usagef(cmd, "invalid --until %q: %v", until, err)
		}
	}
	if !s.IsZero() && !u.IsZero() && !s.Before(u) {
		return s, u, usagef(cmd, "--since must be before --until")
	}
	return s, u, nil
}

// streamAudit prints the events matching q, as JSON lines or one text line
// each, until they end or, with follow, until interrupted.
func (a *app) streamAudit(cmd *cobra.Command, q store.AuditQuery, follow, asJSON bool) error {
	ctx := cmd.Context()
	if follow {
		var stop func()
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
	}
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	var last uint64
	err := a.client().Audit(ctx, q, follow, func(m admin.StreamMessage) error {
		if m.Missed > 0 {
			fmt.Fprint(errOut, missedWarning(m, q, last, asJSON))
		}
		if m.Event == nil {
			return nil
		}
		last = m.Event.Seq
		if asJSON {
			return writeJSONLine(out, m.Event)
		}
		_, err := io.WriteString(out, formatEvent(m.Event))
		return err
	})
	if err != nil && ctx.Err() != nil && follow {
		return nil // interrupted while following: a normal end
	}
	return err
}

// missedWarning tells a follower that the daemon skipped it ahead, and gives
// the exact command that re-reads what it skipped. last is the newest seq
// the reader saw, for a daemon that does not send the skipped range.
func missedWarning(m admin.StreamMessage, q store.AuditQuery, last uint64, asJSON bool) string {
	after, before := last, uint64(0)
	if m.MissedFrom > 0 && m.MissedTo >= m.MissedFrom {
		after, before = m.MissedFrom-1, m.MissedTo+1
	}
	cmd := "agw audit query --after-seq " + strconv.FormatUint(after, 10)
	if before != 0 {
		cmd += " --before-seq " + strconv.FormatUint(before, 10)
	}
	for _, f := range []struct{ flag, v string }{{"--agent", q.Agent}, {"--backend", q.Backend}, {"--decision", q.Decision}, {"--kind", q.Kind}} {
		if f.v != "" {
			cmd += " " + f.flag + " " + f.v
		}
	}
	if q.Status != 0 {
		cmd += " --status " + strconv.Itoa(q.Status)
	}
	if asJSON {
		cmd += " -o json"
	}
	what := fmt.Sprintf("%d records", m.Missed)
	if before != 0 {
		what += fmt.Sprintf(" (seq %d to %d)", m.MissedFrom, m.MissedTo)
	}
	return fmt.Sprintf("agw: warning: this reader fell behind, so the daemon skipped it past %s; they are stored. Read them with:\n  %s\n", what, cmd)
}

// formatEvent renders one audit event as a line of text.
func formatEvent(ev *store.AuditEvent) string {
	// What an agent sent (paths, host names) is escaped: a bidi override
	// in a path must not make a line of the trail read differently.
	p := store.Printable
	e := *ev
	e.Agent, e.Backend, e.Method, e.Host, e.Path = p(e.Agent), p(e.Backend), p(e.Method), p(e.Host), p(e.Path)
	e.Reason, e.Action, e.Target = p(e.Reason), p(e.Action), p(e.Target)
	ev = &e
	t := ev.Time.Local().Format(time.DateTime)
	if ev.Kind == store.KindAdmin {
		return fmt.Sprintf("%s  %-5s  %-16s %-20s uid %d\n", t, "admin", orDash(ev.Action), orDash(ev.Target), ev.PeerUID)
	}
	status := "-"
	if ev.Status != 0 {
		status = strconv.Itoa(ev.Status)
	}
	target := ev.Host + ev.Path
	if ev.Kind == store.KindTLS {
		target = "tls " + orDash(ev.Host)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %-5s  %3s  %-16s %-16s %-6s %s", t, orDash(ev.Decision), status,
		orDash(ev.Agent), orDash(ev.Backend), orDash(ev.Method), orDash(target))
	if ev.Reason != "" {
		fmt.Fprintf(&b, "  %s", ev.Reason)
	}
	if ev.TotalMillis > 0 {
		fmt.Fprintf(&b, "  %s", fmtMillis(ev.TotalMillis))
	}
	b.WriteByte('\n')
	return b.String()
}

func fmtMillis(ms float64) string {
	if ms >= 1000 {
		return strconv.FormatFloat(ms/1000, 'f', 2, 64) + "s"
	}
	return strconv.FormatFloat(ms, 'f', 1, 64) + "ms"
}
