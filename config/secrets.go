package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// minSecretBytes is the shortest session secret accepted, decoded.
const minSecretBytes = 32

// decodeSecret decodes base64 in the standard or URL alphabet, with or without padding.
func decodeSecret(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{
		base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding,
	} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not valid base64")
}

// SecretKeys returns session.secrets decoded, first (current) one first. The session package
// derives its signing and encryption keys from them; the caller must not log them. It fails
// like Validate on a secret that is not base64 or shorter than 32 bytes.
func (c *Config) SecretKeys() ([][]byte, error) {
	if len(c.Session.Secrets) == 0 {
		return nil, &FieldError{Key: "session.secrets", Msg: "at least one secret is required"}
	}
	out := make([][]byte, 0, len(c.Session.Secrets))
	for i, s := range c.Session.Secrets {
		key := fmt.Sprintf("session.secrets[%d]", i)
		b, err := decodeSecret(s)
		if err != nil {
			return nil, &FieldError{Key: key, Msg: "is not valid base64"}
		}
		if len(b) < minSecretBytes {
			return nil, &FieldError{Key: key, Msg: fmt.Sprintf("decodes to %d bytes; at least %d are required", len(b), minSecretBytes)}
		}
		out = append(out, b)
	}
	return out, nil
}
