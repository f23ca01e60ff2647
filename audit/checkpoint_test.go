package audit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agw-dev/agw/store"
	"github.com/agw-dev/agw/store/badgerstore"
)

func TestCheckpoints(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st, err := badgerstore.Open(filepath.Join(dir, "db"), badgerstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := t.Context()
	signer, err := LoadOrCreateSigner(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, KeyFile)); fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v", fi.Mode().Perm())
	}
	again, err := LoadOrCreateSigner(filepath.Join(dir, KeyFile))
	if err != nil || string(again.Public()) != string(signer.Public()) {
		t.Fatalf("reloaded key differs: %v", err)
	}
	cp := &Checkpointer{Store: st, Signer: signer, Path: filepath.Join(dir, CheckpointFile)}
	if err := st.AppendAudit(ctx, []store.AuditEvent{{Kind: store.KindRequest, Time: time.Now()}, {Kind: store.KindRequest, Time: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	c1, err := cp.Checkpoint(ctx, true)
	if err != nil || c1 == nil || c1.Seq != 2 {
		t.Fatalf("checkpoint %+v %v", c1, err)
	}
	if c, err := cp.Checkpoint(ctx, true); c != nil || err != nil {
		t.Errorf("a second checkpoint of the same head: %+v %v", c, err)
	}
	cps, err := ReadCheckpoints(cp.Path)
	if err != nil || len(cps) != 1 {
		t.Fatalf("read %d checkpoints: %v", len(cps), err)
	}
	if n, err := VerifyCheckpoints(ctx, st, cps, signer.Public()); err != nil || n != 1 {
		t.Fatalf("verify: %d %v", n, err)
	}
	forged := cps[0]
	forged.Seq = 1
	if _, err := VerifyCheckpoints(ctx, st, []Checkpoint{forged}, signer.Public()); err == nil || !strings.Contains(err.Error(), "no valid signature") {
		t.Errorf("a changed checkpoint verified: %v", err)
	}
	ahead := cps[0]
	ahead.Seq = 9
	signer.Sign(&ahead)
	if _, err := VerifyCheckpoints(ctx, st, []Checkpoint{ahead}, signer.Public()); err == nil || !strings.Contains(err.Error(), "trail ends at seq 2") {
		t.Errorf("a trail shorter than its checkpoint verified: %v", err)
	}
	wrong := cps[0]
	wrong.Hash = strings.Repeat("0", 64)
	signer.Sign(&wrong)
	if _, err := VerifyCheckpoints(ctx, st, []Checkpoint{wrong}, signer.Public()); err == nil || !strings.Contains(err.Error(), "re-hashed") {
		t.Errorf("a changed head hash verified: %v", err)
	}
	os.WriteFile(cp.Path, []byte("{broken\n"), 0o600)
	if _, err := ReadCheckpoints(cp.Path); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("a damaged checkpoint file read: %v", err)
	}
}
