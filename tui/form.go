package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
)

// fieldSpec describes one input of a form.
type fieldSpec struct {
	label       string
	placeholder string
	value       string
	secret      bool // masked with EchoPassword and cleared on submit
	verbatim    bool // keeps leading and trailing spaces, as in a "Token " prefix
}

type formField struct {
	label    string
	secret   bool
	verbatim bool
	hidden   bool // skipped by focus moves and not drawn
	input    textinput.Model
}

// form is a column of labelled text inputs. Enter moves to the next field
// and submits on the last; esc cancels. While a form is open it owns the
// keyboard, so q and the screen keys type into it instead.
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
		f.fields = append(f.fields, formField{label: s.label, secret: s.secret, verbatim: s.verbatim, input: ti})
	}
	f.setWidth(c.width)
	f.fields[0].input.Focus()
	return f
}

func (f *form) setWidth(w int) {
	for i := range f.fields {
		f.fields[i].input.Width = max(10, w-formLabelWidth-6)
	}
}

// move focuses the d-th visible field after (d > 0) or before the focused
// one, wrapping around.
func (f *form) move(d int) {
	f.fields[f.focus].input.Blur()
	step := 1
	if d < 0 {
		step, d = -1, -d
	}
	for ; d > 0; d-- {
		for i := 0; i < len(f.fields); i++ {
			f.focus = (f.focus + step + len(f.fields)) % len(f.fields)
			if !f.fields[f.focus].hidden {
				break
			}
		}
	}
	f.fields[f.focus].input.Focus()
}

// focusOn moves the focus to field i, as after an error in it.
func (f *form) focusOn(i int) {
	f.fields[f.focus].input.Blur()
	f.focus = i
	f.fields[f.focus].input.Focus()
}

// show shows or hides field i. A hidden field keeps its value, so switching
// back brings it back as typed; hiding the focused field moves focus on.
func (f *form) show(i int, visible bool) {
	f.fields[i].hidden = !visible
	if !visible && i == f.focus {
		f.move(1)
	}
}

// onLast reports whether the focus is on the last visible field, where
// enter submits.
func (f *form) onLast() bool {
	for i := f.focus + 1; i < len(f.fields); i++ {
		if !f.fields[i].hidden {
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
		f.clearSecrets()
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
	var cmd tea.Cmd
	f.fields[f.focus].input, cmd = f.fields[f.focus].input.Update(msg)
	f.err = ""
	return formEditing, cmd
}

// value is the trimmed text of field i (secrets and verbatim fields untrimmed).
func (f *form) value(i int) string {
	v := f.fields[i].input.Value()
	if f.fields[i].secret || f.fields[i].verbatim {
		return v
	}
	return strings.TrimSpace(v)
}

// clearSecrets empties every masked input, so a secret lives in the form
// only while it is typed.
func (f *form) clearSecrets() {
	for i := range f.fields {
		if f.fields[i].secret {
			f.fields[i].input.Reset()
		}
	}
}

// fail shows err in the form and lets the user edit again.
func (f *form) fail(err error) {
	f.busy = false
	f.err = describeErr(err)
}

func (f *form) view() string {
	st := f.c.st
	head := st.Title.Render(f.title)
	if f.note != "" {
		head += "\n" + st.Muted.Render(f.note)
	}
	var fields strings.Builder
	for i, fl := range f.fields {
		if fl.hidden {
			continue
		}
		label := fmt.Sprintf("%*s", formLabelWidth, fl.label)
		mark := "  "
		if i == f.focus {
			mark = "› "
			fields.WriteString(st.FormFocus.Render(mark + label))
		} else {
			fields.WriteString(st.FormLabel.Render(mark + label))
		}
		fields.WriteString("  ")
		fields.WriteString(fl.input.View())
		fields.WriteString("\n")
	}
	var foot []string
	if f.warn != "" {
		foot = append(foot, st.Warning.Width(max(20, f.c.width-2)).Render("! "+f.warn))
	}
	switch {
	case f.busy:
		foot = append(foot, st.Muted.Render("sending…"))
	case f.err != "":
		foot = append(foot, st.FormError.Width(max(20, f.c.width-2)).Render("✗ "+f.err))
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
	return screenKeys([]key.Binding{k.Submit, k.NextField, k.PrevField, k.Abort})
}
