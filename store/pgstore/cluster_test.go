package pgstore

import (
	"bytes"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/agw-dev/agw/crypto"
	"github.com/agw-dev/agw/store"
)

// Replicas register with their addresses; one that stops beating is told
// apart by its age, measured on the database's clock.
func TestMembersHeartbeatAndAge(t *testing.T) {
	dbURL := newDatabase(t)
	a, b := openStore(t, dbURL, "a"), openStore(t, dbURL, "b")
	ctx := t.Context()
	addrA := []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fd00::1")}
	must(t, a.Heartbeat(ctx, Member{ID: "a", Addresses: addrA, Version: "1.4.0"}))
	must(t, b.Heartbeat(ctx, Member{ID: "b", Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.2")}, Version: "1.4.1"}))
	if _, err := rawConn(t, dbURL).Exec(ctx, `UPDATE members SET last_heartbeat = last_heartbeat - interval '1 hour' WHERE id = 'b'`); err != nil {
		t.Fatal(err)
	}
	ms, err := b.Members(ctx)
	must(t, err)
	if len(ms) != 2 || ms[0].ID != "a" || ms[1].ID != "b" {
		t.Fatalf("members = %+v", ms)
	}
	if !slices.Equal(ms[0].Addresses, addrA) || ms[0].Version != "1.4.0" || ms[0].LastHeartbeat.IsZero() {
		t.Errorf("member a = %+v", ms[0])
	}
	if ms[0].Age > time.Minute || ms[1].Age < 59*time.Minute {
		t.Errorf("ages a=%v b=%v, want a fresh and b an hour old", ms[0].Age, ms[1].Age)
	}
	firstSeen := ms[1].FirstSeen
	must(t, b.Heartbeat(ctx, Member{ID: "b", Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.3")}, Version: "1.5.0"}))
	ms, err = a.Members(ctx)
	must(t, err)
	if ms[1].Age > time.Minute || ms[1].Version != "1.5.0" || ms[1].Addresses[0] != netip.MustParseAddr("10.0.0.3") || !ms[1].FirstSeen.Equal(firstSeen) {
		t.Errorf("member b after a new beat = %+v (first seen before %v)", ms[1], firstSeen)
	}
	if err := a.Heartbeat(ctx, Member{ID: "bad id"}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("heartbeat with a bad id = %v, want ErrInvalid", err)
	}
	must(t, a.RemoveMember(ctx, "b"))
	if err := a.RemoveMember(ctx, "b"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("removing a removed member = %v, want ErrNotFound", err)
	}
}

// Replicas initialising at once each propose a CA; the first one stored is
// the one every replica gets, and its sealed key opens to a working CA.
func TestCAFirstWriterWins(t *testing.T) {
	dbURL := newDatabase(t)
	a, b := openStore(t, dbURL, "a"), openStore(t, dbURL, "b")
	ctx := t.Context()
	k, err := crypto.NewKeyring()
	must(t, err)
	if _, err := a.GetCA(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetCA on a new database = %v, want ErrNotFound", err)
	}
	propose := func() SealedCA {
		ca, err := crypto.NewCA("agw test CA", time.Now())
		must(t, err)
		keyPEM, err := ca.KeyPEM()
		must(t, err)
		sealed, err := k.Seal(keyPEM)
		must(t, err)
		return SealedCA{CertPEM: ca.CertPEM, SealedKey: sealed}
	}

	// A clear key is refused, and stores nothing.
	clear := propose()
	ca, _ := crypto.NewCA("clear", time.Now())
	clear.SealedKey, _ = ca.KeyPEM()
	if _, err := a.PutCA(ctx, clear); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("PutCA with a clear key = %v, want ErrInvalid", err)
	}
	if _, err := a.GetCA(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after a refused PutCA: %v", err)
	}

	var wg sync.WaitGroup
	got := make([]SealedCA, 2)
	for i, s := range []*Store{a, b} {
		wg.Go(func() {
			stored, err := s.PutCA(ctx, propose())
			if err != nil {
				t.Error(err)
			}
			got[i] = stored
		})
	}
	wg.Wait()
	if !bytes.Equal(got[0].CertPEM, got[1].CertPEM) || !bytes.Equal(got[0].SealedKey, got[1].SealedKey) {
		t.Fatal("the two replicas were given different CAs")
	}
	for _, s := range []*Store{a, b} {
		stored, err := s.GetCA(ctx)
		must(t, err)
		if !bytes.Equal(stored.CertPEM, got[0].CertPEM) {
			t.Errorf("GetCA on %s differs from what PutCA returned", s.Replica())
		}
	}
	keyPEM, err := k.Open(got[0].SealedKey)
	must(t, err)
	if _, err := crypto.LoadCA(got[0].CertPEM, keyPEM.Reveal()); err != nil {
		t.Fatalf("the stored CA does not load: %v", err)
	}
}
