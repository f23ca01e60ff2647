package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agw-dev/agw/store"
)

// Output formats for -o.
const (
	outputTable = "table"
	outputJSON  = "json"
)

// writeJSON prints one object or list, indented. Lists are never null.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// removed is the -o json answer of every remove command, whose API call
// answers nothing: what was removed, so a script can log it.
type removed struct {
	Removed string `json:"removed"` // "backend", "agent", "grant" or "idp"
	Name    string `json:"name,omitempty"`
	Agent   string `json:"agent,omitempty"`
	Backend string `json:"backend,omitempty"`
}

// noJSON marks, in a command's Annotations, a command whose output is not
// data (a daemon's logs, a terminal UI, a shell script): -o json is refused
// there with the value's reason rather than silently ignored.
const noJSON = "agw-no-json"

// writeJSONLine prints one object on one line, for streams.
func writeJSONLine(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

// nonNil makes an absent list print as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// newTable returns a tabwriter for aligned columns; rows are tab-separated.
// Flush it when done.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
}

// row writes one tab-separated table row.
func row(w io.Writer, cols ...string) {
	fmt.Fprintln(w, strings.Join(cols, "\t"))
}

// fmtTime shows a time in the local zone to the second, "-" if unset.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}

// fmtAgo shows how long ago t was, "never" if unset.
func fmtAgo(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return fmtSpan(now.Sub(t)) + " ago"
}

// fmtSpan rounds a duration for people: 45s, 12m, 3h20m, 4d2h.
func fmtSpan(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd%dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}

// fmtLimit shows a rate limit, "unlimited" when unset.
func fmtLimit(rate string, burst int) string {
	if rate == "" {
		return "unlimited"
	}
	if burst > 0 {
		return fmt.Sprintf("%s (burst %d)", rate, burst)
	}
	return rate
}

// orDash shows an empty string as "-".
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// fmtGrantScope shows a grant's methods and paths compactly.
func fmtGrantScope(g store.Grant) (methods, paths string) {
	return strings.Join(g.Methods, ","), strings.Join(g.Paths, " ")
}

// tokenState is "active", "revoked" or "expired" at now.
func tokenState(t store.Token, now time.Time) string {
	switch {
	case !t.RevokedAt.IsZero():
		return "revoked"
	case !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt):
		return "expired"
	}
	return "active"
}

// fmtExpiry shows a token's expiry, "never" when unset.
func fmtExpiry(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return fmtTime(t)
}
