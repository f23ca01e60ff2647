package e2e

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStorageRemovedFailsClosed: with the store's directory removed under
// the running daemon, readiness fails, agent requests are refused with a
// 503 that says why (never served unrecorded), and SIGTERM still ends the
// daemon within its stated bound (HTTPS drain 30s + audit 10s + store 5s),
// saying what it could not write.
func TestStorageRemovedFailsClosed(t *testing.T) {
	e := newEnv(t)
	ml, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metrics := ml.Addr().String()
	ml.Close()
	e.start("--metrics-listen", metrics)
	tr := newTraffic(t, e)
	if code, _, err := tr.call("a1", "GET", "/v1/before"); err != nil || code != 200 {
		t.Fatalf("before the fault: %d %v", code, err)
	}
	readyz := func() (int, string) {
		res, err := http.Get("http://" + metrics + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, _ := readyz(); code != 200 {
		t.Fatalf("/readyz before the fault: %d", code)
	}

	if err := os.RemoveAll(filepath.Join(e.dataDir, "db")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool { code, _ := readyz(); return code == 503 })
	if _, body := readyz(); !strings.Contains(body, "storage") {
		t.Errorf("/readyz says %q; want it to name the storage", body)
	}
	req, _ := http.NewRequest("GET", "https://hr.corp.net:"+tr.port+"/v1/after", nil)
	req.Header.Set("x-api-key", tr.tokens["a1"])
	res, err := tr.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 503 || errType(t, string(body)).Error.Type != "agw_unavailable" || !strings.Contains(string(body), "cannot record") {
		t.Errorf("request after the fault: %d %s", res.StatusCode, body)
	}
	if n := tr.be.count(); n != 1 {
		t.Errorf("the backend received %d requests; the one after the fault must not reach it", n)
	}
	if out, _, _ := e.run("", "status"); !strings.Contains(out, "REFUSING") {
		t.Errorf("agw status does not say requests are refused:\n%s", out)
	}

	start := time.Now()
	_ = e.daemon.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.exited:
	case <-time.After(50 * time.Second):
		_ = e.daemon.Process.Kill()
		<-e.exited
		t.Fatalf("agw serve did not exit within 50s of SIGTERM with its storage gone:\n%s", e.log.String())
	}
	e.daemon = nil
	t.Logf("exited %v after SIGTERM", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(e.log.String(), "refusing agent requests") {
		t.Errorf("the log does not say requests were refused:\n%s", e.log.String())
	}
}
