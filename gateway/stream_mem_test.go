//go:build !race

package gateway

import (
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"testing"
)

// TestLargeResponseStreamsInConstantMemory pipes a large body (256 MiB;
// AGW_STREAM_MIB=1024 for the full 1 GiB check) through the gateway over
// HTTP/1.1 to the agent and HTTP/2 upstream, and checks the heap never grows
// by more than a few MiB: nothing buffers whole bodies. What growth there is
// comes from HTTP/2 flow-control windows (4 MiB per upstream stream), so it
// is bounded by the window, not by the body.
func TestLargeResponseStreamsInConstantMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 1 GiB; skipped with -short")
	}
	total := 256 << 20
	if v, err := strconv.Atoi(os.Getenv("AGW_STREAM_MIB")); err == nil && v > 0 {
		total = v << 20
	}
	chunk := make([]byte, 32<<10)
	for i := range chunk {
		chunk[i] = byte('a' + i%26)
	}
	h := newHarness(t, withHandler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(total))
		for sent := 0; sent < total; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	req, _ := http.NewRequest("GET", "https://"+testHost+"/v1/big", nil)
	req.Header.Set("Authorization", "Bearer "+h.token)
	res, err := h.client(false).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()

	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak uint64
	buf := make([]byte, 64<<10)
	var got, nextSample int64
	for {
		n, err := res.Body.Read(buf)
		got += int64(n)
		if got >= nextSample {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			nextSample += 64 << 20
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", got, err)
		}
	}
	if got != int64(total) {
		t.Fatalf("read %d bytes, want %d", got, total)
	}
	growth := int64(peak) - int64(base)
	t.Logf("heap in use: base %d KiB, peak %d KiB, growth %d KiB over %d MiB", base>>10, peak>>10, growth>>10, total>>20)
	if growth > 12<<20 {
		t.Errorf("heap grew by %d MiB while streaming %d MiB", growth>>20, total>>20)
	}
	ev := h.nextAudit()
	if ev.BytesOut != int64(total) {
		t.Errorf("audit BytesOut %d, want %d", ev.BytesOut, total)
	}
}
