package dns

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

func TestExport(t *testing.T) {
	// Unsorted, duplicated and mixed-case input: the output must not care.
	hosts := []string{"hr.corp.net", "*.crm.example.com", "API.openai.com.", "hr.corp.net", "*.eu.example.net"}
	gw := addrs("2001:db8::5", "10.0.0.6", "10.0.0.5")
	for _, format := range ExportFormats {
		t.Run(format, func(t *testing.T) {
			var b bytes.Buffer
			if err := Export(&b, format, hosts, gw, 60); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "export", format+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(b.Bytes(), want) {
				t.Errorf("output differs from %s (go test -update rewrites it):\n%s", golden, b.String())
			}
		})
	}
}

func TestExportErrors(t *testing.T) {
	tests := []struct {
		name    string
		format  string
		hosts   []string
		wantErr string
	}{
		{name: "unknown format lists the valid ones", format: "djbdns", hosts: []string{"a.example"}, wantErr: "hosts, dnsmasq, unbound, coredns, bind"},
		{name: "quote cannot reach a config file", format: "unbound", hosts: []string{`a.example" IN A 6.6.6.6`}, wantErr: "not a host name"},
		{name: "newline cannot reach a config file", format: "dnsmasq", hosts: []string{"a.example\naddress=/#/6.6.6.6"}, wantErr: "not a host name"},
		{name: "inner wildcard", format: "bind", hosts: []string{"a.*.example"}, wantErr: "not a host name"},
		{name: "empty label", format: "hosts", hosts: []string{"a..example"}, wantErr: "not a host name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			err := Export(&b, tt.format, tt.hosts, addrs("10.0.0.5"), 0)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
			if b.Len() != 0 {
				t.Errorf("wrote %q on error", b.String())
			}
		})
	}
	if err := Export(new(bytes.Buffer), "hosts", []string{"a.example"}, nil, 0); err == nil {
		t.Error("no address: want error")
	}
}

func TestHostSet(t *testing.T) {
	s := mustHostSet(t, "API.openai.com.", "*.crm.example.com")
	tests := []struct {
		name string
		want bool
	}{
		{"api.openai.com", true},
		{"openai.com", false},
		{"x.api.openai.com", false},
		{"eu.crm.example.com", true},
		{"crm.example.com", false},
		{"a.b.crm.example.com", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.Intercepts(tt.name); got != tt.want {
				t.Errorf("Intercepts(%q) = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
	if _, err := NewHostSet("bad name"); err == nil {
		t.Error("NewHostSet(bad name): want error")
	}
}
