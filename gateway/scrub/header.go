package scrub

import (
	"net/http"
	"strings"
)

// Header replaces every header value that holds a form of the secret with
// Marker, and removes headers whose name holds one. It covers whatever map
// it is given: response headers, trailers, 1xx headers. It returns how
// many values it replaced or removed.
func (s *Set) Header(h http.Header) int {
	if s == nil {
		return 0
	}
	n := 0
	for k, vv := range h {
		if s.Contains([]byte(k)) || s.Contains([]byte(strings.ToLower(k))) {
			n += len(vv)
			delete(h, k)
			continue
		}
		for i, v := range vv {
			if s.Contains([]byte(v)) {
				vv[i] = Marker
				n++
			}
		}
	}
	return n
}

// Decodable is the Accept-Encoding agw asks a scrubbed backend for: the
// content codings it can decode and inspect.
var Decodable = []string{"gzip", "deflate", "zstd"}

// Request prepares the outgoing request of a scrubbed backend: only
// content codings agw decodes are asked for (those of Decodable the agent
// accepts; none means identity), no byte ranges (a secret read back in
// pieces smaller than a form would slip through), and no WebSocket
// extensions (permessage-deflate would hide the frames' text).
func Request(h http.Header) {
	if ae := acceptable(h.Values("Accept-Encoding")); ae != "" {
		h.Set("Accept-Encoding", ae)
	} else {
		delete(h, "Accept-Encoding")
	}
	delete(h, "Range")
	delete(h, "If-Range")
	delete(h, "Sec-Websocket-Extensions")
}

// acceptable returns the codings of Decodable that Accept-Encoding values
// accept (listed, or "*", with a non-zero weight), comma-separated.
func acceptable(values []string) string {
	ok := map[string]bool{}
	star := false
	refused := map[string]bool{}
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			coding = strings.ToLower(strings.TrimSpace(coding))
			if coding == "x-gzip" {
				coding = "gzip"
			}
			zero := isZeroWeight(params)
			switch {
			case coding == "*" && !zero:
				star = true
			case zero:
				refused[coding] = true
			default:
				ok[coding] = true
			}
		}
	}
	var out []string
	for _, c := range Decodable {
		if (ok[c] || star) && !refused[c] {
			out = append(out, c)
		}
	}
	return strings.Join(out, ", ")
}

func isZeroWeight(params string) bool {
	q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
	q, found := strings.CutPrefix(strings.ToLower(q), "q=")
	if !found {
		return false
	}
	q = strings.TrimRight(q, "0")
	return q == "0." || q == "0" || q == ""
}
