package tui

import (
	"github.com/charmbracelet/bubbles/key"
)

// keyMap is every key the TUI answers to, in one place. Screens pick the
// bindings that apply to their current state for the help line.
type keyMap struct {
	// Global.
	Quit    key.Binding
	Help    key.Binding
	NextTab key.Binding
	PrevTab key.Binding
	Jump    key.Binding // 1-4
	Refresh key.Binding

	// Lists.
	Up     key.Binding
	Down   key.Binding
	Top    key.Binding
	Bottom key.Binding
	Open   key.Binding
	Back   key.Binding

	// Actions.
	Add        key.Binding
	Remove     key.Binding
	Rotate     key.Binding
	Toggle     key.Binding
	Mint       key.Binding
	Revoke     key.Binding
	GrantAdd   key.Binding
	GrantDel   key.Binding
	Filter     key.Binding
	Pause      key.Binding
	Confirm    key.Binding
	Cancel     key.Binding
	Dismiss    key.Binding
	ClearNotes key.Binding

	// Forms.
	NextField key.Binding
	PrevField key.Binding
	Submit    key.Binding
	Abort     key.Binding // esc or ctrl+c: cancel the form, never quit
}

func newKeyMap() keyMap {
	b := func(keys []string, k, desc string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(k, desc))
	}
	return keyMap{
		Quit:    b([]string{"q", "ctrl+c"}, "q", "quit"),
		Help:    b([]string{"?"}, "?", "more keys"),
		NextTab: b([]string{"tab"}, "tab", "next screen"),
		PrevTab: b([]string{"shift+tab"}, "shift+tab", "previous screen"),
		Jump:    b([]string{"1", "2", "3", "4"}, "1-4", "go to screen"),
		Refresh: b([]string{"ctrl+r"}, "ctrl+r", "refresh now"),

		Up:     b([]string{"up", "k"}, "↑/k", "up"),
		Down:   b([]string{"down", "j"}, "↓/j", "down"),
		Top:    b([]string{"home", "g"}, "g", "first"),
		Bottom: b([]string{"end", "G"}, "G", "last"),
		Open:   b([]string{"enter"}, "enter", "details"),
		Back:   b([]string{"esc", "backspace"}, "esc", "back"),

		Add:        b([]string{"a"}, "a", "add"),
		Remove:     b([]string{"x", "delete"}, "x", "remove"),
		Rotate:     b([]string{"r"}, "r", "rotate secret"),
		Toggle:     b([]string{"e"}, "e", "enable/disable"),
		Mint:       b([]string{"m"}, "m", "mint token"),
		Revoke:     b([]string{"t"}, "t", "revoke token"),
		GrantAdd:   b([]string{"g"}, "g", "add grant"),
		GrantDel:   b([]string{"G"}, "G", "remove grant"),
		Filter:     b([]string{"f", "/"}, "f", "filter"),
		Pause:      b([]string{"p", " "}, "p", "pause/resume"),
		Confirm:    b([]string{"y"}, "y", "yes"),
		Cancel:     b([]string{"n", "esc"}, "n/esc", "no"),
		Dismiss:    b([]string{"enter", "esc"}, "enter", "I saved it, dismiss"),
		ClearNotes: b([]string{"c"}, "c", "clear"),

		NextField: b([]string{"tab", "down"}, "tab", "next field"),
		PrevField: b([]string{"shift+tab", "up"}, "shift+tab", "previous field"),
		Submit:    b([]string{"enter"}, "enter", "next/submit"),
		Abort:     b([]string{"esc", "ctrl+c"}, "esc", "cancel"),
	}
}

// helpKeys is the help.KeyMap of one state of one screen: short is the
// one-line help, full the columns `?` shows.
type helpKeys struct {
	short []key.Binding
	full  [][]key.Binding
}

func (h helpKeys) ShortHelp() []key.Binding  { return h.short }
func (h helpKeys) FullHelp() [][]key.Binding { return h.full }

// screenKeys is the help of a screen state whose short help is its first
// column.
func screenKeys(cols ...[]key.Binding) helpKeys {
	h := helpKeys{full: cols}
	if len(cols) > 0 {
		h.short = cols[0]
	}
	return h
}
