package upstream

import "testing"

// TestFilterCookieLine checks the kept pairs and their joining, and that keeping at most one
// pair allocates nothing (it is a substring of the line).
func TestFilterCookieLine(t *testing.T) {
	tests := []struct {
		line, want string
		allocs     float64 // allocations allowed
	}{
		{line: "__Host-authgate=s", want: ""},
		{line: "__Host-authgate=s; theme=dark", want: "theme=dark"},
		{line: " theme=dark ;__Host-authgate=s", want: "theme=dark"},
		{line: "a=1;  __Host-authgate=s;b=2; __Host-authgate-tx=t; c=3", want: "a=1; b=2; c=3", allocs: 1},
		{line: "__Host-authgate=s; a=1; ; b=2", want: "a=1; b=2", allocs: 1},
		{line: "a=1;b=2", want: "a=1;b=2"}, // nothing owned: the line itself
		{line: "__Host-authgate; =x; __Host-authgate=2", want: "=x"},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			if got := filterCookieLine(tt.line, gatewayCookie); got != tt.want {
				t.Fatalf("filterCookieLine(%q) = %q, want %q", tt.line, got, tt.want)
			}
			if n := testing.AllocsPerRun(20, func() { filterCookieLine(tt.line, gatewayCookie) }); n > tt.allocs {
				t.Errorf("%v allocations, want at most %v", n, tt.allocs)
			}
		})
	}
}

// TestBufferPool checks that recycled buffers are whole 32 KiB buffers and that a short or
// foreign buffer is not pooled.
func TestBufferPool(t *testing.T) {
	var p bufferPool
	b := p.Get()
	if len(b) != copyBufferSize {
		t.Fatalf("len %d", len(b))
	}
	p.Put(b)
	p.Put(make([]byte, 10)) // not pooled
	for i := 0; i < 3; i++ {
		if b := p.Get(); len(b) != copyBufferSize || cap(b) != copyBufferSize {
			t.Fatalf("len %d cap %d", len(b), cap(b))
		}
	}
}
