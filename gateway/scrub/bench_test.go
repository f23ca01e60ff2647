package scrub

import (
	"bytes"
	"io"
	"testing"
)

// BenchmarkScrub measures body scrubbing in MB/s against the scrubber agw
// used before (oldscrub_test.go) on the same input: 1 MiB bodies without
// and with a match every 4 KiB, read with ReverseProxy's 32 KiB buffer,
// and a stream of 100-byte (SSE-sized) writes.
func BenchmarkScrub(b *testing.B) {
	const user = "user"
	line := []byte(`{"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"delta":{"content":"hello"}}]}` + "\n")
	plain := bytes.Repeat(line, (1<<20)/len(line)+1)[:1<<20]
	matches := bytes.Clone(plain)
	for i := 0; i+len(canary) < len(matches); i += 4 << 10 {
		copy(matches[i:], canary)
	}
	set := New([]byte(canary), []byte(user+":"+canary))
	old := newOldScrubber(user, []byte(canary))
	b.Logf("forms: new %d (automaton %d KiB), old %d", set.Len(), set.Size()>>10, len(old.pats))
	for _, in := range []struct {
		name  string
		body  []byte
		write int
	}{
		{"no-match", plain, 0},
		{"match-every-4KiB", matches, 0},
		{"stream-100B-writes", plain, 100},
	} {
		b.Run("old/"+in.name, func(b *testing.B) {
			buf := make([]byte, 32<<10)
			b.SetBytes(int64(len(in.body)))
			b.ReportAllocs()
			for b.Loop() {
				n := 0
				var src io.Reader = bytes.NewReader(in.body)
				if in.write > 0 {
					src = &smallWrites{data: in.body, size: in.write}
				}
				r := &oldScrubReader{src: src, sc: old, count: &n}
				for {
					if _, err := r.Read(buf); err != nil {
						break
					}
				}
			}
		})
		b.Run("new/"+in.name, func(b *testing.B) {
			buf := make([]byte, 32<<10)
			b.SetBytes(int64(len(in.body)))
			b.ReportAllocs()
			for b.Loop() {
				var src io.Reader = bytes.NewReader(in.body)
				if in.write > 0 {
					src = &smallWrites{data: in.body, size: in.write}
				}
				w := set.NewWriter(WriterConfig{Dst: io.Discard, Hold: -1})
				for {
					n, err := src.Read(buf)
					_, _ = w.Write(buf[:n])
					if err != nil {
						break
					}
				}
				_ = w.Close()
			}
		})
	}
	b.Run("baseline-copy", func(b *testing.B) {
		buf := make([]byte, 32<<10)
		b.SetBytes(1 << 20)
		for b.Loop() {
			r := bytes.NewReader(plain)
			for {
				if _, err := r.Read(buf); err != nil {
					break
				}
			}
		}
	})
}

// smallWrites returns data size bytes per Read, as a stream of small
// flushed writes arrives.
type smallWrites struct {
	data []byte
	size int
}

func (s *smallWrites) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), s.size)], s.data)
	s.data = s.data[n:]
	return n, nil
}
