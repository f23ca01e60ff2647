// Package scrub holds every redaction agw applies: the reflected backend
// credential in response headers, bodies (streamed, compressed, SSE),
// trailers, 1xx headers and WebSocket frames, and URLs and secrets in
// errors, logs and audit paths.
//
// A Set is compiled once per credential (at load or rotation) from the
// encoded forms an echoing backend plausibly produces (see Forms) into one
// automaton, so that scrubbing costs one table lookup per byte however many
// forms there are. Every redaction is replaced by Marker.
package scrub

import (
	"slices"
	"time"
)

// Marker replaces every redacted form.
const Marker = "[redacted by agw]"

// DefaultHold is how long a stream may hold back a partial match waiting
// for the bytes that decide it, before Writer resolves it (see
// Stream.Flush).
const DefaultHold = 500 * time.Millisecond

// Set is the compiled forms of one or more secrets. A nil *Set redacts
// nothing; every method accepts it.
type Set struct {
	m       *matcher
	forms   []string
	secrets [][]byte
}

// New compiles the forms of each non-empty secret. It returns nil when
// there is none.
func New(secrets ...[]byte) *Set {
	var forms []string
	var kept [][]byte
	for _, s := range secrets {
		if len(s) == 0 {
			continue
		}
		kept = append(kept, slices.Clone(s))
		forms = append(forms, Forms(s)...)
	}
	if len(forms) == 0 {
		return nil
	}
	slices.Sort(forms)
	forms = slices.Compact(forms)
	return &Set{m: newMatcher(forms), forms: forms, secrets: kept}
}

// With returns a Set of s's secrets and more (an OAuth2 access token added
// to the client secret). s itself is unchanged.
func (s *Set) With(more ...[]byte) *Set {
	if s == nil {
		return New(more...)
	}
	return New(append(slices.Clone(s.secrets), more...)...)
}

// Len is the number of distinct forms matched; 0 for nil.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.forms)
}

// MaxHeld is the most bytes a stream of this Set holds back.
func (s *Set) MaxHeld() int {
	if s == nil {
		return 0
	}
	return s.m.maxLen - 1
}

// Size is the memory the compiled automaton takes, in bytes.
func (s *Set) Size() int {
	if s == nil {
		return 0
	}
	return s.m.size()
}

// Bytes returns b with every form redacted (a held partial match of at
// least MinPartial bytes at its end included) and how many markers it
// wrote. b itself is not changed; with nothing found the result is b.
func (s *Set) Bytes(b []byte) ([]byte, int) {
	if s == nil {
		return b, 0
	}
	st := s.NewStream()
	out := st.Write(make([]byte, 0, len(b)), b)
	out = st.Flush(out, true)
	if st.count == 0 {
		return b, 0
	}
	return out, st.count
}

// String is Bytes for a string.
func (s *Set) String(v string) (string, int) {
	if s == nil {
		return v, 0
	}
	out, n := s.Bytes([]byte(v))
	if n == 0 {
		return v, 0
	}
	return string(out), n
}

// Contains reports whether b holds any complete form.
func (s *Set) Contains(b []byte) bool {
	if s == nil {
		return false
	}
	m := s.m
	st := int32(0)
	for _, c := range b {
		st = m.step(st, m.class[c])
		if m.match[st] != 0 {
			return true
		}
	}
	return false
}
