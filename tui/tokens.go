package tui

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/agw-dev/agw/admin"
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
		"Copy it now: select it with the mouse (shift+drag in most terminals)\n" +
		"and paste it into the agent's configuration. agw keeps only its hash.\n" +
		st.Muted.Render("id "+r.token.ID+" · "+exp) + "\n\n" +
		st.Muted.Render("enter: I saved it, remove it from the screen")
	return st.Box.Width(max(20, c.width-2)).Render(body)
}

// tokensScreen lists every agent's tokens (never their values), mints one
// and shows it once, and revokes one after asking.
type tokensScreen struct {
	c      *common
	table  *rowTable
	list   []store.Token
	agents []string

	form    *form
	confirm *confirm
	reveal  *reveal
}

func newTokensScreen(c *common) *tokensScreen {
	return &tokensScreen{c: c, table: newRowTable(c, 2,
		column{"AGENT", 16}, column{"ID", 14}, column{"LABEL", 10}, column{"CREATED", 9}, column{"STATE", 18})}
}

func (s *tokensScreen) title() string { return "Tokens" }

func (s *tokensScreen) capturing() bool {
	return s.form != nil || s.confirm != nil || s.reveal != nil || s.table.capturing()
}

func (s *tokensScreen) setSize(w, h int) {
	s.table.setSize(w, h)
	if s.form != nil {
		s.form.setWidth(w)
	}
}

func (s *tokensScreen) helpKeys() helpKeys {
	k := s.c.keys
	switch {
	case s.reveal != nil:
		return screenKeys([]key.Binding{k.Dismiss})
	case s.form != nil:
		return s.form.helpKeys()
	case s.confirm != nil:
		return s.confirm.helpKeys()
	}
	return listKeys(s.table, k.Mint, k.Revoke)
}

// tokenState is a token's STATE cell.
func tokenState(t *store.Token, now time.Time) string {
	switch {
	case !t.RevokedAt.IsZero():
		return "revoked " + ago(now, t.RevokedAt)
	case t.ExpiresAt.IsZero():
		return "active, no expiry"
	case now.Before(t.ExpiresAt):
		return "active, " + short(t.ExpiresAt.Sub(now)) + " left"
	}
	return "expired"
}

func (s *tokensScreen) rows() {
	now := s.c.now()
	ts := slices.Clone(s.list)
	slices.SortStableFunc(ts, func(a, b store.Token) int {
		if c := strings.Compare(a.Agent, b.Agent); c != 0 {
			return c
		}
		return b.CreatedAt.Compare(a.CreatedAt) // newest first
	})
	rows := make([]row, 0, len(ts))
	for i := range ts {
		t := &ts[i]
		rows = append(rows, row{t.ID, []string{t.Agent, t.ID, t.Label, ago(now, t.CreatedAt), tokenState(t, now)}})
	}
	s.table.setRows(rows)
}

func (s *tokensScreen) find(id string) *store.Token {
	for i := range s.list {
		if s.list[i].ID == id {
			return &s.list[i]
		}
	}
	return nil
}

func (s *tokensScreen) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case dataMsg:
		if msg.err == nil {
			s.list = msg.tokens
			s.agents = s.agents[:0]
			for _, a := range msg.agents {
				s.agents = append(s.agents, a.Name)
			}
			s.rows()
		}
	case mintedMsg:
		if s.form == nil || !s.form.busy {
			// The form was cancelled while minting: the token exists but
			// nobody asked to see it any more.
			clear(msg.value)
			return nil
		}
		if msg.err != nil {
			s.form.fail(fmt.Errorf("could not mint a token for %s: %w", msg.agent, msg.err))
			return nil
		}
		s.form = nil
		s.reveal = &reveal{agent: msg.agent, token: msg.token, value: msg.value}
		return func() tea.Msg { return actionMsg{info: "minted token " + msg.token.ID + " for " + msg.agent} }
	case tea.KeyMsg:
		return s.key(msg)
	}
	return nil
}

func (s *tokensScreen) key(msg tea.KeyMsg) tea.Cmd {
	k := s.c.keys
	switch {
	case s.reveal != nil:
		if key.Matches(msg, k.Dismiss) || key.Matches(msg, k.Abort) {
			s.reveal.wipe()
			s.reveal = nil
		}
		return nil
	case s.form != nil:
		res, cmd := s.form.update(msg)
		switch res {
		case formCancelled:
			s.form = nil
		case formSubmitted:
			return s.submit()
		}
		return cmd
	case s.confirm != nil:
		cmd, done := s.confirm.update(msg)
		if done {
			s.confirm = nil
		}
		return cmd
	}
	if used, cmd := s.table.update(msg); used {
		return cmd
	}
	id := s.table.selectedKey()
	switch {
	case key.Matches(msg, k.Mint):
		if len(s.agents) == 0 {
			return func() tea.Msg {
				return actionMsg{err: errors.New("could not mint a token: there are no agents yet; add one on the Agents screen (3)")}
			}
		}
		agent := ""
		if t := s.find(id); t != nil {
			agent = t.Agent
		}
		s.form = newForm(s.c, "Mint a token",
			fieldSpec{label: "agent", value: agent, options: slices.Clone(s.agents)},
			fieldSpec{label: "label", placeholder: "optional, e.g. laptop"},
			fieldSpec{label: "expires in", placeholder: "e.g. 30d or 12h; empty: never"})
		s.form.note = "The token is shown once, right after minting. Copy it straight into the agent's configuration."
	case key.Matches(msg, k.Revoke) && id != "":
		t := s.find(id)
		if t == nil {
			return nil
		}
		if !t.Active(s.c.now()) {
			return func() tea.Msg {
				return actionMsg{err: fmt.Errorf("could not revoke token %s: it is already %s", id, tokenState(t, s.c.now()))}
			}
		}
		api := s.c.api
		s.confirm = &confirm{c: s.c,
			prompt: fmt.Sprintf("Revoke token %s of %s? Requests with it are refused at once.", id, t.Agent),
			yes: act("revoke token "+id, "revoked token "+id+" of "+t.Agent, func(ctx context.Context) error {
				_, err := api.RevokeToken(ctx, id)
				return err
			})}
	}
	return nil
}

func (s *tokensScreen) submit() tea.Cmd {
	f, api := s.form, s.c.api
	req := admin.MintRequest{Agent: f.value(0), Label: f.value(1)}
	ttl, err := parseTTL(f.value(2))
	if err != nil {
		f.fail(err)
		f.focusOn(2)
		return nil
	}
	req.TTL = store.Duration(ttl)
	f.busy = true
	return func() tea.Msg {
		mt, err := call(func(ctx context.Context) (*admin.MintedToken, error) { return api.MintToken(ctx, req) })
		if err != nil {
			return mintedMsg{agent: req.Agent, err: err}
		}
		// Keep the value only as bytes we can overwrite, and drop the
		// string the client decoded.
		m := mintedMsg{agent: req.Agent, token: mt.Token, value: []byte(mt.Value)}
		mt.Value = ""
		return m
	}
}

func (s *tokensScreen) view() string {
	switch {
	case s.reveal != nil:
		return s.reveal.view(s.c)
	case s.form != nil:
		return s.form.view()
	case s.confirm != nil:
		return s.confirm.view()
	}
	if s.table.empty() {
		return s.c.st.Muted.Render("No tokens yet: press m to mint one for an agent.")
	}
	return s.table.view()
}
