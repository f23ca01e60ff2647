package e2e

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agw-dev/agw/store"
)

// nsProxyAddr is the proxy listener inside the namespace.
const nsProxyAddr = "127.0.0.1:3128"

// TestProxyListenerClients: unmodified clients told only HTTPS_PROXY (with
// the agent's token as the proxy password) and the CA reach the registered
// backend through --proxy-listen; the backend sees only the real key and
// every request's audit record names the agent and the proxy listener.
func TestProxyListenerClients(t *testing.T) {
	t.Parallel()
	x := newTransparentWith(t, "--proxy-listen", nsProxyAddr)
	proxy := "http://coder:" + x.token + "@" + nsProxyAddr
	env := []string{"HTTPS_PROXY=" + proxy, "https_proxy=" + proxy,
		"SSL_CERT_FILE=" + x.caFile, "SSL_CERT_DIR=" + filepath.Dir(x.caFile)}
	url := "https://" + openAIHost + "/v1/chat/completions"
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello"}]}`
	var outputs []string
	want := 0
	check := func(client, out string, err error) {
		t.Helper()
		outputs = append(outputs, out)
		if err != nil || !strings.Contains(out, "Hello from the backend") {
			t.Errorf("%s through the proxy listener: %v\n%s", client, err, out)
		}
		want++
	}

	if _, err := exec.LookPath("curl"); err == nil {
		out, err := x.run(env, "curl", "-sS", "--cacert", x.caFile, "-H", "Content-Type: application/json", "-d", body, url)
		check("curl", out, err)
	} else {
		requireEnv(t, false, "the proxy listener test needs curl")
	}
	if py, err := exec.LookPath("python3"); err == nil {
		script := `import sys, urllib.request
req = urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), headers={"Content-Type": "application/json"})
print(urllib.request.urlopen(req).read().decode())`
		out, err := x.run(env, py, "-c", script, url, body)
		check("python3 urllib", out, err)
	}
	goclient := filepath.Join(filepath.Dir(agwBin), "goclient")
	out, err := x.run(append(env, "AGW_TOKEN="+x.token), goclient)
	check("Go net/http", out, err)

	// Unregistered hosts are refused, as CONNECT and as SOCKS5.
	refused, _ := x.run(env, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_connect}", "https://"+unregistered+"/")
	if strings.TrimSpace(refused) != "403" {
		t.Errorf("CONNECT to %s answered %q; want 403", unregistered, refused)
	}
	socks, serr := x.run(nil, "curl", "-sS", "--proxy", "socks5h://"+nsProxyAddr, "https://"+unregistered+"/")
	if serr == nil {
		t.Errorf("SOCKS5 to %s succeeded: %s", unregistered, socks)
	}

	x.assertBackendSaw(want)
	var via, tunnels int
	for _, line := range strings.Split(strings.TrimSpace(x.e.ok("", "audit", "export")), "\n") {
		var ev store.AuditEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("audit export line %q: %v", line, err)
		}
		switch ev.Kind {
		case store.KindRequest:
			if ev.Via == store.ViaProxy && ev.Agent == "coder" && ev.Decision == store.Allow {
				via++
			}
		case store.KindTunnel:
			if ev.Decision == store.Deny && strings.Contains(ev.Host, unregistered) {
				tunnels++
			}
		}
	}
	if via != want {
		t.Errorf("%d allowed requests audited as agent coder via the proxy listener; want %d", via, want)
	}
	if tunnels != 2 {
		t.Errorf("%d refused tunnels to %s audited; want 2 (CONNECT and SOCKS5)", tunnels, unregistered)
	}
	x.assertClean(outputs...)
}
