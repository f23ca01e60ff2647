package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agw-dev/agw/store"
)

// pruneBatch bounds how many records one prune transaction removes, so the
// pruned replica's appends wait only briefly for its chain row.
const pruneBatch = 5000

func tampered(replica string, seq int64, format string, args ...any) error {
	return fmt.Errorf("audit chain of replica %q, seq %d: %s: %w", replica, seq, fmt.Sprintf(format, args...), store.ErrAuditTampered)
}

// chain is one row of audit_chains.
type chain struct {
	replica            string
	headSeq, anchorSeq int64
	headHash, anchor   string
}

// VerifyAudit checks every replica's hash chain, from its oldest kept
// record (whose PrevHash must be the chain's prune anchor) to its head, in
// one repeatable-read snapshot, and returns how many records it checked. It
// also checks that each row's query columns (time, kind, agent, backend,
// decision, status) say what its hashed record says, so filtered queries
// see what the chain holds. A failure wraps store.ErrAuditTampered and
// names the replica and the first bad record: an edited record fails its
// hash, a removed one breaks the next record's link (or the head, if it was
// the newest), a moved one claims another seq or replica.
func (s *Store) VerifyAudit(ctx context.Context) (checked int, err error) {
	leave, err := s.enter(ctx)
	if err != nil {
		return 0, err
	}
	defer leave()
	err = s.inTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT replica, head_seq, head_hash, anchor_seq, anchor_hash FROM audit_chains ORDER BY replica`)
		if err != nil {
			return err
		}
		chains, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (chain, error) {
			var c chain
			err := row.Scan(&c.replica, &c.headSeq, &c.headHash, &c.anchorSeq, &c.anchor)
			return c, err
		})
		if err != nil {
			return err
		}
		var stray string
		var straySeq int64
		err = tx.QueryRow(ctx, `SELECT replica, seq FROM audit a WHERE NOT EXISTS
			(SELECT 1 FROM audit_chains c WHERE c.replica = a.replica) ORDER BY seq LIMIT 1`).Scan(&stray, &straySeq)
		if err == nil {
			return tampered(stray, straySeq, "record of a replica that has no chain")
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		for _, c := range chains {
			n, err := verifyChain(ctx, tx, c)
			checked += n
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return checked, translate("verify audit", err)
	}
	return checked, nil
}

// verifyChain walks one replica's records in seq order.
func verifyChain(ctx context.Context, tx pgx.Tx, c chain) (checked int, err error) {
	prev, lastSeq := c.anchor, c.anchorSeq
	after := int64(math.MinInt64)
	for {
		rows, err := tx.Query(ctx, `SELECT seq, replica, time_ns, kind, agent, backend, decision, status, hash, record
			FROM audit WHERE replica = $1 AND seq > $2 ORDER BY seq LIMIT $3`, c.replica, after, queryPage)
		if err != nil {
			return checked, err
		}
		page, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (auditRow, error) {
			var r auditRow
			err := row.Scan(&r.seq, &r.replica, &r.timeNS, &r.kind, &r.agent, &r.backend, &r.decision, &r.status, &r.hash, &r.record)
			return r, err
		})
		if err != nil {
			return checked, err
		}
		for _, r := range page {
			if err := checkRecord(&r, prev, lastSeq); err != nil {
				return checked, err
			}
			prev, lastSeq = r.hash, r.seq
			checked++
		}
		if len(page) < queryPage {
			break
		}
		after = page[len(page)-1].seq
		if err := ctx.Err(); err != nil {
			return checked, err
		}
	}
	switch {
	case lastSeq < c.headSeq:
		return checked, tampered(c.replica, c.headSeq, "records missing from the end (the newest kept is seq %d)", lastSeq)
	case lastSeq > c.headSeq:
		return checked, tampered(c.replica, lastSeq, "record after the chain's head (seq %d)", c.headSeq)
	case prev != c.headHash:
		return checked, tampered(c.replica, lastSeq, "newest record is not the chain's head (replaced)")
	}
	return checked, nil
}

// checkRecord checks one row against its hash, its link to prev and its
// own columns.
func checkRecord(r *auditRow, prev string, prevSeq int64) error {
	if r.seq <= prevSeq {
		return tampered(r.replica, r.seq, "record at or before the chain's prune anchor (seq %d)", prevSeq)
	}
	var ev store.AuditEvent
	if err := json.Unmarshal([]byte(r.record), &ev); err != nil {
		return tampered(r.replica, r.seq, "record unreadable: %v", err)
	}
	switch {
	case int64(ev.Seq) != r.seq:
		return tampered(r.replica, r.seq, "record claims seq %d (moved or reordered)", ev.Seq)
	case ev.Replica != r.replica:
		return tampered(r.replica, r.seq, "record claims replica %q (moved to another chain)", ev.Replica)
	case ev.PrevHash != prev:
		return tampered(r.replica, r.seq, "previous-hash link broken (a record before it was removed, replaced or reordered)")
	}
	stored := ev.Hash
	ev.Hash = ""
	canonical, err := json.Marshal(&ev)
	if err != nil {
		return fmt.Errorf("verify audit: %w", err)
	}
	if chainHash(prev, canonical) != stored || r.hash != stored {
		return tampered(r.replica, r.seq, "hash mismatch (record edited)")
	}
	if r.timeNS != timeNS(ev.Time) || r.kind != ev.Kind || r.agent != ev.Agent || r.backend != ev.Backend ||
		r.decision != ev.Decision || r.status != ev.Status {
		return tampered(r.replica, r.seq, "query columns differ from the hashed record (the row was edited)")
	}
	return nil
}

// PruneAudit removes, from each replica's chain, the oldest records in seq
// order while their Time is before before; it stops at a chain's first
// record at or after it, so what is kept stays one unbroken chain, whose
// anchor (seq and hash of the last removed record) moves with each batch.
// It runs under a session advisory lock used as a lease: while another
// replica (or another call) prunes, it returns 0 and no error at once.
func (s *Store) PruneAudit(ctx context.Context, before time.Time) (removed int, err error) {
	leave, err := s.enter(ctx)
	if err != nil {
		return 0, err
	}
	defer leave()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return 0, translate("prune audit", err)
	}
	defer conn.Release()
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, lockPruneAudit).Scan(&got); err != nil {
		return 0, translate("prune audit", err)
	}
	if !got {
		return 0, nil
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, lockPruneAudit); err != nil {
			// The session's lock would outlive this call: drop the session.
			conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()
	rows, err := conn.Query(ctx, `SELECT replica FROM audit_chains ORDER BY replica`)
	if err != nil {
		return 0, translate("prune audit", err)
	}
	replicas, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, translate("prune audit", err)
	}
	cut := timeNS(before)
	for _, r := range replicas {
		for {
			if err := ctx.Err(); err != nil {
				return removed, err
			}
			n, err := pruneChainBatch(ctx, conn.Conn(), r, cut)
			removed += n
			if err != nil {
				return removed, translate("prune audit", err)
			}
			if n < pruneBatch {
				break
			}
		}
	}
	return removed, nil
}

// pruneChainBatch removes up to pruneBatch of replica's due records and
// moves its anchor, in one transaction holding its chain row.
func pruneChainBatch(ctx context.Context, conn *pgx.Conn, replica string, cut int64) (n int, err error) {
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var anchorSeq int64
		if err := tx.QueryRow(ctx, `SELECT anchor_seq FROM audit_chains WHERE replica = $1 FOR UPDATE`, replica).Scan(&anchorSeq); err != nil {
			return err
		}
		// The chain's first record not due bounds the removal.
		var stop int64 = math.MaxInt64
		err := tx.QueryRow(ctx, `SELECT seq FROM audit WHERE replica = $1 AND time_ns >= $2 ORDER BY seq LIMIT 1`, replica, cut).Scan(&stop)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		var lastSeq *int64
		var lastHash *string
		err = tx.QueryRow(ctx, `WITH gone AS (
				DELETE FROM audit WHERE seq IN (
					SELECT seq FROM audit WHERE replica = $1 AND seq < $2 ORDER BY seq LIMIT $3)
				RETURNING seq, hash)
			SELECT count(*), max(seq), (SELECT hash FROM gone ORDER BY seq DESC LIMIT 1) FROM gone`,
			replica, stop, pruneBatch).Scan(&n, &lastSeq, &lastHash)
		if err != nil || n == 0 {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE audit_chains SET anchor_seq = $2, anchor_hash = $3 WHERE replica = $1`, replica, *lastSeq, *lastHash)
		return err
	})
	return n, err
}
