package session

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/klauspost/compress/s2"
)

func TestUserAgentStoredCompressed(t *testing.T) {
	k, err := deriveKeys([][]byte{secretA()}, 3600)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		ua         string
		wantZipped bool
		maxStored  int // bytes of the stored block, when zipped
	}{
		{name: "Chrome on Windows", ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", wantZipped: true, maxStored: 12},
		{name: "a later Chrome", ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36", wantZipped: true, maxStored: 16},
		{name: "Chrome on macOS", ua: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36", wantZipped: true, maxStored: 20},
		{name: "Edge", ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36 Edg/142.0.0.0", wantZipped: true, maxStored: 30},
		{name: "Firefox", ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:145.0) Gecko/20100101 Firefox/145.0", wantZipped: true, maxStored: 26},
		{name: "Safari on iPhone", ua: "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.6 Mobile/15E148 Safari/604.1", wantZipped: true, maxStored: 27},
		{name: "Chrome on Android", ua: "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Mobile Safari/537.36", wantZipped: true, maxStored: 22},
		{name: "headless Chrome of the browser tests", ua: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/142.0.0.0 Safari/537.36", wantZipped: true, maxStored: 21},
		{name: "Go client (too short for S2 to copy)", ua: "Go-http-client/1.1", wantZipped: false},
		{name: "empty", ua: "", wantZipped: false},
		{name: "short and unknown", ua: "x", wantZipped: false},
		{name: "random", ua: randomPart(9, 150), wantZipped: false},
		{name: "unicode", ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) ☃ \u2028 AppleWebKit/537.36 (KHTML, like Gecko)", wantZipped: true, maxStored: 40},
		{name: "longer than the bound", ua: strings.Repeat("Mozilla/5.0 ", maxUserAgent/12+1), wantZipped: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := exampleRecord()
			rec.UserAgent = tt.ua
			raw, err := k.encodeRecord(rec, 1)
			if err != nil {
				t.Fatal(err)
			}
			if zipped := raw[v2Header]&flagUAZipped != 0; zipped != tt.wantZipped {
				t.Fatalf("stored compressed: %v, want %v", zipped, tt.wantZipped)
			}
			if tt.wantZipped {
				if block := k.ua.zip(tt.ua); len(block) > tt.maxStored {
					t.Errorf("stored in %d bytes, want at most %d", len(block), tt.maxStored)
				}
			}
			for _, withTokens := range []bool{true, false} {
				got, err := k.decodeRecord("h", raw, withTokens)
				if err != nil || got.UserAgent != tt.ua {
					t.Fatalf("decoded (tokens %v): %q, %v; want %q", withTokens, got.UserAgent, err, tt.ua)
				}
				if got.Email != rec.Email || len(got.Groups) != 1 || got.Groups[0] != rec.Groups[0] {
					t.Errorf("the fields around the user agent changed: %q %q", got.Email, got.Groups)
				}
			}
		})
	}
}

// TestBrowserSessionCostsLikeAClient: a browser's 111-byte user agent adds only a few bytes to
// the stored record compared with a Go client's 18-byte one.
func TestBrowserSessionCostsLikeAClient(t *testing.T) {
	k, _ := deriveKeys([][]byte{secretA()}, 3600)
	size := func(ua string) int {
		rec := exampleRecord()
		rec.UserAgent = ua
		raw, err := k.encodeRecord(rec, 1)
		if err != nil {
			t.Fatal(err)
		}
		return len(raw)
	}
	browser := size("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36")
	client := size("Go-http-client/1.1")
	if browser-client > 12 {
		t.Errorf("a browser's session record is %d bytes, a client's %d: the user agent costs %d more", browser, client, browser-client)
	}
}

func TestUserAgentRejectsCorrupt(t *testing.T) {
	k, _ := deriveKeys([][]byte{secretA()}, 3600)
	ex := exampleRecord()
	withBlock := func(block []byte) []byte { return appendRecordV2UA(nil, ex, 0, nil, false, block) }
	tests := []struct {
		name string
		raw  []byte
	}{
		{name: "flag on a plain user agent", raw: func() []byte {
			b := appendRecordV2(nil, ex, 0, nil, false)
			b[v2Header] |= flagUAZipped
			return b
		}()},
		{name: "flag on a user agent stored as a UUID", raw: func() []byte {
			r := *ex
			r.UserAgent = "0b8e5f2c-6f0a-4c55-9f43-3d1c2a7e9b10"
			b := appendRecordV2(nil, &r, 0, nil, false)
			b[v2Header] |= flagUAZipped
			return b
		}()},
		{name: "empty block", raw: withBlock([]byte{})},
		{name: "not a block", raw: withBlock([]byte{5, 0xff, 0xff})},
		{name: "declares past the bound", raw: withBlock(s2.Encode(nil, bytes.Repeat([]byte("a"), maxUserAgent+1)))},
		{name: "declares 4 GiB", raw: withBlock([]byte{0xff, 0xff, 0xff, 0xff, 0x0f, 2 << 2, 'a', 'b', 'c'})},
		{name: "holds more than it declares", raw: withBlock([]byte{2, 2 << 2, 'a', 'b', 'c'})},
		{name: "declares more than it holds", raw: withBlock([]byte{4, 2 << 2, 'a', 'b', 'c'})},
		{name: "copy from before the dictionary", raw: withBlock([]byte{7, 3<<2 | 2, 0xff, 0xff, 2 << 2, 'a', 'b', 'c'})},
		{name: "two blocks", raw: withBlock(append(k.ua.zip(ex.UserAgent), k.ua.zip(ex.UserAgent)...))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := k.decodeRecord("h", tt.raw, false); !errors.Is(err, errCorrupt) {
				t.Errorf("err = %v, want errCorrupt", err)
			}
		})
	}
	t.Run("a decoder without the dictionary", func(t *testing.T) {
		raw := withBlock(k.ua.zip(ex.UserAgent))
		if got, err := k.decodeRecord("h", raw, false); err != nil || got.UserAgent != ex.UserAgent {
			t.Fatalf("control: %v", err)
		}
		none := k
		none.ua = uaZipper{}
		if _, err := none.decodeRecord("h", raw, false); !errors.Is(err, errCorrupt) {
			t.Errorf("err = %v, want errCorrupt", err)
		}
	})
}
