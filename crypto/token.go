package crypto

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
)

// Gateway token layout: TokenPrefix, then TokenIDLen base62 characters of
// public id, tokenSecretLen of secret (43 base62 characters carry 256.03
// bits), then tokenCRCLen characters of base62 CRC-32 (IEEE) over
// everything before it. The alphabet has no '-' or '_', so a token
// survives copy and paste and is selected whole by a double click; the
// checksum lets agw and secret scanners reject typos without a lookup.
const (
	// TokenPrefix starts every gateway token; it tells a gateway token from a
	// JWT and makes leaked tokens easy to scan for.
	TokenPrefix = "agw_"
	// TokenIDLen is the length of a token id, the public half used to list
	// and revoke a token.
	TokenIDLen = 12
	// TokenLen is the length of a whole gateway token.
	TokenLen = len(TokenPrefix) + TokenIDLen + tokenSecretLen + tokenCRCLen

	tokenSecretLen = 43
	tokenCRCLen    = 6
	tokenIDStart   = len(TokenPrefix)
	tokenSecStart  = tokenIDStart + TokenIDLen
	tokenCRCStart  = tokenSecStart + tokenSecretLen
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// ErrMalformedToken is wrapped by every ParseToken error: the string is not
// a well-formed gateway token, whatever is stored.
var ErrMalformedToken = errors.New("malformed gateway token")

// MintToken returns a new gateway token, its id and its hash (HashToken).
// The token is shown to the operator once; only id and hash are stored.
func MintToken() (token Secret, id string, hash []byte, err error) {
	buf := make([]byte, TokenLen)
	copy(buf, TokenPrefix)
	if err := randomBase62(buf[tokenIDStart:tokenCRCStart]); err != nil {
		return Secret{}, "", nil, fmt.Errorf("mint token: %w", err)
	}
	putChecksum(buf[tokenCRCStart:], checksum(string(buf[:tokenCRCStart])))
	id = string(buf[tokenIDStart:tokenSecStart])
	hash = HashToken(buf)
	token = NewSecret(buf)
	clear(buf)
	return token, id, hash, nil
}

// ParseToken checks that s is a well-formed gateway token (prefix, length,
// alphabet, checksum) and returns its id, without any lookup. Errors wrap
// ErrMalformedToken, say which part is wrong, and never include s.
func ParseToken(s string) (id string, err error) {
	if !strings.HasPrefix(s, TokenPrefix) {
		return "", fmt.Errorf("%w: it does not start with %s", ErrMalformedToken, TokenPrefix)
	}
	if len(s) != TokenLen {
		return "", fmt.Errorf("%w: it is %d bytes long, want %d", ErrMalformedToken, len(s), TokenLen)
	}
	for i := tokenIDStart; i < TokenLen; i++ {
		if !isBase62(s[i]) {
			return "", fmt.Errorf("%w: the %s has a character outside 0-9A-Za-z at position %d", ErrMalformedToken, tokenPart(i), i+1)
		}
	}
	var want [tokenCRCLen]byte
	putChecksum(want[:], checksum(s[:tokenCRCStart]))
	if string(want[:]) != s[tokenCRCStart:] {
		return "", fmt.Errorf("%w: the checksum does not match; the token was mistyped, truncated or altered", ErrMalformedToken)
	}
	return s[tokenIDStart:tokenSecStart], nil
}

// HashToken returns the SHA-256 of the whole token. The secret part is 256
// random bits, so a fast unsalted hash is enough: there is nothing to
// brute-force, and lookups stay cheap on the hot path.
func HashToken(token []byte) []byte {
	sum := sha256.Sum256(token)
	return sum[:]
}

// VerifyToken reports whether token hashes to hash, comparing in constant
// time.
func VerifyToken(token []byte, hash []byte) bool {
	sum := sha256.Sum256(token)
	return subtle.ConstantTimeCompare(sum[:], hash) == 1
}

// LooksLikeToken reports whether s carries the gateway token prefix. It is
// the cheap test that routes a credential to token rather than JWT
// checking; ParseToken does the real validation.
func LooksLikeToken(s string) bool { return strings.HasPrefix(s, TokenPrefix) }

// ValidTokenID reports whether id has the shape of a token id, for
// commands that take one (revoke) and must not be handed a whole token.
func ValidTokenID(id string) bool {
	if len(id) != TokenIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !isBase62(id[i]) {
			return false
		}
	}
	return true
}

func tokenPart(i int) string {
	switch {
	case i < tokenSecStart:
		return "id"
	case i < tokenCRCStart:
		return "secret"
	default:
		return "checksum"
	}
}

func isBase62(c byte) bool {
	return '0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z'
}

// randomBase62 fills dst with uniformly random base62 characters. Bytes of
// 248 and above are rejected so that every character is equally likely
// (248 = 4*62).
func randomBase62(dst []byte) error {
	var pool [64]byte
	n := 0
	for n < len(dst) {
		if _, err := rand.Read(pool[:]); err != nil {
			return err
		}
		for _, b := range pool {
			if n == len(dst) {
				break
			}
			if b < 248 {
				dst[n] = base62[b%62]
				n++
			}
		}
	}
	clear(pool[:])
	return nil
}

// checksum is CRC-32 (IEEE) of s. It walks the standard table itself
// because crc32.ChecksumIEEE takes a []byte that escapes, which would cost
// an allocation per ParseToken on the request path.
func checksum(s string) uint32 {
	crc := ^uint32(0)
	for i := 0; i < len(s); i++ {
		crc = crc32.IEEETable[byte(crc)^s[i]] ^ crc>>8
	}
	return ^crc
}

// putChecksum writes v as base62, most significant digit first, zero-padded
// to len(dst) (six digits hold any uint32: 62^6 > 2^32).
func putChecksum(dst []byte, v uint32) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = base62[v%62]
		v /= 62
	}
}
