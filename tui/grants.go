package tui

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/agw-dev/agw/store"
)

// grantsScreen lists every grant, by agent or by backend, and adds, edits
// and removes them. Its form starts empty: a grant allows only what is
// typed, and "every method" or "every path" must be typed as * or /**.
type grantsScreen struct {
	c         *common
	table     *rowTable
	list      []store.Grant
	agents    []string
	backends  []string
	byBackend bool

	form    *form
	editing *store.Grant // the grant the form edits; nil when adding
	confirm *confirm
}

// Fields of the grant form.
const (
	gfAgent = iota
	gfBackend
	gfMethods
	gfPaths
)

func newGrantsScreen(c *common) *grantsScreen {
	s := &grantsScreen{c: c}
	s.setColumns()
	return s
}

// setColumns puts the column the list is sorted by first.
func (s *grantsScreen) setColumns() {
	first, second := column{"AGENT", 16}, column{"BACKEND", 14}
	if s.byBackend {
		first, second = column{"BACKEND", 14}, column{"AGENT", 16}
	}
	t := newRowTable(s.c, 3, first, second, column{"METHODS", 14}, column{"PATHS", 20}, column{"RATE", 8})
	if s.table != nil {
		t.filter.SetValue(s.table.filter.Value())
		t.setSize(s.table.width, s.table.height)
	}
	s.table = t
}

func (s *grantsScreen) title() string { return "Grants" }

func (s *grantsScreen) capturing() bool {
	return s.form != nil || s.confirm != nil || s.table.capturing()
}

func (s *grantsScreen) setSize(w, h int) {
	s.table.setSize(w, h-1) // the last line says how the list is sorted
	if s.form != nil {
		s.form.setWidth(w)
	}
}

func (s *grantsScreen) helpKeys() helpKeys {
	k := s.c.keys
	switch {
	case s.form != nil:
		return s.form.helpKeys()
	case s.confirm != nil:
		return s.confirm.helpKeys()
	}
	return listKeys(s.table, k.Add, k.Edit, k.Remove, k.GroupBy)
}

func grantKey(agent, backend string) string { return agent + "\x00" + backend }

func (s *grantsScreen) rows() {
	gs := slices.Clone(s.list)
	slices.SortStableFunc(gs, func(a, b store.Grant) int {
		if s.byBackend {
			return strings.Compare(grantKey(a.Backend, a.Agent), grantKey(b.Backend, b.Agent))
		}
		return strings.Compare(grantKey(a.Agent, a.Backend), grantKey(b.Agent, b.Backend))
	})
	rows := make([]row, 0, len(gs))
	for _, g := range gs {
		first, second := g.Agent, g.Backend
		if s.byBackend {
			first, second = g.Backend, g.Agent
		}
		rate := g.Rate
		if rate == "" {
			rate = "-"
		}
		rows = append(rows, row{grantKey(g.Agent, g.Backend),
			[]string{first, second, strings.Join(g.Methods, ","), strings.Join(g.Paths, " "), rate}})
	}
	s.table.setRows(rows)
}

func (s *grantsScreen) find(k string) *store.Grant {
	for i := range s.list {
		if grantKey(s.list[i].Agent, s.list[i].Backend) == k {
			return &s.list[i]
		}
	}
	return nil
}

func (s *grantsScreen) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case dataMsg:
		if msg.err == nil {
			s.list = msg.grants
			s.agents, s.backends = s.agents[:0], s.backends[:0]
			for _, a := range msg.agents {
				s.agents = append(s.agents, a.Name)
			}
			for _, b := range msg.backends {
				s.backends = append(s.backends, b.Name)
			}
			s.rows()
		}
	case actionMsg:
		if s.form != nil && s.form.busy {
			if msg.err != nil {
				s.form.fail(msg.err)
			} else {
				s.form, s.editing = nil, nil
			}
		}
	case tea.KeyMsg:
		return s.key(msg)
	}
	return nil
}

func (s *grantsScreen) key(msg tea.KeyMsg) tea.Cmd {
	k := s.c.keys
	switch {
	case s.form != nil:
		res, cmd := s.form.update(msg)
		switch res {
		case formCancelled:
			s.form, s.editing = nil, nil
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
	sel := s.find(s.table.selectedKey())
	switch {
	case key.Matches(msg, k.Add):
		switch {
		case len(s.agents) == 0:
			return failed("could not add a grant: there are no agents yet; add one on the Agents screen (3)")
		case len(s.backends) == 0:
			return failed("could not add a grant: there are no backends yet; add one on the Backends screen (2)")
		}
		agent, backend := "", ""
		if sel != nil {
			agent, backend = sel.Agent, sel.Backend
		}
		s.editing = nil
		s.openForm("Add a grant", agent, backend, "", "", "")
	case key.Matches(msg, k.GroupBy):
		s.byBackend = !s.byBackend
		keep := s.table.selectedKey()
		s.setColumns()
		s.rows()
		s.table.refilter(keep)
	case sel == nil:
	case key.Matches(msg, k.Edit), key.Matches(msg, k.Open):
		g := *sel
		s.editing = &g
		const fixed = "(fixed: remove the grant and add another to change)"
		s.openForm("Edit the grant of "+g.Agent+" on "+g.Backend, g.Agent, g.Backend,
			strings.Join(g.Methods, ", "), strings.Join(g.Paths, ", "), fixed)
	case key.Matches(msg, k.Remove):
		g, api := *sel, s.c.api
		s.confirm = &confirm{c: s.c,
			prompt: fmt.Sprintf("Remove the grant of %s on %s? Its requests there are denied at once.", g.Agent, g.Backend),
			yes: act("remove the grant of "+g.Agent+" on "+g.Backend, "removed the grant of "+g.Agent+" on "+g.Backend,
				func(ctx context.Context) error { return api.RemoveGrant(ctx, g.Agent, g.Backend) })}
	}
	return nil
}

// failed is a command reporting an action refused before it was sent.
func failed(msg string) tea.Cmd {
	return func() tea.Msg { return actionMsg{err: errors.New(msg)} }
}

func (s *grantsScreen) openForm(title, agent, backend, methods, paths, fixed string) {
	agentF := fieldSpec{label: "agent", value: agent, options: slices.Clone(s.agents)}
	backendF := fieldSpec{label: "backend", value: backend, options: slices.Clone(s.backends)}
	if fixed != "" {
		agentF = fieldSpec{label: "agent", value: agent, readonly: fixed}
		backendF = fieldSpec{label: "backend", value: backend, readonly: fixed}
	}
	s.form = newForm(s.c, title, agentF, backendF,
		fieldSpec{label: "methods", value: methods, placeholder: "e.g. GET, POST; * for every method"},
		fieldSpec{label: "paths", value: paths, placeholder: "e.g. /v1/chat/**, /health; /** for every path"})
	s.form.note = "The grant allows only what is typed. An empty methods or paths field is refused: " +
		"type * to allow every method, /** to allow every path."
}

func (s *grantsScreen) submit() tea.Cmd {
	f, api := s.form, s.c.api
	g := store.Grant{Agent: f.value(gfAgent), Backend: f.value(gfBackend)}
	if s.editing != nil {
		g = *s.editing // keep its rate and burst
	}
	g.Methods = splitList(strings.ToUpper(f.value(gfMethods)))
	g.Paths = splitList(f.value(gfPaths))
	bad := func(field int, format string, a ...any) tea.Cmd {
		f.fail(fmt.Errorf(format, a...))
		f.focusOn(field)
		return nil
	}
	if len(g.Methods) == 0 {
		return bad(gfMethods, "methods is empty: type the methods to allow, like GET, POST, or * for every method")
	}
	for _, m := range g.Methods {
		if m != "*" && strings.ContainsFunc(m, func(r rune) bool { return r < 'A' || r > 'Z' }) {
			return bad(gfMethods, "method %q: type HTTP methods like GET, POST, or * for every method", m)
		}
	}
	if len(g.Paths) == 0 {
		return bad(gfPaths, "paths is empty: type the paths to allow, like /v1/**, or /** for every path")
	}
	for _, p := range g.Paths {
		if !strings.HasPrefix(p, "/") {
			return bad(gfPaths, "path %q: a path starts with /, like /v1/** (/** is every path)", p)
		}
	}
	what := "the grant of " + g.Agent + " on " + g.Backend
	if s.editing == nil {
		if old := s.find(grantKey(g.Agent, g.Backend)); old != nil {
			return bad(gfBackend, "%s already has a grant on %s (%s): edit that one with e instead of adding another",
				g.Agent, g.Backend, strings.Join(old.Methods, ",")+" "+strings.Join(old.Paths, " "))
		}
		f.busy = true
		return act("add "+what, "added "+what, func(ctx context.Context) error {
			_, err := api.PutGrant(ctx, g)
			return err
		})
	}
	f.busy = true
	return act("change "+what, "changed "+what, func(ctx context.Context) error {
		_, err := api.PutGrant(ctx, g)
		return err
	})
}

func (s *grantsScreen) view() string {
	switch {
	case s.form != nil:
		return s.form.view()
	case s.confirm != nil:
		return s.confirm.view()
	}
	if s.table.empty() {
		return s.c.st.Muted.Render("No grants yet: every request is denied. Press a to grant an agent a backend.")
	}
	order := "by agent"
	if s.byBackend {
		order = "by backend"
	}
	return s.table.view() + "\n" + s.c.st.Muted.Render("sorted "+order+" · s to sort "+map[bool]string{false: "by backend", true: "by agent"}[s.byBackend])
}
