package faults

import (
	"runtime"
	"strings"
)

func busySummary() map[string]int {
	buf := make([]byte, 8<<20)
	n := runtime.Stack(buf, true)
	out := map[string]int{}
	for _, g := range strings.Split(string(buf[:n]), "\n\n") {
		if strings.Contains(g, "fixture.(*TCPProxy)") || strings.Contains(g, "net/http.(*persistConn).readLoop") || strings.Contains(g, "net/http.(*persistConn).writeLoop") ||
			(strings.Contains(g, "net/http.(*conn).serve") && !strings.Contains(g, "ServeHTTP")) {
			continue
		}
		lines := strings.Split(g, "\n")
		var fr []string
		for _, l := range lines[1:] {
			if !strings.HasPrefix(l, "\t") && !strings.HasPrefix(l, "internal/") && !strings.HasPrefix(l, "net.") && !strings.HasPrefix(l, "runtime.") && !strings.HasPrefix(l, "io.") && !strings.HasPrefix(l, "bufio.") {
				if i := strings.Index(l, "("); i > 0 && !strings.HasPrefix(l, "net/http.(") && !strings.HasPrefix(l, "github.com/authgate/authgate/session.(") {
					l = l[:i]
				}
				fr = append(fr, l)
			}
		}
		if len(fr) > 4 {
			fr = fr[:4]
		}
		out[strings.Join(fr, " < ")]++
	}
	return out
}
