// Package state is the daemon's in-memory projection of the store: what
// the request path reads, built from a snapshot and kept current by the
// store's change feed.
package state

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agw-dev/agw/crypto"
	"github.com/agw-dev/agw/store"
)

// State is the daemon's in-memory view of the store: what the request path
// reads. Admin writes reach Badger first and then replace entries here.
//
// Entries are immutable once published: an update swaps in a new pointer, so
// a request that read a backend (and its credential) keeps using that version
// to the end while the next request sees the new one. Every update touches
// only the entries it changes: its cost does not grow with what is stored.
type State struct {
	mu        sync.RWMutex
	backends  map[string]*Route       // by backend name
	hosts     map[string]*Route       // exact host → backend
	wildcards map[string]*Route       // base of "*.base" → backend
	agents    map[string]*store.Agent // by name
	subjects  map[subjectKey]string   // (idp, subject) → agent name
	grants    map[grantKey]*store.Grant
	tokens    map[string]*store.Token            // by id
	byAgent   map[string]map[string]*store.Token // agent → id → token
	idps      map[string]*store.IdP
	passthru  map[string]*store.Passthrough // by host pattern

	lastSeen sync.Map // agent name → *atomic.Int64 (unix nanos)

	prog  progress
	obsMu sync.Mutex
	obs   []func(store.ChangeSet)
}

// Route is one backend as the request path needs it: its configuration and
// its opened credential.
type Route struct {
	Backend store.Backend
	Secret  crypto.Secret
}

type subjectKey struct{ idp, subject string }
type grantKey struct{ agent, backend string }

func New() *State {
	return &State{
		backends:  map[string]*Route{},
		hosts:     map[string]*Route{},
		wildcards: map[string]*Route{},
		agents:    map[string]*store.Agent{},
		subjects:  map[subjectKey]string{},
		grants:    map[grantKey]*store.Grant{},
		tokens:    map[string]*store.Token{},
		byAgent:   map[string]map[string]*store.Token{},
		idps:      map[string]*store.IdP{},
		passthru:  map[string]*store.Passthrough{},
	}
}

// loadState builds the view from a snapshot, opening each backend's
// credential with the keyring.
func Load(snap *store.Snapshot, keys Opener) (*State, error) {
	s := New()
	creds := map[string]store.Credential{}
	for _, c := range snap.Credentials {
		creds[c.Backend] = c
	}
	for _, b := range snap.Backends {
		c, ok := creds[b.Name]
		if !ok {
			return nil, fmt.Errorf("backend %q has no credential in the store", b.Name)
		}
		secret, err := keys.Open(c.Sealed)
		if err != nil {
			return nil, fmt.Errorf("open credential of backend %q: %w", b.Name, err)
		}
		s.PutBackend(b, secret)
	}
	for _, a := range snap.Agents {
		s.PutAgent(a)
	}
	for _, g := range snap.Grants {
		s.PutGrant(g)
	}
	for _, t := range snap.Tokens {
		s.PutToken(t)
	}
	for _, p := range snap.IdPs {
		s.PutIdP(p)
	}
	for _, p := range snap.Passthrough {
		s.PutPassthrough(p)
	}
	s.prog.rev.Store(uint64(snap.Revision))
	s.prog.confirmed.Store(time.Now().UnixNano())
	return s, nil
}

// routeHost returns the backend serving a normalised host name, or nil.
func (s *State) RouteHost(host string) *Route {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if r := s.hosts[host]; r != nil {
		return r
	}
	if _, base, ok := strings.Cut(host, "."); ok {
		return s.wildcards[base]
	}
	return nil
}

// Intercepts reports whether name is a registered host (dns.Interceptor).
func (s *State) Intercepts(name string) bool { return s.RouteHost(name) != nil }

func (s *State) Backend(name string) *Route {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.backends[name]
}

func (s *State) Agent(name string) *store.Agent {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.agents[name]
}

func (s *State) AgentBySubject(idp, subject string) *store.Agent {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.agents[s.subjects[subjectKey{idp, subject}]]
}

func (s *State) Grant(agent, backend string) *store.Grant {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.grants[grantKey{agent, backend}]
}

func (s *State) Token(id string) *store.Token {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.tokens[id]
}

func (s *State) IdP(name string) *store.IdP {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.idps[name]
}

// markSeen records that agent made a request at t.
func (s *State) MarkSeen(agent string, t time.Time) {
	v, ok := s.lastSeen.Load(agent)
	if !ok {
		v, _ = s.lastSeen.LoadOrStore(agent, new(atomic.Int64))
	}
	v.(*atomic.Int64).Store(t.UnixNano())
}

// SeenAll returns every agent's last request time, for persisting.
func (s *State) SeenAll() map[string]time.Time {
	out := map[string]time.Time{}
	s.lastSeen.Range(func(k, v any) bool {
		out[k.(string)] = time.Unix(0, v.(*atomic.Int64).Load()).UTC()
		return true
	})
	return out
}

// Seen returns the time of agent's last request, zero if none is known.
func (s *State) Seen(agent string) time.Time {
	if v, ok := s.lastSeen.Load(agent); ok {
		return time.Unix(0, v.(*atomic.Int64).Load())
	}
	return time.Time{}
}

// putBackend publishes a backend (new or changed) with its credential.
func (s *State) PutBackend(b store.Backend, secret crypto.Secret) {
	r := &Route{Backend: b, Secret: secret}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.backends[b.Name]; old != nil {
		s.unindexHosts(old)
	}
	s.backends[b.Name] = r
	for _, h := range b.Hosts {
		if base, ok := strings.CutPrefix(h, "*."); ok {
			s.wildcards[base] = r
		} else {
			s.hosts[h] = r
		}
	}
}

func (s *State) unindexHosts(r *Route) {
	for _, h := range r.Backend.Hosts {
		if base, ok := strings.CutPrefix(h, "*."); ok {
			if s.wildcards[base] == r {
				delete(s.wildcards, base)
			}
		} else if s.hosts[h] == r {
			delete(s.hosts, h)
		}
	}
}

// updateBackendConfig publishes new settings for a backend, keeping its credential.
func (s *State) UpdateBackendConfig(b store.Backend) {
	s.mu.RLock()
	old := s.backends[b.Name]
	s.mu.RUnlock()
	var secret crypto.Secret
	if old != nil {
		secret = old.Secret
	}
	s.PutBackend(b, secret)
}

func (s *State) RemoveBackend(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.backends[name]
	if r == nil {
		return
	}
	s.unindexHosts(r)
	delete(s.backends, name)
	for k := range s.grantsOfBackendLocked(name) {
		delete(s.grants, k)
	}
}

// grantsOfBackendLocked scans grants by backend. Grants are few (agents ×
// backends actually granted), unlike tokens.
func (s *State) grantsOfBackendLocked(name string) map[grantKey]*store.Grant {
	out := map[grantKey]*store.Grant{}
	for k, g := range s.grants {
		if k.backend == name {
			out[k] = g
		}
	}
	return out
}

func (s *State) PutAgent(a store.Agent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.agents[a.Name]; old != nil && old.IdP != "" {
		delete(s.subjects, subjectKey{old.IdP, old.Subject})
	}
	s.agents[a.Name] = &a
	if a.IdP != "" {
		s.subjects[subjectKey{a.IdP, a.Subject}] = a.Name
	}
}

func (s *State) RemoveAgent(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.agents[name]
	if a == nil {
		return
	}
	if a.IdP != "" {
		delete(s.subjects, subjectKey{a.IdP, a.Subject})
	}
	delete(s.agents, name)
	for k := range s.grants {
		if k.agent == name {
			delete(s.grants, k)
		}
	}
	for id := range s.byAgent[name] {
		delete(s.tokens, id)
	}
	delete(s.byAgent, name)
	s.lastSeen.Delete(name)
}

func (s *State) PutGrant(g store.Grant) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.grants[grantKey{g.Agent, g.Backend}] = &g
}

func (s *State) RemoveGrant(agent, backend string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.grants, grantKey{agent, backend})
}

func (s *State) PutToken(t store.Token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[t.ID] = &t
	m := s.byAgent[t.Agent]
	if m == nil {
		m = map[string]*store.Token{}
		s.byAgent[t.Agent] = m
	}
	m[t.ID] = &t
}

// RemoveToken drops a token.
func (s *State) RemoveToken(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tokens[id]
	if t == nil {
		return
	}
	delete(s.tokens, id)
	if m := s.byAgent[t.Agent]; m != nil {
		delete(m, id)
		if len(m) == 0 {
			delete(s.byAgent, t.Agent)
		}
	}
}

func (s *State) PutIdP(p store.IdP) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.idps[p.Name] = &p
}

func (s *State) RemoveIdP(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.idps, name)
}

// Listing for the admin API: copies, sorted by name.

func (s *State) ListBackends() []store.Backend {
	s.mu.RLock()
	out := make([]store.Backend, 0, len(s.backends))
	for _, r := range s.backends {
		out = append(out, r.Backend)
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b store.Backend) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

func (s *State) ListAgents() []store.Agent {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return sortedByName(s.agents, func(a *store.Agent) string { return a.Name })
}

// sortedByName copies a name-keyed map's entries, sorted by name.
func sortedByName[T any](m map[string]*T, name func(*T) string) []T {
	out := make([]T, 0, len(m))
	for _, v := range m {
		out = append(out, *v)
	}
	slices.SortFunc(out, func(a, b T) int { return cmp.Compare(name(&a), name(&b)) })
	return out
}

// listGrants returns grants filtered by agent and/or backend ("" matches all).
func (s *State) ListGrants(agent, backend string) []store.Grant {
	s.mu.RLock()
	var out []store.Grant
	for k, g := range s.grants {
		if (agent == "" || k.agent == agent) && (backend == "" || k.backend == backend) {
			out = append(out, *g)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b store.Grant) int {
		return cmp.Or(cmp.Compare(a.Agent, b.Agent), cmp.Compare(a.Backend, b.Backend))
	})
	return out
}

// listTokens returns token records of one agent, or of all agents when agent is "".
func (s *State) ListTokens(agent string) []store.Token {
	s.mu.RLock()
	var out []store.Token
	if agent != "" {
		for _, t := range s.byAgent[agent] {
			out = append(out, *t)
		}
	} else {
		out = make([]store.Token, 0, len(s.tokens))
		for _, t := range s.tokens {
			out = append(out, *t)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b store.Token) int {
		return cmp.Or(cmp.Compare(a.Agent, b.Agent), a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out
}

func (s *State) ActiveTokenCount(agent string, now time.Time) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for _, t := range s.byAgent[agent] {
		if t.Active(now) {
			n++
		}
	}
	return n
}

func (s *State) ListIdPs() []store.IdP {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return sortedByName(s.idps, func(p *store.IdP) string { return p.Name })
}

// hostList returns every registered host pattern, sorted.
func (s *State) HostList() []string {
	s.mu.RLock()
	var out []string
	for _, r := range s.backends {
		out = append(out, r.Backend.Hosts...)
	}
	s.mu.RUnlock()
	slices.Sort(out)
	return out
}

func (s *State) Counts(now time.Time) (backends, agents, grants, tokens, idps int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, t := range s.tokens {
		if t.Active(now) {
			tokens++
		}
	}
	return len(s.backends), len(s.agents), len(s.grants), tokens, len(s.idps)
}
