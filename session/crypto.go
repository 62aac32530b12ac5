package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/gorilla/securecookie"
	"golang.org/x/crypto/hkdf"
)

// Key derivation labels. Changing one invalidates every cookie or sealed blob made with it.
const (
	hkdfSalt      = "authgate/session/v1"
	infoCookieMAC = "authgate/session/cookie-hmac"
	infoTokenAEAD = "authgate/session/token-aead"

	minSecretLen = 32
	idBytes      = 32
	idLen        = 43 // base64url (no padding) of idBytes
	handleLen    = 22
	maxCookieLen = 4096 // securecookie's limit for what encodeCookie makes
)

// errSealed is returned when a sealed blob does not open with any configured key: it was made
// with a removed secret, for another session, or was tampered with.
var errSealed = errors.New("session: sealed data does not verify")

// keys holds everything derived from Options.Secrets.
type keys struct {
	codecs       []securecookie.Codec // cookie HMAC, first signs (encodeCookie)
	scratch      *sync.Pool           // *cookieScratch with an HMAC per secret, all verify (decodeCookie)
	cookieMaxAge int                  // seconds
	sealer       sealer               // token / flow AEAD, first seals, all open
	ua           uaZipper             // user agents in records (uazip.go)
}

// deriveKeys derives, for each secret, an HMAC key for the cookie and an AES-256-GCM key for
// data at rest, with HKDF-SHA256 and distinct labels so the two never share key material.
func deriveKeys(secrets [][]byte, cookieMaxAge int) (keys, error) {
	if len(secrets) == 0 {
		return keys{}, errors.New("session: at least one secret is required")
	}
	pairs := make([][]byte, 0, 2*len(secrets))
	macKeys := make([][]byte, 0, len(secrets))
	k := keys{cookieMaxAge: cookieMaxAge, ua: newUAZipper()}
	for i, secret := range secrets {
		if len(secret) < minSecretLen {
			return keys{}, fmt.Errorf("session: secret #%d is shorter than %d bytes", i+1, minSecretLen)
		}
		mac, err := expand(secret, infoCookieMAC)
		if err != nil {
			return keys{}, err
		}
		enc, err := expand(secret, infoTokenAEAD)
		if err != nil {
			return keys{}, err
		}
		block, err := aes.NewCipher(enc)
		if err != nil {
			return keys{}, fmt.Errorf("session: aes: %w", err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return keys{}, fmt.Errorf("session: gcm: %w", err)
		}
		sum := sha256.Sum256(enc)
		k.sealer.keys = append(k.sealer.keys, sealKey{id: sum[0], aead: aead})
		pairs = append(pairs, mac, nil)
		macKeys = append(macKeys, mac)
	}
	k.scratch = newScratchPool(macKeys)
	k.codecs = securecookie.CodecsFromPairs(pairs...)
	for _, c := range k.codecs {
		sc := c.(*securecookie.SecureCookie)
		sc.MaxAge(cookieMaxAge)
		sc.MaxLength(maxCookieLen)
		sc.SetSerializer(securecookie.NopEncoder{})
	}
	return k, nil
}

func expand(secret []byte, info string) ([]byte, error) {
	out := make([]byte, 32)
	if _, err := io.ReadFull(hkdf.New(sha256.New, secret, []byte(hkdfSalt), []byte(info)), out); err != nil {
		return nil, fmt.Errorf("session: hkdf: %w", err)
	}
	return out, nil
}

type sealKey struct {
	id   byte
	aead cipher.AEAD
}

// sealer is AES-256-GCM with a random nonce. A blob is keyID(1) | nonce(12) | ciphertext+tag.
// The key id (first byte of SHA-256 of the key) picks the key after a rotation; the associated
// data binds the blob to where it is stored, so it cannot be moved to another key.
type sealer struct{ keys []sealKey }

func (s sealer) seal(plain, ad []byte) ([]byte, error) {
	k := s.keys[0]
	ns := k.aead.NonceSize()
	out := make([]byte, 1+ns, 1+ns+len(plain)+k.aead.Overhead())
	out[0] = k.id
	if _, err := rand.Read(out[1 : 1+ns]); err != nil {
		return nil, fmt.Errorf("session: random nonce: %w", err)
	}
	return k.aead.Seal(out, out[1:1+ns], plain, ad), nil
}

func (s sealer) open(blob, ad []byte) ([]byte, error) { return s.openTo(nil, blob, ad) }

// openTo is open appending the plaintext to dst.
func (s sealer) openTo(dst, blob, ad []byte) ([]byte, error) {
	for _, k := range s.keys {
		ns := k.aead.NonceSize()
		if len(blob) < 1+ns+k.aead.Overhead() || blob[0] != k.id {
			continue
		}
		if plain, err := k.aead.Open(dst, blob[1:1+ns], blob[1+ns:], ad); err == nil {
			return plain, nil
		}
	}
	return nil, errSealed
}

// newID returns a fresh session id: 32 bytes from crypto/rand, base64url without padding.
func newID() (string, error) {
	var b [idBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("session: random id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// handleOf is the public name of a session: base64url(SHA-256(id))[:22]. It names the Redis
// key and is what operators see; it cannot be turned back into the id.
func handleOf(id string) string {
	var h [handleLen]byte
	putHandle(&h, id)
	return string(h[:])
}

// putHandle writes handleOf(id) into h without allocating.
func putHandle(h *[handleLen]byte, id string) {
	var buf [idLen]byte // a stack copy: []byte(id) of a 43-byte id would be a heap allocation
	sum := sha256.Sum256(buf[:copy(buf[:], id)])
	var enc [idLen]byte // base64url of 32 bytes, like an id
	base64.RawURLEncoding.Encode(enc[:], sum[:])
	copy(h[:], enc[:])
}

// hashKey hashes free-form parts (issuer, sid, state) into a fixed, key-safe string. Parts are
// NUL-separated so ("a","bc") and ("ab","c") differ.
func hashKey(parts ...string) string {
	h := sha256.New()
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{0})
		}
		h.Write([]byte(p))
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

func isB64URL(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validID reports whether s has the shape of an id made by newID.
func validID(s string) bool { return isB64URL(s, idLen) }

// validHandle reports whether s has the shape of a handle, so no other string reaches a key.
func validHandle(s string) bool { return isB64URL(s, handleLen) }

// encodeCookie signs id with the first secret.
func (k keys) encodeCookie(name, id string) (string, error) {
	v, err := k.codecs[0].Encode(name, []byte(id))
	if err != nil {
		return "", fmt.Errorf("session: sign cookie: %w", err)
	}
	return v, nil
}
