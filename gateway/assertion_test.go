package gateway

import (
	"fmt"
	"testing"
	"time"
)

func TestAssertionCache(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := newAssertionCache()
	c.put("s\x00r", "tok", now.Add(30*time.Second), now)
	tests := []struct {
		name   string
		key    string
		at     time.Time
		wantOK bool
	}{
		{name: "hit", key: "s\x00r", at: now.Add(29 * time.Second), wantOK: true},
		{name: "expired", key: "s\x00r", at: now.Add(30 * time.Second)},
		{name: "other route", key: "s\x00other", at: now},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tok, ok := c.get(tt.key, tt.at); ok != tt.wantOK || (ok && tok != "tok") {
				t.Errorf("get = %q, %v; want ok=%v", tok, ok, tt.wantOK)
			}
		})
	}
}

func TestAssertionCacheIsBounded(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := newAssertionCache()
	for i := range assertionCacheMax + 10 {
		c.put(fmt.Sprint(i), "tok", now.Add(time.Minute), now)
		if n := len(c.m); n > assertionCacheMax {
			t.Fatalf("cache holds %d entries, bound is %d", n, assertionCacheMax)
		}
	}
	if _, ok := c.get(fmt.Sprint(assertionCacheMax+9), now); !ok {
		t.Error("the newest entry was evicted")
	}
}

func TestRefreshBackoff(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newRefreshState()
	s.noteFailure("h", now)
	tests := []struct {
		name string
		at   time.Time
		want bool
	}{
		{name: "right after the failure", at: now.Add(time.Second), want: true},
		{name: "after the backoff", at: now.Add(refreshBackoff)},
		{name: "clock moved back", at: now.Add(-time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.inBackoff("h", tt.at); got != tt.want {
				t.Errorf("inBackoff = %v, want %v", got, tt.want)
			}
		})
	}
	s.clearFailure("h")
	if s.inBackoff("h", now) {
		t.Error("inBackoff after clearFailure")
	}
}
