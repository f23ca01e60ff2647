package scrub

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net/http"
	"strings"
	"testing"
)

// wsFrame is a frame as the agent parses it.
type wsFrame struct {
	fin     bool
	op      byte
	payload []byte
}

func frame(fin bool, op byte, payload []byte, mask bool) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	var out []byte
	n := len(payload)
	m := byte(0)
	if mask {
		m = 0x80
	}
	switch {
	case n <= 125:
		out = append(out, b0, m|byte(n))
	case n <= 0xffff:
		out = append(out, b0, m|126, byte(n>>8), byte(n))
	default:
		out = append(out, b0, m|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	p := bytes.Clone(payload)
	if mask {
		key := [4]byte{1, 2, 3, 4}
		out = append(out, key[:]...)
		unmask(p, key, 0, true)
	}
	return append(out, p...)
}

func readFrames(t *testing.T, r io.Reader) []wsFrame {
	t.Helper()
	br := bufio.NewReader(r)
	var out []wsFrame
	for {
		var h [2]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return out
		}
		if h[1]&0x80 != 0 {
			t.Fatal("a frame to the agent is masked")
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var e [2]byte
			_, _ = io.ReadFull(br, e[:])
			n = uint64(binary.BigEndian.Uint16(e[:]))
		case 127:
			var e [8]byte
			_, _ = io.ReadFull(br, e[:])
			n = binary.BigEndian.Uint64(e[:])
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(br, p); err != nil {
			t.Fatalf("short frame: %v", err)
		}
		out = append(out, wsFrame{h[0]&0x80 != 0, h[0] & 0x0f, p})
	}
}

// messages joins data frames into messages, checking the framing.
func messages(t *testing.T, fs []wsFrame) (msgs []string, ops []byte, ctrl []wsFrame) {
	t.Helper()
	var cur []byte
	in := false
	for _, f := range fs {
		switch {
		case f.op >= 8:
			ctrl = append(ctrl, f)
			continue
		case f.op == 0 && !in:
			t.Fatal("continuation outside a message")
		case f.op != 0 && in:
			t.Fatal("a message inside a message")
		case f.op != 0:
			ops = append(ops, f.op)
			in = true
		}
		cur = append(cur, f.payload...)
		if f.fin {
			msgs = append(msgs, string(cur))
			cur, in = nil, false
		}
	}
	if in {
		t.Fatal("unfinished message")
	}
	return msgs, ops, ctrl
}

type rwc struct {
	io.Reader
	w bytes.Buffer
}

func (c *rwc) Write(p []byte) (int, error) { return c.w.Write(p) }
func (c *rwc) Close() error                { return nil }

func TestWebSocket(t *testing.T) {
	t.Parallel()
	set := New([]byte(canary))
	long := strings.Repeat("x", 100<<10) + canary + strings.Repeat("y", 1000)
	var in []byte
	in = append(in, frame(true, opText, []byte(`{"echo":"`+canary+`"}`), false)...)
	in = append(in, frame(true, opBinary, []byte("\x00\x01"+canary+"\xff"), false)...)
	// A text message in three fragments, the secret split across them,
	// with a ping carrying the secret in between.
	in = append(in, frame(false, opText, []byte("a "+canary[:7]), false)...)
	in = append(in, frame(true, opPing, []byte(canary), false)...)
	in = append(in, frame(false, opContinuation, []byte(canary[7:20]), false)...)
	in = append(in, frame(true, opContinuation, []byte(canary[20:]+" b"), false)...)
	in = append(in, frame(true, opText, []byte(long), true)...) // masked, and longer than a chunk
	in = append(in, frame(true, opText, []byte(canary[:len(canary)-1]), false)...)
	in = append(in, frame(true, opClose, append([]byte{0x03, 0xe8}, "bye "+canary...), false)...)
	conn := &rwc{Reader: bytes.NewReader(in)}
	ws := set.NewWebSocket(conn)
	fs := readFrames(t, ws)
	msgs, ops, ctrl := messages(t, fs)
	want := []string{
		`{"echo":"` + Marker + `"}`,
		"\x00\x01" + Marker + "\xff",
		"a " + Marker + " b",
		strings.Repeat("x", 100<<10) + Marker + strings.Repeat("y", 1000),
		Marker,
	}
	if len(msgs) != len(want) {
		t.Fatalf("%d messages, want %d", len(msgs), len(want))
	}
	for i := range want {
		if msgs[i] != want[i] {
			t.Errorf("message %d: %.80q, want %.80q", i, msgs[i], want[i])
		}
	}
	if string(ops) != string([]byte{opText, opBinary, opText, opText, opText}) {
		t.Errorf("opcodes %v", ops)
	}
	if len(ctrl) != 2 || ctrl[0].op != opPing || string(ctrl[0].payload) != Marker ||
		ctrl[1].op != opClose || string(ctrl[1].payload) != "\x03\xe8"+Marker {
		t.Errorf("control frames %+v", ctrl)
	}
	if ws.Redactions() != 7 {
		t.Errorf("redactions %d", ws.Redactions())
	}
	if _, err := ws.Write([]byte("to the backend " + canary)); err != nil || conn.w.String() != "to the backend "+canary {
		t.Error("agent-to-backend bytes changed")
	}
}

// A compressed frame (RSV1) cannot be inspected: the agent gets a close
// frame 1011 and nothing of the payload.
func TestWebSocketReservedBits(t *testing.T) {
	t.Parallel()
	set := New([]byte(canary))
	f := frame(true, opText, []byte(canary), false)
	f[0] |= 0x40
	ws := set.NewWebSocket(&rwc{Reader: bytes.NewReader(f)})
	out, err := io.ReadAll(ws)
	if err == nil {
		t.Error("no error")
	}
	fs := readFrames(t, bytes.NewReader(out))
	if len(fs) != 1 || fs[0].op != opClose || binary.BigEndian.Uint16(fs[0].payload) != 1011 || bytes.Contains(out, []byte(canary)) {
		t.Errorf("frames %+v", fs)
	}
}

func TestUpgrade(t *testing.T) {
	t.Parallel()
	set := New([]byte(canary))
	res := &http.Response{StatusCode: 101, Header: http.Header{"Upgrade": {"websocket"}}, Body: &rwc{Reader: strings.NewReader("")}}
	ws, err := set.Upgrade(res)
	if err != nil || ws == nil || res.Body != ws {
		t.Fatalf("%v %v", ws, err)
	}
	res = &http.Response{StatusCode: 101, Header: http.Header{"Upgrade": {"websocket"}, "Sec-Websocket-Extensions": {"permessage-deflate"}}, Body: &rwc{Reader: strings.NewReader("")}}
	if _, err := set.Upgrade(res); err != ErrWebSocketExtension {
		t.Errorf("negotiated extension: %v", err)
	}
}
