package adminserver

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/store"
	"github.com/agw-dev/agw/store/badgerstore"
)

// TestFollowerLag: a follower within the lag limit gets every matching
// record, page by page; one beyond it gets a missed notice whose range is
// exactly what it skipped, then carries on from the head.
func TestFollowerLag(t *testing.T) {
	st, err := badgerstore.Open(t.TempDir(), badgerstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := t.Context()
	appendN := func(n int) {
		t.Helper()
		evs := make([]store.AuditEvent, n)
		for i := range evs {
			evs[i] = store.AuditEvent{Kind: store.KindRequest, Agent: []string{"a", "b"}[i%2]}
		}
		if err := st.AppendAudit(ctx, evs); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	read := func() (seqs []uint64, missed []admin.StreamMessage) {
		t.Helper()
		dec := json.NewDecoder(&out)
		for dec.More() {
			var m admin.StreamMessage
			if err := dec.Decode(&m); err != nil {
				t.Fatal(err)
			}
			if m.Event != nil {
				seqs = append(seqs, m.Event.Seq)
			} else {
				missed = append(missed, m)
			}
		}
		out.Reset()
		return seqs, missed
	}
	f := follower{st: st, q: store.AuditQuery{Agent: "a"}, maxLag: 1000, enc: json.NewEncoder(&out), flush: func() error { return nil }}

	// Within the limit, across several pages: every record of agent a.
	appendN(3 * followPage)
	if err := f.catchUp(ctx); err != nil {
		t.Fatal(err)
	}
	seqs, missed := read()
	var want []uint64
	for s := uint64(1); s <= 3*followPage; s += 2 {
		want = append(want, s)
	}
	if !slices.Equal(seqs, want) || len(missed) != 0 || f.cursor != 3*followPage {
		t.Fatalf("within the limit: %d events (first %v), %d notices, cursor %d", len(seqs), seqs[:min(3, len(seqs))], len(missed), f.cursor)
	}

	// Beyond it: one notice covering exactly the skipped range.
	appendN(1001)
	if err := f.catchUp(ctx); err != nil {
		t.Fatal(err)
	}
	seqs, missed = read()
	wantNotice := admin.StreamMessage{Missed: 1001, MissedFrom: 3*followPage + 1, MissedTo: 3*followPage + 1001}
	if len(seqs) != 0 || len(missed) != 1 || missed[0] != wantNotice {
		t.Fatalf("beyond the limit: events %v, notices %+v; want only %+v", seqs, missed, wantNotice)
	}
	// The range re-reads exactly the skipped records of the stream's filter.
	var reread []uint64
	q := store.AuditQuery{Agent: "a", AfterSeq: wantNotice.MissedFrom - 1, BeforeSeq: wantNotice.MissedTo + 1}
	if err := st.QueryAudit(ctx, q, func(ev store.AuditEvent) bool { reread = append(reread, ev.Seq); return true }); err != nil {
		t.Fatal(err)
	}
	if len(reread) != 501 || reread[0] != wantNotice.MissedFrom || reread[len(reread)-1] != wantNotice.MissedTo {
		t.Errorf("re-read %d records from %v; want the 501 of agent a in the range", len(reread), reread[:min(3, len(reread))])
	}

	// And the stream goes on from the head.
	appendN(2)
	if err := f.catchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if seqs, missed = read(); !slices.Equal(seqs, []uint64{3*followPage + 1002}) || len(missed) != 0 {
		t.Errorf("after the skip: events %v, notices %+v", seqs, missed)
	}
}
