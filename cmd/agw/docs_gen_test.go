package main

import (
	"bytes"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

var update = flag.Bool("update", false, "regenerate completions/ and man/ in the repository")

// repoRoot is the repository's top directory, seen from this package.
const repoRoot = "../.."

// TestGeneratedDocs fails when the committed completions or man pages differ
// from what the command tree generates now; with -update (go generate ./...)
// it rewrites them.
func TestGeneratedDocs(t *testing.T) {
	if *update {
		if err := writeDocs(repoRoot); err != nil {
			t.Fatal(err)
		}
		return
	}
	fresh := t.TempDir()
	if err := writeDocs(fresh); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"completions", manSubdir} {
		want, got := readTree(t, filepath.Join(fresh, d)), readTree(t, filepath.Join(repoRoot, d))
		for _, name := range sortedKeys(want) {
			committed, ok := got[name]
			switch {
			case !ok:
				t.Errorf("%s/%s is missing: run `go generate ./...` and commit the result", d, name)
			case !bytes.Equal(committed, want[name]):
				t.Errorf("%s/%s is stale: run `go generate ./...` and commit the result", d, name)
			}
		}
		for _, name := range sortedKeys(got) {
			if _, ok := want[name]; !ok {
				t.Errorf("%s/%s belongs to no command any more: run `go generate ./...` and commit the removal", d, name)
			}
		}
	}
}

// readTree returns the files directly in dir by name.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Type()&fs.ModeType != 0 {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = b
	}
	return files
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// TestManPagesRender formats every committed man page with man-db's man and
// groff's warnings on; any warning fails the page. Pages render eight at a
// time: each run mostly waits on man's pipeline of processes.
func TestManPagesRender(t *testing.T) {
	man := requireTool(t, "man", true)
	pages, err := filepath.Glob(filepath.Join(repoRoot, manSubdir, "*.1"))
	if err != nil || len(pages) == 0 {
		t.Fatalf("no man pages under %s (%v): run `go generate ./...`", manSubdir, err)
	}
	problems := make([]string, len(pages))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, page := range pages {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			cmd := exec.Command(man, "-l", "--warnings", page)
			cmd.Env = append(os.Environ(), "MANWIDTH=80", "MANPAGER=cat", "PAGER=cat")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			switch err := cmd.Run(); {
			case err != nil || stderr.Len() > 0:
				problems[i] = fmt.Sprintf("man -l --warnings %s: %v\n%s", page, err, stderr.String())
			case stdout.Len() == 0:
				problems[i] = fmt.Sprintf("man -l %s rendered nothing", page)
			}
		}()
	}
	wg.Wait()
	for _, p := range problems {
		if p != "" {
			t.Error(p)
		}
	}
}

// TestManFromCheckout: `man -M man agw` in a checkout finds the page, and it
// documents the exit codes, the environment and the files.
func TestManFromCheckout(t *testing.T) {
	man := requireTool(t, "man", true)
	dir, err := filepath.Abs(filepath.Join(repoRoot, "man"))
	if err != nil {
		t.Fatal(err)
	}
	for _, page := range []string{"agw", "agw-audit-verify"} {
		cmd := exec.Command(man, "-M", dir, page)
		cmd.Env = append(os.Environ(), "MANWIDTH=80", "MANPAGER=cat", "PAGER=cat")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("man -M %s %s: %v", dir, page, err)
		}
		for _, want := range []string{"EXIT STATUS", "ENVIRONMENT", "FILES", "AGW_SOCKET", "/run/agw/admin.sock", "audit trail altered"} {
			if !bytes.Contains(out, []byte(want)) {
				t.Errorf("man %s lacks %q", page, want)
			}
		}
	}
}
