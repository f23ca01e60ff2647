package gateway

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/agw-dev/agw/gateway/inject"
	"github.com/agw-dev/agw/store"
)

// Response-body scrubbing: a backend that reflects the injected credential
// in a body (echo and debug endpoints, error pages quoting the request)
// must not hand it to the agent. Every response body of a backend with
// scrubbing on (the default; Backend.NoScrub turns it off) passes through a
// streaming replacer that turns each occurrence of the secret, in every form
// it went on the wire, into "[redacted by agw]".
//
// The replacer holds back only a tail that is a proper prefix of some form
// (len(form)-1 bytes at most) and passes everything else on at once, so SSE
// events and chunked streams keep their latency unless an event ends in what
// could be the start of the secret. Since the length of a inject.Scrubbed body can
// change, its Content-Length is dropped and it goes out chunked (HTTP/1.1)
// or unsized (HTTP/2).
//
// Encodings: gzip bodies are decoded, inject.Scrubbed and served identity-encoded.
// Other encodings (br, zstd, deflate...) cannot be inspected, so the
// request's Accept-Encoding is rewritten to gzip (when the agent accepts it)
// or removed; a backend that sends one anyway is answered 502. Range
// requests are forwarded without their Range so a secret cannot be read
// back in pieces small enough to slip between matches.
//
// Upgraded connections (101, WebSocket) are not inject.Scrubbed: their frames are
// an opaque two-way tunnel; only their response headers are.

// scrubber is the set of byte strings that reveal a backend's secret, built
// once per published route.
type scrubber struct {
	pats [][]byte
	// anchors[i] is the offset in pats[i] of the byte searched for first:
	// the one least likely in ordinary text, so that the search skips
	// through bodies at memchr speed instead of stopping at every "s".
	anchors []int
	maxLen  int
}

// newScrubber lists the forms of the secret a body may reflect: the secret
// itself, its URL (query and path) escapes, its JSON string escape, and for
// Basic injection the base64 of user:secret and of the secret. A nil
// scrubber (NoScrub, or no secret) scrubs nothing.
func newScrubber(b *store.Backend, secret []byte) *scrubber {
	if b.NoScrub || len(secret) == 0 {
		return nil
	}
	s := string(secret)
	forms := []string{s, url.QueryEscape(s), url.PathEscape(s)}
	if js, err := json.Marshal(s); err == nil {
		forms = append(forms, string(js[1:len(js)-1]))
	}
	if b.Inject == store.InjectBasic {
		forms = append(forms,
			base64.StdEncoding.EncodeToString([]byte(b.BasicUser+":"+s)),
			base64.StdEncoding.EncodeToString(secret))
	}
	return newScrubberOf(forms...)
}

// newScrubberOf builds a scrubber of the given forms, dropping empty and
// duplicate ones and those that contain another (the shorter one already
// catches them).
func newScrubberOf(forms ...string) *scrubber {
	slices.SortFunc(forms, func(a, b string) int { return len(a) - len(b) })
	sc := &scrubber{}
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
		sc.anchors = append(sc.anchors, anchorOf(f))
		sc.maxLen = max(sc.maxLen, len(f))
	}
	if len(sc.pats) == 0 {
		return nil
	}
	return sc
}

// errUninspectable is a response encoding the scrubber cannot read.
type errUninspectable struct{ encoding string }

func (e *errUninspectable) Error() string {
	return "the backend answered with Content-Encoding " + e.encoding + ", which agw cannot inspect for a reflected credential, although it was asked for gzip or identity only"
}

// scrubRequest prepares an outgoing request of a inject.Scrubbed backend: only
// encodings the scrubber reads are asked for, and no byte ranges.
func scrubRequest(h http.Header) {
	if acceptsGzip(h.Values("Accept-Encoding")) {
		h.Set("Accept-Encoding", "gzip")
	} else {
		delete(h, "Accept-Encoding")
	}
	delete(h, "Range")
	delete(h, "If-Range")
}

// acceptsGzip reports whether Accept-Encoding values list gzip (or *) with a
// non-zero weight.
func acceptsGzip(values []string) bool {
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			coding = strings.TrimSpace(coding)
			if !strings.EqualFold(coding, "gzip") && !strings.EqualFold(coding, "x-gzip") && coding != "*" {
				continue
			}
			q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
			if q == "q=0" || q == "q=0.0" || q == "q=0.00" || q == "q=0.000" {
				continue
			}
			return true
		}
	}
	return false
}

// scrubResponse wraps a response body in the scrubber, using sr (so the
// request path allocates none) and counting redactions in *count. It leaves
// upgrades (101) and bodiless responses alone and refuses encodings it
// cannot read.
func (sc *scrubber) scrubResponse(res *http.Response, sr *scrubReader, count *int) error {
	if sc == nil || res.StatusCode == http.StatusSwitchingProtocols || res.Body == nil || res.Body == http.NoBody {
		return nil
	}
	if res.Request != nil && res.Request.Method == http.MethodHead || res.StatusCode == http.StatusNoContent ||
		res.StatusCode == http.StatusNotModified || res.ContentLength == 0 {
		return nil
	}
	var gz bool
	switch enc := strings.ToLower(strings.TrimSpace(strings.Join(res.Header.Values("Content-Encoding"), ","))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		gz = true
	default:
		return &errUninspectable{encoding: enc}
	}
	*sr = scrubReader{src: res.Body, sc: sc, count: count, gunzip: gz}
	res.Body = sr
	res.Header.Del("Content-Encoding")
	res.Header.Del("Content-Length")
	res.ContentLength = -1
	return nil
}

// scrubReader is the streaming replacer over a response body.
type scrubReader struct {
	src    io.ReadCloser
	sc     *scrubber
	count  *int
	gunzip bool
	gz     *gzip.Reader
	in     io.Reader // src or gz, once started

	held    []byte // a tail that may be the start of a form
	pending []byte // inject.Scrubbed bytes not yet returned
	out     []byte // buffer behind pending when a replacement was made
	scratch []byte // read buffer when the caller's is too small
	err     error  // from the source, returned once pending and held are out
}

// minScrubRead is the least room a read needs beyond the held tail to make
// progress; smaller caller buffers go through scratch.
const minScrubRead = 4 << 10

func (s *scrubReader) Read(p []byte) (int, error) {
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
			if s.gunzip {
				gz, err := gzip.NewReader(s.src)
				if err != nil {
					s.err = errors.Join(errors.New("gzip response body"), err)
					continue
				}
				s.gz, s.in = gz, gz
			}
		}
		work := p
		inPlace := len(p) >= len(s.held)+minScrubRead
		if !inPlace {
			if s.scratch == nil {
				s.scratch = make([]byte, s.sc.maxLen+minScrubRead)
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

func (s *scrubReader) Close() error {
	if s.gz != nil {
		_ = s.gz.Close()
	}
	return s.src.Close()
}

// scrub replaces every form in data. Without final it stops short of a tail
// that is a proper prefix of a form, to be completed by the next read.
// When nothing was replaced, the bytes to pass on are data[:keep] and out is
// unused; otherwise they are out (built on buf).
func (sc *scrubber) scrub(data []byte, final bool, buf []byte) (out []byte, keep, replaced int) {
	i := 0
	for {
		j, l := sc.next(data[i:])
		if j < 0 {
			break
		}
		buf = append(buf, data[i:i+j]...)
		buf = append(buf, inject.Scrubbed...)
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
func (sc *scrubber) next(data []byte) (int, int) {
	best, bestLen := -1, 0
	for i, p := range sc.pats {
		limit := data
		if best >= 0 {
			limit = data[:min(len(data), best+len(p))]
		}
		j := indexAnchored(limit, p, sc.anchors[i])
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
func (sc *scrubber) partialTail(data []byte) int {
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

// indexAnchored is bytes.Index(data, p), found by scanning for p[off].
func indexAnchored(data, p []byte, off int) int {
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

// anchorOf picks the byte of a form to scan for: the first of the rarest
// class in text and JSON (upper case and symbols, then digits, then lower
// case, then the most common letters and punctuation).
func anchorOf(f string) int {
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
