package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestAccessLineMatchesSlog: the hand-written access line is byte for byte the line slog's
// JSONHandler writes for the same record, also for strings that need escaping.
func TestAccessLineMatchesSlog(t *testing.T) {
	at := time.Date(2026, 11, 26, 1, 2, 3, 4005, time.UTC)
	tests := []struct {
		name string
		l    accessLine
	}{
		{name: "plain", l: accessLine{requestID: "0123456789abcdef01234567", method: "GET", path: "/app/page",
			route: "app", status: 200, duration: 1234567 * time.Nanosecond, userID: "u-1",
			ip: netip.MustParseAddr("127.0.0.1")}},
		{name: "no route, no user, IPv6", l: accessLine{requestID: "x", method: "POST", path: "/",
			status: 404, ip: netip.MustParseAddr("2001:db8::1")}},
		{name: "unparsable peer", l: accessLine{requestID: "x", method: "GET", path: "/", status: 400}},
		{name: "escapes", l: accessLine{requestID: "id", method: "GET",
			path: "/a\"b\\c\n\r\t\x00\x1f\x7f<>&é\u2028\u2029\xff\xfe/ü", route: "r\"", status: 502,
			duration: -1, userID: "\u2029x", ip: netip.MustParseAddr("10.0.0.1")}},
		{name: "local time zone", l: accessLine{requestID: "x", method: "GET", path: "/", status: 200,
			ip: netip.MustParseAddr("::ffff:1.2.3.4").Unmap()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.l.time = at
			if tt.name == "local time zone" {
				tt.l.time = at.In(time.FixedZone("X", 5*3600+30*60))
			}
			var want bytes.Buffer
			rec := slog.NewRecord(tt.l.time, slog.LevelInfo, "request", 0)
			ip := tt.l.ip.String()
			rec.AddAttrs(slog.String("request_id", tt.l.requestID), slog.String("method", tt.l.method),
				slog.String("path", tt.l.path), slog.String("route", tt.l.route), slog.Int("status", tt.l.status),
				slog.Duration("duration", tt.l.duration), slog.String("user_id", tt.l.userID), slog.String("ip", ip))
			if err := slog.NewJSONHandler(&want, nil).Handle(context.Background(), rec); err != nil {
				t.Fatal(err)
			}
			got := appendAccessLine(nil, &tt.l)
			if string(got) != want.String() {
				t.Fatalf("access line\n got %s\nwant %s", got, want.String())
			}
			if !json.Valid(bytes.TrimSpace(got)) {
				t.Fatalf("not JSON: %s", got)
			}
		})
	}
}

// TestAccessLogOneWritePerLine: each line reaches the writer whole, in one Write call.
func TestAccessLogOneWritePerLine(t *testing.T) {
	var w recordingWriter
	a := &accessLog{w: &w}
	long := "/" + strings.Repeat("x", 2*maxPooledLine)
	for _, p := range []string{"/a", long, "/b"} {
		a.write(&accessLine{time: time.Unix(0, 0).UTC(), requestID: "id", method: "GET", path: p, status: 200})
	}
	if len(w.writes) != 3 {
		t.Fatalf("%d writes, want 3", len(w.writes))
	}
	for i, p := range []string{"/a", long, "/b"} {
		var v struct{ Path string }
		if err := json.Unmarshal([]byte(w.writes[i]), &v); err != nil || v.Path != p || !strings.HasSuffix(w.writes[i], "}\n") {
			t.Fatalf("write %d = %.80q (%v), want the whole line for %.20q", i, w.writes[i], err, p)
		}
	}
}

type recordingWriter struct{ writes []string }

func (r *recordingWriter) Write(b []byte) (int, error) {
	r.writes = append(r.writes, string(b)) // copies: the caller reuses b
	return len(b), nil
}

func TestRequestIDs(t *testing.T) {
	a, b := newRequestIDs(), newRequestIDs()
	seen := map[string]bool{}
	for range 1000 {
		for _, ids := range []*requestIDs{a, b} {
			id := ids.next()
			if len(id) != 24 || !validRequestID(id) || seen[id] {
				t.Fatalf("request id %q: want 24 fresh hex characters", id)
			}
			seen[id] = true
		}
	}
	if a.prefix == b.prefix {
		t.Fatalf("two processes' prefixes are equal: %s", a.prefix)
	}
}
