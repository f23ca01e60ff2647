package state

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agw-dev/agw/crypto"
	"github.com/agw-dev/agw/store"
)

// Opener opens sealed credentials (crypto.Keyring).
type Opener interface {
	Open(sealed []byte) (crypto.Secret, error)
}

// progress is the part of State that says how current it is.
type progress struct {
	rev       atomic.Uint64 // the last revision applied
	confirmed atomic.Int64  // unix nanos when the feed last proved the view current
	mu        sync.Mutex    // guards reached
	reached   chan struct{} // closed and replaced whenever rev advances
}

func (p *progress) advance(rev store.Revision, now time.Time) {
	p.confirmed.Store(now.UnixNano())
	if uint64(rev) <= p.rev.Load() {
		return
	}
	p.rev.Store(uint64(rev))
	p.mu.Lock()
	if p.reached != nil {
		close(p.reached)
		p.reached = nil
	}
	p.mu.Unlock()
}

func (p *progress) wait() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reached == nil {
		p.reached = make(chan struct{})
	}
	return p.reached
}

// Revision is the store revision the view has applied.
func (s *State) Revision() store.Revision { return store.Revision(s.prog.rev.Load()) }

// ConfirmedAt is when the change feed last proved the view current (a
// change or a heartbeat); zero before the first.
func (s *State) ConfirmedAt() time.Time {
	if n := s.prog.confirmed.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// WaitFor returns once the view has applied rev, or ctx's error.
func (s *State) WaitFor(ctx context.Context, rev store.Revision) error {
	for {
		ch := s.prog.wait()
		if s.Revision() >= rev {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("the change was stored (revision %d) but the gateway has applied only revision %d: %w", rev, s.Revision(), ctx.Err())
		}
	}
}

// Apply publishes one committed change set. Credentials are opened with
// keys; a backend put without a credential in the same set keeps the
// backend's current credential. Deleting a backend or an agent drops what
// depended on it (grants; tokens), as the store does.
func (s *State) Apply(cs store.ChangeSet, keys Opener, now time.Time) error {
	if len(cs.Changes) == 0 || store.Revision(s.prog.rev.Load()) >= cs.Revision {
		s.prog.advance(cs.Revision, now)
		return nil
	}
	secrets := map[string]crypto.Secret{}
	for _, c := range cs.Changes {
		if c.Kind == store.KindCredential && !c.Deleted && c.Credential != nil {
			sec, err := keys.Open(c.Credential.Sealed)
			if err != nil {
				return fmt.Errorf("revision %d: open credential of backend %q: %w", cs.Revision, c.Name, err)
			}
			secrets[c.Name] = sec
		}
	}
	for _, c := range cs.Changes {
		switch c.Kind {
		case store.KindBackend:
			switch {
			case c.Deleted:
				s.RemoveBackend(c.Name)
			case c.Backend == nil:
				return fmt.Errorf("revision %d: backend %q put without its configuration", cs.Revision, c.Name)
			default:
				if sec, ok := secrets[c.Name]; ok {
					s.PutBackend(*c.Backend, sec)
				} else if s.Backend(c.Name) != nil {
					s.UpdateBackendConfig(*c.Backend)
				} else {
					return fmt.Errorf("revision %d: backend %q has no credential", cs.Revision, c.Name)
				}
			}
		case store.KindCredential:
			if sec, ok := secrets[c.Name]; ok && !hasBackendPut(cs, c.Name) {
				r := s.Backend(c.Name)
				if r == nil {
					return fmt.Errorf("revision %d: credential for unknown backend %q", cs.Revision, c.Name)
				}
				b := r.Backend
				if c.Credential != nil {
					b.CredentialVersion = c.Credential.Version
				}
				s.PutBackend(b, sec)
			}
		case store.KindAgent:
			if c.Deleted {
				s.RemoveAgent(c.Name)
			} else if c.Agent != nil {
				s.PutAgent(*c.Agent)
			}
		case store.KindGrant:
			if c.Deleted {
				s.RemoveGrant(c.GrantAgent, c.Name)
			} else if c.Grant != nil {
				s.PutGrant(*c.Grant)
			}
		case store.KindToken:
			if c.Deleted {
				s.RemoveToken(c.Name)
			} else if c.Token != nil {
				s.PutToken(*c.Token)
			}
		case store.KindIdP:
			if c.Deleted {
				s.RemoveIdP(c.Name)
			} else if c.IdP != nil {
				s.PutIdP(*c.IdP)
			}
		case store.KindPassthrough:
			if c.Deleted {
				s.RemovePassthrough(c.Name)
			} else if c.Passthrough != nil {
				s.PutPassthrough(*c.Passthrough)
			}
		}
	}
	s.prog.advance(cs.Revision, now)
	for _, fn := range s.observers() {
		fn(cs)
	}
	return nil
}

func hasBackendPut(cs store.ChangeSet, name string) bool {
	for _, c := range cs.Changes {
		if c.Kind == store.KindBackend && !c.Deleted && c.Name == name {
			return true
		}
	}
	return false
}

// OnChange registers fn to be called, in order, after each change set is
// applied (the gateway closes streams that a revocation ended).
func (s *State) OnChange(fn func(store.ChangeSet)) {
	s.obsMu.Lock()
	s.obs = append(s.obs, fn)
	s.obsMu.Unlock()
}

func (s *State) observers() []func(store.ChangeSet) {
	s.obsMu.Lock()
	defer s.obsMu.Unlock()
	return s.obs
}

// replaceWith swaps in the contents of a freshly loaded view, keeping this
// State (which the pipeline holds) and its observers.
func (s *State) replaceWith(n *State) {
	s.mu.Lock()
	n.mu.Lock()
	s.backends, s.hosts, s.wildcards = n.backends, n.hosts, n.wildcards
	s.agents, s.subjects, s.grants = n.agents, n.subjects, n.grants
	s.tokens, s.byAgent, s.idps = n.tokens, n.byAgent, n.idps
	s.passthru = n.passthru
	n.mu.Unlock()
	s.mu.Unlock()
}

// Projector keeps a State current from a store: it watches the store's
// change feed from the State's revision, reloads the whole view when the
// store no longer has the history it needs, and re-watches after a broken
// feed.
type Projector struct {
	Store  store.Store
	Keys   Opener
	State  *State
	Logger *slog.Logger
	Now    func() time.Time // nil → time.Now
	// Reloaded, when set, is called after a full reload (the pipeline
	// then re-checks what it holds open against the new view).
	Reloaded func()
}

// Run applies the store's changes until ctx is done. It never gives up: a
// broken feed is retried with back-off (the view then goes stale, which
// the pipeline and readiness see through ConfirmedAt).
func (p *Projector) Run(ctx context.Context) error {
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := p.Now
	if now == nil {
		now = time.Now
	}
	backoff := 50 * time.Millisecond
	for {
		from := p.State.Revision()
		err := p.Store.Watch(ctx, from, func(cs store.ChangeSet) error {
			backoff = 50 * time.Millisecond
			return p.State.Apply(cs, p.Keys, now())
		})
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case errors.Is(err, store.ErrCompacted):
			log.Warn("change history no longer reaches the gateway's view; reloading everything", "revision", from)
			if err := p.reload(ctx, now); err != nil {
				log.Error("reload the gateway's view", "err", err, "retry_in", backoff)
			} else {
				continue
			}
		case errors.Is(err, store.ErrClosed):
			return nil
		default:
			log.Error("change feed broke; the gateway's view is stale until it is back", "err", err, "revision", from, "retry_in", backoff)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (p *Projector) reload(ctx context.Context, now func() time.Time) error {
	snap, err := p.Store.Load(ctx)
	if err != nil {
		return err
	}
	n, err := Load(snap, p.Keys)
	if err != nil {
		return err
	}
	p.State.replaceWith(n)
	p.State.prog.rev.Store(0) // a reload may go back (a restored store); take the snapshot's revision as it is
	p.State.prog.advance(snap.Revision, now())
	for _, fn := range p.State.observers() {
		fn(store.ChangeSet{Revision: snap.Revision})
	}
	if p.Reloaded != nil {
		p.Reloaded()
	}
	return nil
}
