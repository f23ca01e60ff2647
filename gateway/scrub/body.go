package scrub

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// MaxDepth is how many compression layers agw decodes in one body:
// Content-Encoding codings plus compressed streams nested inside the
// decoded body (gzip inside gzip, an application/gzip download). A body
// nested deeper is refused, not passed.
const MaxDepth = 4

// UninspectableError is a response agw cannot read for a reflected
// credential: a content coding or a compressed format it does not decode,
// or compression nested deeper than MaxDepth. The proxy answers it as a
// 502 and sends none of the body.
type UninspectableError struct {
	// What names the coding or format ("br", "zip archive", ...).
	What string
}

func (e *UninspectableError) Error() string {
	return "the backend answered with " + e.What + ", which agw cannot inspect for a reflected credential; " +
		"agw asks backends only for " + strings.Join(Decodable, ", ") + " or identity. " +
		"Turn response scrubbing off for this backend (no_scrub) if it must serve such bodies"
}

// BodyConfig is where a scrubbed response body goes.
type BodyConfig struct {
	// Dst receives the body the agent gets.
	Dst io.Writer
	// Flush pushes Dst to the agent (http.ResponseController's Flush).
	Flush func() error
	// Hold is the Writer's hold timeout (0: DefaultHold).
	Hold time.Duration
}

// Body is one response body on its way through the scrubber: the proxy
// copies the (decoded) res.Body into it, flushes through it, and Closes it
// when the copy ended, or Aborts it when the copy failed.
type Body struct {
	w    *Writer
	encs []io.WriteCloser // re-encoders of nested layers, innermost first
	dst  func() error
	done bool
}

// layer is one compression layer: its name and the decoder and encoder
// of that format.
type layer struct {
	name   string
	decode func(io.Reader) (io.ReadCloser, error)
	encode func(io.Writer) io.WriteCloser
}

var layers = map[string]layer{
	"gzip": {"gzip", func(r io.Reader) (io.ReadCloser, error) { return gzip.NewReader(r) },
		func(w io.Writer) io.WriteCloser { return gzip.NewWriter(w) }},
	"deflate": {"deflate", decodeDeflate,
		func(w io.Writer) io.WriteCloser { return zlib.NewWriter(w) }},
	"zstd": {"zstd", decodeZstd, func(w io.Writer) io.WriteCloser {
		zw, _ := zstd.NewWriter(w, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(1<<20))
		return zw
	}},
}

// decodeDeflate reads HTTP's "deflate", which is zlib by the RFC and raw
// DEFLATE from some servers.
func decodeDeflate(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReader(r)
	h, _ := br.Peek(2)
	if len(h) == 2 && h[0]&0x0f == 8 && (uint(h[0])<<8|uint(h[1]))%31 == 0 {
		return zlib.NewReader(br)
	}
	return flate.NewReader(br), nil
}

func decodeZstd(r io.Reader) (io.ReadCloser, error) {
	d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(8<<20))
	if err != nil {
		return nil, err
	}
	return d.IOReadCloser(), nil
}

// magics are the first bytes of compressed formats found inside a body.
var magics = []struct {
	prefix []byte
	layer  string // a layer agw decodes, or "" for one it cannot
	what   string
}{
	{[]byte{0x1f, 0x8b, 0x08}, "gzip", "gzip"},
	{[]byte{0x28, 0xb5, 0x2f, 0xfd}, "zstd", "zstd"},
	{[]byte("PK\x03\x04"), "", "a zip archive"},
	{[]byte("\xfd7zXZ\x00"), "", "an xz stream"},
	{[]byte("BZh"), "", "a bzip2 stream"},
	{[]byte("7z\xbc\xaf\x27\x1c"), "", "a 7z archive"},
	{[]byte("\x04\x22\x4d\x18"), "", "an lz4 frame"},
	{[]byte("Rar!\x1a\x07"), "", "a rar archive"},
}

// Response prepares res for scrubbing and returns the Body to copy it
// into; nil (and res unchanged) when there is nothing to scrub: a nil
// Set, an upgrade, a HEAD answer, 204, 304, no body. Content codings are
// decoded (and dropped from the headers: the agent gets the body
// identity-encoded), and a compressed stream at the start of the decoded
// body is decoded too and re-encoded on the way out, up to MaxDepth
// layers. The sniffing reads the body's first bytes before the headers go
// out, except for event streams. A body it cannot inspect is an
// *UninspectableError and res.Body is closed.
func (s *Set) Response(res *http.Response, cfg BodyConfig) (*Body, error) {
	if s == nil || res.StatusCode == http.StatusSwitchingProtocols || res.Body == nil || res.Body == http.NoBody ||
		res.Request != nil && res.Request.Method == http.MethodHead || res.StatusCode == http.StatusNoContent ||
		res.StatusCode == http.StatusNotModified || res.ContentLength == 0 {
		return nil, nil
	}
	var codings []string
	for _, v := range res.Header.Values("Content-Encoding") {
		for c := range strings.SplitSeq(v, ",") {
			c = strings.ToLower(strings.TrimSpace(c))
			if c == "x-gzip" {
				c = "gzip"
			}
			if c != "" && c != "identity" {
				codings = append(codings, c)
			}
		}
	}
	src := res.Body
	closers := []io.Closer{src}
	fail := func(err error) (*Body, error) {
		for i := len(closers) - 1; i >= 0; i-- {
			_ = closers[i].Close()
		}
		return nil, err
	}
	if len(codings) > MaxDepth {
		return fail(&UninspectableError{What: fmt.Sprintf("%d content codings (%s), more than the %d layers agw decodes", len(codings), strings.Join(codings, ", "), MaxDepth)})
	}
	var r io.Reader = src
	for i := len(codings) - 1; i >= 0; i-- {
		l, ok := layers[codings[i]]
		if !ok {
			return fail(&UninspectableError{What: "Content-Encoding " + codings[i]})
		}
		d, err := l.decode(r)
		if err != nil {
			return fail(fmt.Errorf("decode the backend's %s response body: %w", l.name, err))
		}
		closers = append(closers, d)
		r = d
	}
	var nested []layer
	if !isEventStream(res.Header.Get("Content-Type")) {
		for depth := len(codings); ; depth++ {
			// A 16-byte buffer: reads larger than it bypass it.
			br := bufio.NewReaderSize(r, 16)
			head, _ := br.Peek(8)
			r = br
			l, what := sniff(head)
			if what == "" {
				break
			}
			if l == nil {
				return fail(&UninspectableError{What: what})
			}
			if depth >= MaxDepth {
				return fail(&UninspectableError{What: fmt.Sprintf("compression nested deeper than the %d layers agw decodes", MaxDepth)})
			}
			d, err := l.decode(r)
			if err != nil {
				return fail(fmt.Errorf("decode the %s stream in the backend's response body: %w", l.name, err))
			}
			closers = append(closers, d)
			nested = append(nested, *l)
			r = d
		}
	}
	res.Body = &decodedBody{Reader: r, closers: closers}
	res.Header.Del("Content-Encoding")
	res.Header.Del("Content-Length")
	res.ContentLength = -1

	b := &Body{dst: cfg.Flush}
	out := cfg.Dst
	// Encoders from the outermost nested layer to the innermost.
	for _, l := range nested {
		e := l.encode(out)
		b.encs = append([]io.WriteCloser{e}, b.encs...)
		out = e
	}
	b.w = s.NewWriter(WriterConfig{Dst: out, Flush: b.flushEncoders, Hold: cfg.Hold})
	return b, nil
}

func isEventStream(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "text/event-stream")
}

// sniff names the compressed format head starts with: its layer when agw
// decodes it, what it is in any case ("" for none).
func sniff(head []byte) (*layer, string) {
	for _, m := range magics {
		if bytes.HasPrefix(head, m.prefix) {
			if m.layer == "" {
				return nil, m.what
			}
			l := layers[m.layer]
			return &l, m.what
		}
	}
	return nil, ""
}

// flushEncoders pushes what each re-encoder holds outwards, then the
// agent connection. It runs under the Writer's lock.
func (b *Body) flushEncoders() error {
	for _, e := range b.encs {
		if f, ok := e.(interface{ Flush() error }); ok {
			if err := f.Flush(); err != nil {
				return err
			}
		}
	}
	if b.dst != nil {
		return b.dst()
	}
	return nil
}

// Write scrubs p on its way to the agent.
func (b *Body) Write(p []byte) (int, error) { return b.w.Write(p) }

// Flush pushes what was released to the agent; a held partial match
// stays held.
func (b *Body) Flush() error { return b.w.Flush() }

// Close ends the body: the held tail is resolved and the nested layers'
// encoders are closed (their trailers written).
func (b *Body) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	err := b.w.Close()
	for _, e := range b.encs {
		err = errors.Join(err, e.Close())
	}
	return err
}

// Abort ends a cut body: nothing held is released.
func (b *Body) Abort() {
	b.done = true
	b.w.Abort()
}

// Redactions is the number of markers written so far.
func (b *Body) Redactions() int {
	if b == nil {
		return 0
	}
	return b.w.Redactions()
}

// decodedBody is a response body read through its decoders; Close closes
// them and the original body.
type decodedBody struct {
	io.Reader
	closers []io.Closer
}

func (d *decodedBody) Close() error {
	var err error
	for i := len(d.closers) - 1; i >= 0; i-- {
		err = errors.Join(err, d.closers[i].Close())
	}
	return err
}
