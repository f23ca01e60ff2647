package scrub

import (
	"bytes"
	"testing"
)

// feed writes input into a Stream in the pieces cuts describes: each byte
// is the length of the next write (mod 64), and with timeouts a zero byte
// is a hold timing out there (Flush without final). It returns the output.
func feed(set *Set, input, cuts []byte, timeouts bool) ([]byte, *Stream) {
	st := set.NewStream()
	var out []byte
	rest := input
	for _, c := range cuts {
		if len(rest) == 0 {
			break
		}
		if c == 0 && timeouts {
			out = st.Flush(out, false)
			continue
		}
		n := min(int(c%64), len(rest))
		out = st.Write(out, rest[:n])
		rest = rest[n:]
	}
	out = st.Write(out, rest)
	return st.Flush(out, true), st
}

// survivor returns a form of set found in out that does not overlap a
// marker (a form can only appear through a marker when the secret shares
// bytes with the marker text), or "".
func survivor(set *Set, out []byte) string {
	var marks [][2]int
	for i := 0; ; {
		j := bytes.Index(out[i:], []byte(Marker))
		if j < 0 {
			break
		}
		marks = append(marks, [2]int{i + j, i + j + len(Marker)})
		i += j + 1
	}
	for _, f := range set.forms {
		for i := 0; ; {
			j := bytes.Index(out[i:], []byte(f))
			if j < 0 {
				break
			}
			a, b := i+j, i+j+len(f)
			covered := false
			for _, m := range marks {
				if m[0] < b && a < m[1] {
					covered = true
					break
				}
			}
			if !covered {
				return f
			}
			i += j + 1
		}
	}
	return ""
}

// FuzzScrub: for any secret, any input, any split of it into writes and
// any timing of hold timeouts, no form of the secret survives.
func FuzzScrub(f *testing.F) {
	f.Add([]byte(canary), []byte("data: {\"k\":\""+canary+"\"}\n\n"), []byte{9, 0, 3})
	f.Add([]byte(special), []byte("x "+special+special[:5]), []byte{1, 1, 1, 0, 0, 7})
	f.Add([]byte("abcabc"), []byte("abcabcabcabcab"), []byte{2, 0, 2, 0, 2})
	f.Fuzz(func(t *testing.T, secret, input, cuts []byte) {
		if len(secret) > 128 {
			secret = secret[:128]
		}
		set := New(secret)
		if set == nil {
			return
		}
		// Plant the secret's forms in the input, around the fuzzed bytes.
		for i, form := range set.forms {
			if len(input) > 0 && int(input[0])%len(set.forms) == i {
				input = append(append(bytes.Clone(input[:len(input)/2]), form...), input[len(input)/2:]...)
			}
		}
		out, _ := feed(set, input, cuts, true)
		if f := survivor(set, out); f != "" {
			t.Fatalf("form %q of secret %q survived in %q (input %q, cuts %v)", f, secret, out, input, cuts)
		}
	})
}

// FuzzPassThrough: input that holds no form of the secret (and does not
// end in a partial one long enough to redact) comes out unchanged, in any
// split.
func FuzzPassThrough(f *testing.F) {
	f.Add([]byte(canary), []byte(`{"choices":[{"delta":{"content":"sk-can"}}]}`), []byte{3, 9})
	f.Add([]byte(special), []byte("s3cr3t/+=&y"), []byte{1})
	f.Fuzz(func(t *testing.T, secret, input, cuts []byte) {
		if len(secret) > 128 {
			secret = secret[:128]
		}
		set := New(secret)
		if set == nil || set.Contains(input) {
			return
		}
		whole := set.NewStream()
		_ = whole.Write(nil, input)
		if whole.m.depth[whole.state] >= MinPartial {
			return
		}
		out, st := feed(set, input, cuts, false)
		if !bytes.Equal(out, input) || st.Redactions() != 0 {
			t.Fatalf("secret %q: %q became %q", secret, input, out)
		}
	})
}
