package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// accessLine is what the access log records of one request. The line never has a query
// string (the callback's carries the code and state), a cookie or a token.
type accessLine struct {
	time      time.Time
	requestID string
	method    string
	path      string
	route     string
	status    int
	duration  time.Duration
	userID    string
	ip        netip.Addr
}

// appendAccessLine appends l as one JSON line, byte for byte what slog's JSONHandler writes
// for the record
//
//	log.LogAttrs(ctx, slog.LevelInfo, "request", request_id, method, path, route, status,
//	    duration, user_id, ip)
//
// (the shape the access log had when it went through slog), without slog's generic encoding.
func appendAccessLine(b []byte, l *accessLine) []byte {
	b = append(b, `{"time":"`...)
	b = l.time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":"request","request_id":`...)
	b = appendJSONString(b, l.requestID)
	b = append(b, `,"method":`...)
	b = appendJSONString(b, l.method)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, l.path)
	b = append(b, `,"route":`...)
	b = appendJSONString(b, l.route)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(l.status), 10)
	b = append(b, `,"duration":`...)
	b = strconv.AppendInt(b, int64(l.duration), 10)
	b = append(b, `,"user_id":`...)
	b = appendJSONString(b, l.userID)
	b = append(b, `,"ip":"`...)
	if l.ip.IsValid() {
		b = l.ip.AppendTo(b)
	} else {
		b = append(b, "invalid IP"...) // netip.Addr{}.String(), as clientIP logs it
	}
	return append(b, "\"}\n"...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string escaped as slog's JSONHandler escapes it:
// '"', '\\' and control bytes escaped, each invalid UTF-8 byte as a literal U+FFFD (Go 1.27's
// slog; 1.26 wrote the escape \ufffd: TestAccessLineMatchesSlog pins the toolchain's), U+2028
// and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = utf8.AppendRune(b, utf8.RuneError)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, `\u202`...)
			b = append(b, hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// accessLog writes access lines to w, each with one Write call, from recycled buffers.
type accessLog struct {
	w    io.Writer
	bufs sync.Pool // *[]byte
}

// maxPooledLine: buffers that grew beyond it (a very long path) are not kept.
const maxPooledLine = 4 << 10

func (a *accessLog) write(l *accessLine) {
	bp, _ := a.bufs.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, 0, 512)
		bp = &b
	}
	b := appendAccessLine((*bp)[:0], l)
	_, _ = a.w.Write(b)
	if cap(b) <= maxPooledLine {
		*bp = b
		a.bufs.Put(bp)
	}
}

// requestIDs issues request ids: a random per-process prefix and a counter, 24 hex
// characters like the 12 random bytes they replace, unique across instances with
// overwhelming probability and free of a crypto/rand read per request. They are not secret.
type requestIDs struct {
	prefix [12]byte // 6 random bytes, hex
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	var raw [6]byte
	_, _ = rand.Read(raw[:])
	ids := &requestIDs{}
	hex.Encode(ids.prefix[:], raw[:])
	return ids
}

// next returns a new request id.
func (ids *requestIDs) next() string {
	var b [24]byte
	copy(b[:], ids.prefix[:])
	n := ids.n.Add(1)
	for i := len(b) - 1; i >= len(ids.prefix); i-- {
		b[i] = hexDigits[n&0xF]
		n >>= 4
	}
	return string(b[:])
}
