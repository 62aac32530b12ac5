package session

import (
	"encoding/binary"
	"strings"

	"github.com/klauspost/compress/s2"
)

// A session keeps the user agent of the browser that logged in, for operators (ops API),
// exactly as it was sent (the gateway keeps at most 256 bytes of it). Browser user agents are
// long (a desktop Chrome's is 111 bytes) and nearly all alike, so a record stores its user
// agent as an S2 block against uaDictText, a constant dictionary of common ones, whenever that
// is shorter (record flag bit 4, see record_v2.go): a current Chrome, Edge, Firefox or Safari
// user agent takes 10 to 27 bytes. That keeps a browser's session in the same Redis allocation
// class as a session made by a short-named client.
//
// The dictionary is public constants only, so the compressed length says nothing about other
// sessions. Changing uaDictText changes how stored blocks decode: a new dictionary needs a
// new flag bit (or record version), and the decoder of the old one must stay.
const (
	flagUAZipped byte = 1 << 4

	// maxUserAgent bounds what a stored user agent block may decode to (checked on the
	// block's declared length before decoding); longer user agents are stored as they are.
	maxUserAgent = 1 << 10
)

// uaDictText is the user agent dictionary, the likeliest last (nearer copies cost less).
// NEVER change it (see above).
const uaDictText = `curl/8.5.0python-requests/2.32.3okhttp/4.12.0PostmanRuntime/7.43.0axios/1.7.9node-fetch/1.0` +
	`Java/21.0.5Go-http-client/1.1Go-http-client/2.0` +
	`Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)` +
	`Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36` +
	`Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0` +
	`Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0` +
	`Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0` +
	`Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0` +
	`Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1` +
	`Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1` +
	`Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1` +
	`Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15` +
	`Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/27.0 Chrome/125.0.0.0 Mobile Safari/537.36` +
	`Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36` +
	`Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36` +
	`Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36` +
	`Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 OPR/116.0.0.0` +
	`Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0` +
	`Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36`

// uaZipper compresses and expands user agents against uaDictText. Its S2 dictionary builds its
// encoder tables once, on first use, and is safe for concurrent use.
type uaZipper struct{ dict *s2.Dict }

func newUAZipper() uaZipper { return uaZipper{dict: s2.MakeDictManual([]byte(uaDictText), 0)} }

// zip returns ua as an S2 block when that is shorter and expands back to exactly ua, else nil.
func (z uaZipper) zip(ua string) []byte {
	if z.dict == nil || ua == "" || len(ua) > maxUserAgent {
		return nil
	}
	block := z.dict.Encode(nil, []byte(ua))
	if len(block) >= len(ua) {
		return nil
	}
	var sb strings.Builder
	if n, ok := z.expandedLen(block); !ok || n != len(ua) || !z.expand(&sb, block, n) || sb.String() != ua {
		return nil // not reached: S2 round-trips
	}
	return block
}

// expandedLen returns the length block declares, if it is within maxUserAgent.
func (z uaZipper) expandedLen(block []byte) (int, bool) {
	n, err := s2.DecodedLen(block)
	return n, z.dict != nil && err == nil && n <= maxUserAgent
}

// expand writes the n bytes block decodes to (n from expandedLen) to sb; false when block is
// not exactly one valid block of n bytes.
func (z uaZipper) expand(sb *strings.Builder, block []byte, n int) bool {
	var buf [maxUserAgent]byte
	out, err := z.dict.Decode(buf[:n], block)
	if err != nil || len(out) != n {
		return false
	}
	sb.Write(out)
	return true
}

// rawTextAt returns the bytes of the raw text (even header, see appendText) at off in b and
// the offset after it.
func rawTextAt(b []byte, off int) (text []byte, next int, ok bool) {
	if off >= len(b) {
		return nil, 0, false
	}
	h, m := binary.Uvarint(b[off:])
	if m <= 0 || h&1 != 0 || h>>1 > uint64(len(b)-off-m) {
		return nil, 0, false
	}
	off += m
	return b[off : off+int(h>>1)], off + int(h>>1), true
}
