package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agw-dev/agw/store"
)

// watchWait bounds every wait for the feed; reaching it fails the test.
const watchWait = 20 * time.Second

// watcher runs a Watch in the background and hands over what it delivers.
type watcher struct {
	sets chan store.ChangeSet
	done chan error
	stop context.CancelFunc
}

func startWatch(t *testing.T, s *Store, after store.Revision) *watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{sets: make(chan store.ChangeSet, 1024), done: make(chan error, 1), stop: cancel}
	go func() {
		w.done <- s.Watch(ctx, after, func(cs store.ChangeSet) error {
			select {
			case w.sets <- cs:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	t.Cleanup(cancel)
	return w
}

// next returns the next change set, heartbeats included.
func (w *watcher) next(t *testing.T) store.ChangeSet {
	t.Helper()
	select {
	case cs := <-w.sets:
		return cs
	case err := <-w.done:
		t.Fatalf("watch ended: %v", err)
	case <-time.After(watchWait):
		t.Fatalf("nothing from the feed in %v", watchWait)
	}
	panic("unreachable")
}

// changesThrough collects the non-empty change sets up to revision rev.
func (w *watcher) changesThrough(t *testing.T, rev store.Revision) []store.ChangeSet {
	t.Helper()
	var out []store.ChangeSet
	for {
		cs := w.next(t)
		if len(cs.Changes) > 0 {
			out = append(out, cs)
		}
		if cs.Revision >= rev {
			return out
		}
	}
}

// Two replicas write concurrently; the watcher on each sees every change
// once, in the same order, under the revision its writer was told.
func TestWatchTwoReplicasSeeOneOrder(t *testing.T) {
	dbURL := newDatabase(t)
	a, b := openStore(t, dbURL, "a"), openStore(t, dbURL, "b")
	wa, wb := startWatch(t, a, 0), startWatch(t, b, 0)

	const perWriter, writersPerStore = 10, 2
	var mu sync.Mutex
	nameAt := map[store.Revision]string{}
	var wg sync.WaitGroup
	for _, s := range []*Store{a, b} {
		for w := range writersPerStore {
			wg.Go(func() {
				for i := range perWriter {
					name := fmt.Sprintf("%s-%d-%d", s.Replica(), w, i)
					rev, err := s.CreateAgent(t.Context(), &store.Agent{Name: name}, adminEvent("agent.add", name))
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					nameAt[rev] = name
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	total := store.Revision(2 * writersPerStore * perWriter)
	if len(nameAt) != int(total) {
		t.Fatalf("%d distinct revisions for %d writes", len(nameAt), total)
	}
	gotA, gotB := wa.changesThrough(t, total), wb.changesThrough(t, total)
	if !reflect.DeepEqual(gotA, gotB) {
		t.Fatalf("replicas saw different feeds:\n a %v\n b %v", gotA, gotB)
	}
	for i, cs := range gotA {
		if cs.Revision != store.Revision(i+1) {
			t.Fatalf("change set %d has revision %d: the feed has a gap or is out of order", i, cs.Revision)
		}
		if len(cs.Changes) != 1 || cs.Changes[0].Kind != store.KindAgent || cs.Changes[0].Name != nameAt[cs.Revision] {
			t.Errorf("revision %d carries %+v, want agent %q", cs.Revision, cs.Changes, nameAt[cs.Revision])
		}
	}
	for _, s := range []*Store{a, b} {
		snap, err := s.Load(t.Context())
		must(t, err)
		if snap.Revision != total || len(snap.Agents) != int(total) {
			t.Errorf("replica %s loads revision %d with %d agents, want %d and %d", s.Replica(), snap.Revision, len(snap.Agents), total, total)
		}
	}
}

// With nothing changing, the feed beats with the newest revision; a change
// committed by another replica arrives and the beats move on to it.
func TestWatchHeartbeatCarriesNewestRevision(t *testing.T) {
	dbURL := newDatabase(t)
	a, b := openStore(t, dbURL, "a"), openStore(t, dbURL, "b")
	rev := mustRev(t)(a.CreateAgent(t.Context(), &store.Agent{Name: "first"}, adminEvent("agent.add", "first")))
	w := startWatch(t, a, rev)
	for range 2 {
		if cs := w.next(t); len(cs.Changes) != 0 || cs.Revision != rev {
			t.Fatalf("got %+v, want a heartbeat at revision %d", cs, rev)
		}
	}
	rev2 := mustRev(t)(b.CreateAgent(t.Context(), &store.Agent{Name: "second"}, adminEvent("agent.add", "second")))
	sets := w.changesThrough(t, rev2)
	if len(sets) != 1 || sets[0].Revision != rev2 || sets[0].Changes[0].Name != "second" {
		t.Fatalf("after the other replica's write: %+v", sets)
	}
	if cs := w.next(t); len(cs.Changes) != 0 || cs.Revision != rev2 {
		t.Fatalf("got %+v, want a heartbeat at revision %d", cs, rev2)
	}
}

// A watch whose connection is killed returns an error instead of going
// quiet; watching again from the last applied revision delivers what was
// committed meanwhile, in order, and then what follows.
func TestWatchResumesAfterConnectionKilled(t *testing.T) {
	dbURL := newDatabase(t)
	s := openStore(t, dbURL, "a")
	ctx := t.Context()
	rev1 := mustRev(t)(s.CreateAgent(ctx, &store.Agent{Name: "a1"}, adminEvent("agent.add", "a1")))
	w := startWatch(t, s, 0)
	applied := w.changesThrough(t, rev1)[0].Revision

	raw := rawConn(t, dbURL)
	var killed int
	if err := raw.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = 'agw watch a'`).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Fatalf("terminated %d watch connections, want 1", killed)
	}
	var werr error
	for werr == nil {
		select {
		case cs := <-w.sets:
			if len(cs.Changes) > 0 || cs.Revision != applied {
				t.Fatalf("after the kill the feed delivered %+v", cs)
			}
		case werr = <-w.done:
			if werr == nil {
				t.Fatal("Watch returned nil after its connection was killed")
			}
		case <-time.After(watchWait):
			t.Fatal("Watch did not notice its connection was killed")
		}
	}
	if errors.Is(werr, context.Canceled) || !strings.Contains(werr.Error(), "watch") {
		t.Fatalf("Watch returned %v, want an error saying the watch broke", werr)
	}

	var missed []string
	for i := range 3 {
		name := fmt.Sprintf("while-down-%d", i)
		mustRev(t)(s.CreateAgent(ctx, &store.Agent{Name: name}, adminEvent("agent.add", name)))
		missed = append(missed, name)
	}
	w2 := startWatch(t, s, applied)
	last := mustRev(t)(s.CreateAgent(ctx, &store.Agent{Name: "after"}, adminEvent("agent.add", "after")))
	var got []string
	for i, cs := range w2.changesThrough(t, last) {
		if cs.Revision != applied+store.Revision(i+1) {
			t.Fatalf("resumed feed: revision %d at position %d after %d", cs.Revision, i, applied)
		}
		got = append(got, cs.Changes[0].Name)
	}
	if want := append(missed, "after"); !reflect.DeepEqual(got, want) {
		t.Fatalf("resumed feed delivered %v, want %v", got, want)
	}
}

// Compacted history is refused with ErrCompacted; the snapshot's revision
// is a valid place to watch from again. A revision past the newest (a
// database restored from an older backup) is refused the same way.
func TestWatchCompacted(t *testing.T) {
	dbURL := newDatabase(t)
	s := openStore(t, dbURL, "a")
	ctx := t.Context()
	for i := range 3 {
		mustRev(t)(s.CreateAgent(ctx, &store.Agent{Name: fmt.Sprint("c", i)}, adminEvent("agent.add", "c")))
	}
	n, err := s.CompactChanges(ctx, time.Now().Add(time.Hour))
	must(t, err)
	if n != 3 {
		t.Fatalf("compacted %d change sets, want 3", n)
	}
	for _, after := range []store.Revision{0, 2, 9} {
		err := s.Watch(ctx, after, func(store.ChangeSet) error { return errors.New("fn called") })
		if !errors.Is(err, store.ErrCompacted) {
			t.Errorf("Watch(%d) after compaction = %v, want ErrCompacted", after, err)
		}
	}
	snap, err := s.Load(ctx)
	must(t, err)
	if snap.Revision != 3 {
		t.Fatalf("snapshot revision %d, want 3", snap.Revision)
	}
	w := startWatch(t, s, snap.Revision)
	if cs := w.next(t); cs.Revision != 3 || len(cs.Changes) != 0 {
		t.Fatalf("watch from the snapshot: %+v, want a heartbeat at 3", cs)
	}
	rev := mustRev(t)(s.CreateAgent(ctx, &store.Agent{Name: "later"}, adminEvent("agent.add", "later")))
	if sets := w.changesThrough(t, rev); len(sets) != 1 || sets[0].Revision != 4 {
		t.Fatalf("after compaction the feed delivered %+v, want revision 4", sets)
	}
}

// The feed carries what a projection needs to serve: a credential's sealed
// bytes and a token's hash, which their JSON leaves out.
func TestWatchCarriesSealedCredentialAndTokenHash(t *testing.T) {
	dbURL := newDatabase(t)
	s := openStore(t, dbURL, "a")
	ctx := t.Context()
	sealed := []byte("age-encryption.org/v1\nnot really sealed, but opaque")
	mustRev(t)(s.CreateBackend(ctx, &store.Backend{Name: "crm", Hosts: []string{"crm.example.com"}}, &store.Credential{Sealed: sealed}, adminEvent("backend.add", "crm")))
	mustRev(t)(s.CreateAgent(ctx, &store.Agent{Name: "bot"}, adminEvent("agent.add", "bot")))
	hash := []byte("0123456789abcdef0123456789abcdef")
	last := mustRev(t)(s.CreateToken(ctx, &store.Token{ID: "tok1", Agent: "bot", Hash: hash}, adminEvent("token.mint", "tok1")))
	var cred *store.Credential
	var tok *store.Token
	for _, cs := range startWatch(t, s, 0).changesThrough(t, last) {
		for _, c := range cs.Changes {
			if c.Credential != nil {
				cred = c.Credential
			}
			if c.Token != nil {
				tok = c.Token
			}
		}
	}
	if cred == nil || !bytes.Equal(cred.Sealed, sealed) || cred.Version != 1 || cred.Backend != "crm" {
		t.Errorf("credential in the feed = %+v", cred)
	}
	if tok == nil || !bytes.Equal(tok.Hash, hash) || tok.Agent != "bot" {
		t.Errorf("token in the feed = %+v", tok)
	}
}

func TestWatchEndsWithErrClosed(t *testing.T) {
	dbURL := newDatabase(t)
	s := openStore(t, dbURL, "a")
	w := startWatch(t, s, 0)
	w.next(t) // the feed is up
	must(t, s.Close())
	select {
	case err := <-w.done:
		if !errors.Is(err, store.ErrClosed) {
			t.Fatalf("Watch after Close = %v, want ErrClosed", err)
		}
	case <-time.After(watchWait):
		t.Fatal("Watch did not end at Close")
	}
}

// After the server drops every connection of the pool (a restart, an
// operator's pg_terminate_backend), the next writes and reads succeed: a
// transaction that found its connection dead before committing runs again
// on a fresh one.
func TestWritesSurviveKilledPoolConnections(t *testing.T) {
	dbURL := newDatabase(t)
	s := openStore(t, dbURL, "a")
	ctx := t.Context()
	for i := range 3 { // fill the pool with a few connections
		mustRev(t)(s.CreateAgent(ctx, &store.Agent{Name: fmt.Sprint("before-", i)}, adminEvent("agent.add", "before")))
	}
	raw := rawConn(t, dbURL)
	var killed int
	if err := raw.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = 'agw a'`).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed == 0 {
		t.Fatal("no pool connection to kill")
	}
	mustRev(t)(s.CreateAgent(ctx, &store.Agent{Name: "after"}, adminEvent("agent.add", "after")))
	must(t, s.AppendAudit(ctx, []store.AuditEvent{{Kind: store.KindRequest}}))
	snap, err := s.Load(ctx)
	must(t, err)
	if len(snap.Agents) != 4 {
		t.Fatalf("%d agents after the kill, want 4", len(snap.Agents))
	}
	if _, err := s.VerifyAudit(ctx); err != nil {
		t.Fatal(err)
	}
}
