package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agw-dev/agw/store"
)

// Flag value types that check their value while flags are parsed, so a bad
// value is a usage error (exit 2) before anything is sent to the daemon.

// enumValue is a string flag restricted to a fixed set of values.
type enumValue struct {
	p       *string
	allowed []string
}

func newEnumValue(p *string, def string, allowed ...string) *enumValue {
	*p = def
	return &enumValue{p: p, allowed: allowed}
}

func (e *enumValue) String() string { return *e.p }
func (e *enumValue) Type() string   { return "string" }

func (e *enumValue) Set(s string) error {
	if !slices.Contains(e.allowed, s) {
		return fmt.Errorf("use one of %s", strings.Join(e.allowed, ", "))
	}
	*e.p = s
	return nil
}

// durationValue is a non-negative duration flag that also takes whole days,
// "90d" or "1d12h", since retention and token lifetimes are thought of in days.
type durationValue struct{ p *time.Duration }

func (d durationValue) String() string {
	if *d.p == 0 {
		return "0"
	}
	if *d.p%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", *d.p/(24*time.Hour))
	}
	return d.p.String()
}
func (d durationValue) Type() string { return "duration" }

func (d durationValue) Set(s string) error {
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	if v < 0 {
		return fmt.Errorf("must not be negative")
	}
	*d.p = v
	return nil
}

// parseDuration parses a Go duration ("36h", "90m") with an optional leading
// whole number of days ("7d", "1d12h").
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	days, rest, ok := strings.Cut(s, "d")
	if !ok {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("use a duration like 30s, 12h or 90d")
		}
		return d, nil
	}
	n, err := strconv.Atoi(days)
	if err != nil || n < 0 || n > 100*365 {
		return 0, fmt.Errorf("use a duration like 30s, 12h or 90d")
	}
	d := time.Duration(n) * 24 * time.Hour
	if rest != "" {
		r, err := time.ParseDuration(rest)
		if err != nil || r < 0 {
			return 0, fmt.Errorf("use a duration like 30s, 12h or 90d")
		}
		d += r
	}
	return d, nil
}

// rateValue is a rate limit flag: "N/s", "N/m" or "N/h".
type rateValue struct{ p *string }

func (r rateValue) String() string { return *r.p }
func (r rateValue) Type() string   { return "N/unit" }

func (r rateValue) Set(s string) error {
	if _, err := store.ParseRate(s); err != nil {
		return fmt.Errorf("use a positive whole number per unit: N/s, N/m or N/h")
	}
	*r.p = s
	return nil
}

// addLimitFlags adds --rate and --burst.
func addLimitFlags(cmd *cobra.Command, rate *string, burst *int, what string) {
	cmd.Flags().Var(rateValue{rate}, "rate", "rate limit "+what+": N/s, N/m or N/h (default unlimited)")
	cmd.Flags().IntVar(burst, "burst", 0, "requests allowed at once above the rate (needs --rate)")
}

// parseTimeFlag reads a point in time: RFC 3339, a date (YYYY-MM-DD, local
// time), or a duration meaning that long before now ("24h", "7d").
func parseTimeFlag(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, time.Local); err == nil {
		return t, nil
	}
	if d, err := parseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("use an RFC 3339 time (2026-01-02T15:04:05Z), a date (2026-01-02) or a duration ago (24h, 7d)")
}

// fixedCompletion completes a flag from a fixed list.
func fixedCompletion(values ...string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return values, cobra.ShellCompDirectiveNoFileComp
	}
}
