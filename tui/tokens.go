package tui

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/agw-dev/agw/store"
)

// reveal holds a freshly minted token until the user dismisses it. The
// value is kept as bytes so dismissing can overwrite it.
type reveal struct {
	agent string
	token store.Token
	value []byte
}

// wipe overwrites the token value and drops it.
func (r *reveal) wipe() {
	clear(r.value)
	r.value = nil
}

// mintedMsg carries a new token from the mint command to the screen.
type mintedMsg struct {
	agent string
	token store.Token
	value []byte
	err   error
}

// parseTTL reads a Go duration or a number of days ("30d"); empty is none.
func parseTTL(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err == nil && n > 0 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	} else if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d, nil
	}
	return 0, fmt.Errorf("expires in %q: give a duration like 30d, 12h or 90m", s)
}

// tokenLine describes a token record (never its value).
func tokenLine(t *store.Token, now time.Time) string {
	s := t.ID
	if t.Label != "" {
		s += " (" + t.Label + ")"
	}
	s += "  created " + ago(now, t.CreatedAt)
	switch {
	case !t.RevokedAt.IsZero():
		s += "  revoked " + ago(now, t.RevokedAt)
	case t.ExpiresAt.IsZero():
		s += "  never expires"
	case now.Before(t.ExpiresAt):
		s += "  expires in " + short(t.ExpiresAt.Sub(now))
	default:
		s += "  expired"
	}
	return s
}

// view shows the token once, with what to do with it.
func (r *reveal) view(c *common) string {
	st := c.st
	exp := "never expires"
	if !r.token.ExpiresAt.IsZero() {
		exp = "expires " + r.token.ExpiresAt.In(c.loc).Format("2006-01-02 15:04")
	}
	body := st.Title.Render("New token for "+r.agent) + "\n\n" +
		st.Token.Render(string(r.value)) + "\n\n" +
		st.Warning.Render("! This is the only time the token is shown.") + "\n" +
		"Copy it into the agent's configuration now; agw keeps only its hash.\n" +
		st.Muted.Render("id "+r.token.ID+" · "+exp) + "\n\n" +
		st.Muted.Render("enter: I saved it, remove it from the screen")
	return st.Box.Width(max(20, c.width-2)).Render(body)
}
