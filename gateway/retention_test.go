package gateway

import (
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/agw-dev/agw/store"
	"github.com/agw-dev/agw/store/badgerstore"
)

func TestRetentionInterval(t *testing.T) {
	cases := []struct {
		keep, want time.Duration
	}{
		{90 * 24 * time.Hour, time.Hour},
		{2 * time.Hour, 30 * time.Minute},
		{2 * time.Second, 500 * time.Millisecond},
		{100 * time.Millisecond, 250 * time.Millisecond},
	}
	for _, c := range cases {
		t.Run(c.keep.String(), func(t *testing.T) {
			if got := retentionInterval(c.keep); got != c.want {
				t.Errorf("retentionInterval(%v) = %v, want %v", c.keep, got, c.want)
			}
		})
	}
}

// TestPruneAudit: expired records go in order, the trail records the prune
// with the daemon's uid and the count, and the rest still verifies.
func TestPruneAudit(t *testing.T) {
	st, err := badgerstore.Open(t.TempDir(), badgerstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := t.Context()
	now := time.Now()
	var evs []store.AuditEvent
	for i := range 30 {
		age := 3 * time.Hour
		if i >= 20 {
			age = time.Minute
		}
		evs = append(evs, store.AuditEvent{Time: now.Add(-age), Kind: store.KindRequest, Status: 200 + i})
	}
	if err := st.AppendAudit(ctx, evs); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	d := &daemon{cfg: Config{AuditRetention: time.Hour}, log: log, st: st, audit: newAuditLog(st, log)}
	defer d.audit.Close()
	d.pruneAudit(ctx, time.Hour)

	var kept []store.AuditEvent
	if err := st.QueryAudit(ctx, store.AuditQuery{}, func(ev store.AuditEvent) bool { kept = append(kept, ev); return true }); err != nil {
		t.Fatal(err)
	}
	if len(kept) != 11 || kept[0].Seq != 21 {
		t.Fatalf("kept %d records from seq %d; want the 10 recent ones (21-30) and the prune event", len(kept), kept[0].Seq)
	}
	last := kept[len(kept)-1]
	if last.Kind != store.KindAdmin || last.Action != "audit.prune" || last.Target != "20 records" ||
		last.PeerUID != os.Getuid() || last.PeerPID != os.Getpid() {
		t.Errorf("prune event = %+v; want audit.prune of 20 records by uid %s", last, strconv.Itoa(os.Getuid()))
	}
	if n, err := st.VerifyAudit(ctx); err != nil || n != 11 {
		t.Errorf("VerifyAudit after prune = %d, %v; want 11, nil", n, err)
	}

	// Nothing more is due: no second event.
	d.pruneAudit(ctx, time.Hour)
	if seq, _ := st.LastAuditSeq(ctx); seq != last.Seq {
		t.Errorf("an empty prune wrote an event (seq %d, was %d)", seq, last.Seq)
	}
}
