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

		{"overlong dot", "/v1/%C0%AE%C0%AE/admin", "", true},
		{"overlong slash", "/v1/a%C0%AFb", "", true},
		{"truncated utf-8", "/v1/a%C3", "", true},
		{"full-width dot", "/v1/%EF%BC%8E%EF%BC%8E/admin", "", true},
		{"full-width solidus", "/v1/a%EF%BC%8Fb", "", true},
		{"one dot leader", "/v1/%E2%80%A4%E2%80%A4/x", "", true},
		{"full-width letters", "/%EF%BD%961/models", "", true},
		{"bidi override", "/v1/a%E2%80%AEb", "", true},
		{"zero width space", "/v1/a%E2%80%8Bb", "", true},
		{"raw bidi", "/v1/a\u202eb", "", true},
		{"cjk kept", "/v1/%E6%97%A5%E6%9C%AC", "/v1/日本", false},
		{"emoji kept", "/v1/%F0%9F%98%80", "/v1/😀", false},
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
