// Package jwt is the signed-JWT token format (token.FormatJWT): the local
// issuer's keys (KeySet, read from tokens.jwt.keys_file as PEM or a JWK
// set), the codec that signs and verifies compact JWS tokens with them, and
// the cache of verified token texts.
package jwt
