package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/agw-dev/agw/gateway/admin"
	"github.com/agw-dev/agw/store"
)

// audit streams matching records as NDJSON StreamMessages. With follow it
// keeps the stream open and sends records as they are stored. A reader that
// does not keep up only delays itself: the stream reads the store from its
// own cursor, a page at a time, and holds no store transaction while it
// waits on the reader. A reader more than the follow lag limit behind the
// newest record is skipped ahead to it and told which records it missed
// (admin.StreamMessage); storage keeps them, and a query re-reads them.
func (s *adminServer) audit(w http.ResponseWriter, r *http.Request) error {
	q, follow, err := admin.DecodeAuditQuery(r.URL.Query())
	if err != nil {
		return err
	}
	ctx := r.Context()
	cursor := q.AfterSeq
	if follow {
		last, err := s.d.st.LastAuditSeq(ctx)
		if err != nil {
			return err
		}
		cursor = max(cursor, last)
		if q.Last == 0 && q.AfterSeq == 0 && q.Since.IsZero() {
			// Follow from now on.
			q.AfterSeq = last
		}
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	var werr error
	emit := func(ev store.AuditEvent) bool {
		if werr = enc.Encode(admin.StreamMessage{Event: &ev}); werr != nil {
			return false
		}
		cursor = max(cursor, ev.Seq)
		return true
	}
	if err := s.d.st.QueryAudit(ctx, q, emit); err != nil || werr != nil {
		return nil // headers are sent; the stream just ends
	}
	_ = rc.Flush()
	if !follow {
		return nil
	}
	f := follower{st: s.d.st, q: q, cursor: cursor, maxLag: s.d.audit.followMaxLag, enc: enc, flush: rc.Flush}
	for {
		changed := s.d.audit.Changed()
		if err := f.catchUp(ctx); err != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.d.stopping:
			return nil
		case <-changed:
		}
	}
}

// followPage bounds the records a follow stream reads from the store at
// once; between pages it writes them out and checks its lag.
const followPage = 256

// follower is the live part of one audit follow stream.
type follower struct {
	st     store.Store
	q      store.AuditQuery // the stream's filters
	cursor uint64           // every record up to it was sent or did not match
	maxLag uint64
	enc    *json.Encoder
	flush  func() error
}

// catchUp sends every matching record after the cursor up to the newest
// one, page by page, or skips ahead with a missed notice when the reader is
// more than maxLag records behind.
func (f *follower) catchUp(ctx context.Context) error {
	live := f.q
	live.Last, live.Since, live.Limit = 0, time.Time{}, followPage
	page := make([]store.AuditEvent, 0, followPage)
	for {
		// Read the head first: everything up to it is covered by the
		// query below, so the cursor can pass the non-matching records too.
		head, err := f.st.LastAuditSeq(ctx)
		if err != nil {
			return err
		}
		if head <= f.cursor {
			return f.flush()
		}
		if head-f.cursor > f.maxLag {
			m := admin.StreamMessage{Missed: head - f.cursor, MissedFrom: f.cursor + 1, MissedTo: head}
			if err := f.enc.Encode(m); err != nil {
				return err
			}
			f.cursor = head
			continue
		}
		live.AfterSeq, live.BeforeSeq = f.cursor, head+1
		if f.q.BeforeSeq != 0 {
			live.BeforeSeq = min(live.BeforeSeq, f.q.BeforeSeq)
		}
		page = page[:0]
		err = f.st.QueryAudit(ctx, live, func(ev store.AuditEvent) bool {
			page = append(page, ev)
			return true
		})
		if err != nil {
			return err
		}
		// The store's read is over before the reader is written to, so a
		// stalled reader holds nothing of the store's.
		for i := range page {
			if err := f.enc.Encode(admin.StreamMessage{Event: &page[i]}); err != nil {
				return err
			}
		}
		if len(page) == followPage {
			f.cursor = page[len(page)-1].Seq
		} else {
			f.cursor = head
		}
		if err := f.flush(); err != nil {
			return err
		}
	}
}

func (s *adminServer) auditVerify(w http.ResponseWriter, r *http.Request) error {
	n, err := s.d.st.VerifyAudit(r.Context())
	res := admin.AuditVerifyResult{Checked: n, OK: err == nil}
	if err != nil {
		if !errors.Is(err, store.ErrAuditTampered) {
			return err
		}
		res.Problem = err.Error()
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}
