package badgerstore_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/agw-dev/agw/store"
)

// rehash recomputes a stored record's hash the documented way:
// hex(SHA-256(PrevHash || JSON of the event with Hash empty)).
func rehash(t *testing.T, raw []byte) []byte {
	t.Helper()
	var ev store.AuditEvent
	must(t, json.Unmarshal(raw, &ev))
	ev.Hash = ""
	canonical, err := json.Marshal(&ev)
	must(t, err)
	sum := sha256.Sum256(append([]byte(ev.PrevHash), canonical...))
	ev.Hash = hex.EncodeToString(sum[:])
	out, err := json.Marshal(&ev)
	must(t, err)
	return out
}

// TestHashIsDocumentedFormula pins the chain hash so external verifiers can
// recompute it.
func TestHashIsDocumentedFormula(t *testing.T) {
	t.Parallel()
	s := withEvents(t, 3)
	for seq := uint64(1); seq <= 3; seq++ {
		v, err := s.AuditJSON(seq)
		must(t, err)
		if got := rehash(t, v); string(got) != string(v) {
			t.Errorf("seq %d: stored %s\nrecomputed %s", seq, v, got)
		}
	}
}
