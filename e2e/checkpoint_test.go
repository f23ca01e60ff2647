package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestAuditCheckpoints: the signed checkpoints kept beside the store catch
// what the hash chain alone cannot: a record edited with the chain
// re-hashed after it, and an older copy of the store put back (the newest
// records gone). A checkpoint saved off the host catches a rewrite of the
// checkpoint file and key as well.
func TestAuditCheckpoints(t *testing.T) {
	e := newEnv(t)
	e.start()
	tr := newTraffic(t, e)
	var ids []string
	for range 6 {
		ids = append(ids, tr.mustCall(t, "a1", "GET", "/v1/x", 200))
	}
	waitStored(t, e, ids)
	e.stop()
	older := filepath.Join(filepath.Dir(e.dataDir), "db.older")
	if out, err := exec.Command("cp", "-a", filepath.Join(e.dataDir, "db"), older).CombinedOutput(); err != nil {
		t.Fatalf("copy store: %v %s", err, out)
	}
	e.start()
	tr.c, tr.port = gatewayClient(t, e), portOf(e.status.Listeners.HTTPS)
	ids = nil
	for range 6 {
		ids = append(ids, tr.mustCall(t, "a2", "GET", "/v1/y", 200))
	}
	waitStored(t, e, ids)
	saved := filepath.Join(filepath.Dir(e.dataDir), "saved-checkpoint.json")
	if err := os.WriteFile(saved, []byte(e.ok("", "audit", "checkpoint")), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := e.ok("", "audit", "verify"); !strings.Contains(out, "intact") || strings.Contains(out, "against 0 signed") {
		t.Fatalf("verify of an untouched trail: %s", out)
	}
	e.stop()
	tamper := buildTamper(t)
	verifyFails := func(c *env, want string, extra ...string) {
		t.Helper()
		c.start()
		out, errOut, code := c.run("", append([]string{"audit", "verify"}, extra...)...)
		if code == 0 || !strings.Contains(errOut, want) {
			t.Errorf("verify: exit %d\nstdout %s\nstderr %s\nwant a failure naming %q", code, out, errOut, want)
		}
		c.stop()
	}

	t.Run("re-hashed edit", func(t *testing.T) {
		c := copyEnv(t, e)
		if out, err := exec.Command(tamper, "-dir", filepath.Join(c.dataDir, "db"), "-rehash", "12").CombinedOutput(); err != nil {
			t.Fatalf("tamper: %v\n%s", err, out)
		}
		verifyFails(c, "no longer has the hash checkpointed")
	})
	t.Run("older store restored", func(t *testing.T) {
		c := copyEnv(t, e)
		db := filepath.Join(c.dataDir, "db")
		if err := os.RemoveAll(db); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("cp", "-a", older, db).CombinedOutput(); err != nil {
			t.Fatalf("restore: %v %s", err, out)
		}
		verifyFails(c, "an older copy of the store was put back")
	})
	t.Run("checkpoints and key replaced too", func(t *testing.T) {
		c := copyEnv(t, e)
		if out, err := exec.Command(tamper, "-dir", filepath.Join(c.dataDir, "db"), "-rehash", "12").CombinedOutput(); err != nil {
			t.Fatalf("tamper: %v\n%s", err, out)
		}
		for _, f := range []string{"audit-checkpoints.jsonl", "audit-signing.key"} {
			if err := os.Remove(filepath.Join(c.dataDir, f)); err != nil {
				t.Fatal(err)
			}
		}
		// What the host alone can tell: nothing (said plainly in the docs).
		c.start()
		if out, errOut, code := c.run("", "audit", "verify"); code != 0 {
			t.Logf("verify without the checkpoints: exit %d %s %s", code, out, errOut)
		}
		c.stop()
		// The checkpoint kept elsewhere still catches it.
		verifyFails(c, "no valid signature", "--checkpoint", saved)
	})
	t.Run("bad checkpoint file argument", func(t *testing.T) {
		bad := filepath.Join(filepath.Dir(e.dataDir), "bad.json")
		os.WriteFile(bad, []byte("not json"), 0o600)
		c := copyEnv(t, e)
		c.start()
		_, errOut, code := c.run("", "audit", "verify", "--checkpoint", bad)
		if code == 0 || !strings.Contains(errOut, "not a checkpoint") {
			t.Errorf("exit %d %s", code, errOut)
		}
		c.stop()
	})
}
