package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/agw-dev/agw/crypto"
	"github.com/agw-dev/agw/store"
	"github.com/agw-dev/agw/store/badgerstore"
	"github.com/agw-dev/agw/store/pgstore"
)

// MigrateConfig says what MigrateToCluster copies where.
type MigrateConfig struct {
	// DataDir is the single-node installation's data directory; its daemon
	// must be stopped (the store is opened here).
	DataDir string
	// StoreURL is the cluster database (postgres://...).
	StoreURL string
	// ClusterIdentity is the cluster identity file the credentials and the
	// CA key are re-sealed to.
	ClusterIdentity string
	// ReplicaID names the chain the copied audit records form.
	ReplicaID string
	// Force copies into a database that already holds a configuration.
	Force  bool
	Logger *slog.Logger
}

// MigrateReport is what MigrateToCluster copied.
type MigrateReport struct {
	Backends, Agents, Grants, Tokens, IdPs, Passthrough int
	AuditRecords                                        int
	AuditVerifiedBefore, AuditVerifiedAfter             int
	Replica                                             string
}

// MigrateToCluster copies a single-node installation into a cluster
// database: the configuration, every backend's current credential (opened
// with the node's identity and re-sealed to the cluster identity), the
// token hashes, the CA (its key re-sealed) and the audit trail. The audit
// chain is verified before the copy, and the copy's after it: the records
// keep their contents and times, and form the chain of ReplicaID in the
// cluster (their sequence numbers and hashes are the cluster's). A target
// that already holds a configuration is refused unless Force.
func MigrateToCluster(ctx context.Context, cfg MigrateConfig) (MigrateReport, error) {
	var rep MigrateReport
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	oldKeys, err := crypto.LoadKeyring(filepath.Join(cfg.DataDir, IdentityFile))
	if err != nil {
		return rep, fmt.Errorf("the installation's identity: %w", err)
	}
	newKeys, err := loadClusterIdentity(cfg.ClusterIdentity)
	if err != nil {
		return rep, err
	}
	oldCA, err := crypto.LoadCAFiles(cfg.DataDir, oldKeys)
	if err != nil {
		return rep, fmt.Errorf("the installation's CA: %w", err)
	}
	src, err := badgerstore.Open(filepath.Join(cfg.DataDir, DBDir), badgerstore.Options{Logger: log})
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			return rep, fmt.Errorf("%s is in use: stop its agw serve first (%w)", cfg.DataDir, err)
		}
		return rep, err
	}
	defer src.Close()
	if rep.AuditVerifiedBefore, err = src.VerifyAudit(ctx); err != nil {
		return rep, fmt.Errorf("the installation's audit trail does not verify, so it is not copied: %w", err)
	}
	snap, err := src.Load(ctx)
	if err != nil {
		return rep, err
	}
	rep.Replica = replicaID(cfg.ReplicaID)
	dst, err := pgstore.Open(ctx, pgstore.Options{URL: cfg.StoreURL, ReplicaID: rep.Replica, Logger: log})
	if err != nil {
		return rep, fmt.Errorf("open the cluster database: %w", err)
	}
	defer dst.Close()
	have, err := dst.Load(ctx)
	if err != nil {
		return rep, err
	}
	if !cfg.Force && (len(have.Backends)+len(have.Agents)+len(have.IdPs)+len(have.Tokens) > 0) {
		return rep, fmt.Errorf("%w: the cluster database already holds a configuration (%d backends, %d agents); pass --force to copy into it anyway", store.ErrConflict, len(have.Backends), len(have.Agents))
	}

	// The CA: the cluster keeps the installation's, so agents that trust it
	// need no change. A database that has a CA already keeps its own.
	keyPEM, err := oldCA.KeyPEM()
	if err != nil {
		return rep, err
	}
	sealedKey, err := newKeys.Seal(keyPEM)
	if err != nil {
		return rep, err
	}
	if _, err := dst.PutCA(ctx, pgstore.SealedCA{CertPEM: oldCA.CertPEM, SealedKey: sealedKey}); err != nil {
		return rep, fmt.Errorf("store the CA: %w", err)
	}

	ev := func(action, target string) store.AuditEvent {
		return store.AuditEvent{Time: time.Now(), Kind: store.KindAdmin, Action: action, Target: target,
			Decision: store.Allow, PeerUID: os.Getuid(), PeerPID: os.Getpid(), Reason: "agw cluster migrate from " + cfg.DataDir}
	}
	for _, p := range snap.IdPs {
		if _, err := dst.CreateIdP(ctx, &p, ev("idp.add", p.Name)); err != nil {
			return rep, fmt.Errorf("idp %s: %w", p.Name, err)
		}
		rep.IdPs++
	}
	creds := map[string]store.Credential{}
	for _, c := range snap.Credentials {
		creds[c.Backend] = c
	}
	for _, b := range snap.Backends {
		c, ok := creds[b.Name]
		if !ok {
			return rep, fmt.Errorf("backend %s has no credential", b.Name)
		}
		secret, err := oldKeys.Open(c.Sealed)
		if err != nil {
			return rep, fmt.Errorf("open the credential of backend %s: %w", b.Name, err)
		}
		sealed, err := newKeys.Seal(secret.Reveal())
		if err != nil {
			return rep, err
		}
		if _, err := dst.CreateBackend(ctx, &b, &store.Credential{Backend: b.Name, Sealed: sealed}, ev("backend.add", b.Name)); err != nil {
			return rep, fmt.Errorf("backend %s: %w", b.Name, err)
		}
		rep.Backends++
	}
	for _, a := range snap.Agents {
		if _, err := dst.CreateAgent(ctx, &a, ev("agent.add", a.Name)); err != nil {
			return rep, fmt.Errorf("agent %s: %w", a.Name, err)
		}
		rep.Agents++
	}
	for _, g := range snap.Grants {
		if _, err := dst.PutGrant(ctx, &g, ev("grant.add", g.Agent+"/"+g.Backend)); err != nil {
			return rep, fmt.Errorf("grant %s/%s: %w", g.Agent, g.Backend, err)
		}
		rep.Grants++
	}
	for _, t := range snap.Tokens {
		revoked := t.RevokedAt
		t.RevokedAt = time.Time{}
		if _, err := dst.CreateToken(ctx, &t, ev("token.mint", t.ID+" ("+t.Agent+")")); err != nil {
			return rep, fmt.Errorf("token %s: %w", t.ID, err)
		}
		if !revoked.IsZero() {
			if _, _, err := dst.RevokeToken(ctx, t.ID, revoked, ev("token.revoke", t.ID)); err != nil {
				return rep, fmt.Errorf("token %s: %w", t.ID, err)
			}
		}
		rep.Tokens++
	}
	for _, p := range snap.Passthrough {
		if _, err := dst.CreatePassthrough(ctx, &p, ev("passthrough.add", p.Host)); err != nil {
			return rep, fmt.Errorf("passthrough %s: %w", p.Host, err)
		}
		rep.Passthrough++
	}

	// The audit trail, in order, in batches.
	var batch []store.AuditEvent
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := dst.AppendAudit(ctx, batch)
		rep.AuditRecords += len(batch)
		batch = batch[:0]
		return err
	}
	var werr error
	err = src.QueryAudit(ctx, store.AuditQuery{}, func(e store.AuditEvent) bool {
		e.Seq, e.PrevHash, e.Hash = 0, "", ""
		batch = append(batch, e)
		if len(batch) >= 512 {
			werr = flush()
		}
		return werr == nil
	})
	if err == nil {
		err = werr
	}
	if err == nil {
		err = flush()
	}
	if err != nil {
		return rep, fmt.Errorf("copy the audit trail: %w", err)
	}
	if rep.AuditVerifiedAfter, err = dst.VerifyAudit(ctx); err != nil {
		return rep, fmt.Errorf("the copied audit trail does not verify: %w", err)
	}
	return rep, nil
}
