package gateway

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/agw-dev/agw/gateway/inject"
	"github.com/agw-dev/agw/store"
)

// chunks is a body that arrives in the given reads.
type chunks struct{ parts [][]byte }

func (c *chunks) Read(p []byte) (int, error) {
	if len(c.parts) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.parts[0])
	c.parts[0] = c.parts[0][n:]
	if len(c.parts[0]) == 0 {
		c.parts = c.parts[1:]
	}
	return n, nil
}

func (c *chunks) Close() error { return nil }

func chunked(parts ...string) *chunks {
	c := &chunks{}
	for _, p := range parts {
		c.parts = append(c.parts, []byte(p))
	}
	return c
}

func scrubAll(t *testing.T, sc *scrubber, src io.ReadCloser) (string, int) {
	t.Helper()
	n := 0
	out, err := io.ReadAll(&scrubReader{src: src, sc: sc, count: &n})
	if err != nil {
		t.Fatal(err)
	}
	return string(out), n
}

func TestScrubberForms(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t/+=&x"
	basic := &store.Backend{Inject: store.InjectBasic, BasicUser: "u"}
	sc := newScrubber(basic, []byte(secret))
	want := []string{
		secret,
		"s3cr3t%2F%2B%3D%26x", // query escape
		"s3cr3t%2F+=&x",       // path escape
		`s3cr3t/+=\u0026x`,    // JSON escape
		base64.StdEncoding.EncodeToString([]byte("u:" + secret)),
		base64.StdEncoding.EncodeToString([]byte(secret)),
	}
	for _, w := range want {
		out, n := scrubAll(t, sc, chunked("a "+w+" b"))
		if out != "a "+inject.Scrubbed+" b" || n != 1 {
			t.Errorf("form %q: got %q (%d)", w, out, n)
		}
	}
	if newScrubber(&store.Backend{NoScrub: true}, []byte(secret)) != nil {
		t.Error("NoScrub built a scrubber")
	}
	if newScrubber(&store.Backend{}, nil) != nil {
		t.Error("an empty secret built a scrubber")
	}
}

func TestScrubTable(t *testing.T) {
	t.Parallel()
	sc := newScrubberOf(canary)
	r := inject.Scrubbed
	for _, tc := range []struct {
		name  string
		parts []string
		want  string
		n     int
	}{
		{"none", []string{`{"ok":true}`}, `{"ok":true}`, 0},
		{"empty", nil, "", 0},
		{"whole", []string{canary}, r, 1},
		{"start", []string{canary + " tail"}, r + " tail", 1},
		{"end", []string{"head " + canary}, "head " + r, 1},
		{"many", []string{canary + canary + "," + canary}, r + r + "," + r, 3},
		{"many across reads", []string{canary[:5], canary[5:] + "x" + canary[:20], canary[20:]}, r + "x" + r, 2},
		{"prefix at end is not a match", []string{"x " + canary[:10]}, "x " + canary[:10], 0},
		{"prefix then mismatch", []string{"x " + canary[:10], "Z" + canary[11:]}, "x " + canary[:10] + "Z" + canary[11:], 0},
		{"overlapping prefix", []string{"sk-sk-canary-", canary[len("sk-canary-"):]}, "sk-" + r, 1},
		{"byte by byte", strings.Split("a"+canary+"b", ""), "a" + r + "b", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, n := scrubAll(t, sc, chunked(tc.parts...))
			if out != tc.want || n != tc.n {
				t.Errorf("got %q (%d), want %q (%d)", out, n, tc.want, tc.n)
			}
		})
	}
}

// A match split across two writes at every possible boundary is caught.
func TestScrubEverySplit(t *testing.T) {
	t.Parallel()
	sc := newScrubberOf(canary, base64.StdEncoding.EncodeToString([]byte("user:"+canary)))
	for _, body := range []string{
		canary,
		"data: {\"echo\":\"" + canary + "\"}\n\n",
		"Basic " + base64.StdEncoding.EncodeToString([]byte("user:"+canary)) + " and " + canary,
	} {
		want := strings.ReplaceAll(body, base64.StdEncoding.EncodeToString([]byte("user:"+canary)), inject.Scrubbed)
		want = strings.ReplaceAll(want, canary, inject.Scrubbed)
		for i := 0; i <= len(body); i++ {
			out, n := scrubAll(t, sc, chunked(body[:i], body[i:]))
			if out != want || n == 0 {
				t.Fatalf("split at %d of %q: got %q (%d)", i, body, out, n)
			}
		}
	}
}

// Bytes that cannot start the secret go out on the read that brought them:
// only a possible prefix is held back, and only until it is decided.
func TestScrubHoldsBackOnlyPartialMatches(t *testing.T) {
	t.Parallel()
	sc := newScrubberOf(canary)
	pr, pw := io.Pipe()
	n := 0
	s := &scrubReader{src: pr, sc: sc, count: &n}
	buf := make([]byte, 32<<10)
	read := func() string {
		k, err := s.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		return string(buf[:k])
	}
	write := func(s string) {
		go func() { _, _ = pw.Write([]byte(s)) }()
	}
	write("data: one\n\n")
	if got := read(); got != "data: one\n\n" {
		t.Fatalf("first event: %q", got)
	}
	write("data: " + canary[:8])
	if got := read(); got != "data: " {
		t.Fatalf("with a partial match: %q", got)
	}
	write(canary[8:] + "\n\n")
	if got := read(); got != inject.Scrubbed+"\n\n" {
		t.Fatalf("completed match: %q", got)
	}
	write("data: " + canary[:8])
	if got := read(); got != "data: " {
		t.Fatalf("second partial: %q", got)
	}
	write("!\n\n")
	if got := read(); got != canary[:8]+"!\n\n" {
		t.Fatalf("a partial match that failed is passed on: %q", got)
	}
	pw.Close()
	if k, err := s.Read(buf); k != 0 || err != io.EOF {
		t.Fatalf("end: %d %v", k, err)
	}
	if n != 1 {
		t.Errorf("redactions %d", n)
	}
}

func TestScrubSmallBuffers(t *testing.T) {
	t.Parallel()
	sc := newScrubberOf(canary)
	body := strings.Repeat("x", 5000) + canary + strings.Repeat("y", 5000) + canary
	n := 0
	out, err := io.ReadAll(iotest.OneByteReader(&scrubReader{src: io.NopCloser(iotest.HalfReader(strings.NewReader(body))), sc: sc, count: &n}))
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.ReplaceAll(body, canary, inject.Scrubbed); string(out) != want || n != 2 {
		t.Errorf("one byte at a time: %d redactions, equal %v", n, string(out) == want)
	}
}

func gzipped(s string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, _ = zw.Write([]byte(s))
	_ = zw.Close()
	return b.Bytes()
}

func TestScrubResponse(t *testing.T) {
	t.Parallel()
	sc := newScrubberOf(canary)
	body := `{"headers":{"X-Api-Key":"` + canary + `"}}`
	for _, tc := range []struct {
		name    string
		method  string
		status  int
		enc     string
		body    []byte
		wrapped bool
		err     bool
	}{
		{"plain", "GET", 200, "", []byte(body), true, false},
		{"gzip", "GET", 200, "gzip", gzipped(body), true, false},
		{"x-gzip", "GET", 200, "x-gzip", gzipped(body), true, false},
		{"identity", "GET", 200, "identity", []byte(body), true, false},
		{"br", "GET", 200, "br", []byte("??"), false, true},
		{"gzip then br", "GET", 200, "gzip, br", []byte("??"), false, true},
		{"head", "HEAD", 200, "", nil, false, false},
		{"204", "GET", 204, "", nil, false, false},
		{"304", "GET", 304, "", nil, false, false},
		{"101", "GET", 101, "", []byte("frames"), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, "https://api.example.com/", nil)
			res := &http.Response{StatusCode: tc.status, Header: http.Header{}, Request: req,
				Body: io.NopCloser(bytes.NewReader(tc.body)), ContentLength: int64(len(tc.body))}
			res.Header.Set("Content-Length", fmt.Sprint(len(tc.body)))
			if tc.enc != "" {
				res.Header.Set("Content-Encoding", tc.enc)
			}
			n := 0
			err := sc.scrubResponse(res, new(scrubReader), &n)
			if (err != nil) != tc.err {
				t.Fatalf("err = %v", err)
			}
			_, wrapped := res.Body.(*scrubReader)
			if wrapped != tc.wrapped {
				t.Fatalf("wrapped = %v", wrapped)
			}
			if !wrapped {
				return
			}
			if res.Header.Get("Content-Length") != "" || res.ContentLength != -1 || res.Header.Get("Content-Encoding") != "" {
				t.Errorf("headers after scrubbing: %v, length %d", res.Header, res.ContentLength)
			}
			out, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.ReplaceAll(body, canary, inject.Scrubbed); string(out) != want || n != 1 {
				t.Errorf("body %q (%d)", out, n)
			}
			_ = res.Body.Close()
		})
	}
	var nilSc *scrubber
	if err := nilSc.scrubResponse(&http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(canary))}, new(scrubReader), new(int)); err != nil {
		t.Error(err)
	}
}

func TestScrubRequest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"gzip, deflate, br", "gzip"},
		{"br, zstd", ""},
		{"GZIP;q=0.5", "gzip"},
		{"gzip;q=0", ""},
		{"*", "gzip"},
		{"identity", ""},
	} {
		h := http.Header{"Range": {"bytes=0-3"}, "If-Range": {"x"}}
		if tc.in != "" {
			h.Set("Accept-Encoding", tc.in)
		}
		scrubRequest(h)
		if got := h.Get("Accept-Encoding"); got != tc.want {
			t.Errorf("Accept-Encoding %q → %q, want %q", tc.in, got, tc.want)
		}
		if h.Get("Range") != "" || h.Get("If-Range") != "" {
			t.Error("Range kept")
		}
	}
}

// Through the real pipeline: an echo backend returns the credential in a
// JSON body, a gzip body and an SSE stream split across two flushed writes;
// the agent receives none of it and the audit counts the redactions.
func TestProxyScrubsBodies(t *testing.T) {
	t.Parallel()
	h := newHarness(t, withHandler(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("X-Api-Key")
		switch r.URL.Path {
		case "/v1/json":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", fmt.Sprint(len(`{"key":""}`)+len(key)))
			_, _ = io.WriteString(w, `{"key":"`+key+`"}`)
		case "/v1/gzip":
			if r.Header.Get("Accept-Encoding") != "gzip" {
				http.Error(w, "want Accept-Encoding gzip, got "+r.Header.Get("Accept-Encoding"), 400)
				return
			}
			w.Header().Set("Content-Encoding", "gzip")
			_, _ = w.Write(gzipped(`{"key":"` + key + `"}`))
		case "/v1/sse":
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: {\"k\":\""+key[:9])
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, key[9:]+"\"}\n\n")
		}
	}))
	for _, path := range []string{"/v1/json", "/v1/gzip", "/v1/sse"} {
		t.Run(path, func(t *testing.T) {
			res, body := h.get(path, "Authorization", "Bearer "+h.token, "Accept-Encoding", "gzip, br")
			if res.StatusCode != 200 {
				t.Fatalf("%d %s", res.StatusCode, body)
			}
			if bytes.Contains(body, []byte(canary)) || !bytes.Contains(body, []byte(inject.Scrubbed)) {
				t.Errorf("body %q", body)
			}
			if ce := res.Header.Get("Content-Encoding"); ce != "" {
				t.Errorf("Content-Encoding %q", ce)
			}
			if ev := h.nextAudit(); ev.Redactions != 1 {
				t.Errorf("audit redactions %d", ev.Redactions)
			}
		})
	}
}

func TestProxyNoScrub(t *testing.T) {
	t.Parallel()
	h := newHarness(t, withBackend(func(b *store.Backend) { b.NoScrub = true }), withHandler(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "len="+fmt.Sprint(len(r.Header.Get("X-Api-Key"))))
	}))
	res, body := h.get("/v1/x", "Authorization", "Bearer "+h.token)
	if string(body) != fmt.Sprintf("len=%d", len(canary)) || res.ContentLength != int64(len(body)) {
		t.Errorf("NoScrub body %q length %d", body, res.ContentLength)
	}
}

// BenchmarkScrub measures the body scrubber in MiB/s: 1 MiB bodies without
// and with matches read with ReverseProxy's 32 KiB buffer, and a stream of
// small (SSE-sized) writes.
func BenchmarkScrub(b *testing.B) {
	sc := newScrubber(&store.Backend{Inject: store.InjectBasic, BasicUser: "user"}, []byte(canary))
	line := []byte(`{"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"delta":{"content":"hello"}}]}` + "\n")
	plain := bytes.Repeat(line, (1<<20)/len(line)+1)[:1<<20]
	matches := bytes.Clone(plain)
	for i := 0; i+len(canary) < len(matches); i += 4 << 10 { // one every 4 KiB
		copy(matches[i:], canary)
	}
	run := func(b *testing.B, body []byte, write int) {
		buf := make([]byte, 32<<10)
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			n := 0
			var src io.Reader = bytes.NewReader(body)
			if write > 0 {
				src = &smallWrites{data: body, size: write}
			}
			s := &scrubReader{src: io.NopCloser(src), sc: sc, count: &n}
			for {
				_, err := s.Read(buf)
				if err != nil {
					break
				}
			}
		}
	}
	b.Run("1MiB/no-match", func(b *testing.B) { run(b, plain, 0) })
	b.Run("1MiB/match-every-4KiB", func(b *testing.B) { run(b, matches, 0) })
	b.Run("1MiB/stream-100B-writes", func(b *testing.B) { run(b, plain, 100) })
	b.Run("1MiB/baseline-copy", func(b *testing.B) {
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
