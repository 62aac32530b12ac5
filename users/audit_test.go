package users

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a fake batch inserter for the audit writer.
type recorder struct {
	mu      sync.Mutex
	batches [][]Event
	fail    func(batch []Event) error
}

func (r *recorder) insert(ctx context.Context, batch []Event) error {
	if r.fail != nil {
		if err := r.fail(batch); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, append([]Event(nil), batch...))
	return nil
}

func (r *recorder) events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, b := range r.batches {
		out = append(out, b...)
	}
	return out
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestAuditWriter(t *testing.T) {
	bad := errors.New("bad row")
	tests := []struct {
		name        string
		buffer      int
		events      int
		fail        func(batch []Event) error
		wantWritten uint64
		wantDropped uint64
		wantFailed  uint64
		wantWarn    string
	}{
		{name: "full queue drops and counts without blocking", buffer: 3, events: 10,
			wantWritten: 3, wantDropped: 7, wantWarn: "audit event dropped"},
		{name: "everything queued is flushed on close", buffer: 500, events: 250,
			wantWritten: 250},
		{name: "one bad row does not lose the batch", buffer: 10, events: 5,
			fail: func(batch []Event) error {
				for _, e := range batch {
					if e.Reason == "bad" {
						return bad
					}
				}
				return nil
			},
			wantWritten: 4, wantFailed: 1, wantWarn: "audit events not written"},
		{name: "unreachable database fails the batch", buffer: 10, events: 5,
			fail:       func([]Event) error { return wrapErr("write", context.DeadlineExceeded) },
			wantFailed: 5, wantWarn: "audit events not written"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs lockedBuffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			rec := &recorder{fail: tt.fail}
			w := newAuditWriter(tt.buffer, log, newFakeClock(t0).Now, rec.insert)
			// Not started yet: the queue fills up exactly to its capacity.
			for i := range tt.events {
				reason := "ok"
				if i == 2 {
					reason = "bad"
				}
				w.enqueue(Event{Kind: KindLogin, Reason: reason})
			}
			w.start()
			w.close(5 * time.Second)
			st := w.stats()
			if st.Written != tt.wantWritten || st.Dropped != tt.wantDropped || st.Failed != tt.wantFailed {
				t.Errorf("stats = %+v, want written %d dropped %d failed %d",
					st, tt.wantWritten, tt.wantDropped, tt.wantFailed)
			}
			if got := uint64(len(rec.events())); got != tt.wantWritten {
				t.Errorf("inserted %d events, want %d", got, tt.wantWritten)
			}
			for _, b := range rec.batches {
				if len(b) > maxAuditBatch {
					t.Errorf("batch of %d events, want at most %d", len(b), maxAuditBatch)
				}
			}
			if tt.wantWarn != "" && !strings.Contains(logs.String(), tt.wantWarn) {
				t.Errorf("log %q does not contain %q", logs.String(), tt.wantWarn)
			}
		})
	}
}

// TestAuditCloseIsBounded: a database that hangs cannot hold Close beyond its bound.
func TestAuditCloseIsBounded(t *testing.T) {
	hang := func(ctx context.Context, _ []Event) error {
		<-ctx.Done()
		return ctx.Err()
	}
	w := newAuditWriter(10, slog.New(slog.NewTextHandler(&lockedBuffer{}, nil)), time.Now, hang)
	for range 5 {
		w.enqueue(Event{Kind: KindLogout})
	}
	w.start()
	start := time.Now()
	w.close(200 * time.Millisecond)
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("close took %v, want about 200ms", elapsed)
	}
	st := w.stats()
	if st.Written != 0 || st.Dropped+st.Failed != 5 {
		t.Errorf("stats = %+v, want 0 written and 5 dropped or failed", st)
	}
	w.enqueue(Event{Kind: KindLogin}) // after close: counted, no panic
	if got := w.stats().Dropped; got != st.Dropped+1 {
		t.Errorf("dropped after close = %d, want %d", got, st.Dropped+1)
	}
}

func TestEffectiveRoles(t *testing.T) {
	tests := []struct {
		name string
		user User
		want []string
	}{
		{name: "none", user: User{}, want: []string{}},
		{name: "idp only", user: User{Roles: []string{"b", "a"}}, want: []string{"a", "b"}},
		{name: "union sorted deduplicated", user: User{Roles: []string{"viewer", "editor"},
			GrantedRoles: []string{"admin", "viewer", " "}}, want: []string{"admin", "editor", "viewer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.user.EffectiveRoles()
			if got == nil || strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("EffectiveRoles() = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestClean(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{name: "plain", in: "abc", max: 10, want: "abc"},
		{name: "nul removed", in: "a\x00b", max: 10, want: "ab"},
		{name: "invalid utf8 replaced", in: "a\xffb", max: 10, want: "a\uFFFDb"},
		{name: "cut on rune boundary", in: "aé", max: 2, want: "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := clean(tt.in, tt.max); got != tt.want {
				t.Errorf("clean(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
			}
		})
	}
}
