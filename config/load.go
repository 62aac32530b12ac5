package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
)

// maxConfigFile bounds the size of the config file.
const maxConfigFile = 4 << 20

// Load reads the YAML file at path and returns the validated configuration: defaults, then the
// file (strictly: unknown keys are errors), then the AUTHGATE_* variables of environ (pass
// os.Environ()), then the *_file secrets (relative paths are relative to the file's directory),
// then Validate. On error it returns every problem found, joined; see Problems.
func Load(path string, environ []string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigFile+1))
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", path, err)
	}
	if len(data) > maxConfigFile {
		return nil, fmt.Errorf("config: %s is larger than %d bytes", path, maxConfigFile)
	}
	return Parse(data, environ, filepath.Dir(path))
}

// Parse is Load for YAML already in memory. baseDir resolves relative *_file paths ("" means
// the working directory).
func Parse(data []byte, environ []string, baseDir string) (*Config, error) {
	c := Default()
	root, err := parseDocument(data)
	if err != nil {
		return nil, &FieldError{Msg: err.Error()}
	}
	var p problems
	d := newDecoder("")
	d.value(root, reflect.ValueOf(c).Elem(), "")
	p.addAll(d.p.errs)
	p.addAll(applyEnv(c, environ))
	p.addAll(resolveFiles(c, baseDir))
	p.addAll(withoutRepeats(c.validate(), p.errs, c.secretFiles()))
	if err := p.err(); err != nil {
		return nil, err
	}
	c.expandUpstream()
	return c, nil
}

// withoutRepeats drops validation problems about a key that already has a problem from decoding,
// the environment or a *_file (a value that failed to decode or read is left at its default, and
// "required" on top of "cannot read" would only be noise).
func withoutRepeats(validation, earlier []error, files []secretFile) []error {
	failed := map[string]bool{}
	for _, fe := range Problems(errors.Join(earlier...)) {
		failed[fe.Key] = true
		for _, sf := range files {
			if fe.Key == sf.fileKey {
				failed[sf.key] = true
			}
		}
	}
	var out []error
	for _, err := range validation {
		if fe, ok := err.(*FieldError); ok && coveredBy(fe.Key, failed) {
			continue
		}
		out = append(out, err)
	}
	return out
}

// coveredBy reports whether key or one of its parents ("routes[0]" for "routes[0].name") failed.
func coveredBy(key string, failed map[string]bool) bool {
	if failed[""] { // the file itself is unusable: checking its values is noise
		return true
	}
	for {
		if failed[key] {
			return true
		}
		i := strings.LastIndexAny(key, ".[")
		if i <= 0 {
			return false
		}
		key = key[:i]
	}
}
