package scrub

import (
	"slices"
)

// denseDepth is the depth below which a state has a full transition row.
// Ordinary text keeps the automaton in these shallow states, so the common
// step is one table lookup; deeper states (inside a long form) keep only
// their trie edges and a failure link, so memory grows with the total
// length of the forms, not with that times the alphabet.
const denseDepth = 12

// matcher is an Aho–Corasick automaton over every form of every secret,
// over byte classes: states are numbered breadth-first, those shallower
// than denseDepth have a dense row, the others sparse edges and a failure
// link.
type matcher struct {
	class  [256]uint16 // byte → class; class 0 is every byte no form uses
	nclass int
	ndense int32
	next   []int32 // next[state*nclass+class] for state < ndense
	fast   []int32 // next, encoded for the streaming loop (see newMatcher)
	// pairs is a bitmap of the first two bytes of every form; nil when a
	// form is a single byte.
	pairs *[1024]uint64
	first [256]bool // the first byte of some form (with pairs)
	// Sparse states s ≥ ndense: edges edgeCls/edgeNext[edgeOff[s-ndense]:edgeOff[s-ndense+1]].
	edgeOff  []int32
	edgeCls  []uint16
	edgeNext []int32
	fail     []int32
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
			m.class[b] = uint16(m.nclass)
			m.nclass++
		}
	}

	// Trie, with edges kept sorted by class.
	type node struct {
		cls   []uint16
		kid   []int32
		depth int32
		term  int32
	}
	nodes := []node{{}}
	child := func(s int32, c uint16) (int32, bool) {
		n := &nodes[s]
		if i, ok := slices.BinarySearch(n.cls, c); ok {
			return n.kid[i], true
		}
		return 0, false
	}
	for _, f := range forms {
		s := int32(0)
		for i := 0; i < len(f); i++ {
			c := m.class[f[i]]
			n, ok := child(s, c)
			if !ok {
				n = int32(len(nodes))
				nodes = append(nodes, node{depth: nodes[s].depth + 1})
				j, _ := slices.BinarySearch(nodes[s].cls, c)
				nodes[s].cls = slices.Insert(nodes[s].cls, j, c)
				nodes[s].kid = slices.Insert(nodes[s].kid, j, n)
			}
			s = n
		}
		nodes[s].term = max(nodes[s].term, int32(len(f)))
	}

	// Breadth-first numbering: depth never decreases with the id.
	order := make([]int32, 0, len(nodes))
	id := make([]int32, len(nodes))
	order = append(order, 0)
	for i := 0; i < len(order); i++ {
		for _, k := range nodes[order[i]].kid {
			id[k] = int32(len(order))
			order = append(order, k)
		}
	}
	ns := len(order)
	m.depth = make([]int32, ns)
	m.match = make([]int32, ns)
	m.fail = make([]int32, ns)
	for i, old := range order {
		m.depth[i] = nodes[old].depth
		if nodes[old].depth < denseDepth {
			m.ndense = int32(i + 1)
		}
	}
	nc := m.nclass
	m.next = make([]int32, int(m.ndense)*nc)
	m.edgeOff = make([]int32, ns-int(m.ndense)+1)
	for i := int(m.ndense); i < ns; i++ {
		n := &nodes[order[i]]
		for j, c := range n.cls {
			m.edgeCls = append(m.edgeCls, c)
			m.edgeNext = append(m.edgeNext, id[n.kid[j]])
		}
		m.edgeOff[i-int(m.ndense)+1] = int32(len(m.edgeCls))
	}
	// Failure links and dense rows, in breadth-first order so that a
	// state's failure target (shallower) is complete before it.
	for i := range ns {
		n := &nodes[order[i]]
		f := m.fail[i]
		m.match[i] = max(n.term, m.match[f])
		if i == 0 {
			m.match[0] = n.term
		}
		for j, c := range n.cls {
			k := id[n.kid[j]]
			if i == 0 {
				m.fail[k] = 0
			} else {
				m.fail[k] = m.step(f, c)
			}
		}
		if int32(i) < m.ndense {
			row := m.next[i*nc : (i+1)*nc]
			for c := range nc {
				if i == 0 {
					row[c] = 0
				} else {
					row[c] = m.step(f, uint16(c))
				}
			}
			for j, c := range n.cls {
				row[c] = id[n.kid[j]]
			}
		}
	}
	// The hot loop's table: the row offset of a dense target without a
	// match, or -(id+1) for a target that needs a look (a match, or sparse).
	m.fast = make([]int32, len(m.next))
	for i, t := range m.next {
		if t < m.ndense && m.match[t] == 0 {
			m.fast[i] = t * int32(nc)
		} else {
			m.fast[i] = -(t + 1)
		}
	}
	// Pairs: the first two bytes of every form, for skipping through text
	// while in the root state. Only when every form has two bytes.
	short := slices.ContainsFunc(forms, func(f string) bool { return len(f) < 2 })
	if !short {
		m.pairs = new([1024]uint64)
		for _, f := range forms {
			i := uint(f[0])<<8 | uint(f[1])
			m.pairs[i>>6] |= 1 << (i & 63)
			m.first[f[0]] = true
		}
	}
	return m
}

// step is the transition from state s on byte class c.
func (m *matcher) step(s int32, c uint16) int32 {
	for s >= m.ndense {
		i := s - m.ndense
		for k := m.edgeOff[i]; k < m.edgeOff[i+1]; k++ {
			if m.edgeCls[k] == c {
				return m.edgeNext[k]
			}
		}
		s = m.fail[s]
	}
	return m.next[int(s)*m.nclass+int(c)]
}

// size is the memory the automaton takes, in bytes.
func (m *matcher) size() int {
	return 8*len(m.next) + 8192 + 4*len(m.edgeOff) + 2*len(m.edgeCls) + 4*len(m.edgeNext) + 12*len(m.depth) + 512
}
