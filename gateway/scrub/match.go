package scrub

import (
	"slices"
)

// matcher is an Aho–Corasick automaton over every form of every secret,
// compiled to a dense DFA over byte classes: one table lookup per input
// byte, whatever the number of forms.
type matcher struct {
	class  [256]uint8 // byte → class; class 0 is every byte no form uses
	nclass int
	next   []int32 // next[state*nclass+class]
	// depth is the length of the longest suffix of the input that is a
	// prefix of some form: bytes before it can never be part of a match.
	depth []int32
	// match is the length of the longest form that ends at this state
	// (0: none). Shorter forms ending here lie inside it.
	match  []int32
	maxLen int
}

// newMatcher compiles forms; it returns nil when there are none.
func newMatcher(forms []string) *matcher {
	forms = slices.DeleteFunc(slices.Clone(forms), func(f string) bool { return f == "" })
	if len(forms) == 0 {
		return nil
	}
	m := &matcher{}
	used := [256]bool{}
	for _, f := range forms {
		for i := 0; i < len(f); i++ {
			used[f[i]] = true
		}
		m.maxLen = max(m.maxLen, len(f))
	}
	m.nclass = 1
	for b := range 256 {
		if used[b] {
			m.class[b] = uint8(m.nclass)
			m.nclass++
		}
	}
	// A byte-class table holds at most 255 used bytes plus class 0; with
	// all 256 used, class 0 would alias one of them.
	if m.nclass > 256 {
		m.nclass = 256
		for b := range 256 {
			m.class[b] = uint8(b)
		}
	}

	// Trie.
	type node struct {
		kids  map[uint8]int32
		depth int32
		term  int32
	}
	nodes := []node{{kids: map[uint8]int32{}}}
	for _, f := range forms {
		s := int32(0)
		for i := 0; i < len(f); i++ {
			c := m.class[f[i]]
			n, ok := nodes[s].kids[c]
			if !ok {
				n = int32(len(nodes))
				nodes = append(nodes, node{kids: map[uint8]int32{}, depth: nodes[s].depth + 1})
				nodes[s].kids[c] = n
			}
			s = n
		}
		nodes[s].term = max(nodes[s].term, int32(len(f)))
	}

	// Breadth-first: failure links, then the DFA rows.
	nc := m.nclass
	m.next = make([]int32, len(nodes)*nc)
	m.depth = make([]int32, len(nodes))
	m.match = make([]int32, len(nodes))
	fail := make([]int32, len(nodes))
	queue := make([]int32, 0, len(nodes))
	for c := range nc {
		if n, ok := nodes[0].kids[uint8(c)]; ok && c != 0 || ok && m.nclass == 256 {
			m.next[c] = n
			queue = append(queue, n)
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		m.depth[s] = nodes[s].depth
		m.match[s] = max(nodes[s].term, m.match[fail[s]])
		for c := range nc {
			n, ok := nodes[s].kids[uint8(c)]
			if ok && (c != 0 || m.nclass == 256) {
				fail[n] = m.next[int(fail[s])*nc+c]
				m.next[int(s)*nc+c] = n
				queue = append(queue, n)
			} else {
				m.next[int(s)*nc+c] = m.next[int(fail[s])*nc+c]
			}
		}
	}
	return m
}

// states is the number of DFA states, for the size report.
func (m *matcher) states() int { return len(m.depth) }
