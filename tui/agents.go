package tui

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/store"
)

// agentsScreen lists agents; adds, enables, disables and removes them; and
// shows one with its grants and tokens. Tokens and grants are managed on
// their own screens.
type agentsScreen struct {
	c     *common
	table *rowTable
	list  []admin.AgentSummary

	form    *form
	confirm *confirm

	detail     *viewport.Model
	detailName string
}

// agentDetailMsg answers a detail request.
type agentDetailMsg struct {
	name   string
	detail *admin.AgentDetail
	err    error
}

func newAgentsScreen(c *common) *agentsScreen {
	return &agentsScreen{c: c, table: newRowTable(c, 4,
		column{"NAME", 18}, column{"ENABLED", 7}, column{"TOKENS", 6}, column{"GRANTS", 6}, column{"LAST SEEN", 20})}
}

func (s *agentsScreen) title() string { return "Agents" }

func (s *agentsScreen) capturing() bool {
	return s.form != nil || s.confirm != nil || s.table.capturing()
}

func (s *agentsScreen) setSize(w, h int) {
	s.table.setSize(w, h)
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
	case s.form != nil:
		return s.form.helpKeys()
	case s.confirm != nil:
		return s.confirm.helpKeys()
	case s.detail != nil:
		return screenKeys([]key.Binding{k.Up, k.Down, k.Back})
	}
	return listKeys(s.table, k.Add, k.Toggle, k.Open, k.Remove)
}

func (s *agentsScreen) rows() {
	now := s.c.now()
	rows := make([]row, 0, len(s.list))
	for _, a := range s.list {
		enabled := "yes"
		if a.Disabled {
			enabled = "no"
		}
		rows = append(rows, row{a.Name, []string{a.Name, enabled, strconv.Itoa(a.Tokens), strconv.Itoa(a.Grants), ago(now, a.LastSeen)}})
	}
	s.table.setRows(rows)
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
	case agentDetailMsg:
		if s.detail != nil && msg.name == s.detailName {
			if msg.err != nil {
				s.detail.SetContent(s.c.st.ErrorBar.Render("✗ Error: " + describeErr(msg.err)))
			} else {
				s.detail.SetContent(s.agentView(msg.detail))
			}
		}
	case tea.KeyMsg:
		return s.key(msg)
	}
	return nil
}

func (s *agentsScreen) key(msg tea.KeyMsg) tea.Cmd {
	k := s.c.keys
	switch {
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
	case s.detail != nil:
		if key.Matches(msg, k.Back) {
			s.detail = nil
			return nil
		}
		var cmd tea.Cmd
		*s.detail, cmd = s.detail.Update(msg)
		return cmd
	}
	if used, cmd := s.table.update(msg); used {
		return cmd
	}

	name := s.table.selectedKey()
	api := s.c.api
	switch {
	case key.Matches(msg, k.Add):
		s.form = newForm(s.c, "Add an agent",
			fieldSpec{label: "name", placeholder: "build-bot"},
			fieldSpec{label: "description", placeholder: "optional"})
		s.form.note = "Then mint it a token (Tokens screen, 4) and grant it backends (Grants screen, 5)."
	case name == "":
	case key.Matches(msg, k.Toggle):
		a := s.find(name)
		if a == nil {
			return nil
		}
		disable := !a.Disabled
		doing, done := "enable agent "+name, "enabled agent "+name
		if disable {
			doing, done = "disable agent "+name, "disabled agent "+name
		}
		return act(doing, done, func(ctx context.Context) error {
			_, err := api.UpdateAgent(ctx, name, admin.UpdateAgentRequest{Disabled: &disable})
			return err
		})
	case key.Matches(msg, k.Open):
		vp := viewport.New(s.c.width, s.c.height)
		vp.SetContent(s.c.st.Muted.Render("loading " + name + "…"))
		s.detail, s.detailName = &vp, name
		return func() tea.Msg {
			d, err := call(func(ctx context.Context) (*admin.AgentDetail, error) { return api.Agent(ctx, name) })
			return agentDetailMsg{name: name, detail: d, err: err}
		}
	case key.Matches(msg, k.Remove):
		s.confirm = &confirm{c: s.c,
			prompt: fmt.Sprintf("Remove agent %s? Its tokens stop working and its grants are deleted.", name),
			yes: act("remove agent "+name, "removed agent "+name, func(ctx context.Context) error {
				return api.RemoveAgent(ctx, name)
			})}
	}
	return nil
}

func (s *agentsScreen) submit() tea.Cmd {
	f, api := s.form, s.c.api
	a := store.Agent{Name: f.value(0), Description: f.value(1)}
	if a.Name == "" {
		f.fail(errors.New("give the agent a name"))
		return nil
	}
	f.busy = true
	return act("add agent "+a.Name, "added agent "+a.Name, func(ctx context.Context) error {
		_, err := api.AddAgent(ctx, a)
		return err
	})
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
	case s.form != nil:
		return s.form.view()
	case s.confirm != nil:
		return s.confirm.view()
	case s.detail != nil:
		return s.detail.View()
	}
	if s.table.empty() {
		return st.Muted.Render("No agents yet: press a to add one.")
	}
	return s.table.view()
}
