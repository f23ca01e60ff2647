package tui

import (
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
)

// picker chooses one of a short list of items (an agent's tokens or
// grants) with the arrow keys; enter picks, esc cancels.
type picker struct {
	c      *common
	title  string
	items  []string // shown
	ids    []string // returned
	cursor int
}

func newPicker(c *common, title string, items, ids []string) *picker {
	return &picker{c: c, title: title, items: items, ids: ids}
}

// update returns the picked id, or done with an empty id on cancel.
func (p *picker) update(msg tea.Msg) (id string, done bool) {
	km, ok := msg.(tea.KeyMsg)
	if !ok {
		return "", false
	}
	k := p.c.keys
	switch {
	case key.Matches(km, k.Abort), key.Matches(km, k.Back):
		return "", true
	case key.Matches(km, k.Up):
		p.cursor = max(0, p.cursor-1)
	case key.Matches(km, k.Down):
		p.cursor = min(len(p.items)-1, p.cursor+1)
	case key.Matches(km, k.Open):
		if len(p.ids) == 0 {
			return "", true
		}
		return p.ids[p.cursor], true
	}
	return "", false
}

func (p *picker) view() string {
	st := p.c.st
	var b strings.Builder
	b.WriteString(st.Title.Render(p.title) + "\n\n")
	if len(p.items) == 0 {
		b.WriteString(st.Muted.Render("  nothing to choose from; esc to go back"))
	}
	start := max(0, p.cursor-(p.c.height-4)+1)
	for i := start; i < len(p.items) && i-start < p.c.height-3; i++ {
		if i == p.cursor {
			b.WriteString(st.Selected.Render("› "+p.items[i]) + "\n")
		} else {
			b.WriteString("  " + p.items[i] + "\n")
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

func (p *picker) helpKeys() helpKeys {
	k := p.c.keys
	pick := key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "choose"))
	return screenKeys([]key.Binding{k.Up, k.Down, pick, k.Abort})
}

// confirm asks y/n before a destructive action.
type confirm struct {
	c      *common
	prompt string
	yes    tea.Cmd
}

// update returns the command to run on yes, and done once answered.
func (q *confirm) update(msg tea.Msg) (cmd tea.Cmd, done bool) {
	km, ok := msg.(tea.KeyMsg)
	if !ok {
		return nil, false
	}
	switch {
	case key.Matches(km, q.c.keys.Confirm):
		return q.yes, true
	case key.Matches(km, q.c.keys.Cancel), key.Matches(km, q.c.keys.Abort):
		return nil, true
	}
	return nil, false
}

func (q *confirm) view() string {
	return q.c.st.Box.Render(q.c.st.Warning.Render(q.prompt) + "\n\n" + q.c.st.Muted.Render("y to confirm · n or esc to cancel"))
}

func (q *confirm) helpKeys() helpKeys {
	return screenKeys([]key.Binding{q.c.keys.Confirm, q.c.keys.Cancel})
}
