package tui

import (
	"strings"

	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
)

// column is one column of a rowTable: a title and a width in cells.
type column struct {
	title string
	width int
}

// row is one line of a rowTable. key identifies it (what actions act on);
// cells are what is shown.
type row struct {
	key   string
	cells []string
}

// rowTable is the list every screen shows: a header, the rows that match
// the filter, and a cursor that is always on a drawn row. Its window
// follows the cursor whenever the rows, the filter or the height change,
// so after a resize the selected row is still on the screen, and the row
// an action applies to (selectedKey) is the one the user sees marked.
type rowTable struct {
	c      *common
	cols   []column
	grow   int // the column that takes the spare width
	all    []row
	shown  []row // all, filtered
	cursor int   // index into shown
	offset int   // first shown row drawn
	height int   // lines for the header, the filter line and the rows
	width  int

	filtering bool // the filter input owns the keyboard
	filter    textinput.Model
}

func newRowTable(c *common, grow int, cols ...column) *rowTable {
	fi := textinput.New()
	c.st.styleInput(&fi)
	fi.Prompt = "/"
	fi.Placeholder = "type to filter; enter keeps it, esc clears it"
	fi.Cursor.SetMode(cursor.CursorStatic)
	return &rowTable{c: c, cols: cols, grow: grow, filter: fi, height: 10, width: 80}
}

// setSize sets the lines and cells the table may use.
func (t *rowTable) setSize(w, h int) {
	t.width, t.height = w, h
	t.filter.Width = max(10, w-30) // room for the match count
	t.follow()
}

// setRows replaces the rows, keeping the cursor on the row with the same
// key if it is still there (and still matches the filter).
func (t *rowTable) setRows(rows []row) {
	keep := t.selectedKey()
	t.all = rows
	t.refilter(keep)
}

func (t *rowTable) refilter(keep string) {
	q := strings.ToLower(strings.TrimSpace(t.filter.Value()))
	t.shown = t.shown[:0:0]
	for _, r := range t.all {
		if q == "" || r.matches(q) {
			t.shown = append(t.shown, r)
		}
	}
	t.cursor = min(t.cursor, max(0, len(t.shown)-1))
	for i, r := range t.shown {
		if r.key == keep {
			t.cursor = i
			break
		}
	}
	t.follow()
}

func (r row) matches(q string) bool {
	for _, c := range r.cells {
		if strings.Contains(strings.ToLower(c), q) {
			return true
		}
	}
	return false
}

// bodyRows is how many rows fit under the header (and the filter line).
func (t *rowTable) bodyRows() int {
	n := t.height - 1
	if t.filterShown() {
		n--
	}
	return max(0, n)
}

func (t *rowTable) filterShown() bool { return t.filtering || t.filter.Value() != "" }

// follow moves the window so that the cursor is inside it.
func (t *rowTable) follow() {
	n := t.bodyRows()
	switch {
	case n == 0:
		t.offset = t.cursor
	case t.cursor < t.offset:
		t.offset = t.cursor
	case t.cursor >= t.offset+n:
		t.offset = t.cursor - n + 1
	}
	// Use the room a shrink or a shorter list freed at the bottom.
	t.offset = max(0, min(t.offset, len(t.shown)-n))
}

// selectedKey is the key of the selected row, or "" when no row is drawn:
// an empty list, a filter that matches nothing, or a window too short to
// show one. Actions do nothing then.
func (t *rowTable) selectedKey() string {
	if len(t.shown) == 0 || t.bodyRows() == 0 {
		return ""
	}
	return t.shown[t.cursor].key
}

// empty reports whether there are no rows at all, filter aside.
func (t *rowTable) empty() bool { return len(t.all) == 0 }

// capturing reports whether the filter input owns the keyboard.
func (t *rowTable) capturing() bool { return t.filtering }

// update moves the cursor or edits the filter; it reports whether it used
// the key.
func (t *rowTable) update(msg tea.KeyMsg) (bool, tea.Cmd) {
	k := t.c.keys
	if t.filtering {
		switch {
		case key.Matches(msg, k.Abort):
			t.filtering = false
			t.filter.SetValue("")
			t.filter.Blur()
			t.refilter(t.selectedKey())
		case msg.Type == tea.KeyEnter:
			t.filtering = false
			t.filter.Blur()
			t.follow()
		case msg.Type == tea.KeyUp, msg.Type == tea.KeyDown:
			t.move(msg)
		default:
			keep := t.selectedKey()
			var cmd tea.Cmd
			t.filter, cmd = t.filter.Update(msg)
			t.refilter(keep)
			return true, cmd
		}
		return true, nil
	}
	switch {
	case key.Matches(msg, k.Filter):
		t.filtering = true
		t.filter.Focus()
		t.follow()
		return true, nil
	case key.Matches(msg, k.ClearFilter) && t.filter.Value() != "":
		t.filter.SetValue("")
		t.refilter(t.selectedKey())
		return true, nil
	}
	return t.move(msg), nil
}

func (t *rowTable) move(msg tea.KeyMsg) bool {
	k := t.c.keys
	last := len(t.shown) - 1
	page := max(1, t.bodyRows())
	switch {
	case key.Matches(msg, k.Up):
		t.cursor = max(0, t.cursor-1)
	case key.Matches(msg, k.Down):
		t.cursor = max(0, min(last, t.cursor+1))
	case key.Matches(msg, k.Top):
		t.cursor = 0
	case key.Matches(msg, k.Bottom):
		t.cursor = max(0, last)
	case key.Matches(msg, k.PageUp):
		t.cursor = max(0, t.cursor-page)
	case key.Matches(msg, k.PageDown):
		t.cursor = max(0, min(last, t.cursor+page))
	default:
		return false
	}
	t.follow()
	return true
}

// colWidths gives the grow column whatever width the others leave.
func (t *rowTable) colWidths() []int {
	ws := make([]int, len(t.cols))
	used := 0
	for i, c := range t.cols {
		ws[i] = c.width
		used += 2 // cell padding
		if i != t.grow {
			used += c.width
		}
	}
	ws[t.grow] = max(8, t.width-used)
	return ws
}

func (t *rowTable) cellLine(cells []string, ws []int) string {
	var b strings.Builder
	for i, w := range ws {
		c := ""
		if i < len(cells) {
			c = cells[i]
		}
		b.WriteByte(' ')
		b.WriteString(lipgloss.NewStyle().Width(w).MaxWidth(w).Render(truncate(c, w)))
		b.WriteByte(' ')
	}
	return b.String()
}

// view draws the header, the filter line and the rows in the window.
func (t *rowTable) view() string {
	st := t.c.st
	ws := t.colWidths()
	titles := make([]string, len(t.cols))
	for i, c := range t.cols {
		titles[i] = c.title
	}
	lines := []string{st.Header.Render(t.cellLine(titles, ws))}
	if t.filterShown() {
		line := t.filter.View()
		if !t.filtering {
			line = st.Label.Render("filter: ") + st.Value.Render(t.filter.Value()) + st.Muted.Render("  (/ to change, esc to clear)")
		}
		lines = append(lines, truncate(line+st.Muted.Render("  "+matchCount(len(t.shown), len(t.all))), t.width))
	}
	if len(t.shown) == 0 && len(t.all) > 0 {
		lines = append(lines, st.Muted.Render(" nothing matches the filter"))
	}
	end := min(len(t.shown), t.offset+t.bodyRows())
	for i := t.offset; i < end; i++ {
		line := t.cellLine(t.shown[i].cells, ws)
		if i == t.cursor {
			lines = append(lines, st.Selected.Render(markSelected(line)))
		} else {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines, "\n")
}

func matchCount(n, of int) string {
	if n == of {
		return "all " + itoa(of) + " shown"
	}
	return itoa(n) + " of " + itoa(of) + " shown"
}

// helpKeys are the keys the table answers to, for the full help.
func (t *rowTable) helpKeys() []key.Binding {
	k := t.c.keys
	return []key.Binding{k.Up, k.Down, k.Top, k.Bottom, k.PageUp, k.PageDown, k.Filter, k.ClearFilter}
}

// filterHelp is the help while the filter input is open.
func (t *rowTable) filterHelp() helpKeys {
	k := t.c.keys
	keep := key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "keep filter"))
	clearF := key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "clear filter"))
	return screenKeys([]key.Binding{keep, clearF, k.Up, k.Down})
}
