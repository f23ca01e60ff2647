package main

// The shell completions in completions/ and the man pages in man/ are
// generated from the cobra tree and committed. The cobra tree lives in
// package main, which nothing can import, so the generator runs inside this
// package's tests: TestGeneratedDocs regenerates into a temporary directory
// and compares, and with -update writes into the repository.
//
//go:generate go test -run ^TestGeneratedDocs$ -args -update

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// manDate is the date in every man page header. It is fixed so that the
// generated pages depend only on the command tree; move it forward when the
// commands change enough that readers should notice.
var manDate = time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)

// completionFiles names each shell's completion script under completions/.
var completionFiles = []struct {
	name string
	gen  func(root *cobra.Command, w *bytes.Buffer) error
}{
	{"agw.bash", func(root *cobra.Command, w *bytes.Buffer) error { return root.GenBashCompletionV2(w, true) }},
	{"_agw", func(root *cobra.Command, w *bytes.Buffer) error { return root.GenZshCompletion(w) }},
	{"agw.fish", func(root *cobra.Command, w *bytes.Buffer) error { return root.GenFishCompletion(w, true) }},
	{"agw.ps1", func(root *cobra.Command, w *bytes.Buffer) error { return root.GenPowerShellCompletionWithDesc(w) }},
}

// docsRoot returns the command tree as the shipped binary presents it,
// including the `completion` command cobra adds when it executes, with
// cobra's dated "auto generated" footers off.
func docsRoot() *cobra.Command {
	root := newApp().newRootCmd()
	root.InitDefaultCompletionCmd()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.DisableAutoGenTag = true
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return root
}

// writeDocs writes the completion scripts to dir/completions and one man
// page per command to dir/man, creating both directories. Files there that
// no command produces any more are removed, so renames leave nothing behind.
func writeDocs(dir string) error {
	compDir, manDir := filepath.Join(dir, "completions"), filepath.Join(dir, "man")
	for _, d := range []string{compDir, manDir} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	for _, cf := range completionFiles {
		var buf bytes.Buffer
		if err := cf.gen(docsRoot(), &buf); err != nil {
			return fmt.Errorf("generate %s: %w", cf.name, err)
		}
		if err := os.WriteFile(filepath.Join(compDir, cf.name), buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	date := manDate
	header := &doc.GenManHeader{Section: "1", Date: &date, Source: "agw", Manual: "agw manual"}
	if err := doc.GenManTree(docsRoot(), header, manDir); err != nil {
		return fmt.Errorf("generate man pages: %w", err)
	}
	return nil
}
