package badgerstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"github.com/agw-dev/agw/store"
)

// Revisions and the change history. Every mutation takes the next revision
// (meta/rev) and writes what it changed under r/<rev>, in the transaction
// that makes the change, so the history and the objects never disagree. The
// history is bounded: the compactor (compactLoop) drops the oldest change
// sets once more than ChangeHistory+ChangeHistory/10 are kept, in batches
// of compactBatch revisions off the write path, and records the newest
// revision dropped in meta/rev-floor. Watch serves (floor, newest] from it
// and answers ErrCompacted for anything older.
//
// The cleaner's removal of a deleted owner's dependents is not a change: the
// delete's own change set already made them unreachable.

// DefaultChangeHistory is how many of the newest revisions the change
// history keeps when Options.ChangeHistory is zero. Admin writes are rare
// (people and provisioning scripts), so this is weeks of ordinary use, and
// at a few hundred bytes a change set the history stays a few megabytes.
const DefaultChangeHistory = 10_000

// compactBatch bounds the revisions one compaction transaction drops.
const compactBatch = 1000

// watchBatch bounds the change sets Watch reads in one read transaction,
// so a watcher far behind never holds one transaction open for long.
const watchBatch = 256

// changeRecord is a store.Change as kept in the history: Credential and
// Token as stored, so their sealed bytes and hash survive (the domain types
// hide those from JSON).
type changeRecord struct {
	Kind       store.ObjectKind `json:"kind"`
	Deleted    bool             `json:"deleted,omitempty"`
	Name       string           `json:"name"`
	GrantAgent string           `json:"grant_agent,omitempty"`

	Backend    *store.Backend `json:"backend,omitempty"`
	Credential *credRecord    `json:"credential,omitempty"`
	Agent      *store.Agent   `json:"agent,omitempty"`
	Grant      *store.Grant   `json:"grant,omitempty"`
	Token      *tokenRecord   `json:"token,omitempty"`
	IdP        *store.IdP     `json:"idp,omitempty"`
}

func recordOfChange(c store.Change) changeRecord {
	r := changeRecord{Kind: c.Kind, Deleted: c.Deleted, Name: c.Name, GrantAgent: c.GrantAgent,
		Backend: c.Backend, Agent: c.Agent, Grant: c.Grant, IdP: c.IdP}
	if c.Credential != nil {
		r.Credential = &credRecord{Backend: c.Credential.Backend, Version: c.Credential.Version,
			Sealed: c.Credential.Sealed, CreatedAt: c.Credential.CreatedAt}
	}
	if c.Token != nil {
		tr := tokenRecordOf(c.Token, 0)
		r.Token = &tr
	}
	return r
}

func (r changeRecord) change() store.Change {
	c := store.Change{Kind: r.Kind, Deleted: r.Deleted, Name: r.Name, GrantAgent: r.GrantAgent,
		Backend: r.Backend, Agent: r.Agent, Grant: r.Grant, IdP: r.IdP}
	if r.Credential != nil {
		cred := r.Credential.credential()
		c.Credential = &cred
	}
	if r.Token != nil {
		tk := r.Token.token()
		c.Token = &tk
	}
	return c
}

// The Changes mutations report. Each takes its object by value, so the
// change holds a copy.

func backendPut(b store.Backend) store.Change {
	return store.Change{Kind: store.KindBackend, Name: b.Name, Backend: &b}
}

func credentialPut(c store.Credential) store.Change {
	return store.Change{Kind: store.KindCredential, Name: c.Backend, Credential: &c}
}

func agentPut(a store.Agent) store.Change {
	return store.Change{Kind: store.KindAgent, Name: a.Name, Agent: &a}
}

func grantPut(g store.Grant) store.Change {
	return store.Change{Kind: store.KindGrant, GrantAgent: g.Agent, Name: g.Backend, Grant: &g}
}

func tokenPut(t store.Token) store.Change {
	return store.Change{Kind: store.KindToken, Name: t.ID, Token: &t}
}

func idpPut(p store.IdP) store.Change {
	return store.Change{Kind: store.KindIdP, Name: p.Name, IdP: &p}
}

func deleted(kind store.ObjectKind, name string) store.Change {
	return store.Change{Kind: kind, Deleted: true, Name: name}
}

func grantDeleted(agent, backend string) store.Change {
	return store.Change{Kind: store.KindGrant, Deleted: true, GrantAgent: agent, Name: backend}
}

// writeChangeSet records changes as revision rev, and rev as the newest.
func writeChangeSet(txn *badger.Txn, rev store.Revision, changes []store.Change) error {
	recs := make([]changeRecord, len(changes))
	for i, c := range changes {
		recs[i] = recordOfChange(c)
	}
	if err := setJSON(txn, changeKey(rev), recs); err != nil {
		return err
	}
	return txn.Set(keyRevision, binary.BigEndian.AppendUint64(nil, uint64(rev)))
}

// getRevision reads a revision kept at k (meta/rev, meta/rev-floor); 0 if absent.
func getRevision(txn *badger.Txn, k []byte) (store.Revision, error) {
	raw, found, err := getRaw(txn, k)
	if err != nil || !found {
		return 0, err
	}
	if len(raw) != 8 {
		return 0, fmt.Errorf("decode %q: want 8 bytes, have %d", k, len(raw))
	}
	return store.Revision(binary.BigEndian.Uint64(raw)), nil
}

// feed tells watchers that a revision committed.
type feed struct {
	mu   sync.Mutex
	rev  store.Revision // the newest committed revision
	wake chan struct{}  // closed, and replaced, when a revision commits
}

func newFeed(rev store.Revision) *feed { return &feed{rev: rev, wake: make(chan struct{})} }

// state returns the newest revision and a channel closed once a newer one
// commits.
func (f *feed) state() (store.Revision, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rev, f.wake
}

// publish records rev as committed and wakes every watcher. It never waits
// for them.
func (f *feed) publish(rev store.Revision) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rev = rev
	close(f.wake)
	f.wake = make(chan struct{})
}

// maybeCompact wakes the compactor once the history holds a tenth more than
// it keeps, so it drops the oldest in batches rather than one per write.
func (s *Store) maybeCompact(rev store.Revision) {
	if uint64(rev)-s.floor.Load() <= uint64(s.keep+s.keep/10) {
		return
	}
	select {
	case s.compactKick <- struct{}{}:
	default:
	}
}

func (s *Store) compactLoop() {
	defer s.bg.Done()
	for {
		select {
		case <-s.stop:
			return
		case <-s.compactKick:
		}
		rev, _ := s.feed.state()
		if rev <= s.keep {
			continue
		}
		if err := s.compactHistory(rev - s.keep); err != nil {
			// The next commit kicks it again.
			s.log.Error("compact the change history", "err", err)
		}
	}
}

// compactHistory drops the change sets up to and including keepAfter (at
// most the newest revision), in batches of compactBatch revisions, each its
// own transaction. Watch from a revision before keepAfter then fails with
// ErrCompacted. It reads nothing mutations write, so it never conflicts with
// them and needs no write lock.
func (s *Store) compactHistory(keepAfter store.Revision) error {
	dropped := false
	for {
		var floor store.Revision
		done := false
		err := s.db.Update(func(txn *badger.Txn) error {
			var err error
			if floor, err = getRevision(txn, keyRevFloor); err != nil {
				return err
			}
			newest, _ := s.feed.state()
			target := min(keepAfter, newest, floor+compactBatch)
			if target <= floor {
				done = true
				return nil
			}
			for r := floor + 1; r <= target; r++ {
				if err := txn.Delete(changeKey(r)); err != nil {
					return err
				}
			}
			floor = target
			return txn.Set(keyRevFloor, binary.BigEndian.AppendUint64(nil, uint64(floor)))
		})
		if errors.Is(err, badger.ErrConflict) {
			continue // another compaction moved the floor meanwhile
		}
		if err != nil {
			return fmt.Errorf("compact change history: %w", err)
		}
		if done {
			if dropped {
				s.kickCollector() // the dropped change sets' space in the value log
			}
			return nil
		}
		dropped = true
		s.raiseFloor(floor)
	}
}

// raiseFloor records floor as compacted unless a higher floor already is.
func (s *Store) raiseFloor(floor store.Revision) {
	for {
		cur := s.floor.Load()
		if uint64(floor) <= cur || s.floor.CompareAndSwap(cur, uint64(floor)) {
			return
		}
	}
}
