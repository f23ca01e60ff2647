package scrub

// MinPartial is the shortest held partial match that is redacted when a
// stream ends or a hold times out. A shorter one is released: it reveals at
// most MinPartial-1 bytes of an encoded form, and redacting every one- to
// three-byte tail that happens to begin some form would mangle ordinary
// text (the base64 and hex forms begin with any letter or digit).
const MinPartial = 4

// span is a pending redaction of input [a, b). cont marks the rest of a
// match whose start was already covered by an emitted marker: its bytes
// are dropped without a second marker.
type span struct {
	a, b int64
	cont bool
}

// Stream is the streaming core: input goes in by Write in any split and
// comes out with every form replaced by Marker. It holds back only the
// tail that may still become a match (at most the longest form minus one
// byte), so memory stays bounded whatever the input. A Stream is not safe
// for concurrent use; Writer and Reader wrap it for the response paths.
type Stream struct {
	m     *matcher
	state int32
	pos   int64 // input bytes consumed
	out   int64 // input resolved: emitted as bytes or covered by a marker
	// markerEnd is where the input covered by the last marker ends; -1
	// when no marker was written.
	markerEnd int64
	held      []byte // input [out, pos)
	spare     []byte
	spans     []span
	count     int
}

// NewStream returns a Stream over the forms of set; a nil set passes
// everything through.
func (s *Set) NewStream() *Stream {
	st := &Stream{markerEnd: -1}
	if s != nil {
		st.m = s.m
	}
	return st
}

// Redactions is the number of markers written so far.
func (st *Stream) Redactions() int { return st.count }

// Holding reports whether input is held back, waiting for more input (or
// a Flush) to decide whether it is part of a form.
func (st *Stream) Holding() bool { return st.pos > st.out }

// Write scrubs p and appends to dst what can be released now.
func (st *Stream) Write(dst, p []byte) []byte {
	m := st.m
	if m == nil {
		return append(dst, p...)
	}
	base := st.pos
	s := st.state
	nc := m.nclass
	fast, class := m.fast, &m.class
	off := -1 // row offset of s while s is dense and match-free
	if s < m.ndense {
		off = int(s) * nc
	}
	pairs := m.pairs
	for i := 0; i < len(p); i++ {
		if off == 0 && pairs != nil {
			// In the root state no form has begun: skip to the next two
			// bytes that begin one. The last byte is left to the automaton
			// (it may begin a form that the next write completes).
			first := &m.first
			for i+1 < len(p) {
				// Most bytes begin no form: one table load each, no chain.
				for i+1 < len(p) && !first[p[i]] {
					i++
				}
				if i+1 >= len(p) {
					break
				}
				k := uint(p[i])<<8 | uint(p[i+1])
				if pairs[k>>6]&(1<<(k&63)) != 0 {
					break
				}
				i++
			}
		}
		c := class[p[i]]
		if off >= 0 {
			t := fast[off+int(c)]
			if t >= 0 {
				off = int(t)
				continue
			}
			s = -(t + 1)
		} else {
			s = m.step(s, c)
		}
		if l := m.match[s]; l != 0 {
			e := base + int64(i) + 1
			st.addSpan(e-int64(l), e)
		}
		off = -1
		if s < m.ndense && m.match[s] == 0 {
			off = int(s) * nc
		}
	}
	if off >= 0 {
		s = int32(off / nc)
	}
	st.state = s
	st.pos += int64(len(p))
	return st.resolve(dst, p, base, st.pos-int64(m.depth[s]))
}

// Flush releases everything held. A held partial match of at least
// MinPartial bytes is redacted; with final unset (a hold that timed out)
// the stream keeps its place in the forms, so that if the rest of a
// redacted form arrives it is dropped too rather than released.
func (st *Stream) Flush(dst []byte, final bool) []byte {
	if st.m == nil {
		return dst
	}
	if d := int64(st.m.depth[st.state]); d >= MinPartial {
		st.addSpan(st.pos-d, st.pos)
	}
	dst = st.resolve(dst, nil, st.pos, st.pos)
	if final {
		st.state = 0
	}
	return dst
}

// addSpan records a match of input [c, e).
func (st *Stream) addSpan(c, e int64) {
	cont := false
	if c < st.out {
		// The match began in input already resolved, which happens only
		// after a Flush: if that ended in a marker, this continues it.
		cont = st.out == st.markerEnd
		c = st.out
	}
	for n := len(st.spans); n > 0 && st.spans[n-1].b > c; n = len(st.spans) {
		last := st.spans[n-1]
		if last.a <= c {
			cont = last.cont || (cont && last.a == c)
			c = last.a
		}
		e = max(e, last.b)
		st.spans = st.spans[:n-1]
	}
	st.spans = append(st.spans, span{c, e, cont})
}

// resolve emits input [out, upTo) — the held bytes, then p, which starts at
// base — with pending spans before upTo turned into markers, and keeps
// [upTo, pos) held.
func (st *Stream) resolve(dst, p []byte, base, upTo int64) []byte {
	held := st.held
	heldStart := st.out
	bytesOf := func(dst []byte, x, y int64) []byte {
		if x >= y {
			return dst
		}
		if x < base {
			dst = append(dst, held[x-heldStart:min(y, base)-heldStart]...)
			x = min(y, base)
		}
		if x < y {
			dst = append(dst, p[x-base:y-base]...)
		}
		return dst
	}
	for len(st.spans) > 0 && st.spans[0].a < upTo {
		sp := st.spans[0]
		dst = bytesOf(dst, st.out, sp.a)
		if !sp.cont {
			dst = append(dst, Marker...)
			st.count++
		}
		if sp.b <= upTo {
			st.out, st.markerEnd = sp.b, sp.b
			st.spans = st.spans[1:]
			continue
		}
		// The match may still grow: what lies before upTo is covered, the
		// rest stays held as the continuation of this marker.
		st.out, st.markerEnd = upTo, upTo
		st.spans[0] = span{upTo, sp.b, true}
		break
	}
	if len(st.spans) == 0 {
		st.spans = st.spans[:0:cap(st.spans)]
	}
	dst = bytesOf(dst, st.out, upTo)
	st.out = max(st.out, upTo)
	// Keep [out, pos) for the next call.
	keep := bytesOf(st.spare[:0], st.out, st.pos)
	st.spare = held[:0]
	st.held = keep
	return dst
}
