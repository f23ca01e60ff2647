package tui

import (
	"context"
	"fmt"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/agw-dev/agw/store"
)

// idpsScreen lists the identity providers whose tokens agents may present
// instead of an agw token, and adds and removes them.
type idpsScreen struct {
	c     *common
	table *rowTable
	list  []store.IdP

	form    *form
	confirm *confirm
}

func newIdPsScreen(c *common) *idpsScreen {
	return &idpsScreen{c: c, table: newRowTable(c, 1,
		column{"NAME", 14}, column{"ISSUER", 30}, column{"AUDIENCE", 18}, column{"CLAIM", 5})}
}

func (s *idpsScreen) title() string { return "IdPs" }

func (s *idpsScreen) capturing() bool {
	return s.form != nil || s.confirm != nil || s.table.capturing()
}

func (s *idpsScreen) setSize(w, h int) {
	s.table.setSize(w, h)
	if s.form != nil {
		s.form.setWidth(w)
	}
}

func (s *idpsScreen) helpKeys() helpKeys {
	k := s.c.keys
	switch {
	case s.form != nil:
		return s.form.helpKeys()
	case s.confirm != nil:
		return s.confirm.helpKeys()
	}
	return listKeys(s.table, k.Add, k.Remove)
}

func (s *idpsScreen) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case dataMsg:
		if msg.err == nil {
			s.list = msg.idps
			rows := make([]row, 0, len(s.list))
			for _, p := range s.list {
				rows = append(rows, row{p.Name, []string{p.Name, p.Issuer, p.Audience, p.Claim}})
			}
			s.table.setRows(rows)
		}
	case actionMsg:
		if s.form != nil && s.form.busy {
			if msg.err != nil {
				s.form.fail(msg.err)
			} else {
				s.form = nil
			}
		}
	case tea.KeyMsg:
		return s.key(msg)
	}
	return nil
}

func (s *idpsScreen) key(msg tea.KeyMsg) tea.Cmd {
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
	}
	if used, cmd := s.table.update(msg); used {
		return cmd
	}
	name := s.table.selectedKey()
	switch {
	case key.Matches(msg, k.Add):
		s.form = newForm(s.c, "Add an identity provider",
			fieldSpec{label: "name", placeholder: "okta"},
			fieldSpec{label: "issuer", placeholder: "https://example.okta.com/oauth2/default"},
			fieldSpec{label: "audience", placeholder: "the aud its tokens carry for agw, e.g. api://agw"},
			fieldSpec{label: "claim", value: "sub", options: store.IdPClaims})
		s.form.note = "Agents bound to this IdP present its JWTs; claim names the token claim that identifies the agent."
	case key.Matches(msg, k.Remove) && name != "":
		api := s.c.api
		s.confirm = &confirm{c: s.c,
			prompt: fmt.Sprintf("Remove identity provider %s? Tokens it issues stop being accepted.", name),
			yes: act("remove identity provider "+name, "removed identity provider "+name, func(ctx context.Context) error {
				return api.RemoveIdP(ctx, name)
			})}
	}
	return nil
}

func (s *idpsScreen) submit() tea.Cmd {
	f, api := s.form, s.c.api
	p := store.IdP{Name: f.value(0), Issuer: f.value(1), Audience: f.value(2), Claim: f.value(3)}
	bad := func(field int, format string, a ...any) tea.Cmd {
		f.fail(fmt.Errorf(format, a...))
		f.focusOn(field)
		return nil
	}
	if p.Name == "" {
		return bad(0, "give the identity provider a name")
	}
	if p.Issuer == "" {
		return bad(1, "give the issuer URL the IdP puts in its tokens (their iss claim)")
	}
	if p.Audience == "" {
		return bad(2, "give the audience its tokens carry for agw (their aud claim)")
	}
	f.busy = true
	return act("add identity provider "+p.Name, "added identity provider "+p.Name, func(ctx context.Context) error {
		_, err := api.AddIdP(ctx, p)
		return err
	})
}

func (s *idpsScreen) view() string {
	switch {
	case s.form != nil:
		return s.form.view()
	case s.confirm != nil:
		return s.confirm.view()
	}
	if s.table.empty() {
		return s.c.st.Muted.Render("No identity providers: agents use agw tokens. Press a to add one.")
	}
	return s.table.view()
}
