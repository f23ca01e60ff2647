package badgerstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/agw-dev/agw/store"
	"github.com/agw-dev/agw/store/badgerstore"
)

// replay watches s from after until the change set of upTo and returns the
// revisions delivered.
func replay(t *testing.T, s *badgerstore.Store, after, upTo store.Revision) ([]store.Revision, error) {
	t.Helper()
	errDone := errors.New("done")
	var revs []store.Revision
	err := s.Watch(t.Context(), after, func(cs store.ChangeSet) error {
		if len(cs.Changes) > 0 {
			revs = append(revs, cs.Revision)
		}
		if cs.Revision >= upTo {
			return errDone
		}
		return nil
	})
	if errors.Is(err, errDone) {
		err = nil
	}
	return revs, err
}

// TestChangeHistoryBound: the compactor keeps at least ChangeHistory
// revisions, and at most a tenth more, without anyone asking; Watch from
// before what it kept says so.
func TestChangeHistoryBound(t *testing.T) {
	t.Parallel()
	const keep, writes = 20, 75
	s := openDir(t, t.TempDir(), badgerstore.Options{ChangeHistory: keep})
	ctx := t.Context()
	var newest store.Revision
	for i := range writes {
		name := fmt.Sprintf("a%d", i)
		rev, err := s.CreateAgent(ctx, &store.Agent{Name: name}, admin("agent.add", name))
		must(t, err)
		newest = rev
	}
	// The last kick came at most keep/10+1 writes ago, so the floor
	// settles no lower than this.
	settled := newest - keep - keep/10 - 1
	waitFor(t, "the compactor", func() bool { return s.ChangeFloor() >= settled })
	floor := s.ChangeFloor()
	if kept := newest - floor; kept < keep {
		t.Errorf("the history keeps %d revisions (%d-%d], want at least %d", kept, floor, newest, keep)
	}
	if _, err := replay(t, s, floor-1, newest); !errors.Is(err, store.ErrCompacted) {
		t.Errorf("Watch from %d below the floor %d = %v, want ErrCompacted", floor-1, floor, err)
	}
	revs, err := replay(t, s, floor, newest)
	must(t, err)
	if len(revs) != int(newest-floor) || revs[0] != floor+1 || revs[len(revs)-1] != newest {
		t.Errorf("Watch from the floor %d delivered %v, want %d..%d", floor, revs, floor+1, newest)
	}
	if n := countPrefix(t, s, "r/"); n != int(newest-floor) {
		t.Errorf("%d change sets stored, want the %d kept", n, newest-floor)
	}
}

// TestRevisionSurvivesReopen: the revision counter and the history are on
// disk, so a reopened store goes on numbering and can replay what came
// before.
func TestRevisionSurvivesReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	s, err := badgerstore.Open(dir, badgerstore.Options{})
	must(t, err)
	populate(t, s)
	snap, err := s.Load(ctx)
	must(t, err)
	if snap.Revision == 0 {
		t.Fatal("populated store at revision 0")
	}
	must(t, s.Close())

	s = openDir(t, dir, badgerstore.Options{})
	again, err := s.Load(ctx)
	must(t, err)
	if again.Revision != snap.Revision {
		t.Errorf("revision after reopen %d, want %d", again.Revision, snap.Revision)
	}
	rev, err := s.CreateAgent(ctx, &store.Agent{Name: "after-reopen"}, admin("agent.add", "after-reopen"))
	must(t, err)
	if rev != snap.Revision+1 {
		t.Errorf("first write after reopen at revision %d, want %d", rev, snap.Revision+1)
	}
	revs, err := replay(t, s, 0, rev)
	must(t, err)
	if len(revs) != int(rev) {
		t.Errorf("replay after reopen delivered revisions %v, want 1..%d", revs, rev)
	}
}
