package pgstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agw-dev/agw/store"
)

// chainHash is hex(SHA-256(prevHash || canonical)), canonical being the
// event's JSON (encoding/json) with Hash empty: the formula badgerstore
// uses, so a record verifies the same way in either store. The JSON
// includes Seq and Replica, so a record moved to another place or another
// chain fails its hash.
func chainHash(prevHash string, canonical []byte) string {
	h := sha256.New()
	h.Write([]byte(prevHash))
	h.Write(canonical)
	return hex.EncodeToString(h.Sum(nil))
}

// timeNS is t as Unix nanoseconds for the time_ns column, clamped to
// int64's range (years 1678 to 2262); the record keeps the exact time.
func timeNS(t time.Time) int64 {
	switch {
	case t.Year() < 1678:
		return math.MinInt64
	case t.Year() > 2261:
		return math.MaxInt64
	}
	return t.UnixNano()
}

// auditRow is one row of the audit table.
type auditRow struct {
	seq      int64
	replica  string
	timeNS   int64
	kind     string
	agent    string
	backend  string
	decision string
	status   int
	hash     string
	record   string
}

func (r *auditRow) values() []any {
	return []any{r.seq, r.replica, r.timeNS, r.kind, r.agent, r.backend, r.decision, r.status, r.hash, r.record}
}

var auditColumns = []string{"seq", "replica", "time_ns", "kind", "agent", "backend", "decision", "status", "hash", "record"}

// seal gives ev its place (seq, after prev in this replica's chain), its
// time (now if zero) and its hash, and returns its row.
func (s *Store) seal(ev *store.AuditEvent, seq uint64, prev string, now time.Time) (auditRow, error) {
	ev.Seq = seq
	if ev.Time.IsZero() {
		ev.Time = now
	}
	ev.Time = ev.Time.UTC()
	ev.Replica = s.replica
	ev.PrevHash, ev.Hash = prev, ""
	canonical, err := json.Marshal(ev)
	if err != nil {
		return auditRow{}, fmt.Errorf("encode audit event: %w", err)
	}
	ev.Hash = chainHash(prev, canonical)
	// Hash is the last field and was omitted (empty): the stored record is
	// the canonical JSON with it appended.
	rec := make([]byte, 0, len(canonical)+80)
	rec = append(rec, canonical[:len(canonical)-1]...)
	rec = append(rec, `,"hash":"`...)
	rec = append(rec, ev.Hash...)
	rec = append(rec, `"}`...)
	return auditRow{seq: int64(seq), replica: ev.Replica, timeNS: timeNS(ev.Time), kind: ev.Kind, agent: ev.Agent,
		backend: ev.Backend, decision: ev.Decision, status: ev.Status, hash: ev.Hash, record: string(rec)}, nil
}

// appendTx appends evs inside tx, writing their Seq, Time, Replica and
// hashes back into evs. It locks this replica's chain row, then takes
// len(evs) sequence numbers from the audit counter, whose row lock it holds
// until tx ends: sequence order is commit order across replicas.
func (s *Store) appendTx(ctx context.Context, tx pgx.Tx, evs []store.AuditEvent, now time.Time) error {
	if len(evs) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO audit_chains (replica) VALUES ($1) ON CONFLICT (replica) DO NOTHING`, s.replica)
	b.Queue(`SELECT head_hash FROM audit_chains WHERE replica = $1 FOR UPDATE`, s.replica)
	b.Queue(`UPDATE audit_counter SET seq = seq + $1 RETURNING seq`, len(evs))
	br := tx.SendBatch(ctx, b)
	var prev string
	var last uint64
	_, err := br.Exec()
	if err == nil {
		err = br.QueryRow().Scan(&prev)
	}
	if err == nil {
		err = br.QueryRow().Scan(&last)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	rows := make([][]any, len(evs))
	seq := last - uint64(len(evs))
	for i := range evs {
		seq++
		row, err := s.seal(&evs[i], seq, prev, now)
		if err != nil {
			return err
		}
		rows[i] = row.values()
		prev = evs[i].Hash
	}
	if len(rows) == 1 {
		_, err = tx.Exec(ctx, `INSERT INTO audit (`+strings.Join(auditColumns, ", ")+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, rows[0]...)
	} else {
		_, err = tx.CopyFrom(ctx, pgx.Identifier{"audit"}, auditColumns, pgx.CopyFromRows(rows))
	}
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE audit_chains SET head_seq = $2, head_hash = $3 WHERE replica = $1`, s.replica, last, prev)
	return err
}

// AppendAudit appends evs in order, in one transaction, assigning each its
// Seq, Time (now if zero), Replica and chain hash, and writes them back into
// evs. Once it returns, the batch is committed and durable as the server's
// commit is.
func (s *Store) AppendAudit(ctx context.Context, evs []store.AuditEvent) error {
	leave, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	if len(evs) == 0 {
		return nil
	}
	// Sealed into a copy, so a failed transaction leaves evs untouched.
	out := slices.Clone(evs)
	now := s.stamp()
	err = s.inTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error { return s.appendTx(ctx, tx, out, now) })
	if err != nil {
		return translate("append audit", err)
	}
	copy(evs, out)
	return nil
}

// LastAuditSeq returns the newest sequence number given to a record by any
// replica (0 if none).
func (s *Store) LastAuditSeq(ctx context.Context) (uint64, error) {
	leave, err := s.enter(ctx)
	if err != nil {
		return 0, err
	}
	defer leave()
	var seq uint64
	if err := s.pool.QueryRow(ctx, `SELECT seq FROM audit_counter`).Scan(&seq); err != nil {
		return 0, translate("last audit seq", err)
	}
	return seq, nil
}

// queryPage is how many records one read of QueryAudit fetches.
const queryPage = 1000

// QueryAudit calls fn for each event matching q, every replica's merged, in
// ascending Seq order (the order they were committed in), until fn returns
// false. It reads in pages by Seq and calls fn between reads, holding no
// connection or transaction while fn runs; a record committed while the
// query runs appears if its Seq is past the page being read. Since/Until
// filter on the records' own Time.
func (s *Store) QueryAudit(ctx context.Context, q store.AuditQuery, fn func(store.AuditEvent) bool) error {
	leave, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	if !q.Since.IsZero() {
		// Records are in seq order and roughly in time order, but the
		// planner assumes neither: without a seq bound it would walk the
		// primary key from the start, filtering on time, to reach a recent
		// Since. The smallest seq at or after Since is that bound, exactly.
		var first *int64
		if err := s.pool.QueryRow(ctx, `SELECT min(seq) FROM audit WHERE time_ns >= $1`, timeNS(q.Since)).Scan(&first); err != nil {
			return translate("query audit", err)
		}
		if first == nil {
			return nil
		}
		if after := uint64(*first) - 1; after > q.AfterSeq {
			q.AfterSeq = after
		}
	}
	where, args := auditWhere(&q)
	if q.Last > 0 {
		args = append(args, q.Last)
		rows, err := s.pool.Query(ctx, `SELECT record FROM audit WHERE `+where+` ORDER BY seq DESC LIMIT $`+fmt.Sprint(len(args)), args...)
		if err != nil {
			return translate("query audit", err)
		}
		evs, err := pgx.CollectRows(rows, scanEvent)
		if err != nil {
			return translate("query audit", err)
		}
		slices.Reverse(evs)
		for i, ev := range evs {
			if q.Limit > 0 && i >= q.Limit {
				break
			}
			if !fn(ev) {
				break
			}
		}
		return nil
	}
	after, n := int64(q.AfterSeq), 0
	for {
		page := queryPage
		if q.Limit > 0 {
			page = min(page, q.Limit-n)
		}
		pargs := append(slices.Clone(args), after, page)
		rows, err := s.pool.Query(ctx, `SELECT record FROM audit WHERE `+where+
			fmt.Sprintf(` AND seq > $%d ORDER BY seq LIMIT $%d`, len(pargs)-1, len(pargs)), pargs...)
		if err != nil {
			return translate("query audit", err)
		}
		evs, err := pgx.CollectRows(rows, scanEvent)
		if err != nil {
			return translate("query audit", err)
		}
		for _, ev := range evs {
			if !fn(ev) {
				return nil
			}
			n++
		}
		if len(evs) < page || q.Limit > 0 && n >= q.Limit {
			return nil
		}
		after = int64(evs[len(evs)-1].Seq)
	}
}

func scanEvent(row pgx.CollectableRow) (store.AuditEvent, error) {
	var ev store.AuditEvent
	var rec []byte
	if err := row.Scan(&rec); err != nil {
		return ev, err
	}
	if err := json.Unmarshal(rec, &ev); err != nil {
		return ev, fmt.Errorf("decode audit record: %w", err)
	}
	return ev, nil
}

// auditWhere turns q's filters (not Last or Limit) into a WHERE clause.
func auditWhere(q *store.AuditQuery) (string, []any) {
	conds := []string{"true"}
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, fmt.Sprintf(cond, len(args)))
	}
	if !q.Since.IsZero() {
		add("time_ns >= $%d", timeNS(q.Since))
	}
	if !q.Until.IsZero() {
		add("time_ns < $%d", timeNS(q.Until))
	}
	if q.AfterSeq != 0 {
		add("seq > $%d", int64(min(q.AfterSeq, math.MaxInt64)))
	}
	if q.BeforeSeq != 0 {
		add("seq < $%d", int64(min(q.BeforeSeq, math.MaxInt64)))
	}
	if q.Agent != "" {
		add("agent = $%d", q.Agent)
	}
	if q.Backend != "" {
		add("backend = $%d", q.Backend)
	}
	// The partial indexes' predicates are spelled out as literals, so the
	// planner can use them for a prepared (generic) plan too.
	switch q.Decision {
	case "":
	case store.Deny:
		conds = append(conds, "decision = 'deny'")
	default:
		add("decision = $%d", q.Decision)
	}
	if q.Kind != "" {
		add("kind = $%d", q.Kind)
		if q.Kind != store.KindRequest {
			conds = append(conds, "kind <> 'request'")
		}
	}
	if q.Status != 0 {
		add("status = $%d", q.Status)
		if q.Status >= 400 {
			conds = append(conds, "status >= 400")
		}
	}
	return strings.Join(conds, " AND "), args
}
