package pgstore

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agw-dev/agw/crypto"
	"github.com/agw-dev/agw/store"
)

// encodings returns the forms a secret could take in a dump: raw, hex (as
// bytea prints) and base64 in both alphabets at every alignment.
func encodings(secret []byte) map[string]string {
	out := map[string]string{
		"raw":       string(secret),
		"hex":       hex.EncodeToString(secret),
		"hex upper": strings.ToUpper(hex.EncodeToString(secret)),
	}
	for name, enc := range map[string]*base64.Encoding{"base64": base64.StdEncoding, "base64url": base64.URLEncoding} {
		for i := range 3 {
			// The groups of the encoding made of the secret's bytes alone.
			full := enc.EncodeToString(append(make([]byte, i), secret...))
			from, to := (i+2)/3*4, (i+len(secret))/3*4
			out[name+" at offset "+string(rune('0'+i))] = full[from:to]
		}
	}
	return out
}

// A dump of every table (each row as text) holds no backend secret, no
// token and no CA private key, in any encoding: the database only ever sees
// age ciphertext and one-way hashes.
func TestDumpHoldsNoSecret(t *testing.T) {
	dbURL := newDatabase(t)
	s := openStore(t, dbURL, "a")
	ctx := t.Context()
	k, err := crypto.NewKeyring()
	must(t, err)
	secrets := map[string][]byte{
		"credential v1": []byte("canary-v1-7f3d9a1c5e2b4d6f8a0c1e3b5d7f9a2c"),
		"credential v2": []byte("canary-v2-0b2d4f6a8c1e3b5d7f9a1c3e5b7d9f2a"),
	}
	seal := func(b []byte) []byte {
		sealed, err := k.Seal(b)
		must(t, err)
		return sealed
	}
	mustRev(t)(s.CreateBackend(ctx, &store.Backend{Name: "crm", Hosts: []string{"crm.example.com"}},
		&store.Credential{Sealed: seal(secrets["credential v1"])}, adminEvent("backend.add", "crm")))
	_, _, err = s.RotateCredential(ctx, &store.Credential{Backend: "crm", Sealed: seal(secrets["credential v2"])}, adminEvent("backend.rotate", "crm"))
	must(t, err)
	mustRev(t)(s.CreateAgent(ctx, &store.Agent{Name: "bot"}, adminEvent("agent.add", "bot")))
	token, id, hash, err := crypto.MintToken()
	must(t, err)
	secrets["token"] = token.Reveal()
	mustRev(t)(s.CreateToken(ctx, &store.Token{ID: id, Agent: "bot", Hash: hash}, adminEvent("token.mint", id)))
	_, _, err = s.RevokeToken(ctx, id, time.Now(), adminEvent("token.revoke", id))
	must(t, err)

	ca, err := crypto.NewCA("agw dump test", time.Now())
	must(t, err)
	keyPEM, err := ca.KeyPEM()
	must(t, err)
	secrets["ca key pem"] = keyPEM
	blk, _ := pem.Decode(keyPEM)
	secrets["ca key der"] = blk.Bytes
	_, err = s.PutCA(ctx, SealedCA{CertPEM: ca.CertPEM, SealedKey: seal(keyPEM)})
	must(t, err)
	must(t, s.AppendAudit(ctx, []store.AuditEvent{{Kind: store.KindRequest, Agent: "bot", Backend: "crm", TokenID: id, Status: 200}}))
	must(t, s.Heartbeat(ctx, Member{ID: "a", Addresses: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, Version: "test"}))

	conn := rawConn(t, dbURL)
	rows, err := conn.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename`)
	must(t, err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	must(t, err)
	if len(tables) < 10 {
		t.Fatalf("only %d tables to dump: %v", len(tables), tables)
	}
	var dump strings.Builder
	for _, tbl := range tables {
		rows, err := conn.Query(ctx, `SELECT t::text FROM `+pgx.Identifier{tbl}.Sanitize()+` t`)
		must(t, err)
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		must(t, err)
		for _, l := range lines {
			dump.WriteString(tbl + ": " + l + "\n")
		}
	}
	text := dump.String()
	// The dump is not vacuous: the sealed credentials and the hash are in it.
	if !strings.Contains(text, hex.EncodeToString(hash)) || !strings.Contains(text, "crm.example.com") {
		t.Fatal("the dump lacks the token hash or the backend: it is not a dump of what was written")
	}
	for name, secret := range secrets {
		for enc, form := range encodings(secret) {
			if len(form) < 16 {
				t.Fatalf("%s as %s is too short a probe", name, enc)
			}
			if strings.Contains(text, form) {
				t.Errorf("the dump holds the %s (%s)", name, enc)
			}
		}
	}
}
