// Package audit moves audit records off the request path: a batcher that
// writes them to a Sink (the store) with back-pressure and never drops, the
// change signal that `audit tail -f` followers wait on, and retention.
package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agw-dev/agw/store"
)

// Log writes request audit records to the store in batches, off the
// request path. Record blocks when the queue is full (back-pressure) rather
// than dropping; Close flushes everything queued. Readers that follow the
// trail wait on Changed and read from the store, so a slow reader never
// holds up the writer and never misses a stored record.
type Log struct {
	sink   Sink
	log    *slog.Logger
	queue  chan store.AuditEvent
	done   chan struct{}
	sendMu sync.RWMutex // read: sending on queue; write: closing it
	closed bool         // guarded by sendMu
	mu     sync.Mutex   // guards changed
	// changed is closed and replaced each time new records are stored.
	changed chan struct{}

	written    atomic.Uint64
	writeFails atomic.Uint64
	lost       atomic.Uint64 // records given up on at a bounded Close

	// writing is when the batch being written started (unix nanos; 0:
	// none), and lastErr the error of the last failed write (nil once one
	// succeeds): together they say whether the sink keeps up.
	writing atomic.Int64
	lastErr atomic.Pointer[error]
	giveUp  atomic.Int64 // unix nanos after which write stops retrying (Close)
	batchN  atomic.Int64 // records in the batch being written

	// FollowMaxLag is how many records a follow stream may fall behind the
	// newest before it is skipped ahead.
	FollowMaxLag uint64
}

// Sink is where batches of audit records are written.
type Sink interface {
	// Append writes evs in order, assigning each its Seq and chain hash, or
	// writes none of them and returns an error (the batch is retried).
	Append(ctx context.Context, evs []store.AuditEvent) error
}

// StoreSink writes audit records to the store.
type StoreSink struct {
	Store interface {
		AppendAudit(ctx context.Context, evs []store.AuditEvent) error
	}
}

// Append implements Sink.
func (s StoreSink) Append(ctx context.Context, evs []store.AuditEvent) error {
	return s.Store.AppendAudit(ctx, evs)
}

// Config configures a Log.
type Config struct {
	Sink   Sink
	Logger *slog.Logger
	// FollowMaxLag: see Log.FollowMaxLag; 0 takes the default (10,000).
	FollowMaxLag uint64
}

const (
	auditQueueSize = 8192
	auditBatchMax  = 512
	// A batch smaller than auditBatchFull waits up to auditLinger for more
	// records before it is written. Much of a store write's cost is per
	// batch (a commit, a value-log append, the memtable's locks): batches
	// of 6 records, typical at 10k requests/s without waiting, cost about a
	// third more per record than batches of 32 (badgerstore's
	// BenchmarkAppendAudit). Records are not on the request path, so only
	// their visibility waits.
	auditBatchFull = 64
	auditLinger    = 2 * time.Millisecond
	// auditFollowMaxLag is the default follow lag limit: about a second of
	// heavy traffic, and a few MiB of NDJSON a reader must take in one go to
	// keep up.
	auditFollowMaxLag = 10_000
)

// New starts a Log writing to cfg.Sink; Close flushes and stops it.
func New(cfg Config) *Log {
	a := &Log{
		sink:         cfg.Sink,
		log:          cfg.Logger,
		queue:        make(chan store.AuditEvent, auditQueueSize),
		done:         make(chan struct{}),
		changed:      make(chan struct{}),
		FollowMaxLag: cfg.FollowMaxLag,
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.FollowMaxLag == 0 {
		a.FollowMaxLag = auditFollowMaxLag
	}
	go a.run()
	return a
}

// Record queues ev for writing. It blocks while the queue is full. After
// Close it writes ev synchronously, so a late record is still kept.
func (a *Log) Record(ev store.AuditEvent) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	// Senders hold the read lock while sending so Close (write lock) cannot
	// close the queue under them; the writer goroutine drains without it.
	a.sendMu.RLock()
	if a.closed {
		a.sendMu.RUnlock()
		a.write([]store.AuditEvent{ev})
		return
	}
	select {
	case a.queue <- ev:
	default:
		if a.Healthy() != nil {
			// The store fails or hangs and the queue is full: waiting would
			// hang the request for good. The record is counted and logged
			// as lost instead (the gateway refuses requests meanwhile).
			if a.lost.Add(1)%1000 == 1 {
				a.log.Error("audit records lost: the queue is full and the store is failing", "lost_so_far", a.lost.Load())
			}
		} else {
			a.queue <- ev // back-pressure: the store is slow, not failing
		}
	}
	a.sendMu.RUnlock()
}

// Depth is the number of records waiting to be written.
func (a *Log) Depth() int { return len(a.queue) }

// Changed returns a channel that is closed when new records are stored.
func (a *Log) Changed() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.changed
}

// Notify wakes followers after records were stored by another path (admin
// mutations write their own event in the same transaction).
func (a *Log) Notify() {
	a.mu.Lock()
	close(a.changed)
	a.changed = make(chan struct{})
	a.mu.Unlock()
}

func (a *Log) run() {
	defer close(a.done)
	batch := make([]store.AuditEvent, 0, auditBatchMax)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for ev := range a.queue {
		batch = a.drain(append(batch[:0], ev))
		if len(batch) < auditBatchFull {
			// Wait a moment for more: Badger's cost is mostly per batch.
			linger.Reset(auditLinger)
		wait:
			for len(batch) < auditBatchFull {
				select {
				case ev, ok := <-a.queue:
					if !ok {
						break wait
					}
					batch = a.drain(append(batch, ev))
				case <-linger.C:
					break wait
				}
			}
			linger.Stop()
		}
		a.write(batch)
	}
}

// drain appends what is queued now, up to auditBatchMax.
func (a *Log) drain(batch []store.AuditEvent) []store.AuditEvent {
	for len(batch) < auditBatchMax {
		select {
		case ev, ok := <-a.queue:
			if !ok {
				return batch
			}
			batch = append(batch, ev)
		default:
			return batch
		}
	}
	return batch
}

// write stores a batch, retrying with back-off until it succeeds or the
// store is closed: records are never dropped silently. While it retries the
// queue fills and Record applies back-pressure to requests.
func (a *Log) write(batch []store.AuditEvent) {
	backoff := 10 * time.Millisecond
	a.writing.Store(time.Now().UnixNano())
	a.batchN.Store(int64(len(batch)))
	defer a.writing.Store(0)
	for {
		err := a.sink.Append(context.Background(), batch)
		if err == nil {
			a.written.Add(uint64(len(batch)))
			a.lastErr.Store(nil)
			a.Notify()
			return
		}
		a.writeFails.Add(1)
		a.lastErr.Store(&err)
		if errors.Is(err, store.ErrClosed) {
			a.lost.Add(uint64(len(batch)))
			a.log.Error("audit records lost: the store is closed", "records", len(batch), "err", err)
			return
		}
		if g := a.giveUp.Load(); g != 0 && time.Now().UnixNano() > g {
			a.lost.Add(uint64(len(batch)))
			a.log.Error("audit records not written: the store still fails and the daemon is stopping", "records", len(batch), "err", err)
			return
		}
		a.log.Error("audit write failed; retrying", "records", len(batch), "err", err, "retry_in", backoff)
		wait := backoff
		if g := a.giveUp.Load(); g != 0 {
			wait = max(0, min(wait, time.Until(time.Unix(0, g))+time.Millisecond))
		}
		time.Sleep(wait)
		backoff = min(backoff*2, 2*time.Second)
	}
}

// StallAfter is how long one batch write may take before the sink counts
// as failing (a store that hangs rather than errors).
const StallAfter = 5 * time.Second

// Healthy returns nil while the sink keeps up, or why it does not: the last
// write failed, or the one in progress has taken longer than StallAfter.
// Requests must not be served while the trail cannot record them.
func (a *Log) Healthy() error {
	if p := a.lastErr.Load(); p != nil {
		return fmt.Errorf("the audit trail cannot be written: %w", *p)
	}
	if w := a.writing.Load(); w != 0 {
		if d := time.Since(time.Unix(0, w)); d > StallAfter {
			return fmt.Errorf("the audit trail's store has not completed a write for %s", d.Truncate(time.Second))
		}
	}
	return nil
}

// Lost is how many records were given up on: by a bounded Close, or while
// the store failed with the queue full.
func (a *Log) Lost() uint64 { return a.lost.Load() }

// Close stops accepting queued records, writes everything queued and returns
// once it is stored.
func (a *Log) Close() {
	a.sendMu.Lock()
	if !a.closed {
		a.closed = true
		close(a.queue)
	}
	a.sendMu.Unlock()
	<-a.done
}

// CloseWithin is Close bounded by d: while the store keeps failing, the
// writer stops retrying after d and what it could not write is counted
// (Lost) and logged, so a broken store cannot keep the daemon from
// exiting. It returns how many records were not written; a write that hangs
// inside the store is abandoned with all still queued.
func (a *Log) CloseWithin(d time.Duration) uint64 {
	a.giveUp.Store(time.Now().Add(d).UnixNano())
	done := make(chan struct{})
	go func() { a.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(d + time.Second):
		n := uint64(len(a.queue)) + uint64(a.batchN.Load())
		a.lost.Add(n)
		a.log.Error("audit records not written: the store did not return from a write", "records", n)
	}
	return a.lost.Load()
}

// Written is the number of records stored since start.
func (a *Log) Written() uint64 { return a.written.Load() }

// WriteFails is the number of failed batch writes since start (each is
// retried).
func (a *Log) WriteFails() uint64 { return a.writeFails.Load() }
