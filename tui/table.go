package tui

import (
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/table"
)

// newTable makes a focused table in the TUI's styles whose keys leave the
// letters free for the screens' actions.
func newTable(c *common, cols []table.Column) table.Model {
	km := table.DefaultKeyMap()
	km.LineUp = c.keys.Up
	km.LineDown = c.keys.Down
	km.PageUp = key.NewBinding(key.WithKeys("pgup"), key.WithHelp("pgup", "page up"))
	km.PageDown = key.NewBinding(key.WithKeys("pgdown"), key.WithHelp("pgdn", "page down"))
	km.HalfPageUp = key.NewBinding(key.WithKeys("ctrl+u"))
	km.HalfPageDown = key.NewBinding(key.WithKeys("ctrl+d"))
	km.GotoTop = key.NewBinding(key.WithKeys("home"))
	km.GotoBottom = key.NewBinding(key.WithKeys("end"))
	t := table.New(table.WithColumns(cols), table.WithFocused(true), table.WithKeyMap(km), table.WithStyles(c.st.Table))
	return t
}

// setRows replaces a table's rows keeping the cursor on the row whose first
// cell is keep, if it is still there.
func setRows(t *table.Model, rows []table.Row, keep string) {
	t.SetRows(rows)
	for i, r := range rows {
		if r[0] == keep {
			t.SetCursor(i)
			return
		}
	}
	if t.Cursor() < 0 && len(rows) > 0 {
		t.SetCursor(0)
	}
}

// selected is the first cell of the table's selected row, or "".
func selected(t table.Model) string {
	if r := t.SelectedRow(); len(r) > 0 {
		return r[0]
	}
	return ""
}

// flex gives the column at index grow whatever width the others leave.
func flex(cols []table.Column, width, grow int) []table.Column {
	used := 0
	for i, c := range cols {
		used += 2 // cell padding
		if i != grow {
			used += c.Width
		}
	}
	out := append([]table.Column(nil), cols...)
	out[grow].Width = max(8, width-used)
	return out
}
