package config

import (
	"os"
	"path/filepath"
	"testing"
)

// TestBadConfigGolden checks the full problem list of testdata/bad.yaml, one a line, as
// `authgate check-config` prints it. Regenerate with UPDATE_GOLDEN=1 go test ./config/ and
// review the diff.
func TestBadConfigGolden(t *testing.T) {
	_, err := Load(filepath.Join("testdata", "bad.yaml"), nil)
	if err == nil {
		t.Fatal("bad.yaml loaded without problems")
	}
	got := err.Error() + "\n"
	golden := filepath.Join("testdata", "bad.golden")
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with UPDATE_GOLDEN=1 to create it)", err)
	}
	if got != string(want) {
		t.Fatalf("problems differ from %s\n--- got:\n%s--- want:\n%s", golden, got, want)
	}
}
