package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// withoutSecrets is validYAML with the three secrets removed, so *_file keys can supply them.
func withoutSecrets() string {
	s := strings.Replace(validYAML, `  client_secret: "client-secret-value"`+"\n", "", 1)
	s = strings.Replace(s, `  secrets: ["`+testSecretA+`"]`+"\n", "", 1)
	return strings.Replace(s, `  token: "`+testToken+`"`+"\n", "", 1)
}

func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "client_secret", "from-file\n")
	writeFile(t, dir, "secrets", "# current first\n"+testSecretB+"\n\n  "+testSecretA+"  \n")
	tokenPath := writeFile(t, dir, "token", testToken+"\r\n")
	yaml := strings.Replace(withoutSecrets(), "oidc:\n", "oidc:\n  client_secret_file: client_secret\n", 1)
	yaml = strings.Replace(yaml, "session:\n", "session:\n  secrets_file: ./secrets\n", 1)
	yaml = strings.Replace(yaml, "admin:\n", "admin:\n  token_file: "+tokenPath+"\n", 1)
	cfgPath := writeFile(t, dir, "authgate.yaml", yaml)

	c, err := Load(cfgPath, nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.OIDC.ClientSecret != "from-file" || c.Admin.Token != testToken ||
		!slices.Equal(c.Session.Secrets, []string{testSecretB, testSecretA}) {
		t.Fatalf("secrets not read: %q %q %q", c.OIDC.ClientSecret, c.Admin.Token, c.Session.Secrets)
	}
	if c.OIDC.ClientSecretFile != "client_secret" {
		t.Errorf("ClientSecretFile = %q, want the configured path", c.OIDC.ClientSecretFile)
	}
}

func TestSecretFilesFromEnv(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "cs", "env-file-secret")
	c, err := Parse([]byte(strings.Replace(validYAML, `  client_secret: "client-secret-value"`+"\n", "", 1)),
		[]string{"AUTHGATE_OIDC_CLIENT_SECRET_FILE=" + p}, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.OIDC.ClientSecret != "env-file-secret" {
		t.Fatalf("ClientSecret = %q", c.OIDC.ClientSecret)
	}
}

func TestSecretFileProblems(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "empty", " \n")
	writeFile(t, dir, "comments", "# nothing here\n\n")
	writeFile(t, dir, "short", testSecretA+"\nc2hvcnQ=\n")
	writeFile(t, dir, "big", strings.Repeat("x", maxSecretFile+1))
	if err := os.Mkdir(filepath.Join(dir, "adir"), 0o700); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		yaml     string
		env      []string
		wantKeys []string
		wantMsg  string
	}{
		{name: "value and file", yaml: strings.Replace(validYAML, "oidc:\n", "oidc:\n  client_secret_file: empty\n", 1),
			wantKeys: []string{"oidc.client_secret_file"}, wantMsg: "set either oidc.client_secret or oidc.client_secret_file, not both"},
		{name: "value in file, file in env", yaml: validYAML, env: []string{"AUTHGATE_ADMIN_TOKEN_FILE=empty"},
			wantKeys: []string{"admin.token_file"}},
		{name: "secrets and secrets_file", yaml: validYAML, env: []string{"AUTHGATE_SESSION_SECRETS_FILE=comments"},
			wantKeys: []string{"session.secrets_file"}},
		{name: "missing file", yaml: withoutSecrets(), env: []string{"AUTHGATE_OIDC_CLIENT_SECRET_FILE=nope",
			"AUTHGATE_SESSION_SECRETS=" + testSecretA, "AUTHGATE_ADMIN_TOKEN=" + testToken},
			wantKeys: []string{"oidc.client_secret_file"}, wantMsg: "cannot read"},
		{name: "empty file", yaml: withoutSecrets(), env: []string{"AUTHGATE_ADMIN_TOKEN_FILE=empty",
			"AUTHGATE_SESSION_SECRETS=" + testSecretA, "AUTHGATE_OIDC_CLIENT_SECRET=x"},
			wantKeys: []string{"admin.token_file"}, wantMsg: "file is empty"},
		{name: "only comments", yaml: withoutSecrets(), env: []string{"AUTHGATE_SESSION_SECRETS_FILE=comments",
			"AUTHGATE_ADMIN_TOKEN=" + testToken, "AUTHGATE_OIDC_CLIENT_SECRET=x"},
			wantKeys: []string{"session.secrets_file"}},
		{name: "directory", yaml: withoutSecrets(), env: []string{"AUTHGATE_OIDC_CLIENT_SECRET_FILE=adir",
			"AUTHGATE_SESSION_SECRETS=" + testSecretA, "AUTHGATE_ADMIN_TOKEN=" + testToken},
			wantKeys: []string{"oidc.client_secret_file"}, wantMsg: "not a regular file"},
		{name: "too big", yaml: withoutSecrets(), env: []string{"AUTHGATE_OIDC_CLIENT_SECRET_FILE=big",
			"AUTHGATE_SESSION_SECRETS=" + testSecretA, "AUTHGATE_ADMIN_TOKEN=" + testToken},
			wantKeys: []string{"oidc.client_secret_file"}, wantMsg: "larger than"},
		{name: "short secret from file", yaml: withoutSecrets(), env: []string{"AUTHGATE_SESSION_SECRETS_FILE=short",
			"AUTHGATE_ADMIN_TOKEN=" + testToken, "AUTHGATE_OIDC_CLIENT_SECRET=x"},
			wantKeys: []string{"session.secrets[1]"}, wantMsg: "decodes to 5 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), tt.env, dir)
			assertKeys(t, err, tt.wantKeys)
			if tt.wantMsg != "" {
				assertMsg(t, err, tt.wantMsg)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "missing.yaml"), nil); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("Load of a missing file: %v", err)
	}
	big := writeFile(t, dir, "big.yaml", "# "+strings.Repeat("x", maxConfigFile))
	if _, err := Load(big, nil); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Load of a huge file: %v", err)
	}
}
