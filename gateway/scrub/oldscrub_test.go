package scrub

// The scrubber agw used before this package (gateway/scrub.go at the time),
// kept verbatim as the baseline of BenchmarkScrub: raw secret, URL and Go
// JSON escapes, Basic base64, found by anchored memchr scans.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/url"
	"slices"
	"strings"
)

type oldScrubber struct {
	pats    [][]byte
	anchors []int
	maxLen  int
}

func newOldScrubber(basicUser string, secret []byte) *oldScrubber {
	s := string(secret)
	forms := []string{s, url.QueryEscape(s), url.PathEscape(s)}
	if js, err := json.Marshal(s); err == nil {
		forms = append(forms, string(js[1:len(js)-1]))
	}
	if basicUser != "" {
		forms = append(forms,
			base64.StdEncoding.EncodeToString([]byte(basicUser+":"+s)),
			base64.StdEncoding.EncodeToString(secret))
	}
	slices.SortFunc(forms, func(a, b string) int { return len(a) - len(b) })
	sc := &oldScrubber{}
outer:
	for _, f := range forms {
		if f == "" {
			continue
		}
		for _, p := range sc.pats {
			if bytes.Contains([]byte(f), p) {
				continue outer
			}
		}
		sc.pats = append(sc.pats, []byte(f))
		sc.anchors = append(sc.anchors, oldAnchorOf(f))
		sc.maxLen = max(sc.maxLen, len(f))
	}
	return sc
}

const oldScrubbed = "[redacted by agw]"

type oldScrubReader struct {
	src     io.Reader
	sc      *oldScrubber
	count   *int
	in      io.Reader
	held    []byte
	pending []byte
	out     []byte
	scratch []byte
	err     error
}

const oldMinScrubRead = 4 << 10

func (s *oldScrubReader) Read(p []byte) (int, error) {
	for {
		if len(s.pending) > 0 {
			n := copy(p, s.pending)
			s.pending = s.pending[n:]
			return n, nil
		}
		if s.err != nil {
			return 0, s.err
		}
		if s.in == nil {
			s.in = s.src
		}
		work := p
		inPlace := len(p) >= len(s.held)+oldMinScrubRead
		if !inPlace {
			if s.scratch == nil {
				s.scratch = make([]byte, s.sc.maxLen+oldMinScrubRead)
			}
			work = s.scratch
		}
		h := copy(work, s.held)
		n, err := s.in.Read(work[h:])
		if err != nil {
			s.err = err
		}
		data := work[:h+n]
		out, keep, replaced := s.sc.scrub(data, s.err != nil, s.out[:0])
		*s.count += replaced
		s.held = append(s.held[:0], data[keep:]...)
		if replaced > 0 {
			s.out = out
			s.pending = out
			continue
		}
		if inPlace {
			if keep > 0 {
				return keep, nil
			}
			continue
		}
		s.pending = data[:keep]
	}
}
func (sc *oldScrubber) scrub(data []byte, final bool, buf []byte) (out []byte, keep, replaced int) {
	i := 0
	for {
		j, l := sc.next(data[i:])
		if j < 0 {
			break
		}
		buf = append(buf, data[i:i+j]...)
		buf = append(buf, oldScrubbed...)
		i += j + l
		replaced++
	}
	keep = len(data)
	if !final {
		keep -= sc.partialTail(data[i:])
	}
	if replaced == 0 {
		return nil, keep, 0
	}
	buf = append(buf, data[i:keep]...)
	return buf, keep, replaced
}

// next finds the earliest occurrence of any form in data (the longest one
// where several start at the same place) and returns its index and length,
// or -1.
func (sc *oldScrubber) next(data []byte) (int, int) {
	best, bestLen := -1, 0
	for i, p := range sc.pats {
		limit := data
		if best >= 0 {
			limit = data[:min(len(data), best+len(p))]
		}
		j := oldIndexAnchored(limit, p, sc.anchors[i])
		if j < 0 {
			continue
		}
		if best < 0 || j < best || j == best && len(p) > bestLen {
			best, bestLen = j, len(p)
		}
	}
	return best, bestLen
}

// partialTail returns the length of the longest suffix of data that is a
// proper prefix of some form.
func (sc *oldScrubber) partialTail(data []byte) int {
	start := max(0, len(data)-(sc.maxLen-1))
	for i := start; i < len(data); i++ {
		tail := data[i:]
		for _, p := range sc.pats {
			if len(tail) < len(p) && p[0] == tail[0] && bytes.HasPrefix(p, tail) {
				return len(tail)
			}
		}
	}
	return 0
}

// oldIndexAnchored is bytes.Index(data, p), found by scanning for p[off].
func oldIndexAnchored(data, p []byte, off int) int {
	c := p[off]
	for i := off; i < len(data); {
		j := bytes.IndexByte(data[i:], c)
		if j < 0 {
			return -1
		}
		start := i + j - off
		if start+len(p) > len(data) {
			return -1
		}
		if bytes.Equal(data[start:start+len(p)], p) {
			return start
		}
		i += j + 1
	}
	return -1
}

// oldAnchorOf picks the byte of a form to scan for: the first of the rarest
// class in text and JSON (upper case and symbols, then digits, then lower
// case, then the most common letters and punctuation).
func oldAnchorOf(f string) int {
	rank := func(c byte) int {
		switch {
		case strings.IndexByte(" etaoinsrhldcu\"\n:,{}", c) >= 0:
			return 3
		case 'a' <= c && c <= 'z':
			return 2
		case '0' <= c && c <= '9':
			return 1
		default:
			return 0
		}
	}
	best := 0
	for i := range len(f) {
		if rank(f[i]) < rank(f[best]) {
			best = i
		}
	}
	return best
}
