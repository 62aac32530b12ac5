package gateway

import "testing"

func TestPolicyAllows(t *testing.T) {
	alice := &Identity{UserID: "u1", Email: "alice@example.com", EmailVerified: true, Roles: []string{"super_admin"}, Groups: []string{"admins"}}
	unverified := &Identity{UserID: "u2", Email: "bob@example.com", EmailVerified: false}
	tricky := &Identity{UserID: "u3", Email: "attacker@evil.com@example.com", EmailVerified: true}
	tests := []struct {
		name   string
		policy Policy
		id     *Identity
		want   bool
	}{
		{name: "public allows anonymous", policy: Policy{Public: true}, id: nil, want: true},
		{name: "authenticated refuses anonymous", policy: Policy{}, id: nil, want: false},
		{name: "authenticated allows any session", policy: Policy{}, id: unverified, want: true},
		{name: "role present", policy: Policy{Roles: []string{"super_admin"}}, id: alice, want: true},
		{name: "role missing", policy: Policy{Roles: []string{"super_admin"}}, id: unverified, want: false},
		{name: "role match is exact", policy: Policy{Roles: []string{"Super_Admin"}}, id: alice, want: false},
		{name: "group present", policy: Policy{Groups: []string{"admins"}}, id: alice, want: true},
		{name: "email listed", policy: Policy{Emails: []string{"ALICE@example.com"}}, id: alice, want: true},
		{name: "email domain", policy: Policy{EmailDomains: []string{"example.com"}}, id: alice, want: true},
		{name: "email domain with at", policy: Policy{EmailDomains: []string{"@example.com"}}, id: alice, want: true},
		{name: "domain suffix is not a match", policy: Policy{EmailDomains: []string{"ample.com"}}, id: alice, want: false},
		{name: "unverified email never matches email", policy: Policy{Emails: []string{"bob@example.com"}}, id: unverified, want: false},
		{name: "unverified email never matches domain", policy: Policy{EmailDomains: []string{"example.com"}}, id: unverified, want: false},
		{name: "CLM-01 double at refused", policy: Policy{EmailDomains: []string{"example.com"}}, id: tricky, want: false},
		{name: "any list can satisfy", policy: Policy{Roles: []string{"nope"}, EmailDomains: []string{"example.com"}}, id: alice, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.policy.Allows(tt.id); got != tt.want {
				t.Errorf("Allows = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestClaimStrings(t *testing.T) {
	claims := map[string]any{
		"roles":                     []any{"a", "b", 3, "c,d", "e\nf", " g "},
		"https://example.com/roles": []any{"auth0-admin"},
		"realm_access":              map[string]any{"roles": []any{"kc-admin"}},
		"single":                    "solo",
		"a.b":                       []any{"dotted-key"},
		"a":                         map[string]any{"b": []any{"nested"}},
	}
	tests := []struct {
		name, claim string
		want        []string
	}{
		{name: "array filters unsafe values", claim: "roles", want: []string{"a", "b", "g"}},
		{name: "URL-shaped claim", claim: "https://example.com/roles", want: []string{"auth0-admin"}},
		{name: "dotted path", claim: "realm_access.roles", want: []string{"kc-admin"}},
		{name: "single string", claim: "single", want: []string{"solo"}},
		{name: "exact key wins over path", claim: "a.b", want: []string{"dotted-key"}},
		{name: "missing", claim: "nope", want: nil},
		{name: "path through non-object", claim: "single.x", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := claimStrings(claims, tt.claim)
			if len(got) != len(tt.want) {
				t.Fatalf("claimStrings(%q) = %q, want %q", tt.claim, got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("claimStrings(%q) = %q, want %q", tt.claim, got, tt.want)
				}
			}
		})
	}
}
