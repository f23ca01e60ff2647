package main

// The shell completions in completions/ and the man pages in man/man1 are
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
	"strings"
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

// manSubdir is where the pages go under the repository: man/man1 is the
// layout man(1) searches, so `man -M man agw` (or MANPATH=$PWD/man) reads
// them from a checkout.
var manSubdir = filepath.Join("man", "man1")

// writeDocs writes the completion scripts to dir/completions and one man
// page per command to dir/man/man1, creating the directories. Files there
// that no command produces any more are removed, so renames leave nothing
// behind.
func writeDocs(dir string) error {
	compDir, manDir := filepath.Join(dir, "completions"), filepath.Join(dir, manSubdir)
	if err := os.RemoveAll(filepath.Join(dir, "man")); err != nil {
		return err
	}
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
	if err := writeManTree(docsRoot(), header, manDir); err != nil {
		return fmt.Errorf("generate man pages: %w", err)
	}
	return nil
}

// writeManTree writes cmd's page and its subcommands' as doc.GenManTree
// does (agw-backend-add.1), with the EXIT STATUS, ENVIRONMENT and FILES
// sections cobra does not generate added before SEE ALSO.
func writeManTree(cmd *cobra.Command, header *doc.GenManHeader, dir string) error {
	for _, c := range cmd.Commands() {
		if !c.IsAvailableCommand() || c.IsAdditionalHelpTopicCommand() {
			continue
		}
		if err := writeManTree(c, header, dir); err != nil {
			return err
		}
	}
	h := *header
	var buf bytes.Buffer
	if err := doc.GenMan(cmd, &h, &buf); err != nil {
		return err
	}
	page := buf.String()
	if i := strings.Index(page, "\n.SH SEE ALSO"); i >= 0 {
		page = page[:i+1] + manSections() + page[i+1:]
	} else {
		page += manSections()
	}
	name := strings.ReplaceAll(cmd.CommandPath(), " ", "-") + "." + h.Section
	return os.WriteFile(filepath.Join(dir, name), []byte(page), 0o644)
}

// manEnvironment and manFiles are the ENVIRONMENT and FILES sections.
var manEnvironment = [][2]string{
	{"AGW_SOCKET", "The daemon's admin socket, as \\fB--socket\\fP (which wins)."},
	{"AGW_DATA_DIR", "The data directory, as \\fB--data-dir\\fP (which wins)."},
	{"XDG_STATE_HOME", "For users other than root, the data directory is \\fI$XDG_STATE_HOME/agw\\fP when this is set."},
	{"NO_COLOR", "When set, \\fBagw tui\\fP draws without colour."},
}

var manFiles = [][2]string{
	{"/var/lib/agw", "The data directory of root and of the packaged daemon: the age identity, the internal CA, the store and the audit trail. Mode 0700."},
	{"~/.local/state/agw", "The data directory of any other user (\\fI$XDG_STATE_HOME/agw\\fP when that is set); its \\fIadmin.sock\\fP is that user's daemon socket."},
	{"/run/agw/admin.sock", "The admin socket of root's daemon and of the packaged one. Other users reach it without \\fBAGW_SOCKET\\fP when their own data directory has no socket; members of the daemon's \\fB--admin-group\\fP may use it."},
	{"DATA_DIR/ca.crt", "The internal CA's certificate, which agents trust; \\fBagw ca export\\fP prints it, from this file when no daemon runs. Its key, \\fIca.key.age\\fP, is sealed and never printed."},
	{"/etc/default/agw", "Extra flags (\\fBAGW_OPTS\\fP) for the packaged daemon's \\fBagw serve\\fP."},
}

// manSections renders EXIT STATUS, ENVIRONMENT and FILES in roff.
func manSections() string {
	var b strings.Builder
	b.WriteString(".SH EXIT STATUS\n")
	for _, e := range exitCodes {
		fmt.Fprintf(&b, ".TP\n\\fB%d\\fP\n%s\n", e.code, e.what)
	}
	b.WriteString("\n.SH ENVIRONMENT\n")
	for _, e := range manEnvironment {
		fmt.Fprintf(&b, ".TP\n\\fB%s\\fP\n%s\n", e[0], e[1])
	}
	b.WriteString("\n.SH FILES\n")
	for _, f := range manFiles {
		fmt.Fprintf(&b, ".TP\n\\fI%s\\fP\n%s\n", f[0], f[1])
	}
	b.WriteString("\n")
	return b.String()
}
