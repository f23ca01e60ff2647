package scrub

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
)

// wsChunk is the most payload read per output frame: a long frame leaves
// as several, so memory stays bounded whatever the frame length.
const wsChunk = 32 << 10

// WebSocket opcodes (RFC 6455 section 5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xa
)

// ErrWebSocketExtension is a backend that negotiated a WebSocket extension
// although agw removed the agent's offer: its frames (permessage-deflate)
// could not be inspected.
var ErrWebSocketExtension = errors.New("the backend negotiated a WebSocket extension (Sec-WebSocket-Extensions) that agw did not offer; its frames could not be inspected for a reflected credential")

// Upgrade prepares a 101 Switching Protocols response of a scrubbed
// backend: its headers are scrubbed by the caller as any others, a
// negotiated extension is refused, and res.Body, the backend connection,
// is wrapped so that every frame the backend sends is scrubbed before the
// agent reads it. The returned WebSocket counts the redactions. Nothing is
// done (nil, nil) for a nil Set or a response that is not a WebSocket
// upgrade.
func (s *Set) Upgrade(res *http.Response) (*WebSocket, error) {
	if s == nil || res.StatusCode != http.StatusSwitchingProtocols || !strings.EqualFold(res.Header.Get("Upgrade"), "websocket") {
		return nil, nil
	}
	if res.Header.Get("Sec-Websocket-Extensions") != "" {
		return nil, ErrWebSocketExtension
	}
	conn, ok := res.Body.(io.ReadWriteCloser)
	if !ok {
		return nil, nil
	}
	ws := s.NewWebSocket(conn)
	res.Body = ws
	return ws, nil
}

// WebSocket is a backend connection whose incoming frames are scrubbed:
// text and binary messages are matched across their fragments as one
// stream and re-framed (with new lengths, possibly in more fragments, which
// RFC 6455 allows an intermediary that negotiated no extension), control
// frames pass with their payload scrubbed. Writes (agent to backend) pass
// unchanged. A frame with reserved bits set (an extension agw cannot
// read) ends the connection with close code 1011 rather than pass.
type WebSocket struct {
	conn    io.ReadWriteCloser
	r       *bufio.Reader
	set     *Set
	st      *Stream // the message being read; nil between messages
	op      byte    // its opcode
	started bool    // a frame of it was sent
	cur     frameState
	pending []byte
	out     []byte
	msg     []byte
	buf     []byte
	// count is read by the proxy as the audit record is written, while the
	// copy goroutine may still be reading frames.
	count   atomic.Int64
	counted int // of st.count, already in count
	err     error
}

// NewWebSocket wraps a backend connection (after its 101 answer).
func (s *Set) NewWebSocket(conn io.ReadWriteCloser) *WebSocket {
	return &WebSocket{conn: conn, r: bufio.NewReaderSize(conn, 4<<10), set: s, buf: make([]byte, wsChunk)}
}

// Write sends agent bytes to the backend unchanged.
func (w *WebSocket) Write(p []byte) (int, error) { return w.conn.Write(p) }

// Close closes the backend connection.
func (w *WebSocket) Close() error { return w.conn.Close() }

// Redactions is the number of markers written so far.
func (w *WebSocket) Redactions() int { return int(w.count.Load()) }

// Read returns scrubbed frames.
func (w *WebSocket) Read(p []byte) (int, error) {
	for len(w.pending) == 0 {
		if w.err != nil {
			return 0, w.err
		}
		w.out = w.out[:0]
		if err := w.frame(); err != nil {
			w.err = err
		}
		w.pending = w.out
	}
	n := copy(p, w.pending)
	w.pending = w.pending[n:]
	return n, nil
}

// frame reads one frame header and payload (up to wsChunk of it) and
// appends the frames the agent gets to w.out.
func (w *WebSocket) frame() error {
	if w.cur.active {
		return w.payload()
	}
	var h [14]byte
	if _, err := io.ReadFull(w.r, h[:2]); err != nil {
		return err
	}
	fin, rsv, op := h[0]&0x80 != 0, h[0]&0x70, h[0]&0x0f
	masked, n := h[1]&0x80 != 0, uint64(h[1]&0x7f)
	switch n {
	case 126:
		if _, err := io.ReadFull(w.r, h[2:4]); err != nil {
			return err
		}
		n = uint64(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		if _, err := io.ReadFull(w.r, h[2:10]); err != nil {
			return err
		}
		n = binary.BigEndian.Uint64(h[2:10])
	}
	var key [4]byte
	if masked {
		if _, err := io.ReadFull(w.r, key[:]); err != nil {
			return err
		}
	}
	if rsv != 0 {
		w.out = appendFrame(w.out, true, opClose, closePayload(1011, "agw cannot inspect a frame with reserved bits set (an extension)"))
		return fmt.Errorf("websocket frame with reserved bits %#x from the backend", rsv)
	}
	if op >= 0x8 { // control: whole payload, at most 125 bytes
		if n > 125 || !fin {
			w.out = appendFrame(w.out, true, opClose, closePayload(1002, "agw: invalid control frame from the backend"))
			return errors.New("invalid websocket control frame from the backend")
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(w.r, payload); err != nil {
			return err
		}
		unmask(payload, key, 0, masked)
		w.out = appendFrame(w.out, true, op, w.scrubControl(op, payload))
		return nil
	}
	switch {
	case op == opText || op == opBinary:
		if w.st != nil {
			return errors.New("websocket message from the backend started inside another")
		}
		w.st, w.op, w.started = w.set.NewStream(), op, false
	case op == opContinuation:
		if w.st == nil {
			return errors.New("websocket continuation frame from the backend outside a message")
		}
	default:
		w.out = appendFrame(w.out, true, opClose, closePayload(1002, "agw: unknown websocket opcode from the backend"))
		return fmt.Errorf("websocket opcode %#x from the backend", op)
	}
	w.cur = frameState{left: n, key: key, masked: masked, fin: fin, active: true}
	return w.payload()
}

// frameState is the data frame being read: its payload may span calls.
type frameState struct {
	left, off   uint64
	key         [4]byte
	masked, fin bool
	active      bool
}

// payload reads the next chunk of the current data frame and appends the
// frame carrying its scrubbed bytes (if any are released) to w.out.
func (w *WebSocket) payload() error {
	f := &w.cur
	k := int(min(f.left, wsChunk))
	if _, err := io.ReadFull(w.r, w.buf[:k]); err != nil {
		return err
	}
	unmask(w.buf[:k], f.key, f.off, f.masked)
	f.off += uint64(k)
	f.left -= uint64(k)
	end := f.left == 0 && f.fin
	w.msg = w.st.Write(w.msg[:0], w.buf[:k])
	if end {
		w.msg = w.st.Flush(w.msg, true)
	}
	if len(w.msg) > 0 || end {
		op := byte(opContinuation)
		if !w.started {
			op = w.op
		}
		w.out = appendFrame(w.out, end, op, w.msg)
		w.started = true
	}
	w.count.Add(int64(w.st.count - w.counted))
	w.counted = w.st.count
	if end {
		w.st, w.counted = nil, 0
	}
	if f.left == 0 {
		f.active = false
	}
	return nil
}

// scrubControl returns a control frame's payload with the secret's forms
// replaced: a close frame keeps its status code and loses a reason that
// held one; a ping or pong payload that held one becomes Marker.
func (w *WebSocket) scrubControl(op byte, p []byte) []byte {
	if op == opClose && len(p) >= 2 {
		if _, n := w.set.Bytes(p[2:]); n > 0 {
			w.count.Add(int64(n))
			return append(p[:2:2], Marker...)
		}
		return p
	}
	if _, n := w.set.Bytes(p); n > 0 {
		w.count.Add(int64(n))
		return []byte(Marker)
	}
	return p
}

// appendFrame appends an unmasked frame (server to client frames are
// never masked).
func appendFrame(dst []byte, fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	n := len(payload)
	switch {
	case n <= 125:
		dst = append(dst, b0, byte(n))
	case n <= 0xffff:
		dst = append(dst, b0, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, b0, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, payload...)
}

func closePayload(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

// unmask applies the masking key to p, which starts at offset off of the
// payload.
func unmask(p []byte, key [4]byte, off uint64, masked bool) {
	if !masked {
		return
	}
	for i := range p {
		p[i] ^= key[(off+uint64(i))&3]
	}
}
