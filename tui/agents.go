package tui

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/table"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/store"
)

// agentsScreen lists agents; adds, enables and disables them; mints and
// revokes their tokens; and adds and removes their grants.
type agentsScreen struct {
	c     *common
	table table.Model
	list  []admin.AgentSummary

	form     *form
	formKind agentForm
	formFor  string // the agent a mint or grant form is for
	picker   *picker
	confirm  *confirm
	reveal   *reveal
	loading  string // "loading…" while a detail for a picker is fetched

	detail     *viewport.Model
	detailName string
	pending    agentWant // what the awaited agentDetailMsg is for
}

type agentForm int

const (
	formAddAgent agentForm = iota
	formMint
	formGrant
)

type agentWant int

const (
	wantNothing agentWant = iota
	wantDetail
	wantRevoke
	wantUngrant
)

// agentDetailMsg answers a detail request.
type agentDetailMsg struct {
	name   string
	want   agentWant
	detail *admin.AgentDetail
	err    error
}

var agentCols = []table.Column{
	{Title: "NAME", Width: 18},
	{Title: "ENABLED", Width: 7},
	{Title: "TOKENS", Width: 6},
	{Title: "GRANTS", Width: 6},
	{Title: "LAST SEEN", Width: 20},
}

func newAgentsScreen(c *common) *agentsScreen {
	return &agentsScreen{c: c, table: newTable(c, agentCols)}
}

func (s *agentsScreen) title() string { return "Agents" }

func (s *agentsScreen) capturing() bool {
	return s.form != nil || s.picker != nil || s.confirm != nil || s.reveal != nil || s.loading != ""
}

func (s *agentsScreen) setSize(w, h int) {
	s.table.SetColumns(flex(agentCols, w, 4))
	s.table.SetHeight(h - 1)
	if s.form != nil {
		s.form.setWidth(w)
	}
	if s.detail != nil {
		s.detail.Width, s.detail.Height = w, h
	}
}

func (s *agentsScreen) helpKeys() helpKeys {
	k := s.c.keys
	switch {
	case s.reveal != nil:
		return screenKeys([]key.Binding{k.Dismiss})
	case s.form != nil:
		return s.form.helpKeys()
	case s.picker != nil:
		return s.picker.helpKeys()
	case s.confirm != nil:
		return s.confirm.helpKeys()
	case s.loading != "":
		return screenKeys([]key.Binding{k.Abort})
	case s.detail != nil:
		return screenKeys([]key.Binding{k.Up, k.Down, k.Back})
	}
	return screenKeys(
		[]key.Binding{k.Add, k.Toggle, k.Mint, k.Revoke, k.GrantAdd, k.GrantDel},
		[]key.Binding{k.Open, k.Remove, k.Up, k.Down},
	)
}

func (s *agentsScreen) rows() {
	now := s.c.now()
	rows := make([]table.Row, 0, len(s.list))
	for _, a := range s.list {
		enabled := "yes"
		if a.Disabled {
			enabled = "no"
		}
		rows = append(rows, table.Row{a.Name, enabled, strconv.Itoa(a.Tokens), strconv.Itoa(a.Grants), ago(now, a.LastSeen)})
	}
	setRows(&s.table, rows, selected(s.table))
}

func (s *agentsScreen) find(name string) *admin.AgentSummary {
	for i := range s.list {
		if s.list[i].Name == name {
			return &s.list[i]
		}
	}
	return nil
}

func (s *agentsScreen) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case dataMsg:
		if msg.err == nil {
			s.list = msg.agents
			s.rows()
		}
	case actionMsg:
		if s.form != nil && s.form.busy {
			if msg.err != nil {
				s.form.fail(msg.err)
			} else {
				s.form = nil
			}
		}
	case mintedMsg:
		if s.form == nil || !s.form.busy || s.formKind != formMint {
			// The form was cancelled while minting: the token exists but
			// nobody asked to see it any more.
			clear(msg.value)
			return nil
		}
		if msg.err != nil {
			s.form.fail(msg.err)
			return func() tea.Msg { return actionMsg{err: fmt.Errorf("mint token: %w", msg.err)} }
		}
		s.form = nil
		s.reveal = &reveal{agent: msg.agent, token: msg.token, value: msg.value}
		return func() tea.Msg { return actionMsg{info: "minted token " + msg.token.ID + " for " + msg.agent} }
	case agentDetailMsg:
		return s.detailArrived(msg)
	case tea.KeyMsg:
		return s.key(msg)
	}
	return nil
}

func (s *agentsScreen) key(msg tea.KeyMsg) tea.Cmd {
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
	case s.picker != nil:
		return s.picked(msg)
	case s.confirm != nil:
		cmd, done := s.confirm.update(msg)
		if done {
			s.confirm = nil
		}
		return cmd
	case s.loading != "":
		if key.Matches(msg, k.Abort) {
			s.loading, s.pending = "", wantNothing
		}
		return nil
	case s.detail != nil:
		if key.Matches(msg, k.Back) {
			s.detail, s.pending = nil, wantNothing
			return nil
		}
		var cmd tea.Cmd
		*s.detail, cmd = s.detail.Update(msg)
		return cmd
	}

	name := selected(s.table)
	api := s.c.api
	switch {
	case key.Matches(msg, k.Add):
		s.formKind = formAddAgent
		s.form = newForm(s.c, "Add an agent",
			fieldSpec{label: "name", placeholder: "build-bot"},
			fieldSpec{label: "description", placeholder: "optional"})
		s.form.note = "Then mint it a token (m) and grant it backends (g)."
		return nil
	case name == "":
		break
	case key.Matches(msg, k.Toggle):
		a := s.find(name)
		if a == nil {
			return nil
		}
		disable := !a.Disabled
		what := "enabled agent " + name
		if disable {
			what = "disabled agent " + name
		}
		return act(what, func(ctx context.Context) error {
			_, err := api.UpdateAgent(ctx, name, admin.UpdateAgentRequest{Disabled: &disable})
			return err
		})
	case key.Matches(msg, k.Mint):
		s.formKind, s.formFor = formMint, name
		s.form = newForm(s.c, "Mint a token for "+name,
			fieldSpec{label: "label", placeholder: "optional, e.g. laptop"},
			fieldSpec{label: "expires in", placeholder: "e.g. 30d or 12h; empty: never"})
		s.form.note = "The token is shown once. Copy it straight into the agent's configuration."
		return nil
	case key.Matches(msg, k.GrantAdd):
		s.formKind, s.formFor = formGrant, name
		s.form = newForm(s.c, "Grant "+name+" a backend",
			fieldSpec{label: "backend", placeholder: "backend name"},
			fieldSpec{label: "methods", value: "*", placeholder: "GET, POST; * is every method"},
			fieldSpec{label: "paths", value: "/**", placeholder: "/v1/**, /health; /** is every path"})
		s.form.note = "A grant for a backend the agent already has replaces it."
		return nil
	case key.Matches(msg, k.Revoke):
		return s.fetch(name, wantRevoke)
	case key.Matches(msg, k.GrantDel):
		return s.fetch(name, wantUngrant)
	case key.Matches(msg, k.Open):
		vp := viewport.New(s.c.width, s.c.height)
		vp.SetContent(s.c.st.Muted.Render("loading " + name + "…"))
		s.detail = &vp
		return s.fetch(name, wantDetail)
	case key.Matches(msg, k.Remove):
		s.confirm = &confirm{c: s.c,
			prompt: fmt.Sprintf("Remove agent %s? Its tokens stop working and its grants are deleted.", name),
			yes: act("removed agent "+name, func(ctx context.Context) error {
				return api.RemoveAgent(ctx, name)
			})}
		return nil
	}
	var cmd tea.Cmd
	s.table, cmd = s.table.Update(msg)
	return cmd
}

// fetch reads one agent with its tokens and grants for want.
func (s *agentsScreen) fetch(name string, want agentWant) tea.Cmd {
	s.detailName, s.pending = name, want
	if want != wantDetail {
		s.loading = "loading " + name + "…"
	}
	api := s.c.api
	return func() tea.Msg {
		d, err := call(func(ctx context.Context) (*admin.AgentDetail, error) { return api.Agent(ctx, name) })
		return agentDetailMsg{name: name, want: want, detail: d, err: err}
	}
}

func (s *agentsScreen) detailArrived(msg agentDetailMsg) tea.Cmd {
	if msg.name != s.detailName || msg.want != s.pending {
		return nil // the user moved on
	}
	s.pending, s.loading = wantNothing, ""
	if msg.err != nil {
		if s.detail != nil {
			s.detail.SetContent(s.c.st.ErrorBar.Render("✗ " + describeErr(msg.err)))
			return nil
		}
		return func() tea.Msg { return actionMsg{err: fmt.Errorf("read agent %s: %w", msg.name, msg.err)} }
	}
	d := msg.detail
	now := s.c.now()
	switch msg.want {
	case wantDetail:
		if s.detail != nil {
			s.detail.SetContent(s.agentView(d))
		}
	case wantRevoke:
		var items, ids []string
		for _, t := range d.Tokens {
			if !t.Active(now) {
				continue
			}
			items = append(items, tokenLine(&t, now))
			ids = append(ids, t.ID)
		}
		s.picker = newPicker(s.c, "Revoke which token of "+d.Name+"?", items, ids)
	case wantUngrant:
		var items, ids []string
		for _, g := range d.Grants {
			items = append(items, grantLine(g))
			ids = append(ids, g.Backend)
		}
		s.picker = newPicker(s.c, "Remove which grant of "+d.Name+"?", items, ids)
	}
	return nil
}

// picked handles a key while the token or grant picker is open.
func (s *agentsScreen) picked(msg tea.KeyMsg) tea.Cmd {
	id, done := s.picker.update(msg)
	if !done {
		return nil
	}
	title := s.picker.title
	s.picker = nil
	if id == "" {
		return nil
	}
	api, agent := s.c.api, s.detailName
	if strings.HasPrefix(title, "Revoke") {
		s.confirm = &confirm{c: s.c,
			prompt: fmt.Sprintf("Revoke token %s of %s? Requests with it are refused at once.", id, agent),
			yes: act("revoked token "+id, func(ctx context.Context) error {
				_, err := api.RevokeToken(ctx, id)
				return err
			})}
		return nil
	}
	s.confirm = &confirm{c: s.c,
		prompt: fmt.Sprintf("Remove the grant of %s on %s? Its requests there are denied at once.", agent, id),
		yes: act("removed the grant of "+agent+" on "+id, func(ctx context.Context) error {
			return api.RemoveGrant(ctx, agent, id)
		})}
	return nil
}

func (s *agentsScreen) submit() tea.Cmd {
	f, api := s.form, s.c.api
	switch s.formKind {
	case formAddAgent:
		a := store.Agent{Name: f.value(0), Description: f.value(1)}
		if a.Name == "" {
			f.fail(errors.New("give the agent a name"))
			return nil
		}
		f.busy = true
		return act("added agent "+a.Name, func(ctx context.Context) error {
			_, err := api.AddAgent(ctx, a)
			return err
		})
	case formGrant:
		g := store.Grant{
			Agent:   s.formFor,
			Backend: f.value(0),
			Methods: splitList(strings.ToUpper(f.value(1))),
			Paths:   splitList(f.value(2)),
		}
		if g.Backend == "" {
			f.fail(errors.New("name the backend to grant"))
			return nil
		}
		f.busy = true
		return act(fmt.Sprintf("granted %s on %s", g.Agent, g.Backend), func(ctx context.Context) error {
			_, err := api.PutGrant(ctx, g)
			return err
		})
	}
	req := admin.MintRequest{Agent: s.formFor, Label: f.value(0)}
	ttl, err := parseTTL(f.value(1))
	if err != nil {
		f.fail(err)
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

func (s *agentsScreen) agentView(d *admin.AgentDetail) string {
	st := s.c.st
	now := s.c.now()
	state := "enabled"
	if d.Disabled {
		state = "disabled"
	}
	pairs := []string{"state", state}
	if d.Description != "" {
		pairs = append(pairs, "description", d.Description)
	}
	if d.IdP != "" {
		pairs = append(pairs, "identity", d.IdP+" subject "+d.Subject)
	}
	if d.Rate != "" {
		pairs = append(pairs, "rate", fmt.Sprintf("%s burst %d", d.Rate, d.Burst))
	}
	pairs = append(pairs, "created", ago(now, d.CreatedAt))
	var b strings.Builder
	b.WriteString(st.Title.Render("Agent "+d.Name) + st.Muted.Render("  (esc to go back)") + "\n\n")
	b.WriteString(s.c.kv(pairs...))
	b.WriteString("\n\n" + st.Title.Render(fmt.Sprintf("Grants (%d)", len(d.Grants))))
	if len(d.Grants) == 0 {
		b.WriteString("\n" + st.Muted.Render("none: every request is denied"))
	}
	for _, g := range d.Grants {
		b.WriteString("\n" + grantLine(g))
	}
	b.WriteString("\n\n" + st.Title.Render(fmt.Sprintf("Tokens (%d)", len(d.Tokens))))
	if len(d.Tokens) == 0 {
		b.WriteString("\n" + st.Muted.Render("none"))
	}
	for i := range d.Tokens {
		b.WriteString("\n" + tokenLine(&d.Tokens[i], now))
	}
	return b.String()
}

func (s *agentsScreen) view() string {
	st := s.c.st
	switch {
	case s.reveal != nil:
		return s.reveal.view(s.c)
	case s.form != nil:
		return s.form.view()
	case s.picker != nil:
		return s.picker.view()
	case s.confirm != nil:
		return s.confirm.view()
	case s.loading != "":
		return st.Muted.Render(s.loading)
	case s.detail != nil:
		return s.detail.View()
	}
	if len(s.list) == 0 {
		return st.Muted.Render("No agents yet: press a to add one.")
	}
	return s.table.View()
}
