package audit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/agw-dev/agw/store"
)

// faultySink fails while broken is set, and hangs while hang is open.
type faultySink struct {
	broken  atomic.Bool
	hang    chan struct{}
	mu      sync.Mutex
	written int
}

func (f *faultySink) Append(ctx context.Context, evs []store.AuditEvent) error {
	if f.hang != nil {
		<-f.hang
	}
	if f.broken.Load() {
		return errors.New("disk I/O error")
	}
	f.mu.Lock()
	f.written += len(evs)
	f.mu.Unlock()
	return nil
}

// A failing store makes the log unhealthy until a write succeeds again;
// nothing is dropped while it recovers.
func TestHealthFollowsTheSink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := &faultySink{}
		sink.broken.Store(true)
		l := New(Config{Sink: sink})
		l.Record(store.AuditEvent{Kind: store.KindRequest})
		time.Sleep(100 * time.Millisecond)
		if err := l.Healthy(); err == nil {
			t.Fatal("healthy while every write fails")
		}
		sink.broken.Store(false)
		time.Sleep(3 * time.Second) // past the retry back-off
		if err := l.Healthy(); err != nil {
			t.Fatalf("still unhealthy after the store recovered: %v", err)
		}
		l.Close()
		if sink.written != 1 || l.Lost() != 0 {
			t.Errorf("written %d, lost %d; want 1 and 0", sink.written, l.Lost())
		}
	})
}

// A store that hangs is reported after StallAfter, and a bounded close
// returns, counting what it could not write.
func TestHangingSinkIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := &faultySink{hang: make(chan struct{})}
		l := New(Config{Sink: sink})
		for range 3 {
			l.Record(store.AuditEvent{Kind: store.KindRequest})
		}
		time.Sleep(StallAfter + time.Second)
		if err := l.Healthy(); err == nil {
			t.Fatal("healthy while a write hangs")
		}
		start := time.Now()
		lost := l.CloseWithin(10 * time.Second)
		if d := time.Since(start); d > 12*time.Second {
			t.Errorf("CloseWithin took %v", d)
		}
		if lost != 3 {
			t.Errorf("lost %d, want the 3 records stuck or queued", lost)
		}
		close(sink.hang) // let the stuck write return so the bubble can end
	})
}

// A store that keeps failing does not keep Close from returning.
func TestFailingSinkCloseIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := &faultySink{}
		sink.broken.Store(true)
		l := New(Config{Sink: sink})
		l.Record(store.AuditEvent{Kind: store.KindRequest})
		start := time.Now()
		if lost := l.CloseWithin(5 * time.Second); lost != 1 {
			t.Errorf("lost %d, want 1", lost)
		}
		if d := time.Since(start); d > 8*time.Second {
			t.Errorf("CloseWithin took %v", d)
		}
	})
}
