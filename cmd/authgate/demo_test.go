package main

import (
	"bufio"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/authgate/authgate/test/fixture"
)

// TestDemoInBrowser runs `authgate demo` as a subprocess, as a newcomer would, and logs in as
// each demo user in headless Chromium: the dashboard shows the identity headers, the admin
// app opens for alice (super_admin) only, logout works. Screenshots go to the test's temp dir.
func TestDemoInBrowser(t *testing.T) {
	ctx := fixture.Browser(t)
	cmd := exec.Command(binPath, "demo", "--listen", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	base := demoURL(t, bufio.NewScanner(stdout))
	for _, tc := range []struct {
		user      string
		wantRoles string
		adminOK   bool
	}{
		{user: "alice", wantRoles: "super_admin", adminOK: true},
		{user: "bob", wantRoles: "viewer", adminOK: false},
	} {
		err := chromedp.Do(ctx,
			chromedp.Navigate(base+"/"),
			chromedp.WaitVisible(chromedp.ID("username")),
			chromedp.SendKeys(chromedp.ID("username"), tc.user),
			chromedp.SendKeys(chromedp.ID("password"), tc.user),
			chromedp.Click(chromedp.ID("submit")),
			chromedp.WaitVisible(chromedp.ID("headers")),
		)
		if err != nil {
			fixture.Screenshot(t, ctx, tc.user+"-login-failed")
			t.Fatalf("%s: login: %v", tc.user, err)
		}
		roles, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("X-Auth-Roles")))
		if err != nil || roles != tc.wantRoles {
			t.Errorf("%s: dashboard shows X-Auth-Roles %q (%v), want %q", tc.user, roles, err, tc.wantRoles)
		}
		fixture.Screenshot(t, ctx, tc.user+"-dashboard")

		if err := chromedp.Do(ctx, chromedp.Navigate(base+"/admin/"), chromedp.WaitReady(`body`)); err != nil {
			t.Fatal(err)
		}
		title, _ := chromedp.Run(ctx, chromedp.Title())
		if got := strings.Contains(title, "Admin console"); got != tc.adminOK {
			t.Errorf("%s: /admin/ title %q, admin reachable = %v, want %v", tc.user, title, got, tc.adminOK)
		}
		fixture.Screenshot(t, ctx, tc.user+"-admin")

		// Log out with the dashboard's button (a POST), then the dashboard asks for a login again.
		err = chromedp.Do(ctx,
			chromedp.Navigate(base+"/"),
			chromedp.WaitVisible(chromedp.ID("logout")),
			chromedp.Click(chromedp.ID("logout")),
			chromedp.WaitVisible(chromedp.ID("username")),
		)
		if err != nil {
			fixture.Screenshot(t, ctx, tc.user+"-logout-failed")
			t.Fatalf("%s: logout: %v", tc.user, err)
		}
	}

	// Ctrl-C (SIGINT) stops everything cleanly.
	_ = cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("demo exited with %v after SIGINT", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("demo did not stop within 10s of SIGINT")
	}
}

// demoURL reads the demo's banner until it names the URL to open.
func demoURL(t *testing.T, sc *bufio.Scanner) string {
	t.Helper()
	re := regexp.MustCompile(`Open\s+(http://127\.0\.0\.1:\d+)/`)
	found := make(chan string, 1)
	go func() {
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
				break
			}
		}
		for sc.Scan() { // keep draining so the demo never blocks on stdout
		}
	}()
	select {
	case u := <-found:
		return u
	case <-time.After(60 * time.Second):
		t.Fatal("demo printed no URL within 60s")
		return ""
	}
}
