package config

import (
	"testing"
)

func TestExampleIsValidWithSecrets(t *testing.T) {
	env := []string{
		"AUTHGATE_OIDC_CLIENT_SECRET=example-client-secret",
		"AUTHGATE_SESSION_SECRETS=" + testSecretA,
		"AUTHGATE_ADMIN_TOKEN=" + testToken,
	}
	c, err := Parse(Example(), env, "")
	if err != nil {
		t.Fatalf("example does not validate: %v", err)
	}
	if len(c.Routes) != 3 || !c.Routes[1].Access.Public || c.Routes[0].Access.Roles[0] != "super_admin" {
		t.Fatalf("example routes = %+v", c.Routes)
	}
}

func TestExampleNeedsOnlyItsSecrets(t *testing.T) {
	_, err := Parse(Example(), nil, "")
	assertKeys(t, err, []string{"oidc.client_secret", "session.secrets", "admin.token"})
}

func TestExampleReturnsCopy(t *testing.T) {
	a := Example()
	a[0] = 'X'
	if Example()[0] == 'X' {
		t.Fatal("Example returned its embedded bytes, not a copy")
	}
}
