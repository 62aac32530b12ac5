package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryKeyDocumented fails when a key of Config (found through its yaml tags) or its
// environment variable is missing from docs/configuration.md.
func TestEveryKeyDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	keys := Keys()
	if len(keys) < 50 {
		t.Fatalf("Keys() found only %d keys", len(keys))
	}
	for _, k := range keys {
		if !strings.Contains(text, "`"+k.Path+"`") {
			t.Errorf("docs/configuration.md does not document `%s`", k.Path)
		}
		if k.Env != "" && !strings.Contains(text, "`"+k.Env+"`") {
			t.Errorf("docs/configuration.md does not name the variable `%s` of %s", k.Env, k.Path)
		}
	}
}

// TestExampleHasEveryKey keeps example.yaml complete: every top-level and section key appears.
func TestExampleHasEveryKey(t *testing.T) {
	example := string(Example())
	for _, k := range Keys() {
		if strings.Contains(k.Path, "[]") {
			continue
		}
		last := k.Path[strings.LastIndex(k.Path, ".")+1:]
		if !strings.Contains(example, last+":") {
			t.Errorf("example.yaml does not show %s", k.Path)
		}
	}
}
