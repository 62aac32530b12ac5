package config

import (
	_ "embed"
	"slices"
)

//go:embed example.yaml
var exampleYAML []byte // read-only: Example returns a copy

// Example returns a documented example configuration. It is valid once the three secrets it
// leaves out are given: AUTHGATE_OIDC_CLIENT_SECRET, AUTHGATE_SESSION_SECRETS and
// AUTHGATE_ADMIN_TOKEN (or their *_file keys).
func Example() []byte {
	return slices.Clone(exampleYAML)
}
