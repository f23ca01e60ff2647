package pgstore

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agw-dev/agw/store"
)

// Member is one replica of the cluster as it last announced itself.
type Member struct {
	ID        string       `json:"id"`
	Addresses []netip.Addr `json:"addresses"`
	Version   string       `json:"version"`
	// FirstSeen and LastHeartbeat are the database's clock, so replicas
	// with skewed clocks still agree on who is alive.
	FirstSeen     time.Time `json:"first_seen"`
	LastHeartbeat time.Time `json:"last_heartbeat"`
	// Age is how long ago LastHeartbeat was, by the database's clock, when
	// Members read it: a member whose Age exceeds a few heartbeat intervals
	// is dead.
	Age time.Duration `json:"age"`
}

// Heartbeat registers m (its ID, advertised addresses and version) or
// refreshes its registration, stamping the database's time.
func (s *Store) Heartbeat(ctx context.Context, m Member) error {
	leave, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	if !replicaRE.MatchString(m.ID) {
		return &store.FieldError{Field: "member id", Value: m.ID, Reason: "use 1-63 characters of letters, digits, '.', '_', ':' or '-'"}
	}
	addrs := make([]string, len(m.Addresses))
	for i, a := range m.Addresses {
		if !a.IsValid() {
			return &store.FieldError{Field: "address", Reason: "an advertised address is empty"}
		}
		addrs[i] = a.String()
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO members (id, addresses, version, first_seen, last_heartbeat)
		VALUES ($1, $2, $3, clock_timestamp(), clock_timestamp())
		ON CONFLICT (id) DO UPDATE SET addresses = excluded.addresses, version = excluded.version,
			last_heartbeat = excluded.last_heartbeat`, m.ID, addrs, m.Version)
	if err != nil {
		return translate("heartbeat", err)
	}
	return nil
}

// Members lists every registered replica by ID, with its last heartbeat and
// its age, dead ones included: the caller decides how old is dead.
func (s *Store) Members(ctx context.Context) ([]Member, error) {
	leave, err := s.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer leave()
	rows, err := s.pool.Query(ctx, `SELECT id, addresses, version, first_seen, last_heartbeat,
		(extract(epoch FROM clock_timestamp() - last_heartbeat) * 1000000)::bigint FROM members ORDER BY id`)
	if err != nil {
		return nil, translate("members", err)
	}
	ms, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Member, error) {
		var m Member
		var addrs []string
		var ageMicros int64
		if err := row.Scan(&m.ID, &addrs, &m.Version, &m.FirstSeen, &m.LastHeartbeat, &ageMicros); err != nil {
			return m, err
		}
		m.FirstSeen, m.LastHeartbeat = m.FirstSeen.UTC(), m.LastHeartbeat.UTC()
		m.Age = time.Duration(ageMicros) * time.Microsecond
		for _, a := range addrs {
			ip, err := netip.ParseAddr(a)
			if err != nil {
				return m, fmt.Errorf("member %q: stored address %q: %w", m.ID, a, err)
			}
			m.Addresses = append(m.Addresses, ip)
		}
		return m, nil
	})
	if err != nil {
		return nil, translate("members", err)
	}
	return ms, nil
}

// RemoveMember deletes a replica's registration (a replica leaving for
// good); ErrNotFound if there is none.
func (s *Store) RemoveMember(ctx context.Context, id string) error {
	leave, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	tag, err := s.pool.Exec(ctx, `DELETE FROM members WHERE id = $1`, id)
	if err != nil {
		return translate("remove member", err)
	}
	if tag.RowsAffected() == 0 {
		return notFound("member", id)
	}
	return nil
}

// SealedCA is the cluster's certificate authority as the database keeps it:
// the certificate in PEM and the private key as age ciphertext, sealed by
// the caller to the cluster identity.
type SealedCA struct {
	CertPEM   []byte
	SealedKey []byte
	CreatedAt time.Time
}

// ageHeaders are how an age file starts, binary or armored.
var ageHeaders = [][]byte{[]byte("age-encryption.org/v1\n"), []byte("-----BEGIN AGE ENCRYPTED FILE-----")}

// PutCA stores ca as the cluster's CA unless one is already stored, and
// returns the stored one: the first writer wins, so replicas starting at
// once all end up with the same CA. It refuses (ErrInvalid) a certificate
// that is not one PEM certificate, and a key that is not age ciphertext, so
// a clear private key never reaches the database.
func (s *Store) PutCA(ctx context.Context, ca SealedCA) (SealedCA, error) {
	leave, err := s.enter(ctx)
	if err != nil {
		return SealedCA{}, err
	}
	defer leave()
	blk, _ := pem.Decode(ca.CertPEM)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return SealedCA{}, &store.FieldError{Field: "ca certificate", Reason: "want one PEM CERTIFICATE block"}
	}
	if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
		return SealedCA{}, &store.FieldError{Field: "ca certificate", Reason: "does not parse: " + err.Error()}
	}
	sealed := false
	for _, h := range ageHeaders {
		sealed = sealed || bytes.HasPrefix(ca.SealedKey, h)
	}
	if !sealed {
		return SealedCA{}, &store.FieldError{Field: "ca key", Reason: "the key must be sealed with age to the cluster identity before it is stored"}
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO ca (cert_pem, sealed_key, created_at) VALUES ($1, $2, clock_timestamp())
		ON CONFLICT (id) DO NOTHING`, string(ca.CertPEM), ca.SealedKey)
	if err != nil {
		return SealedCA{}, translate("put ca", err)
	}
	return s.getCA(ctx)
}

// GetCA returns the cluster's CA; ErrNotFound if none is stored yet.
func (s *Store) GetCA(ctx context.Context) (SealedCA, error) {
	leave, err := s.enter(ctx)
	if err != nil {
		return SealedCA{}, err
	}
	defer leave()
	return s.getCA(ctx)
}

func (s *Store) getCA(ctx context.Context) (SealedCA, error) {
	var ca SealedCA
	var cert string
	err := s.pool.QueryRow(ctx, `SELECT cert_pem, sealed_key, created_at FROM ca`).Scan(&cert, &ca.SealedKey, &ca.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return SealedCA{}, fmt.Errorf("the cluster database holds no CA yet: %w", store.ErrNotFound)
	}
	if err != nil {
		return SealedCA{}, translate("get ca", err)
	}
	ca.CertPEM, ca.CreatedAt = []byte(cert), ca.CreatedAt.UTC()
	return ca, nil
}
