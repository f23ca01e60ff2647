package audit

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agw-dev/agw/store"
)

// A secondary sink's bounds: its queue, its batches, the time one write
// may take, how often a batch is tried, and how long Close waits for it.
const (
	secondaryQueueSize = 8192
	secondaryBatchMax  = 512
	secondaryTimeout   = 10 * time.Second
	secondaryTries     = 3
	secondaryCloseWait = 5 * time.Second
	// secondaryLogEvery spaces the log lines about dropped records.
	secondaryLogEvery = 10 * time.Second
)

// SinkStats counts what a secondary sink took and what it had to drop.
type SinkStats struct {
	Sent    uint64 // records the sink accepted
	Dropped uint64 // records dropped: queue full, or write failed after retries
	Fails   uint64 // failed write attempts
}

// secondary feeds one secondary sink from its own bounded queue.
type secondary struct {
	sink  Sink
	log   *slog.Logger
	queue chan store.AuditEvent
	done  chan struct{}

	mu     sync.Mutex // guards closed and the send on queue
	closed bool

	sent, dropped, fails atomic.Uint64

	logMu     sync.Mutex
	lastLog   time.Time
	unlogged  uint64 // drops not yet in a log line
	lastError string
}

func newSecondary(s Sink, log *slog.Logger) *secondary {
	return &secondary{sink: s, log: log, queue: make(chan store.AuditEvent, secondaryQueueSize), done: make(chan struct{})}
}

// offer queues copies of evs without ever blocking: what does not fit is
// dropped and counted.
func (s *secondary) offer(evs []store.AuditEvent) {
	s.mu.Lock()
	var lost uint64
	for _, ev := range evs {
		if s.closed {
			lost++
			continue
		}
		select {
		case s.queue <- ev:
		default:
			lost++
		}
	}
	s.mu.Unlock()
	if lost > 0 {
		s.drop(lost, "queue full")
	}
}

// drop counts lost records and logs them, at most once per
// secondaryLogEvery with the total since the last line.
func (s *secondary) drop(n uint64, why string) {
	s.dropped.Add(n)
	s.logMu.Lock()
	defer s.logMu.Unlock()
	s.unlogged += n
	s.lastError = why
	if now := time.Now(); now.Sub(s.lastLog) >= secondaryLogEvery {
		s.log.Error("audit records dropped by a secondary sink (they are in the store; this copy is lost)",
			"sink", sinkName(s.sink), "records", s.unlogged, "dropped_total", s.dropped.Load(), "reason", why)
		s.lastLog, s.unlogged = now, 0
	}
}

func (s *secondary) run() {
	defer close(s.done)
	batch := make([]store.AuditEvent, 0, secondaryBatchMax)
	for ev := range s.queue {
		batch = append(batch[:0], ev)
	fill:
		for len(batch) < secondaryBatchMax {
			select {
			case ev, ok := <-s.queue:
				if !ok {
					break fill
				}
				batch = append(batch, ev)
			default:
				break fill
			}
		}
		s.write(batch)
	}
}

// write tries a batch a bounded number of times, then drops it.
func (s *secondary) write(batch []store.AuditEvent) {
	backoff := 100 * time.Millisecond
	var err error
	for try := range secondaryTries {
		if try > 0 {
			time.Sleep(backoff)
			backoff *= 4
		}
		ctx, cancel := context.WithTimeout(context.Background(), secondaryTimeout)
		err = s.sink.Append(ctx, batch)
		cancel()
		if err == nil {
			s.sent.Add(uint64(len(batch)))
			return
		}
		s.fails.Add(1)
	}
	s.drop(uint64(len(batch)), "write failed: "+err.Error())
}

// close stops taking records and waits a bounded time for the queued ones;
// whatever is still queued after that is counted as dropped.
func (s *secondary) close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.queue)
	}
	s.mu.Unlock()
	select {
	case <-s.done:
	case <-time.After(secondaryCloseWait):
		if n := len(s.queue); n > 0 {
			s.drop(uint64(n), "shutdown before the sink took them")
		}
	}
}

func (s *secondary) stats() SinkStats {
	return SinkStats{Sent: s.sent.Load(), Dropped: s.dropped.Load(), Fails: s.fails.Load()}
}

// sinkName is a sink's Name() when it has one.
func sinkName(s Sink) string {
	if n, ok := s.(interface{ Name() string }); ok {
		return n.Name()
	}
	return "secondary"
}

// Stored hands records that were stored by another path (admin mutations
// write their own event in the same transaction) to the secondary sinks.
// It never blocks.
func (a *Log) Stored(evs []store.AuditEvent) {
	for _, s := range a.secondary {
		s.offer(evs)
	}
}

// Secondary returns the counts of each secondary sink, in Config order.
func (a *Log) Secondary() []SinkStats {
	out := make([]SinkStats, len(a.secondary))
	for i, s := range a.secondary {
		out[i] = s.stats()
	}
	return out
}
