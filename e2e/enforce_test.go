package e2e

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestEnforce: with `agw enforce --apply` in a namespace, an agent process
// (uid nobody) that hard-codes the backend's address or asks another
// resolver cannot reach it, the same process through agw still works, and
// `--remove` takes the rules out again.
func TestEnforce(t *testing.T) {
	_, err := exec.LookPath("nft")
	requireEnv(t, err == nil, "the enforce test needs the nft tool (package nftables)")
	_, err = exec.LookPath("setpriv")
	requireEnv(t, err == nil, "the enforce test needs setpriv (util-linux) to run a client as another user")
	_, err = exec.LookPath("curl")
	requireEnv(t, err == nil, "the enforce test needs curl")
	t.Parallel()
	x := newTransparent(t)
	// A CA file the unprivileged client can read.
	ca, err := os.CreateTemp("", "agw-enforce-ca-*.pem")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(ca.Name()) })
	pem, _ := os.ReadFile(x.caFile)
	if _, err := ca.Write(pem); err != nil {
		t.Fatal(err)
	}
	ca.Close()
	if err := os.Chmod(ca.Name(), 0o644); err != nil {
		t.Fatal(err)
	}
	asAgent := func(args ...string) (string, error) {
		return x.run(nil, "setpriv", append([]string{"--reuid", "65534", "--regid", "65534", "--clear-groups", "curl", "-sS", "--connect-timeout", "3"}, args...)...)
	}
	direct := func() error {
		_, err := asAgent("-k", "-o", "/dev/null", "https://"+net.JoinHostPort(nsBackendIP, "443")+"/v1/models")
		return err
	}
	otherResolver := func() error {
		_, err := asAgent("-o", "/dev/null", "telnet://"+net.JoinHostPort(nsBackendIP, "53"))
		return err
	}
	throughAgw := func() (string, error) {
		return asAgent("--cacert", ca.Name(), "-H", "Authorization: Bearer "+x.token, "-H", "Content-Type: application/json",
			"-d", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello"}]}`,
			"https://"+openAIHost+"/v1/chat/completions")
	}
	enforceCmd := func(args ...string) (string, int) {
		out, stderr, code := x.e.run("", append([]string{"enforce", "--netns", x.name}, args...)...)
		return out + stderr, code
	}
	rules := []string{"--gateway", nsGatewayIP, "--gateway", strings.TrimSuffix(nsDNSAddr, ":53"), "--uid", "65534"}

	if err := direct(); err != nil {
		t.Fatalf("before enforcement the backend's address should be reachable: %v", err)
	}
	if out, code := enforceCmd("--check"); code != 1 {
		t.Errorf("--check before --apply: exit %d; want 1\n%s", code, out)
	}
	if out, code := enforceCmd(append([]string{"--apply"}, rules...)...); code != 0 {
		t.Fatalf("--apply: exit %d\n%s", code, out)
	}
	if out, code := enforceCmd("--check"); code != 0 || !strings.Contains(out, "in place") {
		t.Errorf("--check after --apply: exit %d\n%s", code, out)
	}
	if err := direct(); err == nil {
		t.Error("with enforcement the agent reached the backend's address directly")
	}
	if err := otherResolver(); err == nil {
		t.Error("with enforcement the agent reached another resolver on port 53")
	}
	out, err := throughAgw()
	if err != nil || !strings.Contains(out, "Hello from the backend") {
		t.Errorf("with enforcement the agent could not use agw: %v\n%s", err, out)
	}
	if out, code := enforceCmd("--remove"); code != 0 {
		t.Fatalf("--remove: exit %d\n%s", code, out)
	}
	if tables, err := x.run(nil, "nft", "list", "tables"); err != nil || strings.Contains(tables, "agw_enforce") {
		t.Errorf("after --remove: nft list tables %v:\n%s", err, tables)
	}
	if err := direct(); err != nil {
		t.Errorf("after --remove the backend's address should be reachable again: %v", err)
	}
	// The backend saw the two direct requests made without enforcement
	// and the one through agw; the direct ones carried no key.
	b, _ := os.ReadFile(x.backendLog)
	if n := strings.Count(strings.TrimSpace(string(b)), "\n") + 1; n != 3 {
		t.Errorf("fake backend received %d requests; want 3 (two direct without enforcement, one through agw)", n)
	}
	x.assertClean(out)
}
