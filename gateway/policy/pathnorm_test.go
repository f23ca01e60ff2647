package policy

import "testing"

func TestNormalizePath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, raw, want string
		refused         bool
	}{
		{"plain", "/v1/models", "/v1/models", false},
		{"root", "/", "/", false},
		{"trailing slash", "/v1/models/", "/v1/models/", false},
		{"space decoded", "/v1/a%20b", "/v1/a b", false},
		{"utf-8 decoded", "/caf%C3%A9", "/café", false},
		{"colon", "/v1/a%3Ab", "/v1/a:b", false},
		{"matrix param", "/v1/a;b=c", "/v1/a;b=c", false},
		{"dots in name", "/v1/file.json", "/v1/file.json", false},
		{"three dots", "/v1/...", "/v1/...", false},

		{"encoded slash", "/v1/a%2Fb", "", true},
		{"encoded slash lower", "/v1/a%2fb", "", true},
		{"encoded backslash", "/v1/a%5Cb", "", true},
		{"encoded backslash lower", "/v1/a%5cb", "", true},
		{"encoded dot", "/v1/%2E%2E/admin", "", true},
		{"encoded dot lower", "/v1/%2e/admin", "", true},
		{"dot segment", "/v1/./admin", "", true},
		{"dot-dot segment", "/v1/../admin", "", true},
		{"trailing dot-dot", "/v1/..", "", true},
		{"dot-dot with params", "/v1/..;/admin", "", true},
		{"double slash", "/v1//admin", "", true},
		{"leading double slash", "//admin", "", true},
		{"backslash", "/v1\\..\\admin", "", true},
		{"nul encoded", "/v1/a%00b", "", true},
		{"control char", "/v1/a\x01b", "", true},
		{"double encoding", "/v1/%252F", "", true},
		{"malformed escape", "/v1/%zz", "", true},
		{"truncated escape", "/v1/%2", "", true},
		{"not absolute", "v1/models", "", true},
		{"asterisk", "*", "", true},
		{"empty", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := NormalizePath(tt.raw)
			if tt.refused {
				if why == "" {
					t.Fatalf("NormalizePath(%q) = %q, want refused", tt.raw, got)
				}
				return
			}
			if why != "" {
				t.Fatalf("NormalizePath(%q) refused: %s", tt.raw, why)
			}
			if got != tt.want {
				t.Fatalf("NormalizePath(%q) = %q, want %q", tt.raw, got, tt.want)
			}
		})
	}
}
