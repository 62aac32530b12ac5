package main

import (
	"testing"
	"time"
)

func TestLogWriterFlushes(t *testing.T) {
	var out lockedBuffer
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
