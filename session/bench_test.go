package session

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkGet measures the per-request path: cookie parse + HMAC verify + one backend GET +
// record decode (AES-GCM open of the tokens). Run: go test -run '^$' -bench Get ./session/
func BenchmarkGet(b *testing.B) {
	for _, bk := range []string{"memory", "redis"} {
		b.Run(bk, func(b *testing.B) {
			e := &env{name: bk, clock: newClock(), prefix: "bench:"}
			if bk == "redis" {
				client, prefix := redisForTest(b)
				e.b, e.client, e.prefix = newRedisBackend(client, 2*time.Second), client, prefix
			} else {
				e.b = newMemBackend(time.Now)
			}
			st := e.newStore(b, func(o *Options) { o.Now = time.Now })
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			sess, _ := st.New(r, st.CookieName())
			SetRecord(sess, testRecord("bench"))
			w := httptest.NewRecorder()
			if err := st.Save(r, w, sess); err != nil {
				b.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodGet, "/api/x", nil)
			req.AddCookie(w.Result().Cookies()[0])
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				s, err := st.Get(req, st.CookieName())
				if err != nil || s.IsNew {
					b.Fatalf("Get: IsNew=%v err=%v", s.IsNew, err)
				}
			}
		})
	}
}
