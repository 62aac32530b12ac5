package gateway

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/authgate/authgate/session"
	"github.com/authgate/authgate/users"
)

// Token refresh, on the request path of pass_access_token routes only: they are the routes that
// need a valid access token. Every other route relies on the gateway's own idle and absolute
// timeouts; the IdP's tokens are not consulted there (docs/sessions.md).
//
// A refresh happens once per session across every instance: the request that takes the
// "refresh:"+handle lock re-reads the record (another holder may just have refreshed it),
// redeems the refresh token and updates the record; the others use the current token while it
// is still usable, and otherwise wait for the record to change.
const (
	DefaultRefreshSkew = 30 * time.Second // refresh this long before the access token expires

	refreshLockTTL  = 20 * time.Second      // > idpTimeout + store writes
	refreshWait     = 3 * time.Second       // how long a request waits for another's refresh
	refreshPoll     = 50 * time.Millisecond // how often it re-reads the record meanwhile
	refreshBackoff  = 5 * time.Second       // no new attempt this long after the IdP failed
	minTokenMargin  = 5 * time.Second       // a token this close to expiry is not sent
	backoffMapLimit = 10000                 // bound of the in-process backoff map
)

var (
	// errSessionEnded means the session ended while the request was served (the IdP refused
	// the refresh, or it was revoked meanwhile): clear the cookie, answer as unauthenticated.
	errSessionEnded = errors.New("session ended")
	// errNeedsLogin means the access token expired and there is no refresh token, or the
	// session kept no access token: answer as unauthenticated; the next login replaces the
	// session (the cookie is kept for that).
	errNeedsLogin = errors.New("access token expired and cannot be refreshed")
)

// refreshState is the in-process part of refreshing: when the IdP last failed, per session, so
// that an IdP outage does not cost every request an attempt.
type refreshState struct {
	mu     sync.Mutex
	failed map[string]time.Time // handle -> time of the failure
}

func newRefreshState() *refreshState { return &refreshState{failed: map[string]time.Time{}} }

func (s *refreshState) inBackoff(handle string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.failed[handle]
	return ok && now.Sub(t) < refreshBackoff && !now.Before(t)
}

func (s *refreshState) noteFailure(handle string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failed) >= backoffMapLimit {
		for h, t := range s.failed {
			if now.Sub(t) >= refreshBackoff {
				delete(s.failed, h)
			}
		}
		if len(s.failed) >= backoffMapLimit {
			clear(s.failed)
		}
	}
	s.failed[handle] = now
}

func (s *refreshState) clearFailure(handle string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.failed, handle)
}

func (g *Gateway) refreshSkew() time.Duration {
	if g.opts.RefreshSkew > 0 {
		return g.opts.RefreshSkew
	}
	return DefaultRefreshSkew
}

// tokenDue reports whether rec's access token should be refreshed now.
func (g *Gateway) tokenDue(rec *session.Record) bool {
	return !rec.TokenExpiry.IsZero() && !g.now().Add(g.refreshSkew()).Before(rec.TokenExpiry)
}

// tokenUsable reports whether rec's access token can still be sent upstream.
func (g *Gateway) tokenUsable(rec *session.Record) bool {
	margin := min(minTokenMargin, g.refreshSkew())
	return rec.TokenExpiry.IsZero() || g.now().Add(margin).Before(rec.TokenExpiry)
}

// freshTokens returns the record to forward a pass_access_token request with: rec itself while
// its access token is not due, else the record with refreshed tokens. errSessionEnded means the
// session is gone; other errors are httpErrors.
func (g *Gateway) freshTokens(r *http.Request, rec *session.Record) (*session.Record, error) {
	if rec.AccessToken == "" {
		// Made while no route passed the access token (dropUnusedTokens): a new login gets one.
		return nil, errNeedsLogin
	}
	if !g.tokenDue(rec) {
		return rec, nil
	}
	if rec.RefreshToken == "" || g.refresh.inBackoff(rec.Handle, g.now()) {
		return g.staleToken(rec, nil)
	}
	ctx := r.Context()
	lctx, cancel := context.WithTimeout(ctx, storeTimout)
	unlock, ok, err := g.opts.Sessions.TryLock(lctx, "refresh:"+rec.Handle, refreshLockTTL)
	cancel()
	if err != nil {
		return nil, storeFailure(err)
	}
	if !ok {
		if g.tokenUsable(rec) {
			return rec, nil // another request is refreshing; this token still does
		}
		return g.awaitRefresh(ctx, rec)
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimout)
		_ = unlock(uctx)
		cancel()
	}()
	cur, err := g.lookup(ctx, rec.Handle)
	if err != nil {
		return nil, err
	}
	if !g.tokenDue(cur) {
		return cur, nil // refreshed by the previous holder just now
	}
	return g.redeemRefresh(r, cur)
}

// staleToken serves rec with its current access token while it is usable; after that the
// request fails with 503, or, without a refresh token, asks for a new login (the session keeps
// working on routes without pass_access_token).
func (g *Gateway) staleToken(rec *session.Record, cause error) (*session.Record, error) {
	if g.tokenUsable(rec) {
		return rec, nil
	}
	if rec.RefreshToken == "" {
		return nil, errNeedsLogin
	}
	return nil, fail(http.StatusServiceUnavailable, "idp_unavailable",
		"The identity provider cannot be reached to renew your access. Please try again shortly.", cause)
}

// awaitRefresh waits (bounded) for the lock holder's refresh to show in the record.
func (g *Gateway) awaitRefresh(ctx context.Context, rec *session.Record) (*session.Record, error) {
	deadline := time.NewTimer(refreshWait)
	defer deadline.Stop()
	tick := time.NewTicker(refreshPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, fail(http.StatusServiceUnavailable, "refresh_pending", "The request was cancelled.", ctx.Err())
		case <-deadline.C:
			return g.staleToken(rec, errors.New("waited too long for another instance's token refresh"))
		case <-tick.C:
		}
		cur, err := g.lookup(ctx, rec.Handle)
		if err != nil {
			return nil, err
		}
		if !cur.TokenExpiry.Equal(rec.TokenExpiry) || cur.AccessToken != rec.AccessToken {
			return cur, nil
		}
		if g.refresh.inBackoff(rec.Handle, g.now()) {
			return g.staleToken(rec, errors.New("token refresh failed on this instance"))
		}
	}
}

// lookup re-reads a session record; errSessionEnded when it is gone.
func (g *Gateway) lookup(ctx context.Context, handle string) (*session.Record, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimout)
	defer cancel()
	cur, err := g.opts.Sessions.Lookup(ctx, handle)
	switch {
	case errors.Is(err, session.ErrNotFound):
		return nil, errSessionEnded
	case err != nil:
		return nil, storeFailure(err)
	}
	return cur, nil
}

// redeemRefresh redeems cur's refresh token at the IdP and stores the new tokens. The caller
// holds the refresh lock. The IdP call and the store write do not follow the request's
// cancellation: a rotated refresh token that is redeemed must also be stored.
func (g *Gateway) redeemRefresh(r *http.Request, cur *session.Record) (*session.Record, error) {
	d, err := g.idp.get()
	if err != nil {
		return g.refreshUnavailable(cur, err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), idpTimeout)
	defer cancel()
	ctx = oidc.ClientContext(ctx, g.opts.HTTPClient)
	tok, err := d.oauth.TokenSource(ctx, &oauth2.Token{RefreshToken: cur.RefreshToken}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
			return nil, g.endRefusedSession(r, cur, "invalid_grant")
		}
		return g.refreshUnavailable(cur, err)
	}
	next := *cur
	next.AccessToken, next.RefreshToken, next.TokenExpiry = tok.AccessToken, tok.RefreshToken, tok.Expiry
	if raw, _ := tok.Extra("id_token").(string); raw != "" {
		idt, err := d.verifier.Verify(ctx, raw)
		switch {
		case err != nil:
			g.log.Warn("refreshed id token does not verify; keeping the previous one", "handle", cur.Handle, "err", err)
		case idt.Subject != cur.Subject:
			return nil, g.endRefusedSession(r, cur, "subject_mismatch")
		case cur.IDToken != "": // else not kept: the IdP has no end_session_endpoint
			next.IDToken = raw
		}
	}
	uctx, ucancel := context.WithTimeout(context.WithoutCancel(r.Context()), storeTimout)
	defer ucancel()
	if err := g.opts.Sessions.Update(uctx, &next); err != nil {
		if errors.Is(err, session.ErrNotFound) {
			return nil, errSessionEnded // revoked while refreshing
		}
		g.obs.ObserveRefresh("error")
		return nil, storeFailure(err)
	}
	g.refresh.clearFailure(cur.Handle)
	g.obs.ObserveRefresh("success")
	return &next, nil
}

// refreshUnavailable handles an IdP that could not be reached (or answered with something
// other than a refusal): log, back off, and keep serving the current token until it expires.
func (g *Gateway) refreshUnavailable(cur *session.Record, err error) (*session.Record, error) {
	g.obs.ObserveRefresh("error")
	g.refresh.noteFailure(cur.Handle, g.now())
	g.log.Warn("token refresh failed; the current access token is used while it is valid",
		"handle", cur.Handle, "expires_in", cur.TokenExpiry.Sub(g.now()).Round(time.Second), "err", err)
	return g.staleToken(cur, err)
}

// endRefusedSession ends a session whose refresh the IdP refused.
func (g *Gateway) endRefusedSession(r *http.Request, cur *session.Record, reason string) error {
	g.obs.ObserveRefresh("refused")
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), storeTimout)
	defer cancel()
	if err := g.opts.Sessions.Revoke(ctx, cur.Handle); err != nil && !errors.Is(err, session.ErrNotFound) {
		return storeFailure(err)
	}
	g.obs.ObserveRevocation("refresh_failure", 1)
	g.log.Info("token refresh refused; session ended", "handle", cur.Handle, "user_id", cur.UserID, "reason", reason)
	g.opts.Users.Audit(users.Event{Time: g.now(), Kind: users.KindRefreshFailure, UserID: cur.UserID, SessionHandle: cur.Handle,
		IP: g.clientIP(r), UserAgent: userAgent(r), Reason: reason})
	return errSessionEnded
}

// storeFailure is the 503 of a session store that cannot be reached (fail closed).
func storeFailure(err error) error {
	return fail(http.StatusServiceUnavailable, "session_store_unavailable",
		"The service is temporarily unavailable. Please try again shortly.", err)
}

// sessionGone answers a request whose session ended while it was served (errSessionEnded: the
// cookie is cleared too) or whose access token cannot be renewed (errNeedsLogin) like one
// without a session: 302 to the login for navigations, 401 otherwise. Other errors pass.
func (g *Gateway) sessionGone(w http.ResponseWriter, r *http.Request, err error) error {
	switch {
	case errors.Is(err, errSessionEnded):
		g.opts.Sessions.ClearCookie(w)
		return g.unauthenticated(w, r)
	case errors.Is(err, errNeedsLogin):
		return g.unauthenticated(w, r)
	}
	return err
}
