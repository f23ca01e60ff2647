// Package policy decides whether a grant allows a request: the method, and
// the path after normalisation against the grant's patterns.
package policy

import (
	"fmt"
	"strings"

	"github.com/agw-dev/agw/gateway/deny"
	"github.com/agw-dev/agw/store"
)

// Authorize applies a grant to a request: the method must be listed (or the
// grant lists "*") and the normalised path must match one of the grant's
// patterns. A nil grant denies. The returned denial names the rule.
func Authorize(g *store.Grant, agent, backend, method, path string) *deny.Denial {
	if g == nil {
		return deny.Policy(fmt.Sprintf("no grant for agent %q on backend %q", agent, backend))
	}
	if !methodAllowed(g.Methods, method) {
		return deny.Policy(fmt.Sprintf("method %s not in grant for agent %q on backend %q (allowed: %s)",
			method, agent, backend, strings.Join(g.Methods, ", ")))
	}
	for _, p := range g.Paths {
		if GlobMatch(p, path) {
			return nil
		}
	}
	return deny.Policy(fmt.Sprintf("path %s not in grant patterns [%s] for agent %q on backend %q",
		path, strings.Join(g.Paths, " "), agent, backend))
}

// methodAllowed reports whether method is listed. Methods are case-sensitive
// (RFC 9110 §9.1): "get" is not GET. HEAD is not implied by GET.
func methodAllowed(methods []string, method string) bool {
	for _, m := range methods {
		if m == "*" || m == method {
			return true
		}
	}
	return false
}

// GlobMatch matches a grant path pattern against a normalised path.
// Patterns are split on "/": a "**" segment matches any number of path
// segments including zero ("/v1/**" matches "/v1", "/v1/" and "/v1/a/b");
// within any other segment "*" matches any run of characters except "/".
// Every other character is literal. It does not allocate.
func GlobMatch(pattern, path string) bool {
	pattern, pok := strings.CutPrefix(pattern, "/")
	path, ok := strings.CutPrefix(path, "/")
	if !pok || !ok {
		return false
	}
	return matchSegments(pattern, true, path, true)
}

// matchSegments matches the segments left in pat (patOK false: none left)
// against those left in p.
func matchSegments(pat string, patOK bool, p string, pOK bool) bool {
	for {
		if !patOK {
			return !pOK
		}
		ps, prest, pmore := strings.Cut(pat, "/")
		if ps == "**" {
			for {
				if matchSegments(prest, pmore, p, pOK) {
					return true
				}
				if !pOK {
					return false
				}
				_, p, pOK = strings.Cut(p, "/")
			}
		}
		if !pOK {
			return false
		}
		s, rest, more := strings.Cut(p, "/")
		if !segmentMatch(ps, s) {
			return false
		}
		pat, patOK, p, pOK = prest, pmore, rest, more
	}
}

// segmentMatch matches one segment against a pattern in which "*" matches
// any run of characters (the segment holds no "/").
func segmentMatch(pat, s string) bool {
	// Iterative wildcard match with single-star backtracking: linear enough
	// for the short segments of URL paths.
	px, sx := 0, 0
	starPx, starSx := -1, 0
	for sx < len(s) {
		switch {
		case px < len(pat) && pat[px] == '*':
			starPx, starSx = px, sx
			px++
		case px < len(pat) && pat[px] == s[sx]:
			px++
			sx++
		case starPx >= 0:
			starSx++
			px, sx = starPx+1, starSx
		default:
			return false
		}
	}
	for px < len(pat) && pat[px] == '*' {
		px++
	}
	return px == len(pat)
}
