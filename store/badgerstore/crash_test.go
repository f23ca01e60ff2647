package badgerstore_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agw-dev/agw/store"
	"github.com/agw-dev/agw/store/badgerstore"
)

// crashChildEnv names the store directory a re-executed test binary writes
// to until it is killed.
const crashChildEnv = "AGW_BADGERSTORE_CRASH_CHILD"

// TestKillKeepsCommitted checks the durability claim in Store's doc: a
// process killed with SIGKILL loses nothing it committed, although nothing
// was synced. A child process appends audit batches with the background
// sync effectively off (an hour's interval) and reports each committed seq;
// the parent kills it mid-stream and reopens the store.
func TestKillKeepsCommitted(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("runs a child process to kill")
	}
	for round := range 3 {
		t.Run(fmt.Sprint("round", round), func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestKillKeepsCommitted$", "-test.count=1")
			cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Kill at a different point each round: across memtable flushes.
			killAt := uint64(20_000 + round*40_000)
			var committed uint64
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if seq, ok := strings.CutPrefix(sc.Text(), "committed "); ok {
					committed, _ = strconv.ParseUint(seq, 10, 64)
					if committed >= killAt {
						break
					}
				}
			}
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()
			if committed < killAt {
				t.Fatalf("child stopped at seq %d before the kill", committed)
			}

			s := openDir(t, dir, badgerstore.Options{})
			last, err := s.LastAuditSeq(t.Context())
			must(t, err)
			if last < committed {
				t.Fatalf("after SIGKILL the store ends at seq %d; the child had committed %d", last, committed)
			}
			n, err := s.VerifyAudit(t.Context())
			if err != nil || uint64(n) != last {
				t.Errorf("VerifyAudit = %d, %v; want %d, nil", n, err, last)
			}
			t.Logf("killed after seq %d was committed; reopened with %d records, chain intact", committed, last)
		})
	}
}

// crashChild appends until killed, printing each committed seq.
func crashChild(dir string) {
	s, err := badgerstore.Open(dir, badgerstore.Options{SyncInterval: time.Hour})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	w := bufio.NewWriter(os.Stdout)
	evs := make([]store.AuditEvent, 100)
	for i := 0; ; i++ {
		for j := range evs {
			evs[j] = requestEvent(i*len(evs) + j)
		}
		if err := s.AppendAudit(context.Background(), evs); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Fprintf(w, "committed %d\n", evs[len(evs)-1].Seq)
		w.Flush()
	}
}
