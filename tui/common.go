package tui

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/store"
)

// common is what every screen shares: the API, styles, keys, the clock and
// the size of the body area.
type common struct {
	api    API
	st     *styles
	keys   keyMap
	now    func() time.Time
	loc    *time.Location // where times are shown; tests fix it to UTC
	every  time.Duration  // the refresh interval
	width  int
	height int
}

// callTimeout bounds one admin call made by the TUI.
const callTimeout = 15 * time.Second

// call runs fn with a bounded context; it is only used inside tea.Cmds, off
// the UI goroutine.
func call[T any](fn func(ctx context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	return fn(ctx)
}

// actionMsg reports the end of an admin write started from a screen. The
// root shows info or err in the status bar and refreshes the data.
type actionMsg struct {
	info string
	err  error
}

// act turns an admin write into a tea.Cmd answering an actionMsg. doing
// names the write as an order ("add backend openai") for the error, done
// as a fact ("added backend openai") for the success, so a failure never
// reads as if it had worked.
func act(doing, done string, fn func(ctx context.Context) error) tea.Cmd {
	return func() tea.Msg {
		_, err := call(func(ctx context.Context) (struct{}, error) { return struct{}{}, fn(ctx) })
		if err != nil {
			return actionMsg{err: fmt.Errorf("could not %s: %w", doing, err)}
		}
		return actionMsg{info: done}
	}
}

// describeErr turns an admin error into one line that says what is wrong
// and what to do.
func describeErr(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, admin.ErrDaemonNotRunning):
		return "agw daemon is not running: start it with `agw serve`; retrying"
	case errors.Is(err, store.ErrForbidden) && !isAdminError(err):
		return "admin socket: permission denied; run as the daemon's user or its --admin-group"
	}
	return err.Error()
}

func isAdminError(err error) bool {
	var ae *admin.Error
	return errors.As(err, &ae)
}

// ago says how long before now t was, in the largest whole unit.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return short(now.Sub(t)) + " ago"
}

// short writes a duration in its largest whole unit: 45s, 12m, 5h, 3d.
func short(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// uptime writes a duration as 3d4h, 5h12m or 12m30s.
func uptime(d time.Duration) string {
	d = d.Truncate(time.Second)
	switch {
	case d >= 24*time.Hour:
		return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
	case d >= time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dm%ds", int(d.Minutes()), int(d.Seconds())%60)
}

// splitList splits a comma-separated field, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

// fit cuts s to at most h lines, so a screen never pushes the status and
// help lines off a short terminal.
func fit(s string, h int) string {
	if h <= 0 {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > h {
		lines = lines[:h]
	}
	return strings.Join(lines, "\n")
}

// kv renders "label  value" pairs one per line with aligned labels.
func (c *common) kv(pairs ...string) string {
	w := 0
	for i := 0; i < len(pairs); i += 2 {
		w = max(w, lipgloss.Width(pairs[i]))
	}
	var b strings.Builder
	for i := 0; i+1 < len(pairs); i += 2 {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(c.st.Label.Render(fmt.Sprintf("%-*s", w, pairs[i])))
		b.WriteString("  ")
		b.WriteString(c.st.Value.Render(pairs[i+1]))
	}
	return b.String()
}

// truncate cuts a styled line to w cells.
func truncate(s string, w int) string {
	return ansi.Truncate(s, w, "…")
}

// clock formats t as a time of day where the user is.
func (c *common) clock(t time.Time) string {
	return t.In(c.loc).Format("15:04:05")
}
