package badgerstore

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestIndexGroupRoundTrip: a group's value decodes to the numbers written,
// and an empty value (schema 3 and earlier) is the key's number alone.
func TestIndexGroupRoundTrip(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		n := 1 + r.IntN(maxIndexGroup)
		seqs := make([]uint64, n)
		cur := uint64(r.IntN(1000)) + 1
		for i := range seqs {
			seqs[i] = cur
			// Mostly consecutive, as under load, with gaps of every
			// varint length.
			cur += 1 + uint64(r.ExpFloat64()*float64([]uint64{1, 200, 1 << 20, 1 << 40}[r.IntN(4)]))
		}
		v := appendGroup(nil, seqs)
		got, err := decodeGroup([]uint64{7}, seqs[n-1], v)
		if err != nil {
			t.Fatalf("decode %v: %v", seqs, err)
		}
		if !slices.Equal(got[1:], seqs) || got[0] != 7 {
			t.Fatalf("decoded %v, want [7] + %v", got, seqs)
		}
	}
	if got, err := decodeGroup(nil, 42, nil); err != nil || !slices.Equal(got, []uint64{42}) {
		t.Errorf("empty value = %v, %v; want [42]", got, err)
	}
	// Consecutive numbers cost a byte each, so a full group stays inline.
	full := make([]uint64, maxIndexGroup)
	for i := range full {
		full[i] = 1<<40 + uint64(i)
	}
	if v := appendGroup(nil, full); len(v) >= valueThreshold {
		t.Errorf("a full group of consecutive numbers takes %d bytes, not under valueThreshold %d", len(v), valueThreshold)
	}
}

// TestDecodeGroupDamaged: a value that cannot be a group is an error naming
// the damage, never numbers outside the group's range.
func TestDecodeGroupDamaged(t *testing.T) {
	t.Parallel()
	for name, v := range map[string][]byte{
		"zero gap":        {0},
		"gap to zero":     {10},
		"gap past zero":   {11},
		"cut varint":      {0x80},
		"overflow varint": {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	} {
		got, err := decodeGroup([]uint64{1}, 10, v)
		if err == nil || !strings.Contains(err.Error(), "damaged") {
			t.Errorf("%s: decode = %v, %v; want an error saying the index is damaged", name, got, err)
		}
		if !slices.Equal(got, []uint64{1}) {
			t.Errorf("%s: decode left %v in dst, want it unchanged", name, got)
		}
	}
	if _, err := decodeGroup(nil, math.MaxUint64, []byte{1, 1}); err != nil {
		t.Errorf("valid group at the top of the range: %v", err)
	}
}

// FuzzDecodeGroup: whatever bytes an index value holds, decoding either
// fails or yields numbers strictly ascending, at least 1, ending at the
// key's number; and what decodes re-encodes to the same bytes.
func FuzzDecodeGroup(f *testing.F) {
	f.Add(uint64(10), []byte{})
	f.Add(uint64(10), []byte{1, 2, 3})
	f.Add(uint64(1<<40), appendGroup(nil, []uint64{1, 2, 3, 1 << 40}))
	f.Add(uint64(5), []byte{0x80})
	f.Fuzz(func(t *testing.T, last uint64, v []byte) {
		if last == 0 {
			return // no record has seq 0, so no key ends in it
		}
		got, err := decodeGroup(nil, last, v)
		if err != nil {
			return
		}
		if got[len(got)-1] != last || got[0] == 0 {
			t.Fatalf("decode(%d, %x) = %v: must end at %d and stay above 0", last, v, got, last)
		}
		for i := 1; i < len(got); i++ {
			if got[i] <= got[i-1] {
				t.Fatalf("decode(%d, %x) = %v: not strictly ascending", last, v, got)
			}
		}
		if re := appendGroup(nil, got); !slices.Equal(re, v) && len(v) > 0 {
			// Non-minimal varints decode but do not round-trip; the
			// numbers must still match.
			back, err := decodeGroup(nil, last, re)
			if err != nil || !slices.Equal(back, got) {
				t.Fatalf("re-encoding %v gives %x, which decodes to %v, %v", got, re, back, err)
			}
		}
	})
}
