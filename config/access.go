package config

import (
	"errors"

	"gopkg.in/yaml.v3"
)

// Access is the access rule of a route. In YAML it is the scalar `public` or `authenticated`,
// or a mapping {roles: [...], groups: [...], emails: [...], email_domains: [...]}; a user who
// matches at least one entry of at least one list is allowed (emails and email_domains only with
// a verified email). Exactly one of the three forms is set on a valid Access; the gateway must
// still enforce it.
type Access struct {
	Public        bool     `yaml:"-"` // no session needed, no identity headers
	Authenticated bool     `yaml:"-"` // any live session
	Roles         []string `yaml:"roles"`
	Groups        []string `yaml:"groups"`
	Emails        []string `yaml:"emails"`
	EmailDomains  []string `yaml:"email_domains"` // "example.com" or "@example.com"

	mapping bool // written as a mapping in YAML (so an empty mapping is reported, not defaulted)
}

// Access scalar forms.
const (
	AccessPublic        = "public"
	AccessAuthenticated = "authenticated"
)

const accessFormMsg = `must be "public", "authenticated" or a mapping of roles, groups, emails, email_domains`

// HasRules reports whether a is the mapping form with at least one entry.
func (a Access) HasRules() bool {
	return len(a.Roles)+len(a.Groups)+len(a.Emails)+len(a.EmailDomains) > 0
}

// setScalar sets a from its scalar form.
func (a *Access) setScalar(s string) error {
	*a = Access{}
	switch s {
	case AccessPublic:
		a.Public = true
	case AccessAuthenticated:
		a.Authenticated = true
	default:
		return errors.New(accessFormMsg)
	}
	return nil
}

// UnmarshalYAML decodes the scalar or the mapping form. Load does not use it (it decodes
// strictly, reporting unknown keys with their path); it is here for callers decoding a
// standalone Access.
func (a *Access) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		return a.setScalar(n.Value)
	case yaml.MappingNode:
		type plain Access
		var p plain
		if err := n.Decode(&p); err != nil {
			return err
		}
		*a = Access(p)
		a.mapping = true
		return nil
	}
	return errors.New(accessFormMsg)
}

// MarshalYAML writes the form UnmarshalYAML reads.
func (a Access) MarshalYAML() (any, error) {
	switch {
	case a.Public:
		return AccessPublic, nil
	case a.Authenticated:
		return AccessAuthenticated, nil
	}
	type rules struct {
		Roles        []string `yaml:"roles,omitempty"`
		Groups       []string `yaml:"groups,omitempty"`
		Emails       []string `yaml:"emails,omitempty"`
		EmailDomains []string `yaml:"email_domains,omitempty"`
	}
	return rules{a.Roles, a.Groups, a.Emails, a.EmailDomains}, nil
}
