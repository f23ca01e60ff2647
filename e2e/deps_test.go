package e2e

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/agw-dev/agw"

// TestDependencyDirection keeps the package arrows of DESIGN.md pointing one
// way: only the store implementation touches Badger, and the domain package
// depends on nothing of ours.
func TestDependencyDirection(t *testing.T) {
	direct, deps := listDeps(t)
	rules := []struct {
		pkgPrefix  string // packages the rule applies to
		forbidden  string // import path prefix they must not depend on
		transitive bool   // also forbidden through other packages
		why        string
	}{
		// cmd/agw links the daemon (agw serve), so it reaches Badger through
		// package daemon; it must not import it itself.
		{module + "/cmd", "github.com/dgraph-io/badger", false, "CLI commands never open the store; they talk to the daemon"},
		{module + "/tui", "github.com/dgraph-io/badger", true, "the TUI talks only to the admin API"},
		{module + "/tui", module + "/daemon", true, "the TUI talks only to the admin API"},
		{module + "/tui", module + "/gateway", true, "the TUI talks only to the admin API"},
		{module + "/store", "github.com/dgraph-io/badger", true, "only store/badgerstore imports badger"},
		{module + "/gateway", "github.com/jackc/pgx", true, "only store/pgstore talks to PostgreSQL"},
		{module + "/state", "github.com/jackc/pgx", true, "only store/pgstore talks to PostgreSQL"},
		{module + "/audit", "github.com/jackc/pgx", true, "only store/pgstore talks to PostgreSQL"},
		{module + "/tui", "github.com/jackc/pgx", true, "only store/pgstore talks to PostgreSQL"},
		{module + "/daemon", "github.com/jackc/pgx", false, "only store/pgstore talks to PostgreSQL"},
		{module + "/cmd", "github.com/jackc/pgx", false, "only store/pgstore talks to PostgreSQL"},
		{module + "/admin", module + "/daemon", true, "the admin contract is a leaf shared by client and server"},
		{module + "/admin", module + "/gateway", true, "the admin contract is a leaf shared by client and server"},
		// The request pipeline never reaches the daemon around it, the
		// admin server or the store implementations.
		{module + "/gateway", module + "/daemon", true, "the pipeline does not know the daemon"},
		{module + "/gateway", module + "/store/badgerstore", true, "the pipeline reads the in-memory state, never a store implementation"},
		{module + "/state", module + "/gateway", true, "the state is below the pipeline"},
		{module + "/state", module + "/daemon", true, "the state is below the daemon"},
		{module + "/audit", module + "/gateway", true, "the audit pipeline is below the request pipeline"},
		{module + "/audit", module + "/daemon", true, "the audit pipeline is below the daemon"},
		{module + "/daemon/adminserver", module + "/gateway", true, "the admin server changes the store and the state, never the pipeline"},
		// Each stage is a leaf of the spine: stages never import each other
		// (the spine, package gateway, calls them in order). auth may use
		// limit (the auth-failure throttle) and front nothing of the stages.
		{module + "/gateway/policy", module + "/gateway/", true, "a stage does not reach into another"},
		{module + "/gateway/limit", module + "/gateway/auth", true, "a stage does not reach into another"},
		{module + "/gateway/limit", module + "/gateway/inject", true, "a stage does not reach into another"},
		{module + "/gateway/limit", module + "/gateway/front", true, "a stage does not reach into another"},
		{module + "/gateway/inject", module + "/gateway/auth", true, "a stage does not reach into another"},
		{module + "/gateway/inject", module + "/gateway/limit", true, "a stage does not reach into another"},
		{module + "/gateway/front", module + "/gateway/auth", true, "the TLS front serves any handler"},
		{module + "/gateway/front", module + "/gateway/limit", true, "the TLS front serves any handler"},
		{module + "/gateway/front", module + "/gateway/inject", true, "the TLS front serves any handler"},
		{module + "/gateway/front", module + "/state", true, "the TLS front serves any handler"},
		// scrub holds every redaction and is self-contained: std,
		// klauspost/compress, nothing of ours.
		{module + "/gateway/scrub", module + "/", true, "the scrubber imports only std and klauspost/compress"},
		{module + "/dns", module + "/", true, "dns imports only std and miekg/dns"},
		{module + "/crypto", module + "/", true, "crypto imports only std and age"},
	}
	for pkg := range deps {
		for _, r := range rules {
			imports := direct[pkg]
			if r.transitive {
				imports = deps[pkg]
			}
			if !strings.HasPrefix(pkg, r.pkgPrefix) || strings.HasSuffix(pkg, ".test") {
				continue
			}
			// badgerstore's own tree: the store, and the test-only tamper tool.
			if (pkg == module+"/store/badgerstore" || strings.HasPrefix(pkg, module+"/store/badgerstore/")) && r.forbidden == "github.com/dgraph-io/badger" {
				continue
			}
			for _, imp := range imports {
				if imp == r.pkgPrefix || strings.HasPrefix(imp, r.pkgPrefix+"/") {
					continue // within the same package tree
				}
				if r.forbidden == module+"/gateway/" && (imp == module+"/gateway/deny" || imp == module+"/gateway/scrub") {
					continue // every stage refuses with a deny.Denial and redacts with scrub
				}
				if strings.HasPrefix(imp, r.forbidden) {
					t.Errorf("%s depends on %s: %s", pkg, imp, r.why)
				}
			}
		}
	}
	// store (the domain package) imports nothing of ours.
	for _, imp := range deps[module+"/store"] {
		if strings.HasPrefix(imp, module+"/") {
			t.Errorf("store depends on %s: the domain package imports only the standard library", imp)
		}
	}
	if _, ok := deps[module+"/store"]; !ok {
		t.Fatalf("go list did not report %s/store; the dependency check saw nothing", module)
	}
}

// listDeps returns, for each non-test package of the module, the packages it
// imports directly and every package it depends on (transitively).
func listDeps(t *testing.T) (direct, deps map[string][]string) {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps=false", "-json=ImportPath,Imports,Deps", module+"/...")
	cmd.Dir = ".."
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	direct, deps = map[string][]string{}, map[string][]string{}
	dec := json.NewDecoder(out)
	for {
		var p struct {
			ImportPath string
			Imports    []string
			Deps       []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		direct[p.ImportPath], deps[p.ImportPath] = p.Imports, p.Deps
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("go list: %v", err)
	}
	return direct, deps
}
