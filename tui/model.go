package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/store"
)

// screen is one tab of the TUI. Screens get every message that is not a
// key; keys reach the active screen only.
type screen interface {
	title() string
	update(msg tea.Msg) tea.Cmd
	view() string
	setSize(w, h int)
	helpKeys() helpKeys
	// capturing reports that a form or prompt owns the keyboard, so the
	// global keys (q, tab, 1-7, :, ?) are typed into it instead.
	capturing() bool
}

// dataMsg is one poll of the daemon. On error the other fields are empty
// and the screens keep what they last showed.
type dataMsg struct {
	at       time.Time
	status   *admin.Status
	backends []store.Backend
	agents   []admin.AgentSummary
	tokens   []store.Token
	grants   []store.Grant
	idps     []store.IdP
	denies   []store.AuditEvent
	err      error
}

// tickMsg asks for the next poll.
type tickMsg struct{}

// model is the root of the TUI: tabs, status bar, help line and polling.
type model struct {
	c       *common
	opts    Options
	screens []screen
	audit   *auditScreen
	active  int
	help    help.Model

	width, height int

	err      error // the last poll's error, shown until a poll succeeds
	flash    string
	flashErr bool
	jump     *textinput.Model // the ":" prompt, while open
	polling  bool             // a poll is in flight; ticks do not stack up polls
	repoll   bool             // an action finished during a poll: poll again after it
	status   *admin.Status
}

func newModel(api API, opts Options, now func() time.Time) *model {
	c := &common{
		api:   api,
		st:    newStyles(opts.noColor()),
		keys:  newKeyMap(),
		now:   now,
		loc:   time.Local,
		every: opts.refresh(),
		width: 80, height: 20,
	}
	m := &model{c: c, opts: opts, help: help.New()}
	m.help.Styles = c.st.Help
	m.audit = newAuditScreen(c)
	m.screens = []screen{newOverview(c, opts.Version), newBackendsScreen(c), newAgentsScreen(c),
		newTokensScreen(c), newGrantsScreen(c), newIdPsScreen(c), m.audit}
	m.resize(80, 24)
	return m
}

// close stops the audit stream.
func (m *model) close() { m.audit.shutdown() }

func (m *model) Init() tea.Cmd {
	m.polling = true
	return tea.Batch(m.poll(), m.tick(), m.audit.start())
}

func (m *model) tick() tea.Cmd {
	return tea.Tick(m.opts.refresh(), func(time.Time) tea.Msg { return tickMsg{} })
}

// poll reads everything the screens list in one command.
func (m *model) poll() tea.Cmd {
	api, now := m.c.api, m.c.now
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		var d dataMsg
		if d.status, d.err = api.Status(ctx); d.err != nil {
			return dataMsg{err: d.err}
		}
		d.at = now()
		if d.backends, d.err = api.Backends(ctx); d.err != nil {
			return dataMsg{err: d.err}
		}
		if d.agents, d.err = api.Agents(ctx); d.err != nil {
			return dataMsg{err: d.err}
		}
		if d.tokens, d.err = api.Tokens(ctx, ""); d.err != nil {
			return dataMsg{err: d.err}
		}
		if d.grants, d.err = api.Grants(ctx, ""); d.err != nil {
			return dataMsg{err: d.err}
		}
		if d.idps, d.err = api.IdPs(ctx); d.err != nil {
			return dataMsg{err: d.err}
		}
		q := store.AuditQuery{Decision: store.Deny, Last: 5}
		d.err = api.Audit(ctx, q, false, func(sm admin.StreamMessage) error {
			if sm.Event != nil {
				d.denies = append(d.denies, *sm.Event)
			}
			return nil
		})
		if d.err != nil {
			return dataMsg{err: d.err}
		}
		return d
	}
}

func (m *model) startPoll() tea.Cmd {
	if m.polling {
		m.repoll = true
		return nil
	}
	m.polling = true
	return m.poll()
}

func (m *model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.resize(msg.Width, msg.Height)
		return m, nil
	case tickMsg:
		return m, tea.Batch(m.tick(), m.startPoll(), m.audit.retry())
	case dataMsg:
		m.polling = false
		m.err = msg.err
		if msg.err == nil {
			m.status = msg.status
		}
		cmds := []tea.Cmd{m.broadcast(msg)}
		if m.repoll {
			m.repoll = false
			cmds = append(cmds, m.startPoll())
		}
		return m, tea.Batch(cmds...)
	case actionMsg:
		m.flash, m.flashErr = msg.info, msg.err != nil
		if msg.err != nil {
			m.flash = describeErr(msg.err)
		}
		return m, tea.Batch(m.broadcast(msg), m.startPoll())
	case tea.KeyMsg:
		return m, m.key(msg)
	}
	return m, m.broadcast(msg)
}

func (m *model) broadcast(msg tea.Msg) tea.Cmd {
	cmds := make([]tea.Cmd, 0, len(m.screens))
	for _, s := range m.screens {
		cmds = append(cmds, s.update(msg))
	}
	return tea.Batch(cmds...)
}

func (m *model) key(msg tea.KeyMsg) tea.Cmd {
	if m.jump != nil {
		return m.jumpKey(msg)
	}
	cur := m.screens[m.active]
	if cur.capturing() {
		return cur.update(msg)
	}
	k := m.c.keys
	switch {
	case key.Matches(msg, k.GoTo):
		ti := textinput.New()
		m.c.st.styleInput(&ti)
		ti.Prompt = ":"
		ti.Placeholder = "screen name: " + strings.Join(m.screenNames(), ", ")
		ti.Cursor.SetMode(cursor.CursorStatic)
		ti.Focus()
		m.jump = &ti
		m.flash = ""
	case key.Matches(msg, k.Quit):
		m.close()
		return tea.Quit
	case key.Matches(msg, k.Help):
		m.help.ShowAll = !m.help.ShowAll
		m.resize(m.width, m.height)
	case key.Matches(msg, k.NextTab):
		m.switchTo(m.active + 1)
	case key.Matches(msg, k.PrevTab):
		m.switchTo(m.active - 1)
	case key.Matches(msg, k.Jump):
		m.switchTo(int(msg.String()[0] - '1'))
	case key.Matches(msg, k.Refresh):
		return m.startPoll()
	default:
		return cur.update(msg)
	}
	return nil
}

// jumpKey handles a key while the ":" prompt is open: enter goes to the
// screen whose name starts with what was typed, esc closes the prompt.
func (m *model) jumpKey(msg tea.KeyMsg) tea.Cmd {
	switch msg.Type {
	case tea.KeyEsc, tea.KeyCtrlC:
		m.jump = nil
		return nil
	case tea.KeyEnter:
		typed := strings.ToLower(strings.TrimSpace(m.jump.Value()))
		m.jump = nil
		if typed == "" {
			return nil
		}
		for i, name := range m.screenNames() {
			if strings.HasPrefix(name, typed) || typed == string(rune('1'+i)) {
				m.switchTo(i)
				return nil
			}
		}
		m.flash, m.flashErr = fmt.Sprintf("no screen is called %q: type one of %s", typed, strings.Join(m.screenNames(), ", ")), true
		return nil
	}
	var cmd tea.Cmd
	*m.jump, cmd = m.jump.Update(msg)
	return cmd
}

// screenNames are the screens' titles in lower case, the names ":" takes.
func (m *model) screenNames() []string {
	names := make([]string, len(m.screens))
	for i, s := range m.screens {
		names[i] = strings.ToLower(s.title())
	}
	return names
}

func (m *model) switchTo(i int) {
	n := len(m.screens)
	m.active = (i%n + n) % n
	m.flash = ""
}

// chrome is the number of lines around the body: tabs, rule, status bar,
// and the help.
func (m *model) chrome() int {
	return 3 + lipgloss.Height(m.help.View(m.keys()))
}

func (m *model) resize(w, h int) {
	m.width, m.height = w, h
	m.help.Width = w
	m.c.width, m.c.height = w, max(1, h-m.chrome())
	for _, s := range m.screens {
		s.setSize(m.c.width, m.c.height)
	}
}

// keys is the help of the active screen's state plus the global keys.
func (m *model) keys() help.KeyMap {
	k := m.c.keys
	if m.jump != nil {
		enter := key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "go"))
		return screenKeys([]key.Binding{enter, k.Abort})
	}
	h := m.screens[m.active].helpKeys()
	if m.screens[m.active].capturing() {
		return h
	}
	// Drop screen keys from the end until "? more keys" and "q quit" fit:
	// the way to the full help must always show.
	wide := m.help
	wide.Width = 0
	short := h.short
	for {
		h.short = append(append([]key.Binding(nil), short...), k.Help, k.Quit)
		if len(short) == 0 || m.width <= 0 || lipgloss.Width(wide.ShortHelpView(h.short)) <= m.width {
			break
		}
		short = short[:len(short)-1]
	}
	h.full = append(append([][]key.Binding(nil), h.full...),
		[]key.Binding{k.NextTab, k.PrevTab, k.Jump, k.GoTo, k.Refresh, k.Help, k.Quit})
	return h
}

func (m *model) View() string {
	// The help's height can change with the state (a form has fewer keys).
	if m.c.height != max(1, m.height-m.chrome()) {
		m.resize(m.width, m.height)
	}
	body := fit(m.screens[m.active].view(), m.c.height)
	body = lipgloss.NewStyle().Height(m.c.height).MaxHeight(m.c.height).Render(body)
	return strings.Join([]string{m.tabs(), m.c.st.Rule.Render(strings.Repeat("─", max(0, m.width))), body, m.statusBar(), m.help.View(m.keys())}, "\n")
}

func (m *model) tabs() string {
	st := m.c.st
	parts := []string{st.Brand.Render("agw") + " "}
	for i, s := range m.screens {
		label := string(rune('1'+i)) + " " + s.title()
		if i == m.active {
			parts = append(parts, st.ActiveTab.Render("["+label+"]"))
		} else {
			parts = append(parts, st.Tab.Render(" "+label+" "))
		}
	}
	line := lipgloss.JoinHorizontal(lipgloss.Top, parts...)
	if m.status != nil {
		right := st.Muted.Render("daemon " + m.status.Version)
		if gap := m.width - lipgloss.Width(line) - lipgloss.Width(right); gap > 0 {
			line += strings.Repeat(" ", gap) + right
		}
	}
	return truncate(line, m.width)
}

func (m *model) statusBar() string {
	st := m.c.st
	var s string
	switch {
	case m.jump != nil:
		s = m.jump.View()
	case m.err != nil:
		s = st.ErrorBar.Render("✗ Error: " + describeErr(m.err))
	case m.flash != "" && m.flashErr:
		s = st.ErrorBar.Render("✗ Error: " + m.flash)
	case m.flash != "":
		s = st.OKBar.Render("✓ " + m.flash)
	case m.status == nil:
		s = st.Muted.Render("connecting to the agw daemon…")
	default:
		s = st.Muted.Render("connected · refreshing every " + m.opts.refresh().String())
	}
	return truncate(s, m.width)
}
