package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// loginClient performs full browser logins without a browser: /.auth/login → IdP authorize
// → devidp's login form (GET, then POST) → IdP callback → /.auth/callback.
type loginClient struct {
	gateway string
	rt      http.RoundTripper
}

func newLoginClient(gateway string, conns int) *loginClient {
	return &loginClient{gateway: gateway, rt: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: 0,
		IdleConnTimeout: 30 * time.Second, DisableCompression: true}}
}

// login logs username in with a fresh cookie jar and returns the session cookie
// ("name=value") the gateway set at its callback.
func (l *loginClient) login(ctx context.Context, username, password string) (string, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Transport: l.rt, Timeout: 15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := l.follow(ctx, c, http.MethodGet, l.gateway+"/.auth/login?return_to=%2F", nil)
	if err != nil {
		return "", err
	}
	drain(resp)
	id := resp.Request.URL.Query().Get("authRequestID")
	if resp.StatusCode != http.StatusOK || id == "" {
		return "", fmt.Errorf("expected the IdP login form, got %d at %s", resp.StatusCode, resp.Request.URL.Path)
	}
	form := url.Values{"authRequestID": {id}, "username": {username}, "password": {password}}
	resp, err = l.follow(ctx, c, http.MethodPost, resp.Request.URL.String(), form)
	if err != nil {
		return "", err
	}
	drain(resp)
	if !strings.HasPrefix(resp.Request.URL.String(), l.gateway+"/.auth/callback") || resp.StatusCode != http.StatusFound {
		return "", fmt.Errorf("callback answered %d at %s", resp.StatusCode, resp.Request.URL.Path)
	}
	i := slices.IndexFunc(resp.Cookies(), func(c *http.Cookie) bool { return c.Name == sessionCookie && c.Value != "" })
	if i < 0 {
		return "", errors.New("callback set no session cookie")
	}
	return sessionCookie + "=" + resp.Cookies()[i].Value, nil
}

// browserUserAgent is what the login clients send: a desktop Chrome's, so that the sessions
// (and the seeded copies of the first) keep a browser's user agent, not Go's 18 bytes.
const browserUserAgent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36"

// follow sends the request and follows redirects (as GETs) until an answer that is not a
// redirect, or the gateway's answer to its callback.
func (l *loginClient) follow(ctx context.Context, c *http.Client, method, u string, form url.Values) (*http.Response, error) {
	for range 10 {
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequestWithContext(ctx, method, u, body)
		if err != nil {
			return nil, err
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		req.Header.Set("Accept", "text/html")
		req.Header.Set("User-Agent", browserUserAgent) // what the session keeps, as a browser's would
		resp, err := c.Do(req)
		if err != nil {
			return nil, err
		}
		loc := resp.Header.Get("Location")
		if strings.HasPrefix(u, l.gateway+"/.auth/callback") || resp.StatusCode < 300 || resp.StatusCode > 399 || loc == "" {
			return resp, nil
		}
		drain(resp)
		next, err := resp.Request.URL.Parse(loc)
		if err != nil {
			return nil, err
		}
		method, u, form = http.MethodGet, next.String(), nil
	}
	return nil, errors.New("too many redirects")
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// loginResult is the outcome of a login throughput run.
type loginResult struct {
	ok, failed int64
	elapsed    time.Duration
	p50, p99   time.Duration
	firstErr   string
}

// loginLoad runs workers concurrent login loops for d, each cycling through users
// user<i>/pw<i> (i < users).
func loginLoad(ctx context.Context, l *loginClient, workers, users int, d time.Duration) loginResult {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		next, ok, failed atomic.Int64
		mu               sync.Mutex
		lat              []time.Duration
		firstErr         string
		wg               sync.WaitGroup
	)
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := next.Add(1) % int64(users)
				t0 := time.Now()
				_, err := l.login(ctx, fmt.Sprintf("user%d", i), fmt.Sprintf("pw%d", i))
				if ctx.Err() != nil {
					return // cut off by the end of the run: not counted
				}
				mu.Lock()
				if err != nil {
					failed.Add(1)
					if firstErr == "" {
						firstErr = err.Error()
					}
				} else {
					ok.Add(1)
					lat = append(lat, time.Since(t0))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	r := loginResult{ok: ok.Load(), failed: failed.Load(), elapsed: time.Since(start), firstErr: firstErr}
	r.p50, r.p99 = percentile(lat, 50), percentile(lat, 99)
	return r
}

func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}
