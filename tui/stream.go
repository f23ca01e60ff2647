package tui

import (
	"context"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/store"
)

// auditSub is one subscription to the daemon's audit stream. A goroutine
// runs admin.Client.Audit with follow and feeds a channel; next turns what
// has arrived into one message for the program. Every subscription has a
// generation so messages of a replaced one are ignored.
type auditSub struct {
	gen    int
	ch     chan streamItem
	cancel context.CancelFunc
}

type streamItem struct {
	msg admin.StreamMessage
	end bool
	err error
}

// auditBatchMsg is what arrived on subscription gen since the last one.
type auditBatchMsg struct {
	gen   int
	msgs  []admin.StreamMessage
	ended bool // the stream is over; err says why (nil: the daemon closed it)
	err   error
}

// maxBatch bounds how many stream messages become one program message, so
// a burst costs one redraw rather than thousands.
const maxBatch = 500

func startAuditSub(api API, q store.AuditQuery, gen int) *auditSub {
	ctx, cancel := context.WithCancel(context.Background())
	s := &auditSub{gen: gen, ch: make(chan streamItem, maxBatch), cancel: cancel}
	go func() {
		defer close(s.ch)
		err := api.Audit(ctx, q, true, func(m admin.StreamMessage) error {
			select {
			case s.ch <- streamItem{msg: m}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if ctx.Err() != nil {
			return // replaced or stopped: nobody waits for the end
		}
		select {
		case s.ch <- streamItem{end: true, err: err}:
		case <-ctx.Done():
		}
	}()
	return s
}

// next waits for the next stream messages.
func (s *auditSub) next() tea.Cmd {
	return func() tea.Msg {
		it, ok := <-s.ch
		if !ok {
			return nil
		}
		b := auditBatchMsg{gen: s.gen}
		for {
			if it.end {
				b.ended, b.err = true, it.err
				return b
			}
			b.msgs = append(b.msgs, it.msg)
			if len(b.msgs) >= maxBatch {
				return b
			}
			select {
			case it, ok = <-s.ch:
				if !ok {
					return b
				}
			default:
				return b
			}
		}
	}
}

func (s *auditSub) stop() { s.cancel() }
