package badgerstore

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/agw-dev/agw/store"
)

// TestAuditEntriesKeys: the keys an append carves are the layout the
// queries and the prune read (keys.go).
func TestAuditEntriesKeys(t *testing.T) {
	t.Parallel()
	var kb keyBuf
	names := nameCache{}
	for _, ev := range []store.AuditEvent{
		{Seq: 1},
		{Seq: 2, Agent: "bot", Backend: "crm"},
		{Seq: 1 << 40, Agent: "bad/name", Backend: "crm-prod.eu"},
		{Seq: 3, Agent: "bot"},
	} {
		want := [][]byte{auditKey(ev.Seq)}
		if indexable(ev.Agent) {
			want = append(want, withSeq(auditByAgentPrefix(ev.Agent), ev.Seq))
		}
		if indexable(ev.Backend) {
			want = append(want, withSeq(auditByBackendPrefix(ev.Backend), ev.Seq))
		}
		es := auditEntries(&kb, names, &ev, []byte("v"))
		if len(es) != len(want) {
			t.Fatalf("event %+v: %d entries, want %d", ev, len(es), len(want))
		}
		for i, e := range es {
			if !bytes.Equal(e.Key, want[i]) {
				t.Errorf("event %+v: key %d is %q, want %q", ev, i, e.Key, want[i])
			}
		}
		if string(es[0].Value) != "v" {
			t.Errorf("event %+v: record value %q", ev, es[0].Value)
		}
	}
}

// TestNameCacheAgrees: the cache answers as indexable does, also once full.
func TestNameCacheAgrees(t *testing.T) {
	t.Parallel()
	c := nameCache{}
	names := []string{"", "bot", "Bot", "a/b", "-x", "x-", string(make([]byte, 63)), "a234567890123456789012345678901234567890123456789012345678901234"}
	for i := range 3 * maxCachedNames {
		n := names[i%len(names)]
		if i%2 == 1 {
			n = fmt.Sprint(n, i) // many names, to fill the cache
		}
		if got, want := c.indexable(n), indexable(n); got != want {
			t.Fatalf("indexable(%q) = %v through the cache, %v without", n, got, want)
		}
		if len(c) > maxCachedNames {
			t.Fatalf("cache holds %d names, more than %d", len(c), maxCachedNames)
		}
	}
}
