package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// maxSecretFile bounds what a *_file may hold.
const maxSecretFile = 64 << 10

// secretFile is one secret key and its *_file sibling.
type secretFile struct {
	key, fileKey string
	isSet        func() bool
	path         *string
	set          func(content string) error
}

func (c *Config) secretFiles() []secretFile {
	single := func(dst *string) func(string) error {
		return func(s string) error {
			if *dst = strings.TrimSpace(s); *dst == "" {
				return errors.New("file is empty")
			}
			return nil
		}
	}
	return []secretFile{{
		key: "oidc.client_secret", fileKey: "oidc.client_secret_file",
		isSet: func() bool { return c.OIDC.ClientSecret != "" },
		path:  &c.OIDC.ClientSecretFile, set: single(&c.OIDC.ClientSecret),
	}, {
		key: "session.secrets", fileKey: "session.secrets_file",
		isSet: func() bool { return len(c.Session.Secrets) > 0 },
		path:  &c.Session.SecretsFile, set: func(s string) error {
			c.Session.Secrets = secretLines(s)
			if len(c.Session.Secrets) == 0 {
				return errors.New("file holds no secret")
			}
			return nil
		},
	}, {
		key: "admin.token", fileKey: "admin.token_file",
		isSet: func() bool { return c.Admin.Token != "" },
		path:  &c.Admin.TokenFile, set: single(&c.Admin.Token),
	}}
}

// secretLines splits a secrets file: one secret a line; blank lines and lines starting with #
// are skipped.
func secretLines(s string) []string {
	var out []string
	for line := range strings.Lines(s) {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out
}

// resolveFiles reads every *_file that is set into its sibling. Setting both is an error.
// Relative paths are resolved against baseDir.
func resolveFiles(c *Config, baseDir string) []error {
	var p problems
	for _, sf := range c.secretFiles() {
		if *sf.path == "" {
			continue
		}
		if sf.isSet() {
			p.add(sf.fileKey, "set either %s or %s, not both", sf.key, sf.fileKey)
			continue
		}
		content, err := readSecretFile(*sf.path, baseDir)
		if err == nil {
			err = sf.set(content)
		}
		if err != nil {
			p.add(sf.fileKey, "%v", err)
		}
	}
	return p.errs
}

// readSecretFile reads a small regular file (a FIFO or device would block or never end).
func readSecretFile(path, baseDir string) (string, error) {
	if !filepath.IsAbs(path) && baseDir != "" {
		path = filepath.Join(baseDir, path)
	}
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("cannot read %q: %w", path, unwrapPath(err))
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%q is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cannot read %q: %w", path, unwrapPath(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("cannot read %q: %w", path, unwrapPath(err))
	}
	if len(b) > maxSecretFile {
		return "", fmt.Errorf("%q is larger than %d bytes", path, maxSecretFile)
	}
	return string(b), nil
}

// unwrapPath drops the *fs.PathError wrapper, whose text repeats the path.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
