package main

import (
	"bytes"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
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
	for _, d := range []string{"completions", "man"} {
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
