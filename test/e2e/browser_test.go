package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/authgate/authgate/test/fixture"
)

// TestBrowserLogin drives a real headless Chromium through the whole flow: a protected page
// redirects to the IdP's login page, the user signs in, and the browser lands on the page it
// asked for, served by the upstream with the identity headers. Two tabs log in at once.
func TestBrowserLogin(t *testing.T) {
	g := fixture.StartGateway(t, fixture.GatewayOptions{})
	ctx := fixture.Browser(t)
	err := chromedp.Do(ctx,
		chromedp.Navigate(g.URL+"/dashboard/reports?range=7d"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), "alice"),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitReady(`body`),
	)
	if err != nil {
		t.Fatal(err)
	}
	loc := waitLocation(t, ctx, g.URL+"/dashboard")
	body := text(t, ctx)
	fixture.Screenshot(t, ctx, "after-login")
	if loc != g.URL+"/dashboard/reports?range=7d" {
		t.Errorf("landed on %q", loc)
	}
	for _, want := range []string{`"path":"/dashboard/reports"`, `"X-Auth-Subject":"user-alice"`, `"X-Auth-Roles":"super_admin"`} {
		if !strings.Contains(body, want) {
			t.Errorf("upstream page lacks %s: %s", want, body)
		}
	}
	got, _ := g.Echo.Last()
	if c := strings.Join(got.Header.Values("Cookie"), ";"); strings.Contains(c, fixture.CookieName+"=") {
		t.Errorf("session cookie reached the upstream: %q", c)
	}

	// The admin route answers alice (super_admin); a fresh login (another user) in the same
	// browser replaces the session.
	if err := chromedp.Do(ctx, chromedp.Navigate(g.URL+"/admin/panel")); err != nil {
		t.Fatal(err)
	}
	body = text(t, ctx)
	if !strings.Contains(body, `"path":"/admin/panel"`) {
		t.Errorf("alice on /admin/: %s", body)
	}
}

// TestBrowserTwoTabs starts two logins in two tabs of one browser before finishing either;
// both complete (login state is per flow, not one cookie that the second tab overwrites).
func TestBrowserTwoTabs(t *testing.T) {
	g := fixture.StartGateway(t, fixture.GatewayOptions{})
	ctx := fixture.Browser(t)
	tab2, cancel := chromedp.NewContext(ctx)
	defer cancel()
	for _, c := range []struct {
		ctx  context.Context
		path string
	}{{ctx, "/one"}, {tab2, "/two"}} {
		if err := chromedp.Do(c.ctx, chromedp.Navigate(g.URL+c.path), chromedp.WaitVisible(chromedp.ID("username"))); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		ctx  context.Context
		path string
	}{{ctx, "/one"}, {tab2, "/two"}} {
		err := chromedp.Do(c.ctx,
			chromedp.SendKeys(chromedp.ID("username"), "bob"),
			chromedp.SendKeys(chromedp.ID("password"), "bob"),
			chromedp.Click(chromedp.ID("submit")),
			chromedp.WaitReady(`body`),
		)
		if err != nil {
			t.Fatal(err)
		}
		loc := waitLocation(t, c.ctx, g.URL+c.path)
		if loc != g.URL+c.path {
			t.Errorf("tab for %s landed on %q", c.path, loc)
		}
	}
}

// waitLocation waits (10s at most) until the tab's URL starts with prefix and returns it.
func waitLocation(t *testing.T, ctx context.Context, prefix string) string {
	t.Helper()
	var loc string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var err error
		if loc, err = chromedp.Run(ctx, chromedp.Location()); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(loc, prefix) {
			break
		}
	}
	_ = chromedp.Do(ctx, chromedp.WaitReady(`body`))
	return loc
}

func text(t *testing.T, ctx context.Context) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(`body`))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
