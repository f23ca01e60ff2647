package state

import (
	"github.com/agw-dev/agw/store"
)

// PutPassthrough lists a host pattern for pass-through tunnels.
func (s *State) PutPassthrough(p store.Passthrough) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.passthru[p.Host] = &p
}

// RemovePassthrough takes a host pattern off the pass-through list.
func (s *State) RemovePassthrough(host string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.passthru, host)
}

// PassesThrough reports whether a tunnel to host (normalised) may be opened
// as a plain pass-through: the host is listed exactly, or matches a listed
// "*.base" by one label.
func (s *State) PassesThrough(host string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, ok := s.passthru[host]; ok {
		return true
	}
	if _, base, ok := cutLabel(host); ok {
		_, ok := s.passthru["*."+base]
		return ok
	}
	return false
}

func cutLabel(host string) (label, rest string, ok bool) {
	for i := 0; i < len(host); i++ {
		if host[i] == '.' {
			return host[:i], host[i+1:], i > 0
		}
	}
	return "", "", false
}

// ListPassthrough returns the listed hosts, sorted.
func (s *State) ListPassthrough() []store.Passthrough {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return sortedByName(s.passthru, func(p *store.Passthrough) string { return p.Host })
}
