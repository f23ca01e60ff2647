package badgerstore

import (
	"encoding/binary"

	"github.com/agw-dev/agw/store"
)

// Key layout. Object names are validated (no '/'), so "<prefix><name>/" never
// spills into another name's range. Numbers are 8-byte big-endian so that
// byte order is numeric order.
//
//	meta/schema                 schema version (decimal)
//	meta/audit-anchor           seq and hash of the last pruned audit record
//	meta/gen                    last generation given to an agent or backend (8 bytes)
//	meta/rev                    the newest committed revision (8 bytes)
//	meta/rev-floor              the newest revision compacted out of the change history (8 bytes)
//	r/<rev>                     changeSetRecord: what revision rev changed (change.go)
//	b/<backend>                 backendRecord (Backend and its generation)
//	h/<host>                    backend name owning the host
//	c/<backend>/<version>       credRecord (sealed bytes, backend generation)
//	a/<agent>                   agentRecord (Agent and its generation)
//	s/<idp>/<subject>           agent name bound to the IdP subject
//	g/<agent>/<backend>         grantRecord (Grant and the backend's generation)
//	gb/<backend>/<agent>        empty: reverse grant index
//	t/<id>                      tokenRecord (with the agent's generation)
//	ta/<agent>/<id>             empty: tokens by agent
//	xa/<agent>                  generation of a deleted agent whose tokens await cleanup
//	xb/<backend>                generation of a deleted backend whose credentials and grants await cleanup
//	i/<idp>                     IdP
//	e/<seq>                     AuditEvent, JSON compressed (internal/auditvalue) or, if older, plain
//	ea/<agent>/<seq>            audit by agent: a group of records, seq the last (auditindex.go)
//	eb/<backend>/<seq>          audit by backend: a group of records, seq the last
//	et/<minute>                 min and max seq of the minute's events (audittime.go)
var (
	keySchema      = []byte("meta/schema")
	keyAuditAnchor = []byte("meta/audit-anchor")
	keyGen         = []byte("meta/gen")
	keyRevision    = []byte("meta/rev")
	keyRevFloor    = []byte("meta/rev-floor")

	prefixBackend     = []byte("b/")
	prefixCredential  = []byte("c/")
	prefixAgent       = []byte("a/")
	prefixGrant       = []byte("g/")
	prefixToken       = []byte("t/")
	prefixIdP         = []byte("i/")
	prefixAudit       = []byte("e/")
	prefixChange      = []byte("r/")
	prefixAgentGone   = []byte("xa/")
	prefixBackendGone = []byte("xb/")
)

func key(parts ...string) []byte {
	n := 0
	for _, p := range parts {
		n += len(p) + 1
	}
	k := make([]byte, 0, n+8)
	for i, p := range parts {
		if i > 0 {
			k = append(k, '/')
		}
		k = append(k, p...)
	}
	return k
}

// withSeq appends n as 8 big-endian bytes.
func withSeq(prefix []byte, n uint64) []byte {
	k := make([]byte, len(prefix), len(prefix)+8)
	copy(k, prefix)
	return binary.BigEndian.AppendUint64(k, n)
}

// seqOf reads the trailing 8-byte number of a key.
func seqOf(k []byte) uint64 {
	if len(k) < 8 {
		return 0
	}
	return binary.BigEndian.Uint64(k[len(k)-8:])
}

// tailOf returns what follows prefix in k.
func tailOf(k, prefix []byte) string { return string(k[len(prefix):]) }

func backendKey(name string) []byte    { return key("b", name) }
func hostKey(host string) []byte       { return key("h", host) }
func credPrefix(backend string) []byte { return key("c", backend, "") }
func credKey(backend string, version int) []byte {
	return withSeq(credPrefix(backend), uint64(version))
}
func agentKey(name string) []byte                    { return key("a", name) }
func subjectPrefix(idp string) []byte                { return key("s", idp, "") }
func subjectKey(idp, subject string) []byte          { return key("s", idp, subject) }
func grantPrefix(agent string) []byte                { return key("g", agent, "") }
func grantKey(agent, backend string) []byte          { return key("g", agent, backend) }
func grantByBackendPrefix(backend string) []byte     { return key("gb", backend, "") }
func grantByBackendKey(backend, agent string) []byte { return key("gb", backend, agent) }
func tokenKey(id string) []byte                      { return key("t", id) }
func tokenByAgentPrefix(agent string) []byte         { return key("ta", agent, "") }
func tokenByAgentKey(agent, id string) []byte        { return key("ta", agent, id) }
func idpKey(name string) []byte                      { return key("i", name) }
func agentGoneKey(name string) []byte                { return key("xa", name) }
func backendGoneKey(name string) []byte              { return key("xb", name) }
func auditKey(seq uint64) []byte                     { return withSeq(prefixAudit, seq) }
func changeKey(rev store.Revision) []byte            { return withSeq(prefixChange, uint64(rev)) }
func auditByAgentPrefix(agent string) []byte         { return key("ea", agent, "") }
func auditByBackendPrefix(backend string) []byte     { return key("eb", backend, "") }

// indexable reports whether an audit event's agent or backend gets an index
// entry. Events carry whatever the request claimed; only well-formed names
// are indexed, so a name holding '/' cannot land inside another name's range.
// Queries for other values fall back to the full scan.
func indexable(name string) bool { return name != "" && store.ValidateName("name", name) == nil }

// nameCache remembers indexable's answers for audit appends, which repeat a
// few names per batch and would otherwise run the name pattern twice per
// event. Names longer than any valid one are not kept, and the cache is
// emptied when full, so request-supplied names cannot grow it without bound.
// Store.mu guards it.
type nameCache map[string]bool

const maxCachedNames = 4096

func (c nameCache) indexable(name string) bool {
	if len(name) > 64 {
		return indexable(name)
	}
	ok, seen := c[name]
	if !seen {
		if len(c) >= maxCachedNames {
			clear(c)
		}
		ok = indexable(name)
		c[name] = ok
	}
	return ok
}

// keyBuf carves keys from shared blocks, so the keys of an audit batch cost
// a few allocations rather than several per event. A carved key is never
// written again, so it may be handed to Badger.
type keyBuf []byte

// key returns the concatenation of parts followed by seq (8 bytes,
// big-endian): the layout withSeq gives.
func (b *keyBuf) key(seq uint64, parts ...string) []byte {
	n := 8
	for _, p := range parts {
		n += len(p)
	}
	if cap(*b)-len(*b) < n {
		*b = make([]byte, 0, max(n, 16<<10))
	}
	start := len(*b)
	for _, p := range parts {
		*b = append(*b, p...)
	}
	*b = binary.BigEndian.AppendUint64(*b, seq)
	return (*b)[start:len(*b):len(*b)]
}
