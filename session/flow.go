package session

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Flow is the server-side half of one login in progress, stored under its OAuth `state`.
type Flow struct {
	Nonce, Verifier, ReturnTo, Provider string
	Binding                             string // ties the flow to the browser that started it (e.g. hash of the tx cookie)
	CreatedAt                           time.Time
}

// Flow limits.
const (
	DefaultFlowTTL = 10 * time.Minute
	maxStateLen    = 512
)

func (s *Store) flowKey(state string) string { return s.opts.KeyPrefix + "f:{" + hashKey(state) + "}" }

func flowAD(key string) []byte { return []byte("authgate/session/flow\x00" + key) }

// PutFlow stores f under state for ttl (default 10m when <= 0). The whole flow, PKCE verifier
// included, is sealed with AES-GCM; state itself is only stored hashed. state must be a fresh
// random value of the caller (>= 128 bits); a state already in use is an error.
func (s *Store) PutFlow(ctx context.Context, state string, f Flow, ttl time.Duration) error {
	if state == "" || len(state) > maxStateLen {
		return errors.New("session: invalid flow state")
	}
	if ttl <= 0 {
		ttl = DefaultFlowTTL
	}
	if f.CreatedAt.IsZero() {
		f.CreatedAt = s.now()
	}
	plain, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("session: encode flow: %w", err)
	}
	key := s.flowKey(state)
	blob, err := s.keys.sealer.seal(plain, flowAD(key))
	if err != nil {
		return err
	}
	ok, err := s.b.set(ctx, key, blob, ttl, setNX)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("session: flow state already in use")
	}
	return nil
}

// TakeFlow returns the flow stored under state and deletes it in the same step (GETDEL): of
// any number of concurrent callers on any number of instances, at most one gets it; the others
// and every later call get ErrNotFound. The caller must still check f.Binding against the
// browser and f.CreatedAt against its own limit.
func (s *Store) TakeFlow(ctx context.Context, state string) (Flow, error) {
	if state == "" || len(state) > maxStateLen {
		return Flow{}, ErrNotFound
	}
	key := s.flowKey(state)
	blob, err := s.b.getDel(ctx, key)
	if errors.Is(err, errMissing) {
		return Flow{}, ErrNotFound
	}
	if err != nil {
		return Flow{}, err
	}
	plain, err := s.keys.sealer.open(blob, flowAD(key))
	if err != nil {
		return Flow{}, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	var f Flow
	if err := json.Unmarshal(plain, &f); err != nil {
		return Flow{}, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return f, nil
}

// TryLock takes a lock named name for at most ttl, shared by every instance on the same
// backend (e.g. one token refresh per session: name = "refresh:"+handle). ok is false when
// another holder has it. The caller must call unlock when done (it releases only its own
// lock, never one taken after ttl ran out) and must finish its work well within ttl.
func (s *Store) TryLock(ctx context.Context, name string, ttl time.Duration) (unlock func(context.Context) error, ok bool, err error) {
	if ttl <= 0 {
		return nil, false, errors.New("session: lock ttl must be positive")
	}
	token := make([]byte, 16)
	if _, err := rand.Read(token); err != nil {
		return nil, false, fmt.Errorf("session: random lock token: %w", err)
	}
	key := s.opts.KeyPrefix + "l:{" + hashKey(name) + "}"
	ok, err = s.b.set(ctx, key, token, ttl, setNX)
	if err != nil || !ok {
		return nil, false, err
	}
	return func(ctx context.Context) error { return s.b.delIfEqual(ctx, key, token) }, true, nil
}
