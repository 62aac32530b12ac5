package main

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the flusher goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLogWriterFlushes(t *testing.T) {
	var out syncBuffer
	l := newLogWriter(&out, 20*time.Millisecond)
	if _, err := l.Write([]byte("line one\n")); err != nil {
		t.Fatal(err)
	}
	if out.String() != "" {
		t.Fatal("written at once: the writer should buffer")
	}
	deadline := time.Now().Add(2 * time.Second)
	for out.String() == "" && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if out.String() != "line one\n" {
		t.Fatalf("after the interval: %q", out.String())
	}
	_, _ = l.Write([]byte("line two\n"))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if out.String() != "line one\nline two\n" {
		t.Fatalf("after Close: %q", out.String())
	}
}
