// Package crypto holds agw's cryptographic building blocks: the Secret type
// that refuses to print, age sealing of secrets at rest (Keyring), the
// internal certificate authority that mints leaf certificates for
// intercepted hosts (CA), and gateway tokens (MintToken, ParseToken,
// HashToken, VerifyToken).
//
// It depends only on the standard library and filippo.io/age, holds no
// package-level mutable state, and every exported type is safe for
// concurrent use once constructed.
package crypto
