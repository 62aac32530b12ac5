package ops

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/authgate/authgate/session"
	"github.com/authgate/authgate/test/fixture"
	"github.com/chromedp/chromedp"
)

// TestOperatorPage drives the operator page in headless Chromium: enter the token, search by
// email, see the live sessions, click one revoke button, and check in the store that exactly
// that session ended.
func TestOperatorPage(t *testing.T) {
	e := newTestEnv(t, nil)
	kate, liam := e.seedUser(t, "kate"), e.seedUser(t, "liam")
	k1, k2, l1 := e.seedSession(t, kate), e.seedSession(t, kate), e.seedSession(t, liam)
	ctx := fixture.Browser(t)

	// Handles may start with a digit or "-", which a #id selector cannot; an attribute one can.
	byID := func(id string) chromedp.CSS { return chromedp.CSS(`[id="` + id + `"]`) }
	err := chromedp.Do(ctx,
		chromedp.EmulateViewport(1366, 800), // a laptop
		chromedp.Navigate(e.srv.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), testToken),
		chromedp.Click(chromedp.ID("save-token")),
		chromedp.SendKeys(chromedp.ID("search"), "kate@example.com"),
		chromedp.Click(chromedp.ID("search-button")),
		chromedp.WaitVisible(byID("revoke-"+k1.rec.Handle)),
		chromedp.WaitVisible(byID("disable-"+kate.ID)),
		// The page lists every session before the search answers; wait for the filtered list.
		chromedp.WaitNotPresent(byID("session-"+l1.rec.Handle)),
	)
	if err != nil {
		t.Fatalf("search on the page: %v", err)
	}
	fixture.Screenshot(t, ctx, "ops-page-search")
	sessionsText := text(t, ctx, chromedp.Text(chromedp.ID("sessions")))
	usersText := text(t, ctx, chromedp.Text(chromedp.ID("users")))
	if stored := text(t, ctx, chromedp.Evaluate[string](`sessionStorage.getItem("authgate-ops-token")`)); stored != testToken {
		t.Errorf("sessionStorage token %q, want the one typed in", stored)
	}
	for _, want := range []string{k1.rec.Handle, k2.rec.Handle, "kate@example.com", "192.0.2.7"} {
		if !strings.Contains(sessionsText, want) {
			t.Errorf("sessions table lacks %q:\n%s", want, sessionsText)
		}
	}
	if strings.Contains(sessionsText, l1.rec.Handle) || !strings.Contains(usersText, kate.ID) {
		t.Errorf("search by kate's email shows sessions %q, users %q", sessionsText, usersText)
	}

	err = chromedp.Do(ctx,
		chromedp.Click(byID("revoke-"+k1.rec.Handle)),
		chromedp.WaitNotPresent(byID("session-"+k1.rec.Handle)),
	)
	if err != nil {
		t.Fatalf("revoke on the page: %v", err)
	}
	fixture.Screenshot(t, ctx, "ops-page-revoked")
	if status := text(t, ctx, chromedp.Text(chromedp.ID("status"))); !strings.Contains(status, "revoked") {
		t.Errorf("status %q, want a revocation message", status)
	}
	if _, err := e.sessions.Lookup(context.Background(), k1.rec.Handle); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Lookup of the revoked session: %v, want ErrNotFound", err)
	}
	if e.live(t, k1) {
		t.Error("the revoked session's cookie still works")
	}
	if !e.live(t, k2) || !e.live(t, l1) {
		t.Error("clicking one revoke button ended other sessions")
	}
}

// text runs an action that returns a string in the tab of ctx.
func text(t *testing.T, ctx context.Context, a chromedp.Action[string]) string {
	t.Helper()
	s, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	return s
}
