package ops

import (
	"embed"
	"fmt"
	"net/http"
	"path"
	"strconv"
)

// uiFiles is the operator page, built into the binary: no external asset, no CDN.
//
//go:embed ui/index.html ui/app.js ui/style.css
var uiFiles embed.FS

// asset is one file of the operator page, read once by New.
type asset struct {
	body        []byte
	contentType string
}

func loadAssets() (map[string]asset, error) {
	types := map[string]string{
		"index.html": "text/html; charset=utf-8",
		"app.js":     "text/javascript; charset=utf-8",
		"style.css":  "text/css; charset=utf-8",
	}
	assets := make(map[string]asset, len(types))
	for name, ct := range types {
		b, err := uiFiles.ReadFile(path.Join("ui", name))
		if err != nil {
			return nil, fmt.Errorf("ops: embedded page %s: %w", name, err)
		}
		assets[name] = asset{body: b, contentType: ct}
	}
	return assets, nil
}

// asset serves one embedded file. The page holds no data: everything it shows comes from
// /api/ with the token the operator types in.
func (s *server) asset(name string) http.Handler {
	a := s.assets[name]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", a.contentType)
		h.Set("Content-Length", strconv.Itoa(len(a.body)))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(a.body)
		}
	})
}
