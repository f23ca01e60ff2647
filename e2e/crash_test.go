package e2e

import (
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"
)

// kill ends the daemon with SIGKILL: no shutdown, no flush.
func (e *env) kill() {
	e.t.Helper()
	if e.daemon == nil {
		return
	}
	_ = e.daemon.Process.Signal(syscall.SIGKILL)
	<-e.exited
	e.daemon = nil
}

// load sends requests through the gateway from several clients until
// stopped, and collects the request id of every 200 response read in full.
type load struct {
	tr   *traffic
	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	ids  []string
	at   map[string]time.Time // when each response was read in full
	// got is signalled (without blocking) on each response.
	got     chan struct{}
	started time.Time
}

func startLoad(tr *traffic, clients int) *load {
	l := &load{tr: tr, stop: make(chan struct{}), got: make(chan struct{}, 1), at: map[string]time.Time{}, started: time.Now()}
	for c := range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				status, id, err := tr.call([]string{"a1", "a2"}[c%2], "GET", fmt.Sprintf("/v1/load/%d/%d", c, i))
				if err != nil {
					continue // the daemon is going or gone
				}
				if status == 200 && id != "" {
					l.mu.Lock()
					l.ids = append(l.ids, id)
					l.at[id] = time.Now()
					l.mu.Unlock()
					select {
					case l.got <- struct{}{}:
					default:
					}
				}
			}
		}()
	}
	return l
}

func (l *load) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ids)
}

// waitFor blocks until at least n responses arrived.
func (l *load) waitFor(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for l.count() < n {
		select {
		case <-l.got:
		case <-deadline:
			t.Fatalf("only %d of %d responses within 60s", l.count(), n)
		}
	}
}

// end stops the clients and returns the ids of every response they read.
func (l *load) end() []string {
	close(l.stop)
	l.tr.c.CloseIdleConnections()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ids
}

// missingFrom returns the ids that have no request record in the trail.
func missingFrom(t *testing.T, e *env, ids []string) []string {
	t.Helper()
	stored := map[string]bool{}
	for _, id := range requestIDs(query(t, e, "--kind", "request")) {
		stored[id] = true
	}
	var missing []string
	for _, id := range ids {
		if !stored[id] {
			missing = append(missing, id)
		}
	}
	return missing
}

// TestCrashKeepsAudit kills the daemon with SIGKILL under steady load,
// several times, and restarts it: requests whose response a client read
// before the kill must have their audit records, up to a bounded gap, and
// the chain verifies.
//
// Committed records survive a process kill (the store's memory-mapped log
// is in the page cache; badgerstore's TestKillKeepsCommitted proves it
// without the gateway). What a kill can lose is a record still in the
// daemon's memory: the proxy hands a record to the batch writer as the
// response completes, and the client can read the response before the
// writer has committed that batch. Measured over 48 kills at ~1,500-2,000
// requests/s from 8 clients on a 2-CPU box: none lost in 32 of them, at
// most 25 in one (typically 1-8), and where timed, every lost record was of
// a response read within 1ms of the kill. Since the writer waits up to 2ms
// to fill a small batch (gateway/audit.go), 16 kills at ~1,900-2,800
// requests/s lost 7-14 each, all of responses read within 3ms of the kill.
// The hard bound is the writer's
// queue plus one batch (auditQueueSize + auditBatchMax, reached only under
// back-pressure); this test allows crashLossBound.

func TestCrashKeepsAudit(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a daemon under load several times")
	}
	e := newEnv(t)
	e.start()
	tr := newTraffic(t, e)
	const rounds = 4
	var all []string
	worst, oldest := 0, time.Duration(0)
	for r := range rounds {
		l := startLoad(tr, 8)
		l.waitFor(t, 500+r*250)
		killed := time.Now()
		e.kill()
		ids := l.end()
		all = append(all, ids...)

		e.start()
		tr.c = gatewayClient(t, e)
		tr.port = portOf(e.status.Listeners.HTTPS)
		missing := missingFrom(t, e, ids)
		worst = max(worst, len(missing))
		age := time.Duration(0) // how long before the kill the oldest lost response was read
		for _, id := range missing {
			age = max(age, killed.Sub(l.at[id]))
		}
		oldest = max(oldest, age)
		t.Logf("round %d: SIGKILL after %d responses at ~%.0f/s; %d without an audit record, read at most %v before the kill",
			r+1, len(ids), float64(len(ids))/killed.Sub(l.started).Seconds(), len(missing), age.Round(time.Millisecond))
		if out := e.ok("", "audit", "verify"); out == "" {
			t.Errorf("round %d: verify printed nothing", r+1)
		}
	}
	t.Logf("worst round: %d records lost, answered at most %v before the kill", worst, oldest.Round(time.Millisecond))
	if worst > crashLossBound {
		t.Errorf("a SIGKILL lost up to %d audit records of answered requests; the bound is %d", worst, crashLossBound)
	}
	if missing := missingFrom(t, e, all); len(missing) > worst*rounds {
		t.Errorf("%d records missing over all rounds", len(missing))
	}
	e.stop()
}

// crashLossBound is how many answered requests a SIGKILL may leave without
// a record in this test: one full batch of the writer (auditBatchMax), far
// above what was measured (25).
const crashLossBound = 512

// TestGracefulStopUnderLoad: SIGTERM while clients keep sending loses no
// audit record of any answered request.
func TestGracefulStopUnderLoad(t *testing.T) {
	e := newEnv(t)
	e.start()
	tr := newTraffic(t, e)
	l := startLoad(tr, 8)
	l.waitFor(t, 1000)
	e.stop()
	ids := l.end()
	e.start()
	if missing := missingFrom(t, e, ids); len(missing) > 0 {
		t.Errorf("SIGTERM under load: %d of %d answered requests have no audit record: %.5v", len(missing), len(ids), missing)
	}
	e.ok("", "audit", "verify")
	t.Logf("SIGTERM after %d responses: all recorded", len(ids))
}
