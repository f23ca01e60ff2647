package badgerstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"github.com/agw-dev/agw/store"
)

// The audit indexes (ea/<agent>/, eb/<backend>/) hold groups, not one key
// per record. An entry's key ends in the highest sequence number of its
// group; its value lists the group's other numbers as uvarint gaps walking
// down from there. An empty value is a group of one: the layout of schema
// version 3 and earlier, which reads unchanged.
//
// A group holds the events of one append transaction for one name, so under
// load one key stands for a whole batch instead of one per event: fewer keys
// to insert, flush and compact for every request. Groups of one name never
// interleave: every number in a later group is above every number in an
// earlier one, which is what lets the scans below seek by a group's highest
// number.

// maxIndexGroup bounds a group, so its value stays small enough to live in
// the LSM tree beside its key (under valueThreshold for consecutive numbers).
const maxIndexGroup = 128

// appendGroup encodes seqs (ascending, at least one) as an index entry's
// value: the gaps from the last number down to the first.
func appendGroup(dst []byte, seqs []uint64) []byte {
	for i := len(seqs) - 1; i > 0; i-- {
		dst = binary.AppendUvarint(dst, seqs[i]-seqs[i-1])
	}
	return dst
}

// decodeGroup appends to dst the numbers of the group whose key ends in last
// and whose value is v, in ascending order.
func decodeGroup(dst []uint64, last uint64, v []byte) ([]uint64, error) {
	start := len(dst)
	dst = append(dst, last)
	cur := last
	for len(v) > 0 {
		gap, n := binary.Uvarint(v)
		if n <= 0 || gap == 0 || gap >= cur {
			return dst[:start], fmt.Errorf("audit index group ending at seq %d is damaged (a gap does not decode or leaves the range)", last)
		}
		cur -= gap
		dst = append(dst, cur)
		v = v[n:]
	}
	slices.Reverse(dst[start:])
	return dst, nil
}

// readGroup decodes the group at an iterator's item.
func readGroup(dst []uint64, item *badger.Item) ([]uint64, error) {
	last := seqOf(item.Key())
	var err error
	verr := item.Value(func(v []byte) error {
		dst, err = decodeGroup(dst, last, v)
		return err
	})
	if verr != nil {
		return dst, fmt.Errorf("read audit index %q: %w", item.Key(), verr)
	}
	return dst, nil
}

// indexBatch collects one transaction's index groups as events are
// appended, and writes them with flush (or earlier, as a group fills).
type indexBatch struct {
	names   nameCache
	agents  map[string][]uint64
	backend map[string][]uint64
}

func newIndexBatch(names nameCache) *indexBatch {
	return &indexBatch{names: names, agents: map[string][]uint64{}, backend: map[string][]uint64{}}
}

// entries reports how many index entries ev may add, so callers can keep a
// transaction under Badger's limits before adding it.
func (ib *indexBatch) entries(ev *store.AuditEvent) int {
	n := 0
	if ib.names.indexable(ev.Agent) {
		n++
	}
	if ib.names.indexable(ev.Backend) {
		n++
	}
	return n
}

// add records ev in its agent's and backend's groups, writing a group to txn
// when it is full.
func (ib *indexBatch) add(txn *badger.Txn, kb *keyBuf, ev *store.AuditEvent) error {
	if ib.names.indexable(ev.Agent) {
		if err := ib.addTo(txn, kb, ib.agents, "ea/", ev.Agent, ev.Seq); err != nil {
			return err
		}
	}
	if ib.names.indexable(ev.Backend) {
		if err := ib.addTo(txn, kb, ib.backend, "eb/", ev.Backend, ev.Seq); err != nil {
			return err
		}
	}
	return nil
}

func (ib *indexBatch) addTo(txn *badger.Txn, kb *keyBuf, groups map[string][]uint64, prefix, name string, seq uint64) error {
	seqs := append(groups[name], seq)
	if len(seqs) < maxIndexGroup {
		groups[name] = seqs
		return nil
	}
	groups[name] = seqs[:0]
	return setGroup(txn, kb, prefix, name, seqs)
}

// flush writes the groups not yet written.
func (ib *indexBatch) flush(txn *badger.Txn, kb *keyBuf) error {
	for _, g := range []struct {
		prefix string
		groups map[string][]uint64
	}{{"ea/", ib.agents}, {"eb/", ib.backend}} {
		for name, seqs := range g.groups {
			if len(seqs) == 0 {
				continue
			}
			if err := setGroup(txn, kb, g.prefix, name, seqs); err != nil {
				return err
			}
			g.groups[name] = seqs[:0]
		}
	}
	return nil
}

func setGroup(txn *badger.Txn, kb *keyBuf, prefix, name string, seqs []uint64) error {
	k := kb.key(seqs[len(seqs)-1], prefix, name, "/")
	var v []byte
	if len(seqs) > 1 {
		v = appendGroup(make([]byte, 0, len(seqs)-1), seqs)
	}
	return txn.SetEntry(&badger.Entry{Key: k, Value: v})
}

// pruneIndex removes from the index under prefix every number up to and
// including upTo: groups wholly at or below it go, and the one group that
// straddles it (if any) is rewritten with the numbers above. The audit log is
// pruned from its start, so those are exactly the pruned records' entries.
func pruneIndex(txn *badger.Txn, prefix []byte, upTo uint64) error {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefix
	opts.PrefetchValues = false
	it := txn.NewIterator(opts)
	var dead [][]byte
	var keep []uint64
	var keepKey []byte
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		seqs, err := readGroup(nil, item)
		if err != nil {
			it.Close()
			return err
		}
		if seqOf(item.Key()) <= upTo {
			dead = append(dead, item.KeyCopy(nil))
			continue
		}
		if seqs[0] <= upTo {
			i, _ := slices.BinarySearch(seqs, upTo+1)
			keep, keepKey = seqs[i:], item.KeyCopy(nil)
		}
		break
	}
	it.Close()
	if err := deleteAll(txn, dead...); err != nil {
		return err
	}
	if keepKey == nil {
		return nil
	}
	var v []byte
	if len(keep) > 1 {
		v = appendGroup(nil, keep)
	}
	return txn.Set(keepKey, v)
}

// indexPrints are the fingerprints of which records the agent and backend
// indexes should list, taken from the records themselves, and of what the
// indexes do list. Each is a count and a sum of keyed hashes of sequence
// numbers per index prefix: a set equal on both sides gives equal prints,
// and with a key drawn for each verification, one altered to match cannot
// be prepared in advance.
type indexPrints struct {
	key        [32]byte
	want, have map[string]*setPrint
}

type setPrint struct {
	n   int
	sum uint64
}

func newIndexPrints() (*indexPrints, error) {
	ip := &indexPrints{want: map[string]*setPrint{}, have: map[string]*setPrint{}}
	if _, err := rand.Read(ip.key[:]); err != nil {
		return nil, err
	}
	return ip, nil
}

func (ip *indexPrints) hash(seq uint64) uint64 {
	var b [40]byte
	copy(b[:], ip.key[:])
	binary.BigEndian.PutUint64(b[32:], seq)
	sum := sha256.Sum256(b[:])
	return binary.BigEndian.Uint64(sum[:8])
}

func addPrint(m map[string]*setPrint, prefix string, h uint64) {
	p := m[prefix]
	if p == nil {
		p = &setPrint{}
		m[prefix] = p
	}
	p.n++
	p.sum += h
}

// record notes a verified record: its agent's and backend's indexes should
// list it.
func (ip *indexPrints) record(names nameCache, ev *store.AuditEvent) {
	h := ip.hash(ev.Seq)
	if names.indexable(ev.Agent) {
		addPrint(ip.want, string(auditByAgentPrefix(ev.Agent)), h)
	}
	if names.indexable(ev.Backend) {
		addPrint(ip.want, string(auditByBackendPrefix(ev.Backend)), h)
	}
}

// scan reads every index entry in txn and compares what the indexes list
// with what the records say, for the records in (from, to]; entries below
// from point at pruned records, which queries skip. The error names the first
// index that differs.
func (ip *indexPrints) scan(ctx context.Context, txn *badger.Txn, from, to uint64) error {
	for _, top := range []string{"ea/", "eb/"} {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = []byte(top)
		opts.PrefetchValues = false
		it := txn.NewIterator(opts)
		var seqs []uint64
		var prefix string
		var prev uint64
		n := 0
		for it.Rewind(); it.Valid(); it.Next() {
			if n++; n%1024 == 0 {
				if err := ctx.Err(); err != nil {
					it.Close()
					return err
				}
			}
			item := it.Item()
			k := item.Key()
			if len(k) < len(top)+9 || k[len(k)-9] != '/' {
				it.Close()
				return fmt.Errorf("audit index key %q is malformed: %w", k, store.ErrAuditTampered)
			}
			if p := string(k[:len(k)-8]); p != prefix {
				prefix, prev = p, 0
			}
			var err error
			if seqs, err = readGroup(seqs[:0], item); err != nil {
				it.Close()
				return fmt.Errorf("%w: %w", err, store.ErrAuditTampered)
			}
			for _, seq := range seqs {
				if seq <= prev {
					it.Close()
					return fmt.Errorf("audit index %s lists seq %d twice or out of order: %w", describeIndex(prefix), seq, store.ErrAuditTampered)
				}
				prev = seq
				if seq > from && seq <= to {
					addPrint(ip.have, prefix, ip.hash(seq))
				}
			}
		}
		it.Close()
	}
	for prefix, want := range ip.want {
		if have := ip.have[prefix]; have == nil || *have != *want {
			n := 0
			if have != nil {
				n = have.n
			}
			return indexMismatch(prefix, n, want.n)
		}
	}
	for prefix, have := range ip.have {
		if ip.want[prefix] == nil {
			return indexMismatch(prefix, have.n, 0)
		}
	}
	return nil
}

func indexMismatch(prefix string, have, want int) error {
	d := describeIndex(prefix)
	detail := fmt.Sprintf("it lists %s where the trail holds %d", records(have), want)
	if have == want {
		detail = fmt.Sprintf("it lists %s, as many as the trail holds, but not the same ones", records(have))
	}
	return fmt.Errorf("audit index %s does not match the records (%s): queries filtered by it would miss or misreport records, though the records themselves verify: %w",
		d, detail, store.ErrAuditTampered)
}

func records(n int) string {
	if n == 1 {
		return "1 record"
	}
	return fmt.Sprintf("%d records", n)
}

// describeIndex names an index prefix for a message: agent "bot".
func describeIndex(prefix string) string {
	kind, name := "agent", strings.TrimSuffix(strings.TrimPrefix(prefix, "ea/"), "/")
	if strings.HasPrefix(prefix, "eb/") {
		kind, name = "backend", strings.TrimSuffix(strings.TrimPrefix(prefix, "eb/"), "/")
	}
	return fmt.Sprintf("of %s %q", kind, name)
}
