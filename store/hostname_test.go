package store

import "testing"

func TestPrintable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"/v1/models", "/v1/models"},
		{"/v1/日本/café", "/v1/日本/café"},
		{"/v1/a\u202eb", `/v1/a\u202Eb`},
		{"/x\u2066y\u2069", `/x\u2066y\u2069`},
		{"a\u200bb", `a\u200Bb`},
		{"line\nbreak\x1b[31m", `line\u000Abreak\u001B[31m`},
		{"bad\xffutf8", `bad\xffutf8`},
	} {
		if got := Printable(tc.in); got != tc.want {
			t.Errorf("Printable(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
