package auditvalue

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
)

const record = `{"seq":42,"time":"2026-11-26T09:06:07.954477619Z","kind":"request","request_id":"req-000000000042",` +
	`"agent":"agent042","auth_method":"token","token_id":"tk00000001","client":"10.1.2.3:51234","backend":"backend02",` +
	`"method":"POST","host":"api.example.com","path":"/v1/chat/completions","status":200,"decision":"allow",` +
	`"upstream_ms":812.5,"total_ms":813.1,"bytes_in":2048,"bytes_out":16384,"credential_version":3,` +
	`"prev_hash":"3f1c0e3a4d5b6c7d8e9fa0b1c2d3e4f5061728394a5b6c7d8e9fa0b1c2d3e4f5",` +
	`"hash":"ac9910c2b5838b4d95af3e9339bfc993f40ed8106bfaa94d94dd02e9c44adf0c"}`

// TestDictPinned: the dictionary is part of the stored format; records
// written with it must stay readable, so it must not change.
func TestDictPinned(t *testing.T) {
	sum := sha256.Sum256([]byte(dictData))
	const want = "d7d436b155f1aa6ec954ef27dc16f1e42a9473df1fface8453b5735404de65e7"
	if got := hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("dictionary of format %#x changed (sha256 %s, want %s); add a new format instead", formatS2Dict, got, want)
	}
	if dict == nil {
		t.Fatal("dictionary rejected by s2")
	}
}

func TestRoundTrip(t *testing.T) {
	cases := []struct{ name, js string }{
		{"request", record},
		{"small", `{"seq":1,"time":"2026-01-01T00:00:00Z","kind":"admin"}`},
		{"shorter than a block", `{}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := Append([]byte("prefix"), []byte(tc.js))
			if !bytes.HasPrefix(v, []byte("prefix")) {
				t.Fatalf("Append overwrote dst: %q", v)
			}
			v = v[len("prefix"):]
			if v[0] != formatS2Dict {
				t.Fatalf("format byte %#x", v[0])
			}
			got, err := Decode(nil, v)
			if err != nil || string(got) != tc.js {
				t.Fatalf("Decode = %q, %v; want %q", got, err, tc.js)
			}
		})
	}
}

// TestCompresses keeps the point of the format: a typical request record
// must shrink to under half.
func TestCompresses(t *testing.T) {
	v := Append(nil, []byte(record))
	if len(v) > len(record)/2 {
		t.Errorf("stored %d bytes for %d of JSON", len(v), len(record))
	}
	t.Logf("%d bytes of JSON stored in %d", len(record), len(v))
}

func TestDecode(t *testing.T) {
	valid := Append(nil, []byte(record))
	cases := []struct {
		name    string
		v       []byte
		want    string
		wantErr bool
	}{
		{"uncompressed JSON", []byte(record), record, false},
		{"compressed", valid, record, false},
		{"empty", nil, "", true},
		{"unknown format", []byte{0x02, 1, 2, 3}, "", true},
		{"truncated", valid[:len(valid)/2], "", true},
		{"format byte only", []byte{formatS2Dict}, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode(nil, tc.v)
			if (err != nil) != tc.wantErr || string(got) != tc.want {
				t.Fatalf("Decode = %q, %v; want %q, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
	if _, err := Decode(nil, []byte{0x7f}); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("Decode of an unknown format = %v, want ErrUnknownFormat", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Append(nil, []byte(record)))
	f.Add([]byte(record))
	f.Fuzz(func(t *testing.T, v []byte) {
		Decode(nil, v) // must not panic
	})
}
