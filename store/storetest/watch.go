package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/agw-dev/agw/store"
)

// waitLimit bounds every wait for a delivery; reaching it fails the test.
const waitLimit = 20 * time.Second

// watcher runs Watch in the background and records what it delivers,
// checking as it goes that change sets come in revision order and that a
// heartbeat only ever names the revision last delivered.
type watcher struct {
	t      *testing.T
	cancel context.CancelFunc
	done   chan error

	mu    sync.Mutex
	sets  []store.ChangeSet // the non-empty ones
	beats []store.ChangeSet
	at    []time.Time // when each call came, beats and sets alike
	last  store.Revision
	// hook, if set, runs first in each call; its error ends the Watch.
	hook func(store.ChangeSet) error
	// moved is signalled after each call.
	moved chan struct{}
}

func startWatch(t *testing.T, s store.Store, after store.Revision, hook func(store.ChangeSet) error) *watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	w := &watcher{t: t, cancel: cancel, done: make(chan error, 1), last: after, hook: hook, moved: make(chan struct{}, 1)}
	go func() { w.done <- s.Watch(ctx, after, w.fn) }()
	t.Cleanup(func() { cancel(); <-w.done })
	return w
}

func (w *watcher) fn(cs store.ChangeSet) error {
	if w.hook != nil {
		if err := w.hook(cs); err != nil {
			return err
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.at = append(w.at, time.Now())
	if len(cs.Changes) == 0 {
		if cs.Revision != w.last {
			w.t.Errorf("heartbeat at revision %d, but the last change set delivered was %d", cs.Revision, w.last)
		}
		w.beats = append(w.beats, cs)
	} else {
		if cs.Revision <= w.last {
			w.t.Errorf("change set %d delivered after %d", cs.Revision, w.last)
		}
		w.last = cs.Revision
		w.sets = append(w.sets, cs)
	}
	select {
	case w.moved <- struct{}{}:
	default:
	}
	return nil
}

// until waits for cond over the watcher's record, failing after waitLimit.
func (w *watcher) until(what string, cond func(w *watcher) bool) {
	w.t.Helper()
	deadline := time.After(waitLimit)
	for {
		w.mu.Lock()
		ok := cond(w)
		w.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-w.moved:
		case err := <-w.done:
			w.done <- err
			w.t.Fatalf("Watch returned %v while waiting for %s", err, what)
		case <-deadline:
			w.t.Fatalf("no %s within %v", what, waitLimit)
		}
	}
}

// reach waits until the change set of rev is delivered and returns every
// change set so far.
func (w *watcher) reach(rev store.Revision) []store.ChangeSet {
	w.t.Helper()
	w.until(fmt.Sprintf("change set %d", rev), func(w *watcher) bool { return w.last >= rev })
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.sets)
}

// stop cancels the Watch and checks it returned ctx's error.
func (w *watcher) stop() {
	w.t.Helper()
	w.cancel()
	err := <-w.done
	w.done <- err
	if !errors.Is(err, context.Canceled) {
		w.t.Errorf("Watch after cancel = %v, want context.Canceled", err)
	}
}

// watchOnce runs Watch from after until fn has seen rev (or, if rev is
// after, until the first call) and returns the change sets delivered.
func watchOnce(t *testing.T, s store.Store, after, rev store.Revision) ([]store.ChangeSet, error) {
	t.Helper()
	errSeen := errors.New("seen")
	var sets []store.ChangeSet
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	err := s.Watch(ctx, after, func(cs store.ChangeSet) error {
		if len(cs.Changes) > 0 {
			sets = append(sets, cs)
		}
		if cs.Revision >= rev {
			return errSeen
		}
		return nil
	})
	if errors.Is(err, errSeen) {
		return sets, nil
	}
	return sets, err
}

func testRevisions(t *testing.T, open func(t *testing.T) store.Store) {
	t.Parallel()
	s := open(t)
	if got := mustLoad(t, s).Revision; got != 0 {
		t.Errorf("an empty store's revision is %d, want 0", got)
	}
	steps := script(t, s) // checks each revision rises and Load reports it
	last := steps[len(steps)-1].rev
	// A failed write takes no revision.
	_, err := s.CreateAgent(t.Context(), &store.Agent{Name: agentBot}, ev("agent.add", agentBot))
	wantErr(t, err, store.ErrExists)
	if got := mustLoad(t, s).Revision; got != last {
		t.Errorf("after a failed write Load's revision is %d, want %d", got, last)
	}
	rev, err := s.CreateAgent(t.Context(), &store.Agent{Name: "late"}, ev("agent.add", "late"))
	must(t, err)
	if rev <= last {
		t.Errorf("the write after a failed one has revision %d, want above %d", rev, last)
	}
}

func testWatch(t *testing.T, h Harness) {
	t.Parallel()
	open := h.Open

	t.Run("replay from zero", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		steps := script(t, s)
		sets, err := watchOnce(t, s, 0, steps[len(steps)-1].rev)
		must(t, err)
		checkDelivered(t, sets, steps)
	})

	t.Run("replay from a middle revision", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		steps := script(t, s)
		for _, k := range []int{0, len(steps) / 2, len(steps) - 2} {
			sets, err := watchOnce(t, s, steps[k].rev, steps[len(steps)-1].rev)
			must(t, err)
			checkDelivered(t, sets, steps[k+1:])
		}
	})

	t.Run("replay then live", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		steps := script(t, s)
		mid := len(steps) / 2
		w := startWatch(t, s, steps[mid].rev, nil)
		checkDelivered(t, w.reach(steps[len(steps)-1].rev), steps[mid+1:])
		a := &store.Agent{Name: "late"}
		rev, err := s.CreateAgent(t.Context(), a, ev("agent.add", "late"))
		must(t, err)
		sets := w.reach(rev)
		want := append(slices.Clone(steps[mid+1:]), step{"create agent while watching", rev,
			[]store.Change{{Kind: store.KindAgent, Name: "late", Agent: a}}})
		checkDelivered(t, sets, want)
		w.stop()
	})

	t.Run("from the newest revision", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		seed(t, s)
		snap := mustLoad(t, s)
		w := startWatch(t, s, snap.Revision, nil)
		rev, err := s.DeleteBackend(t.Context(), backendHR, ev("backend.remove", backendHR))
		must(t, err)
		checkDelivered(t, w.reach(rev), []step{{"delete backend", rev,
			[]store.Change{{Kind: store.KindBackend, Deleted: true, Name: backendHR}}}})
		w.stop()
	})

	t.Run("concurrent mutations", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		w := startWatch(t, s, mustLoad(t, s).Revision, nil)
		const writers, rounds = 4, 10
		var mu sync.Mutex
		names := map[store.Revision]string{}
		var wg sync.WaitGroup
		for i := range writers {
			wg.Go(func() {
				for r := range rounds {
					name := fmt.Sprintf("w%d-%d", i, r)
					rev, err := s.CreateAgent(t.Context(), &store.Agent{Name: name}, ev("agent.add", name))
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					if other, dup := names[rev]; dup {
						t.Errorf("revision %d returned for both %s and %s", rev, other, name)
					}
					names[rev] = name
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		revs := slices.Sorted(func(yield func(store.Revision) bool) {
			for r := range names {
				if !yield(r) {
					return
				}
			}
		})
		sets := w.reach(revs[len(revs)-1])
		if len(sets) != len(revs) {
			t.Fatalf("delivered %d change sets for %d mutations", len(sets), len(revs))
		}
		for i, cs := range sets {
			if cs.Revision != revs[i] {
				t.Fatalf("change set %d is revision %d, want %d", i, cs.Revision, revs[i])
			}
			if len(cs.Changes) != 1 || cs.Changes[0].Kind != store.KindAgent || cs.Changes[0].Name != names[cs.Revision] ||
				cs.Changes[0].Agent == nil || cs.Changes[0].Agent.Name != names[cs.Revision] {
				t.Errorf("revision %d: changes %v, want agent %s put", cs.Revision, cs.Changes, names[cs.Revision])
			}
		}
		w.stop()
	})

	t.Run("slow callback blocks no mutation", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		release := make(chan struct{})
		var once sync.Once
		w := startWatch(t, s, 0, func(store.ChangeSet) error {
			once.Do(func() { <-release })
			return nil
		})
		// The first change set holds the callback up; twenty more
		// mutations must still finish.
		const n = 21
		done := make(chan store.Revision, 1)
		go func() {
			var last store.Revision
			for i := range n {
				name := fmt.Sprintf("a%d", i)
				rev, err := s.CreateAgent(context.Background(), &store.Agent{Name: name}, ev("agent.add", name))
				if err != nil {
					t.Error(err)
				}
				last = rev
			}
			done <- last
		}()
		var last store.Revision
		select {
		case last = <-done:
		case <-time.After(waitLimit):
			close(release)
			t.Fatalf("%d mutations did not finish within %v while a Watch callback was blocked", n, waitLimit)
		}
		close(release)
		if sets := w.reach(last); len(sets) != n {
			t.Errorf("delivered %d change sets, want %d", len(sets), n)
		}
		w.stop()
	})

	t.Run("resume after the callback fails", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		steps := script(t, s)
		boom := errors.New("projection cannot apply this")
		fail := steps[3].rev
		var applied store.Revision
		err := s.Watch(t.Context(), 0, func(cs store.ChangeSet) error {
			if cs.Revision == fail {
				return boom
			}
			if len(cs.Changes) > 0 {
				applied = cs.Revision
			}
			return nil
		})
		if err != boom { // the interface promises it as is, unwrapped
			t.Fatalf("Watch = %v, want the callback's error as is", err)
		}
		if applied != steps[2].rev {
			t.Fatalf("applied up to %d before the failure, want %d", applied, steps[2].rev)
		}
		sets, err := watchOnce(t, s, applied, steps[len(steps)-1].rev)
		must(t, err)
		checkDelivered(t, sets, steps[3:])
	})

	t.Run("from a revision the store never had", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		seed(t, s)
		snap := mustLoad(t, s)
		_, err := watchOnce(t, s, snap.Revision+1000, snap.Revision+1000)
		wantErr(t, err, store.ErrCompacted)
	})

	t.Run("compacted history", func(t *testing.T) {
		t.Parallel()
		if h.Compact == nil {
			t.Skip("the harness has no Compact hook")
		}
		s := open(t)
		steps := script(t, s)
		keep := steps[5].rev
		h.Compact(t, s, keep)
		for _, after := range []store.Revision{0, steps[4].rev} {
			if _, err := watchOnce(t, s, after, steps[len(steps)-1].rev); !errors.Is(err, store.ErrCompacted) {
				t.Errorf("Watch from %d after compacting up to %d = %v, want ErrCompacted", after, keep, err)
			}
		}
		sets, err := watchOnce(t, s, keep, steps[len(steps)-1].rev)
		must(t, err)
		checkDelivered(t, sets, steps[6:])

		// What a projection does on ErrCompacted: load, and watch from
		// the snapshot's revision.
		snap := mustLoad(t, s)
		if snap.Revision != steps[len(steps)-1].rev {
			t.Errorf("reloaded snapshot at revision %d, want %d", snap.Revision, steps[len(steps)-1].rev)
		}
		w := startWatch(t, s, snap.Revision, nil)
		rev, err := s.CreateAgent(t.Context(), &store.Agent{Name: "after-reload"}, ev("agent.add", "after-reload"))
		must(t, err)
		if sets := w.reach(rev); len(sets) != 1 || sets[0].Changes[0].Name != "after-reload" {
			t.Errorf("after reload delivered %v, want the one new agent", sets)
		}
		w.stop()
	})

	t.Run("heartbeats", func(t *testing.T) {
		t.Parallel()
		if h.Synctest {
			synctest.Test(t, func(t *testing.T) { testHeartbeatsBubble(t, open) })
			return
		}
		s := open(t)
		seed(t, s)
		rev := mustLoad(t, s).Revision
		w := startWatch(t, s, rev, nil)
		w.until("two heartbeats", func(w *watcher) bool { return len(w.beats) >= 2 })
		w.stop()
	})

	t.Run("store closed under a watch", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		seed(t, s)
		done := make(chan error, 1)
		started := make(chan struct{})
		var once sync.Once
		go func() {
			done <- s.Watch(t.Context(), 0, func(store.ChangeSet) error {
				once.Do(func() { close(started) })
				return nil
			})
		}()
		<-started
		must(t, s.Close())
		select {
		case err := <-done:
			if !errors.Is(err, store.ErrClosed) {
				t.Errorf("Watch after Close = %v, want ErrClosed", err)
			}
		case <-time.After(waitLimit):
			t.Fatalf("Watch still running %v after Close", waitLimit)
		}
	})
}

// testHeartbeatsBubble checks, on a synctest clock, that no call of a
// watch's callback is more than HeartbeatInterval after the previous one (or
// the start), and that a heartbeat names the newest revision.
func testHeartbeatsBubble(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	seed(t, s)
	rev := mustLoad(t, s).Revision
	start := time.Now()
	w := startWatch(t, s, rev, nil)
	time.Sleep(3*store.HeartbeatInterval + store.HeartbeatInterval/2)
	synctest.Wait()
	a := &store.Agent{Name: "between-beats"}
	next, err := s.CreateAgent(t.Context(), a, ev("agent.add", a.Name))
	must(t, err)
	time.Sleep(2*store.HeartbeatInterval + store.HeartbeatInterval/2)
	synctest.Wait()
	w.stop()

	w.mu.Lock()
	defer w.mu.Unlock()
	prev := start
	for i, at := range w.at {
		if gap := at.Sub(prev); gap > store.HeartbeatInterval {
			t.Errorf("call %d came %v after the previous one, over HeartbeatInterval %v", i, gap, store.HeartbeatInterval)
		}
		prev = at
	}
	if gap := start.Add(6 * store.HeartbeatInterval).Sub(prev); gap > store.HeartbeatInterval {
		t.Errorf("the last call came %v before the end", gap)
	}
	if len(w.beats) < 5 {
		t.Errorf("%d heartbeats in 6 intervals, want at least 5", len(w.beats))
	}
	for _, b := range w.beats {
		if b.Revision != rev && b.Revision != next {
			t.Errorf("heartbeat at revision %d, want %d or %d", b.Revision, rev, next)
		}
	}
	if n := len(w.beats); n > 0 && w.beats[n-1].Revision != next {
		t.Errorf("last heartbeat at revision %d, want the newest %d", w.beats[n-1].Revision, next)
	}
	checkDelivered(t, w.sets, []step{{"create agent between heartbeats", next,
		[]store.Change{{Kind: store.KindAgent, Name: a.Name, Agent: a}}}})
}
