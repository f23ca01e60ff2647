package tui

import (
	"os"
	"slices"
	"strings"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	"github.com/charmbracelet/huh"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/agw-dev/agw/store"
)

// styles holds every style the TUI draws with, all made by one renderer so
// that turning colour off (NO_COLOR) turns it off everywhere. Nothing relies
// on colour alone: selection and the active tab are also marked in text.
type styles struct {
	noColor bool

	App        lipgloss.Style
	Brand      lipgloss.Style
	Tab        lipgloss.Style
	ActiveTab  lipgloss.Style
	Rule       lipgloss.Style
	Title      lipgloss.Style
	Label      lipgloss.Style
	Value      lipgloss.Style
	Muted      lipgloss.Style
	Box        lipgloss.Style
	Warning    lipgloss.Style
	ErrorBar   lipgloss.Style
	InfoBar    lipgloss.Style
	OKBar      lipgloss.Style
	Spark      lipgloss.Style
	Allow      lipgloss.Style
	Deny       lipgloss.Style
	Admin      lipgloss.Style
	Selected   lipgloss.Style
	Token      lipgloss.Style
	FormFocus  lipgloss.Style
	FormLabel  lipgloss.Style
	FormError  lipgloss.Style
	InputText  lipgloss.Style
	InputPlace lipgloss.Style
	Cursor     lipgloss.Style

	Header      lipgloss.Style
	Help        help.Styles
	choiceTheme *huh.Theme
}

// Palette. ANSI 256 numbers so they degrade predictably.
const (
	colAccent = lipgloss.Color("63")  // violet
	colMuted  = lipgloss.Color("244") // grey
	colGreen  = lipgloss.Color("42")
	colRed    = lipgloss.Color("203")
	colBlue   = lipgloss.Color("39")
	colYellow = lipgloss.Color("214")
	colText   = lipgloss.Color("252")
	colBarBG  = lipgloss.Color("236")
)

func newRenderer(noColor bool) *lipgloss.Renderer {
	if noColor {
		return lipgloss.NewRenderer(os.Stdout, termenv.WithProfile(termenv.Ascii))
	}
	return lipgloss.NewRenderer(os.Stdout)
}

// markSelected replaces the first (padding) column of a rendered row with a
// pointer, so the selection shows without colour.
func markSelected(s string) string {
	if strings.HasPrefix(s, " ") {
		return "›" + s[1:]
	}
	return s
}

func newStyles(noColor bool) *styles {
	r := newRenderer(noColor)
	s := &styles{noColor: noColor}
	n := r.NewStyle

	s.App = n()
	s.Brand = n().Bold(true).Foreground(colAccent)
	s.Tab = n().Foreground(colMuted)
	s.ActiveTab = n().Bold(true).Foreground(colText).Background(colAccent)
	s.Rule = n().Foreground(colMuted)
	s.Title = n().Bold(true).Foreground(colAccent)
	s.Label = n().Foreground(colMuted)
	s.Value = n().Foreground(colText)
	s.Muted = n().Foreground(colMuted)
	s.Box = n().Border(lipgloss.RoundedBorder()).BorderForeground(colAccent).Padding(0, 1)
	s.Warning = n().Bold(true).Foreground(colYellow)
	s.ErrorBar = n().Bold(true).Foreground(colRed)
	s.InfoBar = n().Foreground(colBlue)
	s.OKBar = n().Foreground(colGreen)
	s.Spark = n().Foreground(colGreen)
	s.Allow = n().Foreground(colGreen)
	s.Deny = n().Foreground(colRed)
	s.Admin = n().Foreground(colBlue)
	s.Selected = n().Bold(true).Foreground(colText).Background(colBarBG)
	s.Token = n().Bold(true).Foreground(colYellow)
	s.FormFocus = n().Bold(true).Foreground(colAccent)
	s.FormLabel = n().Foreground(colMuted)
	s.FormError = n().Bold(true).Foreground(colRed)
	s.InputText = n().Foreground(colText)
	s.InputPlace = n().Foreground(colMuted)
	s.Cursor = n().Foreground(colAccent)

	s.Header = n().Bold(true).Foreground(colAccent)
	s.Help = help.Styles{
		Ellipsis:       n().Foreground(colMuted),
		ShortKey:       n().Foreground(colAccent),
		ShortDesc:      n().Foreground(colMuted),
		ShortSeparator: n().Foreground(colMuted),
		FullKey:        n().Foreground(colAccent),
		FullDesc:       n().Foreground(colMuted),
		FullSeparator:  n().Foreground(colMuted),
	}
	s.choiceTheme = newChoiceTheme(r, s)
	return s
}

// styleInput applies the TUI's styles to a bubbles text input.
func (s *styles) styleInput(ti *textinput.Model) {
	ti.PromptStyle = s.FormFocus
	ti.TextStyle = s.InputText
	ti.PlaceholderStyle = s.InputPlace
	ti.CompletionStyle = s.InputPlace
	ti.Cursor.Style = s.Cursor
	ti.Cursor.TextStyle = s.InputText
}

// decision picks the colour of an audit record: admin changes blue, allowed
// requests green, everything denied or refused red.
func (s *styles) decision(kind, decision string) lipgloss.Style {
	switch {
	case kind == store.KindAdmin:
		return s.Admin
	case decision == store.Allow:
		return s.Allow
	default:
		return s.Deny
	}
}

// newChoice makes the inline chooser of a form field with a fixed set of
// values: ←/→ step through options, drawn as "← bearer →". An initial
// value outside the options is replaced by the first one.
func (s *styles) newChoice(options []string, value *string) *huh.Select[string] {
	if !slices.Contains(options, *value) {
		*value = options[0]
	}
	km := huh.NewDefaultKeyMap()
	for _, b := range []*key.Binding{&km.Select.Filter, &km.Select.Next, &km.Select.Prev, &km.Select.Submit,
		&km.Select.GotoTop, &km.Select.GotoBottom, &km.Select.HalfPageUp, &km.Select.HalfPageDown} {
		b.SetEnabled(false)
	}
	sel := huh.NewSelect[string]().Options(huh.NewOptions(options...)...).Value(value)
	sel.WithTheme(s.choiceTheme)
	sel.WithKeyMap(km)
	sel.Inline(true)
	return sel
}

// newChoiceTheme draws huh's select in the TUI's styles, without the
// border huh gives a field of its own forms.
func newChoiceTheme(r *lipgloss.Renderer, s *styles) *huh.Theme {
	t := huh.ThemeBase()
	n := r.NewStyle
	f := &t.Focused
	f.Base = n()
	f.Title = n()
	f.SelectedOption = s.InputText.Bold(true)
	f.PrevIndicator = n().Foreground(colAccent).MarginRight(1).SetString("←")
	f.NextIndicator = n().Foreground(colAccent).MarginLeft(1).SetString("→")
	f.TextInput.Placeholder = s.InputPlace
	t.Blurred = t.Focused
	t.Blurred.SelectedOption = s.InputText
	t.Blurred.PrevIndicator = n()
	t.Blurred.NextIndicator = n()
	return t
}
