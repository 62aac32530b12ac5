package session

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Cookie parsing limits. maxCookieValue is far above the length of any value encodeCookie makes
// (about 140 characters), yet small enough for the scratch buffers, so a longer value is
// rejected before any work.
const (
	maxCookieValue = 256
	maxCookieCount = 3000 // net/http's default httpcookiemaxnum
)

// cookieValue returns the value of the only cookie named name in r. It follows net/http's
// readCookies (the same trimming, quote stripping and value check) without allocating. n is
// how many such cookies there are: only n == 1 is usable (more may be cookie tossing from a
// sibling domain).
func cookieValue(r *http.Request, name string) (value string, n int) {
	lines := r.Header["Cookie"]
	count := 0
	for _, line := range lines {
		count += strings.Count(line, ";") + 1
	}
	if count > maxCookieCount {
		return "", 0
	}
	for _, line := range lines {
		line = trimSpace(line)
		for len(line) > 0 {
			var part string
			part, line, _ = strings.Cut(line, ";")
			k, v, _ := strings.Cut(trimSpace(part), "=")
			if trimSpace(k) != name {
				continue
			}
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if !validCookieValue(v) {
				continue
			}
			value, n = v, n+1
		}
	}
	return value, n
}

// trimSpace is textproto.TrimString: it trims ASCII space, tab, CR and LF.
func trimSpace(s string) string {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func validCookieValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c >= 0x7f || c == '"' || c == ';' || c == '\\' {
			return false
		}
	}
	return true
}

// cookieScratch holds the buffers and HMAC states of one cookie decoding; pooled so the hot path
// allocates only the returned id.
type cookieScratch struct {
	src []byte      // the cookie value
	msg []byte      // name | '|' | decoded value: the MAC input is a prefix of it
	id  [64]byte    // the decoded id
	sum [32]byte    // a computed MAC
	mac []hash.Hash // one HMAC-SHA256 per secret, same order as keys.codecs
}

func newScratchPool(macKeys [][]byte) *sync.Pool {
	return &sync.Pool{New: func() any {
		sc := &cookieScratch{src: make([]byte, 0, maxCookieValue), msg: make([]byte, 0, 2*maxCookieValue)}
		for _, k := range macKeys {
			sc.mac = append(sc.mac, hmac.New(sha256.New, k))
		}
		return sc
	}}
}

// decodeCookie verifies a cookie value and returns the session id it carries. Only values
// made by encodeCookie with one of the configured secrets, for this cookie name and within the
// cookie's max age, decode. The format is gorilla/securecookie's (HMAC-SHA256, no encryption,
// NopEncoder): base64url(date "|" base64url(id) "|" HMAC(name "|" date "|" base64url(id))),
// which encodeCookie still writes; this is the same check without its allocations.
func (k keys) decodeCookie(name, value string) (string, bool) {
	id, _, ok := k.decodeCookieDate(name, value)
	return id, ok
}

// decodeCookieDate is decodeCookie also returning the value's signing time (Unix seconds).
func (k keys) decodeCookieDate(name, value string) (string, int64, bool) {
	if value == "" || len(value) > maxCookieValue {
		return "", 0, false
	}
	for i := 0; i < len(value); i++ {
		c := value[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '=') {
			return "", 0, false
		}
	}
	sc := k.scratch.Get().(*cookieScratch)
	defer k.scratch.Put(sc)
	sc.src = append(sc.src[:0], value...)
	sc.msg = append(append(sc.msg[:0], name...), '|')
	pre := len(sc.msg)
	sc.msg = sc.msg[:pre+base64.URLEncoding.DecodedLen(len(value))]
	n, err := base64.URLEncoding.Decode(sc.msg[pre:], sc.src)
	if err != nil {
		return "", 0, false
	}
	b := sc.msg[pre : pre+n]
	date, rest, ok1 := bytes.Cut(b, []byte{'|'})
	enc, mac, ok2 := bytes.Cut(rest, []byte{'|'})
	if !ok1 || !ok2 || !k.verifyMAC(sc, sc.msg[:pre+len(date)+1+len(enc)], mac) {
		return "", 0, false
	}
	t, ok := parseUnix(date)
	if !ok || t < time.Now().Unix()-int64(k.cookieMaxAge) {
		return "", 0, false
	}
	if base64.URLEncoding.DecodedLen(len(enc)) > len(sc.id) {
		return "", 0, false
	}
	n, err = base64.URLEncoding.Decode(sc.id[:], enc)
	if err != nil || n != idLen || !isB64URLBytes(sc.id[:n]) {
		return "", 0, false
	}
	return string(sc.id[:n]), t, true
}

// verifyMAC reports, in constant time per key, whether mac is the HMAC of msg under a secret.
func (k keys) verifyMAC(sc *cookieScratch, msg, mac []byte) bool {
	for _, h := range sc.mac {
		h.Reset()
		h.Write(msg)
		if hmac.Equal(h.Sum(sc.sum[:0]), mac) {
			return true
		}
	}
	return false
}

// parseUnix parses securecookie's decimal timestamp (it writes digits only, and the MAC was
// checked first).
func parseUnix(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var t int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		t = t*10 + int64(c-'0')
	}
	return t, true
}

func isB64URLBytes(b []byte) bool {
	for _, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
