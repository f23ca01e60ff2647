package tui

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/agw-dev/agw/store"
)

const (
	// auditBuffer is how many records the audit screen keeps.
	auditBuffer = 1000
	// auditBacklog is how many stored records a fresh subscription shows.
	auditBacklog = 200
)

// auditScreen follows the audit stream: newest at the bottom, coloured by
// decision, filterable, pausable, with a detail view of one record.
type auditScreen struct {
	c      *common
	filter store.AuditQuery // Agent, Backend, Decision

	events  []store.AuditEvent
	cursor  int
	follow  bool // the cursor sticks to the newest record
	paused  bool
	held    []store.AuditEvent // arrived while paused
	heldN   int                // how many arrived while paused (held is bounded)
	missed  uint64
	sub     *auditSub
	gen     int
	lastSeq uint64
	err     error // why the stream ended; retried on the next tick

	form   *form
	detail *viewport.Model
}

func newAuditScreen(c *common) *auditScreen {
	return &auditScreen{c: c, follow: true}
}

func (s *auditScreen) title() string   { return "Audit" }
func (s *auditScreen) capturing() bool { return s.form != nil }

func (s *auditScreen) setSize(w, h int) {
	if s.form != nil {
		s.form.setWidth(w)
	}
	if s.detail != nil {
		s.detail.Width, s.detail.Height = w, h
	}
}

// start (re)subscribes with the current filter. After an interruption it
// continues after the last record seen instead of repeating the backlog.
func (s *auditScreen) start() tea.Cmd {
	s.stop()
	s.gen++
	q := s.filter
	if s.lastSeq > 0 {
		q.AfterSeq = s.lastSeq
	} else {
		q.Last = auditBacklog
	}
	s.err = nil
	s.sub = startAuditSub(s.c.api, q, s.gen)
	return s.sub.next()
}

// shutdown ends the stream for good when the program exits, leaving the
// screen as it was.
func (s *auditScreen) shutdown() {
	if s.sub != nil {
		s.sub.stop()
	}
}

func (s *auditScreen) stop() {
	if s.sub != nil {
		s.sub.stop()
		s.sub = nil
	}
}

// retry restarts a stream that ended.
func (s *auditScreen) retry() tea.Cmd {
	if s.sub != nil {
		return nil
	}
	return s.start()
}

func (s *auditScreen) helpKeys() helpKeys {
	k := s.c.keys
	switch {
	case s.form != nil:
		return s.form.helpKeys()
	case s.detail != nil:
		return screenKeys([]key.Binding{k.Up, k.Down, k.Back})
	}
	return screenKeys([]key.Binding{k.AuditForm, k.Pause, k.Open, k.Up, k.Down}, []key.Binding{k.Top, k.Bottom, k.ClearNotes})
}

func (s *auditScreen) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case auditBatchMsg:
		if s.sub == nil || msg.gen != s.sub.gen {
			return nil
		}
		s.take(msg)
		if msg.ended {
			s.sub.stop()
			s.sub = nil
			s.err = msg.err
			if s.err == nil {
				s.err = errors.New("the daemon closed the audit stream")
			}
			return nil
		}
		return s.sub.next()
	case tea.KeyMsg:
		return s.key(msg)
	}
	return nil
}

func (s *auditScreen) take(b auditBatchMsg) {
	for _, m := range b.msgs {
		s.missed += m.Missed
		if m.Event == nil {
			continue
		}
		s.lastSeq = max(s.lastSeq, m.Event.Seq)
		if s.paused {
			s.heldN++
			s.held = appendBounded(s.held, *m.Event)
			continue
		}
		s.push(*m.Event)
	}
}

func appendBounded(buf []store.AuditEvent, ev store.AuditEvent) []store.AuditEvent {
	buf = append(buf, ev)
	if over := len(buf) - auditBuffer; over > 0 {
		buf = append(buf[:0:0], buf[over:]...)
	}
	return buf
}

func (s *auditScreen) push(ev store.AuditEvent) {
	before := len(s.events)
	s.events = appendBounded(s.events, ev)
	dropped := before + 1 - len(s.events)
	s.cursor = max(0, s.cursor-dropped)
	if s.follow {
		s.cursor = len(s.events) - 1
	}
}

func (s *auditScreen) key(msg tea.KeyMsg) tea.Cmd {
	k := s.c.keys
	switch {
	case s.form != nil:
		res, cmd := s.form.update(msg)
		switch res {
		case formCancelled:
			s.form = nil
		case formSubmitted:
			return s.applyFilter()
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
	last := len(s.events) - 1
	switch {
	case key.Matches(msg, k.AuditForm):
		decision := s.filter.Decision
		if decision == "" {
			decision = anyDecision
		}
		s.form = newForm(s.c, "Filter the audit stream",
			fieldSpec{label: "agent", value: s.filter.Agent, placeholder: "any agent"},
			fieldSpec{label: "backend", value: s.filter.Backend, placeholder: "any backend"},
			fieldSpec{label: "decision", value: decision, options: []string{anyDecision, store.Allow, store.Deny}})
		s.form.note = "Empty fields match everything. The stream restarts with the filter."
	case key.Matches(msg, k.Pause):
		s.paused = !s.paused
		if !s.paused {
			for _, ev := range s.held {
				s.push(ev)
			}
			s.held, s.heldN = nil, 0
		}
	case key.Matches(msg, k.ClearNotes):
		s.missed = 0
	case key.Matches(msg, k.Up):
		s.cursor, s.follow = max(0, s.cursor-1), false
	case key.Matches(msg, k.Down):
		s.cursor = min(last, s.cursor+1)
		s.follow = s.cursor == last
	case key.Matches(msg, k.Top):
		s.cursor, s.follow = 0, false
	case key.Matches(msg, k.Bottom):
		s.cursor, s.follow = last, true
	case key.Matches(msg, k.Open) && s.cursor >= 0 && s.cursor <= last:
		b, err := json.MarshalIndent(s.events[s.cursor], "", "  ")
		if err != nil {
			return nil
		}
		vp := viewport.New(s.c.width, s.c.height)
		vp.SetContent(s.c.st.Title.Render(fmt.Sprintf("Audit record %d", s.events[s.cursor].Seq)) +
			s.c.st.Muted.Render("  (esc to go back)") + "\n\n" + string(b))
		s.detail = &vp
	}
	return nil
}

// anyDecision is the decision filter's option for both decisions.
const anyDecision = "any"

func (s *auditScreen) applyFilter() tea.Cmd {
	f := s.form
	q := store.AuditQuery{Agent: f.value(0), Backend: f.value(1), Decision: f.value(2)}
	if q.Decision == anyDecision {
		q.Decision = ""
	}
	s.form = nil
	s.filter = q
	s.events, s.held, s.heldN, s.missed, s.lastSeq = nil, nil, 0, 0, 0
	s.cursor, s.follow = 0, true
	return s.start()
}

func (s *auditScreen) filterDesc() string {
	var parts []string
	if s.filter.Agent != "" {
		parts = append(parts, "agent="+s.filter.Agent)
	}
	if s.filter.Backend != "" {
		parts = append(parts, "backend="+s.filter.Backend)
	}
	if s.filter.Decision != "" {
		parts = append(parts, "decision="+s.filter.Decision)
	}
	if len(parts) == 0 {
		return "all records"
	}
	return strings.Join(parts, " ")
}

func (s *auditScreen) view() string {
	st := s.c.st
	switch {
	case s.form != nil:
		return s.form.view()
	case s.detail != nil:
		return s.detail.View()
	}
	state := st.OKBar.Render("● live")
	switch {
	case s.paused:
		state = st.Warning.Render(fmt.Sprintf("❚❚ paused, %d new", s.heldN))
	case s.sub == nil:
		state = st.ErrorBar.Render("○ stopped")
	}
	head := []string{truncate(fmt.Sprintf("%s  %s %s", state, st.Label.Render("filter:"), st.Value.Render(s.filterDesc()))+
		st.Muted.Render(fmt.Sprintf("  %d shown", len(s.events))), s.c.width)}
	if s.missed > 0 {
		head = append(head, truncate(st.Warning.Render(fmt.Sprintf("! stream fell behind: %d records were skipped; see agw audit query · c clears", s.missed)), s.c.width))
	}
	if s.err != nil && s.sub == nil {
		head = append(head, truncate(st.ErrorBar.Render("✗ Error: audit stream: "+describeErr(s.err)), s.c.width))
	}
	rows := max(1, s.c.height-len(head))
	lines := head
	if len(s.events) == 0 {
		lines = append(lines, st.Muted.Render("no records yet"))
		return strings.Join(lines, "\n")
	}
	end := len(s.events)
	if !s.follow {
		end = min(len(s.events), max(s.cursor+1, rows))
	}
	start := max(0, end-rows)
	if s.cursor < start {
		start, end = s.cursor, min(len(s.events), s.cursor+rows)
	}
	for i := start; i < end; i++ {
		ev := &s.events[i]
		line := s.c.auditLine(ev)
		style := st.decision(ev.Kind, ev.Decision)
		if i == s.cursor {
			lines = append(lines, truncate(st.Selected.Inherit(style).Render("› "+line), s.c.width))
		} else {
			lines = append(lines, truncate(style.Render("  "+line), s.c.width))
		}
	}
	return strings.Join(lines, "\n")
}
