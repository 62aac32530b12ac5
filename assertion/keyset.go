package assertion

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Key schedule. Time is cut into slots of RotationPeriod (slot n = [n*R, (n+1)*R)). The key of
// slot n is created by the first instance that needs it, normally at n*R - PublishLead, with a
// set-if-absent so that every instance ends up with the same key. A key signs once it has been
// published for PublishLead (the newest such key signs), and is deleted by the backend TTL at
// (n+1)*R + 2*PublishLead + TokenTTL + CacheTTL: after the next key took over and every
// assertion it signed has expired. A fresh deployment has no published key yet: then the
// newest key signs at once (verifiers refetch the JWKS on an unknown kid).

// key is one signing key of the schedule.
type key struct {
	slot    int64
	kid     string // RFC 7638 thumbprint, base64url
	created time.Time
	pub     *ecdsa.PublicKey
	signer  jose.Signer
}

// keySet is an immutable snapshot of the keys in the backend.
type keySet struct {
	fetched    time.Time
	validUntil time.Time
	keys       []*key // ascending slot
	jwks       []byte
}

// fresh reports whether the snapshot may still be used without reading the backend.
func (ks *keySet) fresh(now time.Time) bool {
	return now.Before(ks.validUntil) && !now.Before(ks.fetched)
}

// signingKey is the newest key published at least lead ago, else the newest key (bootstrap).
func (ks *keySet) signingKey(now time.Time, lead time.Duration) *key {
	for i := len(ks.keys) - 1; i >= 0; i-- {
		if !ks.keys[i].created.After(now.Add(-lead)) {
			return ks.keys[i]
		}
	}
	if len(ks.keys) == 0 {
		return nil
	}
	return ks.keys[len(ks.keys)-1]
}

func (s *Signer) slotOf(t time.Time) int64 {
	r := int64(s.opts.RotationPeriod)
	n := t.UnixNano()
	if n < 0 && n%r != 0 {
		return n/r - 1
	}
	return n / r
}

func (s *Signer) slotStart(n int64) time.Time { return time.Unix(0, n*int64(s.opts.RotationPeriod)) }

func (s *Signer) slotExpiry(n int64) time.Time {
	o := s.opts
	return s.slotStart(n + 1).Add(2*o.PublishLead + o.TokenTTL + o.CacheTTL)
}

func (s *Signer) backendKey(n int64) string {
	return s.opts.KeyPrefix + "{assertion}:key:" + strconv.FormatInt(n, 10)
}

// load reads the keys of the previous, current and next slot, creating the current one (and the
// next one once its publication time has come) when absent, and builds a snapshot.
func (s *Signer) load(ctx context.Context, now time.Time) (*keySet, error) {
	n := s.slotOf(now)
	slots := []int64{n - 1, n, n + 1}
	raw, err := s.read(ctx, slots)
	if err != nil {
		return nil, err
	}
	publishNext := s.slotStart(n + 1).Add(-s.opts.PublishLead)
	want := []int{1}
	if !now.Before(publishNext) {
		want = append(want, 2)
	}
	made := false
	for _, i := range want {
		if raw[i] == nil {
			if err := s.create(ctx, slots[i], now); err != nil {
				return nil, err
			}
			made = true
		}
	}
	if made {
		if raw, err = s.read(ctx, slots); err != nil {
			return nil, err
		}
	}
	ks := &keySet{fetched: now, validUntil: now.Add(s.opts.CacheTTL)}
	if end := s.slotStart(n + 1); end.Before(ks.validUntil) {
		ks.validUntil = end
	}
	if now.Before(publishNext) && publishNext.Before(ks.validUntil) {
		ks.validUntil = publishNext
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for i, b := range raw {
		if b == nil {
			continue
		}
		k, err := s.open(slots[i], b)
		if err != nil {
			s.log.Error("assertion: a stored signing key does not open with this instance's secrets", "slot", slots[i], "err", err)
			continue
		}
		ks.keys = append(ks.keys, k)
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.pub, KeyID: k.kid, Algorithm: string(jose.ES256), Use: "sig"})
	}
	if ks.jwks, err = json.Marshal(set); err != nil {
		return nil, fmt.Errorf("assertion: encode jwks: %w", err)
	}
	return ks, nil
}

func (s *Signer) read(ctx context.Context, slots []int64) ([][]byte, error) {
	keys := make([]string, len(slots))
	for i, n := range slots {
		keys[i] = s.backendKey(n)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.OpTimeout)
	defer cancel()
	return s.b.getMany(ctx, keys)
}

// create generates a key for slot n and stores it unless another instance was first.
func (s *Signer) create(ctx context.Context, n int64, now time.Time) error {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("assertion: generate key: %w", err)
	}
	val, err := s.seal(n, priv, now)
	if err != nil {
		return err
	}
	ttl := s.slotExpiry(n).Sub(now)
	ctx, cancel := context.WithTimeout(ctx, s.opts.OpTimeout)
	defer cancel()
	won, err := s.b.setNX(ctx, s.backendKey(n), val, ttl)
	if err != nil {
		return err
	}
	if won {
		s.log.Info("assertion: new signing key", "slot", n)
	}
	return nil
}

// storedKey is the plaintext of a sealed backend entry.
type storedKey struct {
	Created int64  `json:"c"` // unix nanoseconds
	DER     string `json:"d"` // PKCS #8, base64url
}

// seal encodes a key as nonce || AES-GCM(JSON), bound to its slot as associated data so that an
// entry cannot be moved to another slot. The public key is not stored apart: an entry that does
// not open (forged, or sealed with an unknown secret) is neither published nor used.
func (s *Signer) seal(n int64, priv *ecdsa.PrivateKey, now time.Time) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("assertion: encode key: %w", err)
	}
	plain, err := json.Marshal(storedKey{Created: now.UnixNano(), DER: base64.RawURLEncoding.EncodeToString(der)})
	if err != nil {
		return nil, fmt.Errorf("assertion: encode key: %w", err)
	}
	aead := s.aeads[0]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("assertion: nonce: %w", err)
	}
	return aead.Seal(nonce, nonce, plain, associatedData(n)), nil
}

func associatedData(n int64) []byte {
	return []byte("authgate/assertion-key/v1/" + strconv.FormatInt(n, 10))
}

var errSealed = errors.New("assertion: sealed key does not verify")

// open decodes a sealed entry of slot n into a key ready to sign.
func (s *Signer) open(n int64, b []byte) (*key, error) {
	var plain []byte
	for _, aead := range s.aeads {
		if len(b) < aead.NonceSize() {
			break
		}
		p, err := aead.Open(nil, b[:aead.NonceSize()], b[aead.NonceSize():], associatedData(n))
		if err == nil {
			plain = p
			break
		}
	}
	if plain == nil {
		return nil, errSealed
	}
	var sk storedKey
	if err := json.Unmarshal(plain, &sk); err != nil {
		return nil, fmt.Errorf("assertion: decode key: %w", err)
	}
	der, err := base64.RawURLEncoding.DecodeString(sk.DER)
	if err != nil {
		return nil, fmt.Errorf("assertion: decode key: %w", err)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("assertion: decode key: %w", err)
	}
	priv, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, errors.New("assertion: stored key is not ECDSA P-256")
	}
	return newKey(n, priv, time.Unix(0, sk.Created))
}

func newKey(n int64, priv *ecdsa.PrivateKey, created time.Time) (*key, error) {
	thumb, err := (&jose.JSONWebKey{Key: &priv.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("assertion: thumbprint: %w", err)
	}
	kid := base64.RawURLEncoding.EncodeToString(thumb)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: priv, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("assertion: signer: %w", err)
	}
	return &key{slot: n, kid: kid, created: created, pub: &priv.PublicKey, signer: signer}, nil
}
