package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/store"
)

// backendsScreen lists backends; adds, rotates and removes them; and shows
// one with the grants that reference it.
type backendsScreen struct {
	c     *common
	table *rowTable
	list  []store.Backend

	form     *form
	rotating string         // backend whose secret the form replaces
	editing  *store.Backend // the backend the form edits; nil when adding
	confirm  *confirm

	detail     *viewport.Model
	detailName string
}

// backendDetailMsg answers a detail request.
type backendDetailMsg struct {
	name   string
	detail *admin.BackendDetail
	err    error
}

func newBackendsScreen(c *common) *backendsScreen {
	return &backendsScreen{c: c, table: newRowTable(c, 1,
		column{"NAME", 14}, column{"HOSTS", 30}, column{"INJECT", 7}, column{"CRED", 4}, column{"SET", 8})}
}

func (s *backendsScreen) title() string { return "Backends" }
func (s *backendsScreen) capturing() bool {
	return s.form != nil || s.confirm != nil || s.table.capturing()
}

func (s *backendsScreen) setSize(w, h int) {
	s.table.setSize(w, h)
	if s.form != nil {
		s.form.setWidth(w)
	}
	if s.detail != nil {
		s.detail.Width, s.detail.Height = w, h
	}
}

func (s *backendsScreen) helpKeys() helpKeys {
	k := s.c.keys
	switch {
	case s.form != nil:
		return s.form.helpKeys()
	case s.confirm != nil:
		return s.confirm.helpKeys()
	case s.detail != nil:
		return screenKeys([]key.Binding{k.Up, k.Down, k.Back})
	}
	return listKeys(s.table, k.Add, k.Edit, k.Open, k.Rotate, k.Remove)
}

func (s *backendsScreen) rows() {
	now := s.c.now()
	rows := make([]row, 0, len(s.list))
	for _, b := range s.list {
		rows = append(rows, row{b.Name, []string{
			b.Name,
			strings.Join(b.Hosts, ", "),
			string(b.Inject),
			fmt.Sprintf("v%d", b.CredentialVersion),
			short(now.Sub(b.CredentialSetAt)),
		}})
	}
	s.table.setRows(rows)
}

func (s *backendsScreen) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case dataMsg:
		if msg.err == nil {
			s.list = msg.backends
			s.rows()
		}
		return nil
	case actionMsg:
		if s.form != nil && s.form.busy {
			if msg.err != nil {
				s.form.fail(msg.err) // everything typed stays, the secret too
			} else {
				s.closeForm()
			}
		}
		return nil
	case backendDetailMsg:
		if s.detail != nil && msg.name == s.detailName {
			s.detail.SetContent(s.detailView(msg))
		}
		return nil
	case tea.KeyMsg:
		return s.key(msg)
	}
	return nil
}

func (s *backendsScreen) key(msg tea.KeyMsg) tea.Cmd {
	k := s.c.keys
	switch {
	case s.form != nil:
		res, cmd := s.form.update(msg)
		switch res {
		case formCancelled:
			s.closeForm()
		case formSubmitted:
			return s.submit()
		default:
			if s.rotating == "" {
				s.showRelevantFields()
			}
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
	switch {
	case key.Matches(msg, k.Add):
		s.openAdd(nil)
	case key.Matches(msg, k.Edit) && name != "":
		if b := s.find(name); b != nil {
			s.openAdd(b)
		}
	case key.Matches(msg, k.Rotate) && name != "":
		s.rotating, s.editing = name, nil
		s.form = newForm(s.c, "Rotate the secret of "+name,
			fieldSpec{label: "new secret", placeholder: "typed, never shown", secret: true})
		s.form.note = "The new version is used for the next request; the old one is kept sealed."
	case key.Matches(msg, k.Remove) && name != "":
		api := s.c.api
		s.confirm = &confirm{c: s.c,
			prompt: fmt.Sprintf("Remove backend %s? Its credentials and grants are deleted too.", name),
			yes: act("remove backend "+name, "removed backend "+name, func(ctx context.Context) error {
				return api.RemoveBackend(ctx, name)
			})}
	case key.Matches(msg, k.Open) && name != "":
		vp := viewport.New(s.c.width, s.c.height)
		vp.SetContent(s.c.st.Muted.Render("loading " + name + "…"))
		s.detail, s.detailName = &vp, name
		api := s.c.api
		return func() tea.Msg {
			d, err := call(func(ctx context.Context) (*admin.BackendDetail, error) { return api.Backend(ctx, name) })
			return backendDetailMsg{name: name, detail: d, err: err}
		}
	}
	return nil
}

func (s *backendsScreen) find(name string) *store.Backend {
	for i := range s.list {
		if s.list[i].Name == name {
			return &s.list[i]
		}
	}
	return nil
}

// closeForm wipes the form's secret and closes it.
func (s *backendsScreen) closeForm() {
	if s.form != nil {
		s.form.wipe()
	}
	s.form, s.rotating, s.editing = nil, "", nil
}

func (s *backendsScreen) submit() tea.Cmd {
	switch {
	case s.editing != nil:
		return s.submitEdit()
	case s.rotating == "":
		return s.submitAdd()
	}
	f, api := s.form, s.c.api
	name, secret := s.rotating, f.value(0)
	if secret == "" {
		f.fail(errors.New("type the new secret"))
		return nil
	}
	f.busy = true
	return act("rotate the secret of "+name, "rotated the secret of "+name, func(ctx context.Context) error {
		_, err := api.RotateBackend(ctx, name, admin.SecretInput{Value: secret})
		return err
	})
}

func (s *backendsScreen) detailView(msg backendDetailMsg) string {
	st := s.c.st
	if msg.err != nil {
		return st.ErrorBar.Render("✗ Error: " + describeErr(msg.err))
	}
	d := msg.detail
	now := s.c.now()
	upstream := d.Upstream
	if upstream == "" {
		upstream = "the requested host on :443, resolved upstream"
	}
	pairs := []string{
		"hosts", strings.Join(d.Hosts, ", "),
		"upstream", upstream,
		"inject", injectDesc(&d.Backend),
		"credential", fmt.Sprintf("v%d, set %s", d.CredentialVersion, ago(now, d.CredentialSetAt)),
		"created", ago(now, d.CreatedAt),
	}
	if d.Rate != "" {
		pairs = append(pairs, "rate", fmt.Sprintf("%s burst %d", d.Rate, d.Burst))
	}
	var b strings.Builder
	b.WriteString(st.Title.Render("Backend "+d.Name) + st.Muted.Render("  (esc to go back)") + "\n\n")
	b.WriteString(s.c.kv(pairs...))
	for _, w := range d.Warnings {
		b.WriteString("\n" + st.Warning.Render("! "+w))
	}
	b.WriteString("\n\n" + st.Title.Render(fmt.Sprintf("Grants (%d)", len(d.Grants))) + "\n")
	if len(d.Grants) == 0 {
		b.WriteString(st.Muted.Render("no agent may call this backend yet: add a grant on the Grants screen (5)"))
	}
	for i, g := range d.Grants {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(grantLine(g))
	}
	return b.String()
}

// injectDesc says where the credential goes, never what it is.
func injectDesc(b *store.Backend) string {
	switch b.Inject {
	case store.InjectHeader:
		return fmt.Sprintf("header %s: %s<secret>", b.Header, b.Prefix)
	case store.InjectBasic:
		return fmt.Sprintf("basic auth as %q", b.BasicUser)
	case store.InjectQuery:
		return fmt.Sprintf("query parameter %s", b.QueryParam)
	case store.InjectOAuth2:
		if b.OAuth2 != nil {
			return "oauth2 client credentials at " + b.OAuth2.TokenURL
		}
	}
	return string(b.Inject)
}

// grantLine is one grant as a line: agent, backend, methods and paths.
func grantLine(g store.Grant) string {
	s := fmt.Sprintf("%s → %s  %s %s", g.Agent, g.Backend, strings.Join(g.Methods, ","), strings.Join(g.Paths, " "))
	if g.Rate != "" {
		s += "  rate " + g.Rate
	}
	return s
}

func (s *backendsScreen) view() string {
	switch {
	case s.form != nil:
		return s.form.view()
	case s.confirm != nil:
		return s.confirm.view()
	case s.detail != nil:
		return s.detail.View()
	}
	if s.table.empty() {
		return s.c.st.Muted.Render("No backends yet: press a to add one.")
	}
	return s.table.view()
}
