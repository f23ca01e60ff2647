package tui

import (
	"github.com/charmbracelet/bubbles/key"
)

// keyMap is every key the TUI answers to, in one place. Screens pick the
// bindings that apply to their current state for the help line, and `?`
// lists every one of them.
type keyMap struct {
	// Global.
	Quit    key.Binding
	Help    key.Binding
	NextTab key.Binding
	PrevTab key.Binding
	Jump    key.Binding // 1-7
	GoTo    key.Binding // : then a screen's name
	Refresh key.Binding

	// Lists.
	Up          key.Binding
	Down        key.Binding
	Top         key.Binding
	Bottom      key.Binding
	PageUp      key.Binding
	PageDown    key.Binding
	Filter      key.Binding
	ClearFilter key.Binding
	Open        key.Binding
	Back        key.Binding

	// Actions.
	Add        key.Binding
	Edit       key.Binding
	Remove     key.Binding
	Rotate     key.Binding
	Toggle     key.Binding
	Mint       key.Binding
	Revoke     key.Binding
	GroupBy    key.Binding
	AuditForm  key.Binding
	Pause      key.Binding
	Confirm    key.Binding
	Cancel     key.Binding
	Dismiss    key.Binding
	ClearNotes key.Binding

	// Forms.
	NextField key.Binding
	PrevField key.Binding
	Submit    key.Binding
	Choose    key.Binding // ←/→ on a field with a fixed set of values
	Abort     key.Binding // esc or ctrl+c: cancel the form, never quit
}

func newKeyMap() keyMap {
	b := func(keys []string, k, desc string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(k, desc))
	}
	return keyMap{
		Quit:    b([]string{"q", "ctrl+c"}, "q", "quit"),
		Help:    b([]string{"?"}, "?", "all keys"),
		NextTab: b([]string{"tab"}, "tab", "next screen"),
		PrevTab: b([]string{"shift+tab"}, "shift+tab", "previous screen"),
		Jump:    b([]string{"1", "2", "3", "4", "5", "6", "7"}, "1-7", "go to screen"),
		GoTo:    b([]string{":"}, ":", "go to screen by name"),
		Refresh: b([]string{"ctrl+r"}, "ctrl+r", "refresh now"),

		Up:          b([]string{"up", "k"}, "↑/k", "up"),
		Down:        b([]string{"down", "j"}, "↓/j", "down"),
		Top:         b([]string{"g", "home"}, "g", "top"),
		Bottom:      b([]string{"G", "end"}, "G", "bottom"),
		PageUp:      b([]string{"pgup", "ctrl+u"}, "pgup", "page up"),
		PageDown:    b([]string{"pgdown", "ctrl+d"}, "pgdn", "page down"),
		Filter:      b([]string{"/"}, "/", "filter"),
		ClearFilter: b([]string{"esc"}, "esc", "clear filter"),
		Open:        b([]string{"enter"}, "enter", "details"),
		Back:        b([]string{"esc", "backspace"}, "esc", "back"),

		Add:        b([]string{"a"}, "a", "add"),
		Edit:       b([]string{"e"}, "e", "edit"),
		Remove:     b([]string{"x", "delete"}, "x", "remove"),
		Rotate:     b([]string{"r"}, "r", "rotate secret"),
		Toggle:     b([]string{"e"}, "e", "enable/disable"),
		Mint:       b([]string{"m", "a"}, "m", "mint token"),
		Revoke:     b([]string{"x", "delete"}, "x", "revoke token"),
		GroupBy:    b([]string{"s"}, "s", "sort by agent/backend"),
		AuditForm:  b([]string{"/", "f"}, "/", "filter"),
		Pause:      b([]string{"p", " "}, "p", "pause/resume"),
		Confirm:    b([]string{"y"}, "y", "yes"),
		Cancel:     b([]string{"n", "esc"}, "n/esc", "no"),
		Dismiss:    b([]string{"enter", "esc"}, "enter", "I saved it, dismiss"),
		ClearNotes: b([]string{"c"}, "c", "clear notice"),

		NextField: b([]string{"tab", "down"}, "tab", "next"),
		PrevField: b([]string{"shift+tab", "up"}, "shift+tab", "back"),
		Submit:    b([]string{"enter"}, "enter", "next/submit"),
		Choose:    b([]string{"left", "right"}, "←/→ or type", "choose"),
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

// listKeys is the help of a list screen: its actions first, then the
// table's keys.
func listKeys(t *rowTable, actions ...key.Binding) helpKeys {
	if t.capturing() {
		return t.filterHelp()
	}
	return screenKeys(actions, t.helpKeys())
}
