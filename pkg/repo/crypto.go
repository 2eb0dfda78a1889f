package repo

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"

	"github.com/zeebo/blake3"
)

// ID names a blob: the keyed BLAKE3 hash of its plaintext. Without the repository key an ID reveals nothing
// about the content.
type ID [32]byte

// String returns the ID in lower-case hex.
func (id ID) String() string { return fmt.Sprintf("%x", id[:]) }

// Short returns the first 8 hex digits, for messages.
func (id ID) Short() string { return fmt.Sprintf("%x", id[:4]) }

const (
	masterKeyLen = 32
	nonceLen     = 12
	tagLen       = 16
	// overhead is what sealing adds to a plaintext.
	overhead = nonceLen + tagLen
)

// Associated data binds each sealed object to its role, so one kind of object cannot be substituted for another.
var (
	adBlob       = []byte("pxb blob")
	adPackHeader = []byte("pxb pack header")
	adIndex      = []byte("pxb index")
	adSnapshot   = []byte("pxb snapshot")
	adConfig     = []byte("pxb config")
	adLock       = []byte("pxb lock")
	adKey        = []byte("pxb key slot")
)

// errAuth is returned when a ciphertext fails authentication: wrong key, or a changed byte.
var errAuth = errors.New("authentication failed (corrupted or modified data)")

// keys holds the working keys derived from a repository's master key.
type keys struct {
	aead    cipher.AEAD
	idKey   [32]byte
	gearKey [32]byte
	hashers sync.Pool
}

func deriveKeys(master []byte) (*keys, error) {
	var encKey [32]byte
	k := &keys{}
	blake3.DeriveKey("pxb v1 AES-256-GCM key", master, encKey[:])
	blake3.DeriveKey("pxb v1 blob id key", master, k.idKey[:])
	blake3.DeriveKey("pxb v1 chunker gear key", master, k.gearKey[:])
	aead, err := newAEAD(encKey[:])
	if err != nil {
		return nil, err
	}
	k.aead = aead
	k.hashers.New = func() any {
		h, err := blake3.NewKeyed(k.idKey[:])
		if err != nil {
			// NewKeyed only fails for a key that is not 32 bytes long.
			panic(err)
		}
		return h
	}
	return k, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	return cipher.NewGCM(block)
}

// hash returns the keyed BLAKE3 ID of data.
func (k *keys) hash(data []byte) ID {
	h := k.hashers.Get().(*blake3.Hasher)
	h.Reset()
	_, _ = h.Write(data)
	var id ID
	h.Sum(id[:0])
	k.hashers.Put(h)
	return id
}

// seal appends nonce|ciphertext|tag of plaintext to dst.
func seal(aead cipher.AEAD, dst, plaintext, ad []byte) []byte {
	start := len(dst)
	dst = grow(dst, nonceLen)
	nonce := dst[start : start+nonceLen]
	if _, err := rand.Read(nonce); err != nil {
		// crypto/rand never fails on supported platforms.
		panic(err)
	}
	return aead.Seal(dst, nonce, plaintext, ad)
}

// open decrypts nonce|ciphertext|tag and appends the plaintext to dst.
func open(aead cipher.AEAD, dst, sealed, ad []byte) ([]byte, error) {
	if len(sealed) < overhead {
		return nil, fmt.Errorf("%d bytes is shorter than the %d-byte encryption overhead", len(sealed), overhead)
	}
	out, err := aead.Open(dst, sealed[:nonceLen], sealed[nonceLen:], ad)
	if err != nil {
		return nil, errAuth
	}
	return out, nil
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), 2*cap(b)+n)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return fmt.Sprintf("%x", b)
}
