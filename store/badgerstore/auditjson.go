package badgerstore

import (
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/agw-dev/agw/store"
)

// appendEventJSON appends ev encoded exactly as encoding/json.Marshal
// encodes it, byte for byte, without Marshal's reflection: an audit append
// encodes every record, and Marshal was a tenth of its cost. The stored
// record and the chain hash (chainHash) are defined by Marshal's output, and
// VerifyAudit still uses Marshal, so any difference would show as tampering;
// auditjson_test.go compares the two on every field. ok is false if ev holds
// a value Marshal refuses (a float that is NaN or infinite, a time outside
// years 0-9999); the caller then asks Marshal for the error.
//
// A field added to store.AuditEvent must be added here, in its place.
func appendEventJSON(b []byte, ev *store.AuditEvent) (_ []byte, ok bool) {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, ev.Seq, 10)
	b = append(b, `,"time":"`...)
	t, err := ev.Time.AppendText(b)
	if err != nil {
		return b, false
	}
	b = append(t, `","kind":`...)
	b = appendJSONString(b, ev.Kind)
	b = appendStringField(b, `,"request_id":`, ev.RequestID)
	b = appendStringField(b, `,"agent":`, ev.Agent)
	b = appendStringField(b, `,"auth_method":`, ev.AuthMethod)
	b = appendStringField(b, `,"token_id":`, ev.TokenID)
	b = appendStringField(b, `,"idp":`, ev.IdP)
	b = appendStringField(b, `,"subject":`, ev.Subject)
	b = appendStringField(b, `,"jti":`, ev.JTI)
	b = appendStringField(b, `,"client":`, ev.Client)
	b = appendStringField(b, `,"via":`, ev.Via)
	b = appendStringField(b, `,"backend":`, ev.Backend)
	b = appendStringField(b, `,"method":`, ev.Method)
	b = appendStringField(b, `,"host":`, ev.Host)
	b = appendStringField(b, `,"path":`, ev.Path)
	b = appendIntField(b, `,"status":`, int64(ev.Status))
	b = appendStringField(b, `,"decision":`, ev.Decision)
	b = appendStringField(b, `,"reason":`, ev.Reason)
	if b, ok = appendFloatField(b, `,"upstream_ms":`, ev.UpstreamMillis); !ok {
		return b, false
	}
	if b, ok = appendFloatField(b, `,"total_ms":`, ev.TotalMillis); !ok {
		return b, false
	}
	b = appendIntField(b, `,"bytes_in":`, ev.BytesIn)
	b = appendIntField(b, `,"bytes_out":`, ev.BytesOut)
	b = appendIntField(b, `,"credential_version":`, int64(ev.CredentialVersion))
	b = appendIntField(b, `,"redactions":`, int64(ev.Redactions))
	b = appendStringField(b, `,"action":`, ev.Action)
	b = appendStringField(b, `,"target":`, ev.Target)
	b = appendIntField(b, `,"peer_uid":`, int64(ev.PeerUID))
	b = appendIntField(b, `,"peer_pid":`, int64(ev.PeerPID))
	b = appendStringField(b, `,"replica":`, ev.Replica)
	b = appendStringField(b, `,"prev_hash":`, ev.PrevHash)
	b = appendStringField(b, `,"hash":`, ev.Hash)
	return append(b, '}'), true
}

// appendStringField appends an omitempty string field.
func appendStringField(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	return appendJSONString(append(b, key...), v)
}

// appendIntField appends an omitempty integer field.
func appendIntField(b []byte, key string, v int64) []byte {
	if v == 0 {
		return b
	}
	return strconv.AppendInt(append(b, key...), v, 10)
}

// appendFloatField appends an omitempty float64 field the way Marshal
// formats floats (like ES6: %f between 1e-6 and 1e21, else %e with the
// exponent unpadded); ok is false for NaN and infinities.
func appendFloatField(b []byte, key string, v float64) (_ []byte, ok bool) {
	if v == 0 {
		return b, true
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return b, false
	}
	b = append(b, key...)
	if abs := math.Abs(v); abs >= 1e-6 && abs < 1e21 {
		return strconv.AppendFloat(b, v, 'f', -1, 64), true
	}
	b = strconv.AppendFloat(b, v, 'e', -1, 64)
	if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
		b[n-2] = b[n-1] // e-09 becomes e-9
		b = b[:n-1]
	}
	return b, true
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s quoted as Marshal quotes strings: '"' and '\'
// escaped, control characters as \b \f \n \r \t or \u00XX, '<' '>' '&' as
// \u003c \u003e \u0026, invalid UTF-8 as \ufffd, and U+2028 and U+2029
// escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
