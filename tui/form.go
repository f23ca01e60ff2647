package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/huh"
	"github.com/charmbracelet/lipgloss"
)

// fieldSpec describes one input of a form.
type fieldSpec struct {
	label       string
	placeholder string
	value       string
	secret      bool     // masked with EchoPassword; wiped when the form closes
	verbatim    bool     // keeps leading and trailing spaces, as in a "Token " prefix
	options     []string // a fixed set: chosen with ←/→ instead of typed
	readonly    string   // shown but not editable, with this reason
}

type formField struct {
	label    string
	secret   bool
	verbatim bool
	readonly string
	hidden   bool // skipped by focus moves and not drawn
	input    textinput.Model
	choice   *huh.Select[string] // set for a field with options
	chosen   *string             // the choice's value
	options  []string
	typed    string // letters typed on the choice since it was focused
}

// typeChoice picks the first option that starts with the letters typed so
// far (or, failing that, with the one just typed), so "h" then "e" on
// inject picks header. It reports whether an option matched.
func (fl *formField) typeChoice(r []rune) bool {
	for _, try := range []string{fl.typed + string(r), string(r)} {
		for _, o := range fl.options {
			if strings.HasPrefix(strings.ToLower(o), strings.ToLower(try)) {
				fl.typed = try
				*fl.chosen = o
				fl.choice.Value(fl.chosen)
				return true
			}
		}
	}
	return false
}

// form is a column of labelled inputs. Enter moves to the next field and
// submits on the last; esc cancels. While a form is open it owns the
// keyboard, so q and the screen keys type into it instead. A rejected
// form keeps everything typed, the secret too, until it is sent or
// cancelled.
type form struct {
	c      *common
	title  string
	note   string
	warn   string // shown under the fields, as for a security downgrade
	fields []formField
	focus  int
	err    string
	busy   bool
}

type formResult int

const (
	formEditing formResult = iota
	formSubmitted
	formCancelled
)

const formLabelWidth = 12

func newForm(c *common, title string, specs ...fieldSpec) *form {
	f := &form{c: c, title: title}
	for _, s := range specs {
		fl := formField{label: s.label, secret: s.secret, verbatim: s.verbatim, readonly: s.readonly}
		ti := textinput.New()
		c.st.styleInput(&ti)
		ti.Prompt = ""
		ti.Placeholder = s.placeholder
		ti.SetValue(s.value)
		ti.Cursor.SetMode(cursor.CursorStatic)
		if s.secret {
			ti.EchoMode = textinput.EchoPassword
			ti.EchoCharacter = '•'
		}
		fl.input = ti
		if len(s.options) > 0 {
			fl.chosen = new(string)
			*fl.chosen = s.value
			fl.choice = c.st.newChoice(s.options, fl.chosen)
			fl.options = s.options
		}
		f.fields = append(f.fields, fl)
	}
	f.setWidth(c.width)
	f.focus = -1
	f.move(1)
	return f
}

func (f *form) setWidth(w int) {
	for i := range f.fields {
		f.fields[i].input.Width = max(10, w-formLabelWidth-6)
		if f.fields[i].choice != nil {
			f.fields[i].choice.WithWidth(max(10, w-formLabelWidth-6))
		}
	}
}

func (fl *formField) focusable() bool { return !fl.hidden && fl.readonly == "" }

func (fl *formField) setFocus(on bool) {
	fl.typed = ""
	switch {
	case fl.choice != nil && on:
		fl.choice.Focus()
	case fl.choice != nil:
		fl.choice.Blur()
	case on:
		fl.input.Focus()
	default:
		fl.input.Blur()
	}
}

// move focuses the d-th editable field after (d > 0) or before the focused
// one, wrapping around.
func (f *form) move(d int) {
	if f.focus >= 0 {
		f.fields[f.focus].setFocus(false)
	}
	step := 1
	if d < 0 {
		step, d = -1, -d
	}
	for ; d > 0; d-- {
		for i := 0; i < len(f.fields); i++ {
			f.focus = (max(f.focus, -1) + step + len(f.fields)) % len(f.fields)
			if f.fields[f.focus].focusable() {
				break
			}
		}
	}
	f.fields[f.focus].setFocus(true)
}

// focusOn moves the focus to field i, as after an error in it.
func (f *form) focusOn(i int) {
	if !f.fields[i].focusable() {
		return
	}
	f.fields[f.focus].setFocus(false)
	f.focus = i
	f.fields[f.focus].setFocus(true)
}

// show shows or hides field i. A hidden field keeps its value, so switching
// back brings it back as typed; hiding the focused field moves focus on.
func (f *form) show(i int, visible bool) {
	f.fields[i].hidden = !visible
	if !visible && i == f.focus {
		f.move(1)
	}
}

// onLast reports whether the focus is on the last editable field, where
// enter submits.
func (f *form) onLast() bool {
	for i := f.focus + 1; i < len(f.fields); i++ {
		if f.fields[i].focusable() {
			return false
		}
	}
	return true
}

// update handles a message while the form is open.
func (f *form) update(msg tea.Msg) (formResult, tea.Cmd) {
	km, ok := msg.(tea.KeyMsg)
	if !ok {
		return formEditing, nil
	}
	k := f.c.keys
	switch {
	case key.Matches(km, k.Abort):
		f.wipe()
		return formCancelled, nil
	case f.busy:
		return formEditing, nil
	case key.Matches(km, k.Submit):
		if !f.onLast() {
			f.move(1)
			return formEditing, nil
		}
		return formSubmitted, nil
	case key.Matches(km, k.NextField):
		f.move(1)
		return formEditing, nil
	case key.Matches(km, k.PrevField):
		f.move(-1)
		return formEditing, nil
	}
	fl := &f.fields[f.focus]
	f.err = ""
	if fl.choice != nil {
		// The choice only moves between its options: enter, tab and the
		// arrows up and down were taken above, and its filter is off.
		switch km.Type {
		case tea.KeyRunes:
			fl.typeChoice(km.Runes)
		case tea.KeyCtrlU, tea.KeyBackspace:
			fl.typed = ""
		default:
			fl.choice.Update(km)
		}
		return formEditing, nil
	}
	var cmd tea.Cmd
	fl.input, cmd = fl.input.Update(msg)
	return formEditing, cmd
}

// value is the trimmed text of field i (secrets and verbatim fields
// untrimmed), or the option chosen.
func (f *form) value(i int) string {
	fl := &f.fields[i]
	if fl.choice != nil {
		return *fl.chosen
	}
	v := fl.input.Value()
	if fl.secret || fl.verbatim {
		return v
	}
	return strings.TrimSpace(v)
}

// wipe empties every masked input, so a secret lives in the form only
// while the form is open; the screens call it when a form closes.
func (f *form) wipe() {
	for i := range f.fields {
		if f.fields[i].secret {
			f.fields[i].input.Reset()
		}
	}
}

// fail shows err in the form and lets the user edit again, keeping what
// was typed.
func (f *form) fail(err error) {
	f.busy = false
	f.err = describeErr(err)
}

func (f *form) view() string {
	st := f.c.st
	head := st.Title.Render(f.title)
	if f.note != "" {
		head += "\n" + st.Muted.Width(max(20, f.c.width-2)).Render(f.note)
	}
	var fields strings.Builder
	for i, fl := range f.fields {
		if fl.hidden {
			continue
		}
		label := fmt.Sprintf("%*s", formLabelWidth, fl.label)
		var line string
		if i == f.focus {
			line = st.FormFocus.Render("› " + label)
		} else {
			line = st.FormLabel.Render("  " + label)
		}
		line += "  "
		switch {
		case fl.readonly != "":
			v := f.value(i)
			if v == "" {
				v = "(none)"
			}
			line += st.Value.Render(v) + st.Muted.Render("  "+fl.readonly)
		case fl.choice != nil:
			line += fl.choice.View()
		default:
			line += fl.input.View()
		}
		fields.WriteString(truncate(strings.TrimRight(line, " "), f.c.width) + "\n")
	}
	var foot []string
	if f.warn != "" {
		foot = append(foot, st.Warning.Width(max(20, f.c.width-2)).Render("! "+f.warn))
	}
	switch {
	case f.busy:
		foot = append(foot, st.Muted.Render("sending…"))
	case f.err != "":
		foot = append(foot, st.FormError.Width(max(20, f.c.width-2)).Render("✗ Error: "+f.err))
	}
	// A tall form (many fields, a warning and a wrapped error) first gives
	// up its blank lines, then its note, so the fields and what went wrong
	// still fit on the screen.
	layouts := []struct{ head, gap string }{
		{head, "\n"},
		{head, ""},
		{st.Title.Render(f.title), ""},
	}
	var out string
	for _, l := range layouts {
		out = l.head + "\n" + l.gap + fields.String()
		if len(foot) > 0 {
			out += l.gap + strings.Join(foot, "\n")
		}
		if lipgloss.Height(strings.TrimSuffix(out, "\n")) <= f.c.height {
			break
		}
	}
	return out
}

func (f *form) helpKeys() helpKeys {
	k := f.c.keys
	keys := []key.Binding{k.Submit, k.NextField, k.PrevField}
	if f.focus >= 0 && f.fields[f.focus].choice != nil {
		keys = append(keys, k.Choose)
	}
	return screenKeys(append(keys, k.Abort))
}
