package token

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// ErrUnseal means a sealed secret could not be opened: wrong parent secret,
// or the blob was changed.
var ErrUnseal = errors.New("cannot unseal secret")

const sealVersion = 1

// SealSecret seals a delegated child's secret under a key derived from its
// parent's secret (HKDF-SHA-256, salted with the child's key) with
// AES-256-GCM. Only a holder of the parent token can open it again, so a dump
// of the store or of a snapshot holds no usable child token, while the
// parent's holder can be handed the same child twice (Gafaelfawr's reuse of
// internal and notebook tokens).
func SealSecret(parentSecret []byte, child Key, secret string) ([]byte, error) {
	aead, err := childAEAD(parentSecret, child)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1, 1+aead.NonceSize()+len(secret)+aead.Overhead())
	out[0] = sealVersion
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("cannot read random nonce: %w", err)
	}
	out = append(out, nonce...)
	return aead.Seal(out, nonce, []byte(secret), child[:]), nil
}

// OpenSecret opens a blob made by SealSecret.
func OpenSecret(parentSecret []byte, child Key, sealed []byte) (string, error) {
	if len(sealed) < 1 || sealed[0] != sealVersion {
		return "", ErrUnseal
	}
	aead, err := childAEAD(parentSecret, child)
	if err != nil {
		return "", err
	}
	if len(sealed) < 1+aead.NonceSize()+aead.Overhead() {
		return "", ErrUnseal
	}
	nonce := sealed[1 : 1+aead.NonceSize()]
	plain, err := aead.Open(nil, nonce, sealed[1+aead.NonceSize():], child[:])
	if err != nil {
		return "", ErrUnseal
	}
	return string(plain), nil
}

func childAEAD(parentSecret []byte, child Key) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, parentSecret, child[:], "tokencache child secret v1", 32)
	if err != nil {
		return nil, fmt.Errorf("cannot derive sealing key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("cannot create cipher: %w", err)
	}
	return cipher.NewGCM(block)
}
