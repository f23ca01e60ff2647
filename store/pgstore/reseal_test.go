package pgstore

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agw-dev/agw/crypto"
	"github.com/agw-dev/agw/store"
)

// Resealing under a new identity replaces every credential version and the
// CA key in one revision, and the feed hands the projections the new
// ciphertext; a reseal that fails part way changes nothing.
func TestResealUnderNewIdentity(t *testing.T) {
	dbURL := newDatabase(t)
	s := openStore(t, dbURL, "a")
	ctx := t.Context()
	oldK, err := crypto.NewKeyring()
	must(t, err)
	newK, err := crypto.NewKeyring()
	must(t, err)
	seal := func(k *crypto.Keyring, v string) []byte {
		b, err := k.Seal([]byte(v))
		must(t, err)
		return b
	}
	mustRev(t)(s.CreateBackend(ctx, &store.Backend{Name: "crm", Hosts: []string{"crm.example.com"}}, &store.Credential{Sealed: seal(oldK, "crm-v1")}, adminEvent("backend.add", "crm")))
	_, _, err = s.RotateCredential(ctx, &store.Credential{Backend: "crm", Sealed: seal(oldK, "crm-v2")}, adminEvent("backend.rotate", "crm"))
	must(t, err)
	mustRev(t)(s.CreateBackend(ctx, &store.Backend{Name: "hr", Hosts: []string{"hr.corp.net"}}, &store.Credential{Sealed: seal(oldK, "hr-v1")}, adminEvent("backend.add", "hr")))
	ca, err := crypto.NewCA("reseal test", time.Now())
	must(t, err)
	keyPEM, err := ca.KeyPEM()
	must(t, err)
	_, err = s.PutCA(ctx, SealedCA{CertPEM: ca.CertPEM, SealedKey: seal(oldK, string(keyPEM))})
	must(t, err)

	raw := rawConn(t, dbURL)
	sealedNow := func() [][]byte {
		rows, err := raw.Query(ctx, `SELECT sealed FROM credentials UNION ALL SELECT sealed_key FROM ca`)
		must(t, err)
		out, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
		must(t, err)
		return out
	}
	before := sealedNow()
	snap, err := s.Load(ctx)
	must(t, err)

	reseal := func(sealed []byte) ([]byte, error) {
		plain, err := oldK.Open(sealed)
		if err != nil {
			return nil, err
		}
		return newK.Seal(plain.Reveal())
	}
	failures := map[string]func([]byte) ([]byte, error){
		"an error part way": func() func([]byte) ([]byte, error) {
			n := 0
			return func(b []byte) ([]byte, error) {
				if n++; n == 3 {
					return nil, errors.New("identity file unreadable")
				}
				return reseal(b)
			}
		}(),
		"clear text": func(b []byte) ([]byte, error) {
			p, err := oldK.Open(b)
			return p.Reveal(), err
		},
	}
	for name, fn := range failures {
		if _, _, err := s.Reseal(ctx, fn, adminEvent("cluster.reseal", "")); err == nil {
			t.Fatalf("reseal with %s succeeded", name)
		}
		after := sealedNow()
		for i := range before {
			if !bytes.Equal(before[i], after[i]) {
				t.Fatalf("reseal with %s changed stored ciphertext", name)
			}
		}
	}

	w := startWatch(t, s, snap.Revision)
	rev, n, err := s.Reseal(ctx, reseal, adminEvent("cluster.reseal", ""))
	must(t, err)
	if n != 4 || rev != snap.Revision+1 {
		t.Fatalf("Reseal = revision %d, %d values; want revision %d, 4 values", rev, n, snap.Revision+1)
	}
	for _, b := range sealedNow() {
		if _, err := oldK.Open(b); err == nil {
			t.Fatal("a value still opens with the old identity")
		}
		if _, err := newK.Open(b); err != nil {
			t.Fatalf("a value does not open with the new identity: %v", err)
		}
	}
	sets := w.changesThrough(t, rev)
	want := map[string]string{"crm": "crm-v2", "hr": "hr-v1"}
	if len(sets) != 1 || len(sets[0].Changes) != 2 {
		t.Fatalf("feed after reseal: %+v, want one change set with both current credentials", sets)
	}
	for _, c := range sets[0].Changes {
		p, err := newK.Open(c.Credential.Sealed)
		if err != nil || string(p.Reveal()) != want[c.Name] {
			t.Errorf("feed credential of %s opens to %v, %v", c.Name, err, p)
		}
	}
	got, err := s.GetCA(ctx)
	must(t, err)
	if p, err := newK.Open(got.SealedKey); err != nil || !bytes.Equal(p.Reveal(), keyPEM) {
		t.Errorf("CA key after reseal: %v", err)
	}
}
