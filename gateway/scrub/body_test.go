package scrub

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

func gz(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	_, _ = w.Write(b)
	_ = w.Close()
	return out.Bytes()
}

func zl(b []byte) []byte {
	var out bytes.Buffer
	w := zlib.NewWriter(&out)
	_, _ = w.Write(b)
	_ = w.Close()
	return out.Bytes()
}

func rawDeflate(b []byte) []byte {
	var out bytes.Buffer
	w, _ := flate.NewWriter(&out, 5)
	_, _ = w.Write(b)
	_ = w.Close()
	return out.Bytes()
}

func zs(b []byte) []byte {
	w, _ := zstd.NewWriter(nil)
	return w.EncodeAll(b, nil)
}

func ungz(t *testing.T, b []byte) []byte {
	t.Helper()
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("the agent's body is not gzip: %v", err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// relay does what the proxy does with a response: Response, then copy the
// body into it and Close it.
func relay(t *testing.T, set *Set, res *http.Response) ([]byte, int, error) {
	t.Helper()
	var agent bytes.Buffer
	b, err := set.Response(res, BodyConfig{Dst: &agent})
	if err != nil || b == nil {
		return nil, 0, err
	}
	if _, err := io.Copy(b, res.Body); err != nil {
		b.Abort()
		return nil, 0, err
	}
	if err := b.Close(); err != nil {
		return nil, 0, err
	}
	_ = res.Body.Close()
	return agent.Bytes(), b.Redactions(), nil
}

func response(method string, status int, enc, ctype string, body []byte) *http.Response {
	req, _ := http.NewRequest(method, "https://api.example.com/", nil)
	res := &http.Response{StatusCode: status, Header: http.Header{}, Request: req,
		Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body))}
	res.Header.Set("Content-Length", fmt.Sprint(len(body)))
	if enc != "" {
		res.Header.Set("Content-Encoding", enc)
	}
	if ctype != "" {
		res.Header.Set("Content-Type", ctype)
	}
	return res
}

func TestResponseBodies(t *testing.T) {
	t.Parallel()
	set := New([]byte(canary))
	plain := []byte(`{"headers":{"X-Api-Key":"` + canary + `"}}`)
	want := strings.ReplaceAll(string(plain), canary, Marker)
	deep := plain
	for range MaxDepth {
		deep = gz(deep)
	}
	for _, tc := range []struct {
		name    string
		enc     string
		ctype   string
		body    []byte
		gzipOut bool   // the agent gets a gzip body (a nested layer re-encoded)
		refused string // UninspectableError naming this
	}{
		{"plain", "", "application/json", plain, false, ""},
		{"identity", "identity", "", plain, false, ""},
		{"gzip", "gzip", "", gz(plain), false, ""},
		{"x-gzip", "x-gzip", "", gz(plain), false, ""},
		{"deflate (zlib)", "deflate", "", zl(plain), false, ""},
		{"deflate (raw)", "deflate", "", rawDeflate(plain), false, ""},
		{"zstd", "zstd", "", zs(plain), false, ""},
		{"gzip, zstd", "gzip, zstd", "", zs(gz(plain)), false, ""},
		{"gzip inside gzip", "gzip", "", gz(gz(plain)), true, ""},
		{"application/gzip", "", "application/gzip", gz(plain), true, ""},
		{"gzip inside gzip inside zstd", "zstd", "", zs(gz(gz(plain))), true, ""},
		{"nested deeper than MaxDepth", "", "application/gzip", gz(deep), false, "nested deeper"},
		{"br", "br", "", []byte("??"), false, "Content-Encoding br"},
		{"gzip then br", "gzip, br", "", []byte("??"), false, "Content-Encoding br"},
		{"compress", "compress", "", []byte("??"), false, "Content-Encoding compress"},
		{"zip archive", "", "application/zip", []byte("PK\x03\x04rest"), false, "zip archive"},
		{"zip inside gzip", "gzip", "", gz([]byte("PK\x03\x04rest")), false, "zip archive"},
		{"xz", "", "application/x-xz", []byte("\xfd7zXZ\x00rest"), false, "xz"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := response("GET", 200, tc.enc, tc.ctype, tc.body)
			out, n, err := relay(t, set, res)
			if tc.refused != "" {
				var ue *UninspectableError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.refused) {
					t.Fatalf("err = %v, want an UninspectableError naming %q", err, tc.refused)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Header.Get("Content-Length") != "" || res.ContentLength != -1 || res.Header.Get("Content-Encoding") != "" {
				t.Errorf("headers after scrubbing: %v, length %d", res.Header, res.ContentLength)
			}
			if tc.gzipOut {
				out = ungz(t, out)
				if tc.name == "gzip inside gzip inside zstd" {
					out = ungz(t, out)
				}
			}
			if string(out) != want || n != 1 {
				t.Errorf("body %q (%d)", out, n)
			}
		})
	}
}

func TestResponseLeftAlone(t *testing.T) {
	t.Parallel()
	set := New([]byte(canary))
	for _, tc := range []struct {
		name   string
		method string
		status int
	}{
		{"head", "HEAD", 200},
		{"204", "GET", 204},
		{"304", "GET", 304},
		{"101", "GET", 101},
	} {
		res := response(tc.method, tc.status, "", "", nil)
		if b, err := set.Response(res, BodyConfig{Dst: io.Discard}); b != nil || err != nil {
			t.Errorf("%s: %v %v", tc.name, b, err)
		}
	}
	var nilSet *Set
	if b, err := nilSet.Response(response("GET", 200, "br", "", []byte(canary)), BodyConfig{Dst: io.Discard}); b != nil || err != nil {
		t.Error("a nil Set (scrubbing off) refused or wrapped a body")
	}
}

// An event stream is not sniffed: its headers must not wait for the
// first event.
func TestResponseEventStreamNotSniffed(t *testing.T) {
	t.Parallel()
	set := New([]byte(canary))
	pr, pw := io.Pipe()
	defer pw.Close()
	res := response("GET", 200, "", "text/event-stream", nil)
	res.Body, res.ContentLength = pr, -1
	b, err := set.Response(res, BodyConfig{Dst: io.Discard})
	if err != nil || b == nil {
		t.Fatalf("%v %v", b, err)
	}
	b.Abort()
}
