package config

import (
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// EnvPrefix starts the name of every environment variable that overrides a key.
const EnvPrefix = "AUTHGATE_"

// EnvConfigFile is the variable cmd/authgate reads the config path from; it is not a key.
const EnvConfigFile = "AUTHGATE_CONFIG"

// Key describes one configuration key.
type Key struct {
	Path   string // "session.idle_timeout"; route keys are written "routes[].name"
	Env    string // overriding variable, e.g. "AUTHGATE_SESSION_IDLE_TIMEOUT"; "" for mappings and inside routes
	Type   string // "string", "bool", "duration", "list of strings", "map of strings", "list", "mapping", "access"
	Secret bool   // the value is a secret (never logged, never echoed in errors)
}

// EnvName returns the variable that overrides the key path ("oidc.client_secret" ->
// "AUTHGATE_OIDC_CLIENT_SECRET").
func EnvName(path string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// Keys lists every key of the configuration, mappings and routes' keys included, in the order
// of the structs. It is computed from the yaml tags, so it is always complete.
func Keys() []Key {
	var out []Key
	listKeys(reflect.TypeFor[Config](), "", true, &out)
	return out
}

func listKeys(t reflect.Type, prefix string, env bool, out *[]Key) {
	for i := range t.NumField() {
		f := t.Field(i)
		name := yamlName(f)
		if name == "" {
			continue
		}
		k := Key{Path: joinKey(prefix, name), Type: keyType(f.Type), Secret: f.Tag.Get("secret") == "true"}
		if env && k.Type != "mapping" {
			k.Env = EnvName(k.Path)
		}
		*out = append(*out, k)
		switch {
		case f.Type.Kind() == reflect.Struct:
			listKeys(f.Type, k.Path, env && k.Type == "mapping", out)
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			listKeys(f.Type.Elem(), k.Path+"[]", false, out)
		}
	}
}

func keyType(t reflect.Type) string {
	switch {
	case t == reflect.TypeFor[Access]():
		return "access"
	case isDuration(t):
		return "duration"
	case t.Kind() == reflect.Bool:
		return "bool"
	case t.Kind() == reflect.Int:
		return "integer"
	case t.Kind() == reflect.String:
		return "string"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		return "list of strings"
	case t.Kind() == reflect.Map:
		return "map of strings"
	case t.Kind() == reflect.Slice:
		return "list"
	}
	return "mapping"
}

// envLeaves calls fn for every key that has its own variable, with the field to set.
func envLeaves(v reflect.Value, prefix string, fn func(path string, v reflect.Value)) {
	t := v.Type()
	for i := range t.NumField() {
		name := yamlName(t.Field(i))
		if name == "" {
			continue
		}
		path := joinKey(prefix, name)
		if keyType(t.Field(i).Type) == "mapping" {
			envLeaves(v.Field(i), path, fn)
			continue
		}
		fn(path, v.Field(i))
	}
}

// envMap turns "K=V" entries into a map; a later entry wins, as in os.Getenv.
func envMap(environ []string) map[string]string {
	m := make(map[string]string)
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, EnvPrefix) {
			m[k] = v
		}
	}
	return m
}

// applyEnv overrides c with every AUTHGATE_* variable of environ that names a key. A variable
// that is set replaces the value, even when it is empty (AUTHGATE_ADMIN_LISTEN= disables the
// ops listener).
func applyEnv(c *Config, environ []string) []error {
	env := envMap(environ)
	var p problems
	envLeaves(reflect.ValueOf(c).Elem(), "", func(path string, v reflect.Value) {
		name := EnvName(path)
		raw, ok := env[name]
		if !ok {
			return
		}
		if msg := setFromEnv(v, path, name, raw, &p); msg != "" {
			p.add(path, "%s: %s", name, msg)
		}
	})
	return p.errs
}

// setFromEnv sets one field from a variable. Scalars are taken literally (strings are never
// YAML-parsed); lists and maps use YAML flow syntax, lists also "a, b". It returns a message
// for a value of the wrong type, or records detailed problems in p itself.
func setFromEnv(v reflect.Value, path, name, raw string, p *problems) string {
	t := v.Type()
	switch {
	case isDuration(t):
		d, err := time.ParseDuration(strings.TrimSpace(raw))
		if err != nil {
			return "expected a duration such as 30s or 12h"
		}
		v.SetInt(int64(d))
	case t.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(raw))
		if err != nil {
			return "expected true or false"
		}
		v.SetBool(b)
	case t.Kind() == reflect.Int:
		n, err := strconv.Atoi(strings.TrimSpace(raw))
		if err != nil {
			return "expected an integer"
		}
		v.SetInt(int64(n))
	case t.Kind() == reflect.String:
		v.SetString(raw)
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String && !strings.HasPrefix(strings.TrimSpace(raw), "["):
		list := []string{}
		for item := range strings.SplitSeq(raw, ",") {
			if item = strings.TrimSpace(item); item != "" {
				list = append(list, item)
			}
		}
		v.Set(reflect.ValueOf(list))
	default:
		return decodeEnvYAML(v, path, name, raw, p)
	}
	return ""
}

// decodeEnvYAML decodes a list, map or the routes from YAML (or JSON) text.
func decodeEnvYAML(v reflect.Value, path, name, raw string, p *problems) string {
	if strings.TrimSpace(raw) == "" {
		if v.Kind() == reflect.Map {
			v.Set(reflect.MakeMap(v.Type()))
		} else {
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		}
		return ""
	}
	n, err := parseDocument([]byte(raw))
	if err != nil {
		return err.Error()
	}
	d := newDecoder(name)
	d.value(n, v, path)
	p.addAll(d.p.errs)
	return ""
}

// UnusedEnv returns the AUTHGATE_* variables of environ that override no key (typos, or keys
// that do not exist), sorted, AUTHGATE_CONFIG excluded. Load ignores them; cmd/authgate should
// log them as a warning.
func UnusedEnv(environ []string) []string {
	known := map[string]bool{EnvConfigFile: true}
	for _, k := range Keys() {
		if k.Env != "" {
			known[k.Env] = true
		}
	}
	var out []string
	for name := range envMap(environ) {
		if !known[name] {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}
