// Package auditvalue is the stored form of an audit record: its canonical
// JSON, compressed. It is shared by the store and the test-only tamper tool,
// which must both read and write records the way the store does.
//
// A stored value is either
//
//   - the canonical JSON itself (records written before compression; it
//     starts with '{'), or
//   - formatS2Dict (0x01) followed by an S2 block of the JSON encoded
//     against dict below.
//
// A record is a few hundred bytes, too small for a block compressor to find
// much repetition in by itself (it saves about a sixth), but most of it is
// field names and values every record shares; with them in a dictionary the
// value is about a third of the JSON. The chain hash is over the JSON, so
// the compression is invisible to it.
package auditvalue

import (
	"errors"
	"fmt"
	"slices"

	"github.com/klauspost/compress/s2"
)

// formatS2Dict marks an S2 block encoded against dict. It can never start
// JSON.
const formatS2Dict = 0x01

// dictData is the dictionary of formatS2Dict: an admin record, then a
// request record (the common kind, so its text sits nearest, at the cheapest
// offsets). Its bytes are part of the stored format: changing them makes
// every formatS2Dict value unreadable. A better dictionary needs a new
// format byte, with this one still decoded. TestDictPinned guards it.
const dictData = `{"seq":1,"time":"2026-01-01T00:00:00.000000000Z","kind":"admin",` +
	`"request_id":"adm-000000000000","agent":"agent","auth_method":"peer","idp":"idp","subject":"subject",` +
	`"action":"backend.add","target":"backend","peer_uid":1000,"peer_pid":1000,` +
	`"prev_hash":"","hash":""}` +
	`{"seq":1,"time":"2026-01-01T00:00:00.000000000Z","kind":"request",` +
	`"request_id":"req-000000000000","agent":"agent","auth_method":"token","token_id":"tk00000000",` +
	`"idp":"idp","subject":"subject","jti":"jti","client":"127.0.0.1:50000",` +
	`"backend":"backend","method":"GET","host":"api.example.com","path":"/v1/",` +
	`"status":200,"decision":"allow","reason":"reason","upstream_ms":100.5,"total_ms":100.5,` +
	`"bytes_in":1000,"bytes_out":1000,"credential_version":1,"redactions":1,` +
	`"prev_hash":"","hash":""}`

var dict = s2.MakeDictManual([]byte(dictData), 0)

// ErrUnknownFormat is returned by Decode for a value neither JSON nor a
// format this package writes: the value is damaged, or was written by a
// newer agw.
var ErrUnknownFormat = errors.New("unknown audit record format")

// Append appends the stored form of the canonical JSON js to dst.
func Append(dst, js []byte) []byte {
	n := s2.MaxEncodedLen(len(js))
	if n < 0 {
		panic(s2.ErrTooLarge) // a record is never near 4 GiB
	}
	dst = slices.Grow(dst, 1+n)
	dst = append(dst, formatS2Dict)
	enc := dict.Encode(dst[len(dst):len(dst)+n], js)
	return dst[:len(dst)+len(enc)]
}

// Decode returns the canonical JSON of a stored value v, in dst if it is
// large enough. A JSON value is returned as it is (not copied), so the
// result is only valid as long as v is. A damaged value fails with an
// error, never a panic.
func Decode(dst, v []byte) ([]byte, error) {
	if len(v) == 0 {
		return nil, errors.New("empty audit record")
	}
	switch v[0] {
	case '{':
		return v, nil
	case formatS2Dict:
		js, err := dict.Decode(dst, v[1:])
		if err != nil {
			return nil, fmt.Errorf("decompress audit record: %w", err)
		}
		return js, nil
	}
	return nil, fmt.Errorf("%w (first byte %#x)", ErrUnknownFormat, v[0])
}
