package front

import (
	"bytes"
	"context"
)

// Go's HTTP server accepts a request with both Content-Length and
// Transfer-Encoding: chunked (the chunked framing wins and Content-Length
// is dropped before the handler sees it). A front-end and a back-end that
// disagree on which header wins is how requests are smuggled, so agw
// refuses such requests outright and closes the connection. The server
// removes the evidence, so the connection watches its own plaintext: for
// each block of lines up to a blank line it notes whether it held both
// headers (framing), and the handler asks (ConflictingFraming).

// framing follows the lines read on a connection.
type framing struct {
	line      []byte // the start of the current line, when it may matter
	atStart   bool   // the next byte starts a line
	cl, te    bool   // the current block has Content-Length / Transfer-Encoding
	inBlock   bool   // a line of the current block has been seen
	request   bool   // the current block starts with a request line
	conflicts int    // blocks seen with both
	consumed  int    // conflicts already reported
}

func newFraming() framing { return framing{atStart: true} }

// Only a block that starts with a request line counts, so a body that
// quotes both headers is no conflict; the line kept is long enough to see
// " HTTP/1." in a short request line, and a long one counts as a request
// line when it starts with a method.

// scan reads b, jumping from line to line.
func (f *framing) scan(b []byte) {
	for len(b) > 0 {
		if f.atStart || f.line != nil {
			// Keep at most the first bytes of a line: enough to name the
			// header.
			end := bytes.IndexByte(b, '\n')
			chunk := b
			if end >= 0 {
				chunk = b[:end]
			}
			if len(f.line) < keepLine {
				f.line = append(f.line, chunk[:min(len(chunk), keepLine-len(f.line))]...)
			}
			if end < 0 {
				f.atStart = false
				if f.line == nil {
					f.line = []byte{}
				}
				return
			}
			f.endLine()
			b = b[end+1:]
			f.atStart = true
			continue
		}
		end := bytes.IndexByte(b, '\n')
		if end < 0 {
			return
		}
		b = b[end+1:]
		f.atStart = true
	}
}

const keepLine = 24

var methods = []string{"GET ", "POST ", "PUT ", "PATCH ", "DELETE ", "HEAD ", "OPTIONS ", "CONNECT ", "TRACE "}

func isRequestLine(l []byte) bool {
	for _, m := range methods {
		if bytes.HasPrefix(l, []byte(m)) {
			return true
		}
	}
	return false
}

func (f *framing) endLine() {
	l := bytes.TrimRight(f.line, "\r")
	f.line = nil
	if len(l) == 0 {
		if f.request && f.cl && f.te {
			f.conflicts++
		}
		f.cl, f.te, f.inBlock, f.request = false, false, false, false
		return
	}
	if !f.inBlock {
		f.inBlock, f.request = true, isRequestLine(l)
		return
	}
	switch {
	case hasPrefixFold(l, "content-length:") || hasPrefixFold(l, "content-length "):
		f.cl = true
	case hasPrefixFold(l, "transfer-encoding:") || hasPrefixFold(l, "transfer-encoding "):
		f.te = true
	}
}

func hasPrefixFold(b []byte, p string) bool {
	return len(b) >= len(p) && bytes.EqualFold(b[:len(p)], []byte(p))
}

// ConflictingFraming reports whether the HTTP/1.x connection of ctx has
// read a request header block with both Content-Length and
// Transfer-Encoding since it last said so. Call it only for requests that
// arrived chunked (the only ones Go's server accepts with both).
func ConflictingFraming(ctx context.Context) bool {
	t, ok := ctx.Value(trackedConnKey{}).(*trackedConn)
	if !ok {
		return false
	}
	t.fmu.Lock()
	defer t.fmu.Unlock()
	if t.framing.conflicts > t.framing.consumed {
		t.framing.consumed = t.framing.conflicts
		return true
	}
	return false
}
