package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/agw-dev/agw/admin"
	"github.com/agw-dev/agw/crypto"
	"github.com/agw-dev/agw/store"
	"github.com/agw-dev/agw/store/pgstore"
)

// Cluster mode: several `agw serve` replicas share one PostgreSQL database
// (--store postgres://...). Every replica holds the cluster identity, the
// age key the operator provisions on each host (agw cluster init); the
// database holds only ciphertext sealed to it, the CA's key included, so
// every replica presents leaves from the same CA.

// ClusterIdentityCredential is the systemd credential name the cluster
// identity is read from when --cluster-identity is not given.
const ClusterIdentityCredential = "cluster-identity"

// Membership: each replica announces itself every heartbeatEvery; one that
// has not done so for memberDeadAfter drops out of DNS answers.
const (
	heartbeatEvery  = 2 * time.Second
	memberDeadAfter = 3 * heartbeatEvery
)

// loadClusterIdentity reads the cluster identity from path, or from
// $CREDENTIALS_DIRECTORY/cluster-identity, and says what is missing.
func loadClusterIdentity(path string) (*crypto.Keyring, error) {
	if path == "" {
		if dir := os.Getenv("CREDENTIALS_DIRECTORY"); dir != "" {
			path = filepath.Join(dir, ClusterIdentityCredential)
		}
	}
	if path == "" {
		return nil, errors.New("cluster mode needs the cluster identity: create it once with `agw cluster init --identity FILE`, copy it to every replica (mode 0600) and pass --cluster-identity FILE (or provide it as the systemd credential cluster-identity)")
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("cluster identity %s: %w (create it with `agw cluster init --identity %s` on the first replica and copy it to the others)", path, err, path)
	}
	if fi.Mode().Perm()&0o077 != 0 && os.Getenv("CREDENTIALS_DIRECTORY") == "" {
		return nil, fmt.Errorf("cluster identity %s is readable by others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	k, err := crypto.LoadKeyring(path)
	if err != nil {
		return nil, fmt.Errorf("cluster identity %s: %w", path, err)
	}
	return k, nil
}

var replicaChars = regexp.MustCompile(`[^A-Za-z0-9._:-]`)

// replicaID is --replica-id, or the host name made fit for one.
func replicaID(id string) string {
	if id != "" {
		return id
	}
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "replica"
	}
	h = replicaChars.ReplaceAllString(h, "-")
	return strings.TrimLeft(h, "-._:")
}

// openCluster opens the cluster database and the cluster CA, creating the
// CA when this is the first replica to start. The wrong identity is
// refused: it cannot open the CA key sealed in the database.
func openCluster(ctx context.Context, cfg Config, keys *crypto.Keyring, log *slog.Logger) (*pgstore.Store, *crypto.CA, error) {
	pg, err := pgstore.Open(ctx, pgstore.Options{URL: cfg.StoreURL, ReplicaID: replicaID(cfg.ReplicaID), Logger: log})
	if err != nil {
		return nil, nil, fmt.Errorf("open the cluster database: %w", err)
	}
	sca, err := pg.GetCA(ctx)
	if errors.Is(err, store.ErrNotFound) {
		ca, err := crypto.NewCA("agw cluster CA", time.Now())
		if err != nil {
			pg.Close()
			return nil, nil, err
		}
		keyPEM, err := ca.KeyPEM()
		if err != nil {
			pg.Close()
			return nil, nil, err
		}
		sealed, err := keys.Seal(keyPEM)
		if err != nil {
			pg.Close()
			return nil, nil, err
		}
		if sca, err = pg.PutCA(ctx, pgstore.SealedCA{CertPEM: ca.CertPEM, SealedKey: sealed}); err != nil {
			pg.Close()
			return nil, nil, fmt.Errorf("store the cluster CA: %w", err)
		}
	} else if err != nil {
		pg.Close()
		return nil, nil, fmt.Errorf("read the cluster CA: %w", err)
	}
	keyPEM, err := keys.Open(sca.SealedKey)
	if err != nil {
		pg.Close()
		return nil, nil, fmt.Errorf("this cluster identity (%s) cannot open the cluster's CA key: it is not the identity the cluster was set up with; use that one: %w", keys.Recipient(), err)
	}
	ca, err := crypto.LoadCA(sca.CertPEM, keyPEM.Reveal())
	if err != nil {
		pg.Close()
		return nil, nil, fmt.Errorf("load the cluster CA: %w", err)
	}
	return pg, ca, nil
}

// runMembership announces this replica every heartbeatEvery and points
// DNS at every live replica, until ctx is done.
func (d *daemon) runMembership(ctx context.Context, pg *pgstore.Store) error {
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for {
		if err := pg.Heartbeat(ctx, pgstore.Member{ID: pg.Replica(), Addresses: d.advertise, Version: d.cfg.Version}); err != nil && ctx.Err() == nil {
			d.log.Warn("cluster heartbeat", "err", err)
		}
		if members, err := pg.Members(ctx); err == nil {
			d.setMembers(members)
		}
		select {
		case <-ctx.Done():
			_ = pg.RemoveMember(context.WithoutCancel(ctx), pg.Replica())
			return nil
		case <-t.C:
		}
	}
}

// setMembers keeps the live replicas for status and DNS.
func (d *daemon) setMembers(ms []pgstore.Member) {
	var addrs []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, m := range ms {
		if m.Age > memberDeadAfter {
			continue
		}
		for _, a := range m.Addresses {
			if !seen[a] {
				seen[a] = true
				addrs = append(addrs, a)
			}
		}
	}
	d.membersMu.Lock()
	d.members = ms
	d.membersMu.Unlock()
	if d.dns != nil && len(addrs) > 0 {
		_ = d.dns.SetAdvertise(addrs)
	}
}

// liveReplicas is how many replicas heartbeat now (at least 1): rate limits
// fall back to limit ÷ this while Redis is unreachable.
func (d *daemon) liveReplicas() int {
	d.membersMu.Lock()
	defer d.membersMu.Unlock()
	n := 0
	for _, m := range d.members {
		if m.Age <= memberDeadAfter {
			n++
		}
	}
	return max(1, n)
}

// replicaStatus lists the cluster's replicas for agw status.
func (d *daemon) replicaStatus() []admin.Replica {
	d.membersMu.Lock()
	defer d.membersMu.Unlock()
	out := make([]admin.Replica, 0, len(d.members))
	for _, m := range d.members {
		out = append(out, admin.Replica{
			ID: m.ID, Addresses: m.Addresses, Version: m.Version, LastHeartbeat: m.LastHeartbeat,
			Age: store.Duration(m.Age), Live: m.Age <= memberDeadAfter, Self: m.ID == d.pg.Replica(),
		})
	}
	return out
}
