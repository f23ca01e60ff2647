package dns

import (
	"fmt"
	"strings"
)

// HostSet is a fixed Interceptor: exact hosts and one-label wildcards
// ("*.crm.example.com" matches "eu.crm.example.com", not
// "crm.example.com" nor "a.b.crm.example.com"). Lookups allocate nothing.
type HostSet struct {
	exact map[string]struct{}
	wild  map[string]struct{} // wildcard bases
}

var _ Interceptor = (*HostSet)(nil)

// NewHostSet builds a HostSet from host names (any case, trailing dot
// allowed). It fails on a name that is not a host name or a "*." wildcard.
func NewHostSet(hosts ...string) (*HostSet, error) {
	s := &HostSet{exact: map[string]struct{}{}, wild: map[string]struct{}{}}
	for _, h := range hosts {
		name := canonicalName(h)
		base, wild := strings.CutPrefix(name, "*.")
		if !validHostName(base) {
			return nil, fmt.Errorf("dns: %q is not a host name or a \"*.\" wildcard", h)
		}
		if wild {
			s.wild[base] = struct{}{}
		} else {
			s.exact[base] = struct{}{}
		}
	}
	return s, nil
}

// Intercepts reports whether name (lower case, no trailing dot) is in the set.
func (s *HostSet) Intercepts(name string) bool {
	if _, ok := s.exact[name]; ok {
		return true
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		_, ok := s.wild[name[i+1:]]
		return ok
	}
	return false
}
