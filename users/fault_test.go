package users

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestUnavailable: Open succeeds without a database; every call then fails with ErrUnavailable
// within Timeout, without panicking.
func TestUnavailable(t *testing.T) {
	tests := []struct {
		name    string
		url     func(t *testing.T) string
		timeout time.Duration
	}{
		{name: "closed port", url: func(*testing.T) string { return "postgres://postgres@127.0.0.1:1/x?sslmode=disable" },
			timeout: 2 * time.Second},
		{name: "server that never answers", url: silentServer, timeout: 300 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(context.Background(), Options{URL: tt.url(t), Timeout: tt.timeout, Logger: testLogger(t)})
			if err != nil {
				t.Fatalf("Open = %v, want success without a database", err)
			}
			defer s.Close()
			ctx := context.Background()
			calls := []struct {
				name string
				call func() error
			}{
				{name: "Upsert", call: func() error {
					_, err := s.Upsert(ctx, Profile{Issuer: "https://idp.example.com/", Subject: "x"})
					return err
				}},
				{name: "Get", call: func() error { _, err := s.Get(ctx, "9b2f7f52-5d5c-4b59-8f56-3f4f0a0c0a11"); return err }},
				{name: "List", call: func() error { _, err := s.List(ctx, 1); return err }},
				{name: "Ping", call: func() error { return s.Ping(ctx) }},
			}
			for _, c := range calls {
				start := time.Now()
				err := c.call()
				elapsed := time.Since(start)
				if !errors.Is(err, ErrUnavailable) {
					t.Errorf("%s = %v, want ErrUnavailable", c.name, err)
				}
				if elapsed >= tt.timeout+time.Second {
					t.Errorf("%s took %v, want < %v", c.name, elapsed, tt.timeout+time.Second)
				}
			}
		})
	}
}

// silentServer accepts TCP connections and never writes, like a hung database.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return fmt.Sprintf("postgres://postgres@%s/x?sslmode=disable", ln.Addr())
}

func TestMigrateUnavailable(t *testing.T) {
	s, err := Open(context.Background(), Options{URL: "postgres://postgres@127.0.0.1:1/x?sslmode=disable",
		Timeout: time.Second, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if err := s.Migrate(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Migrate = %v, want ErrUnavailable", err)
	}
}

func TestIsUnavailable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{name: "unique violation", err: &pgconn.PgError{Code: "23505"}, want: false},
		{name: "check violation", err: &pgconn.PgError{Code: "23514"}, want: false},
		{name: "syntax error", err: &pgconn.PgError{Code: "42601"}, want: false},
		{name: "connection failure", err: &pgconn.PgError{Code: "08006"}, want: true},
		{name: "too many connections", err: &pgconn.PgError{Code: "53300"}, want: true},
		{name: "admin shutdown", err: &pgconn.PgError{Code: "57P01"}, want: true},
		{name: "deadline", err: fmt.Errorf("query: %w", context.DeadlineExceeded), want: true},
		{name: "connection refused", err: fmt.Errorf("dial: %w", syscall.ECONNREFUSED), want: true},
		{name: "plain error", err: errors.New("bad data"), want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isUnavailable(tt.err); got != tt.want {
				t.Errorf("isUnavailable(%v) = %v, want %v", tt.err, got, tt.want)
			}
			if got := errors.Is(wrapErr("op", tt.err), ErrUnavailable); got != tt.want {
				t.Errorf("errors.Is(wrapErr(%v), ErrUnavailable) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
