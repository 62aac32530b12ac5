package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// maxNodes bounds the work of one decode (aliases can make a small file look huge).
const maxNodes = 100_000

// decoder decodes a yaml.Node tree into the Config structs strictly: unknown keys, duplicate
// keys and values of the wrong type are reported with their full key path, and decoding goes
// on so that every problem is reported. Leaves are decoded by yaml.v3 itself.
type decoder struct {
	source string // "" for the config file, else the environment variable being decoded
	budget int
	p      problems
}

func newDecoder(source string) *decoder {
	return &decoder{source: source, budget: maxNodes}
}

// fail records a problem at key, adding the line (file) or variable name (environment).
func (d *decoder) fail(key string, n *yaml.Node, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	switch {
	case d.source != "":
		msg = d.source + ": " + msg
	case n != nil && n.Line > 0:
		msg = fmt.Sprintf("%s (line %d)", msg, n.Line)
	}
	d.p.add(key, "%s", msg)
}

// parseDocument parses exactly one YAML document. An empty input gives a nil node.
func parseDocument(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("invalid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("invalid YAML: only one document is allowed (found a second \"---\")")
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		return doc.Content[0], nil
	}
	return &doc, nil
}

// isNull reports whether n is absent or an explicit null: the default is kept.
func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

func joinKey(parent, child string) string {
	if parent == "" {
		return child
	}
	return parent + "." + child
}

// value decodes n into v, whose current content is the default.
func (d *decoder) value(n *yaml.Node, v reflect.Value, key string) {
	if !d.spend(key, n) {
		return
	}
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 8; i++ {
		n = n.Alias
	}
	if isNull(n) || n.Kind == yaml.AliasNode {
		return
	}
	if a, ok := v.Addr().Interface().(*Access); ok {
		d.access(n, a, key)
		return
	}
	t := v.Type()
	switch {
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.fail(key, n, "expected a mapping of keys")
			return
		}
		d.mapping(n, v, key)
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		d.structList(n, v, key)
	default:
		d.leaf(n, v, key)
	}
}

// isDuration reports whether t is time.Duration (a leaf, although its kind is int64).
func isDuration(t reflect.Type) bool { return t == reflect.TypeFor[time.Duration]() }

// spend counts one unit of work and reports whether the budget allows it.
func (d *decoder) spend(key string, n *yaml.Node) bool {
	d.budget--
	if d.budget == -1 {
		d.fail(key, n, "document too complex (too many nodes, aliases or merges)")
	}
	return d.budget >= 0
}

// access decodes the scalar or mapping form of an Access, replacing the default.
func (d *decoder) access(n *yaml.Node, a *Access, key string) {
	switch n.Kind {
	case yaml.ScalarNode:
		if err := a.setScalar(n.Value); err != nil {
			d.fail(key, n, "%v", err)
		}
	case yaml.MappingNode:
		*a = Access{mapping: true}
		d.mapping(n, reflect.ValueOf(a).Elem(), key)
	default:
		d.fail(key, n, "%s", accessFormMsg)
	}
}

// structList decodes a sequence of mappings; every element starts from its type's defaults.
func (d *decoder) structList(n *yaml.Node, v reflect.Value, key string) {
	if n.Kind != yaml.SequenceNode {
		d.fail(key, n, "expected a list")
		return
	}
	out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		elem := out.Index(i)
		if def, ok := elem.Addr().Interface().(interface{ setDefaults() }); ok {
			def.setDefaults()
		}
		d.value(item, elem, key+"["+strconv.Itoa(i)+"]")
	}
	v.Set(out)
}

// mapping decodes a mapping into the struct v. Merge keys (<<: *anchor) are applied first, so
// keys written out override merged ones.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, key string) {
	fields := yamlFields(v.Type())
	for i := 0; i+1 < len(n.Content); i += 2 {
		if isMerge(n.Content[i]) {
			d.merge(n.Content[i+1], v, key)
		}
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if isMerge(k) {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.fail(key, k, "keys must be plain strings")
			continue
		}
		child := joinKey(key, k.Value)
		if line, dup := seen[k.Value]; dup {
			d.fail(child, k, "duplicate key (first set on line %d)", line)
			continue
		}
		seen[k.Value] = k.Line
		idx, ok := fields[k.Value]
		if !ok {
			d.fail(child, k, "unknown key%s", suggest(k.Value, fields))
			continue
		}
		d.value(val, v.Field(idx), child)
	}
}

func isMerge(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge"
}

// merge applies the value of a merge key: one mapping, or a list of them where earlier ones win.
func (d *decoder) merge(n *yaml.Node, v reflect.Value, key string) {
	if !d.spend(key, n) {
		return
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch {
	case n == nil:
	case n.Kind == yaml.MappingNode:
		d.mapping(n, v, key)
	case n.Kind == yaml.SequenceNode:
		for i := len(n.Content) - 1; i >= 0; i-- {
			d.merge(n.Content[i], v, key)
		}
	default:
		d.fail(key, n, "a merge key (<<) needs a mapping or a list of mappings")
	}
}

// leaf decodes a scalar, list of scalars or map of scalars with yaml.v3. v is only changed on
// success, and the message never repeats the value (it may be a secret).
func (d *decoder) leaf(n *yaml.Node, v reflect.Value, key string) {
	ptr := reflect.New(v.Type())
	if err := n.Decode(ptr.Interface()); err != nil {
		d.fail(key, n, "expected %s", typeName(v.Type()))
		return
	}
	v.Set(ptr.Elem())
}

// typeName describes a leaf type to a person writing YAML.
func typeName(t reflect.Type) string {
	switch {
	case isDuration(t):
		return "a duration such as 30s or 12h"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.Int:
		return "an integer"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		return "a list of strings"
	case t.Kind() == reflect.Map:
		return "a mapping of strings to strings"
	case t.Kind() == reflect.Slice:
		return "a list"
	}
	return t.String()
}

// yamlFields maps the yaml tag of each exported field of t to its index.
func yamlFields(t reflect.Type) map[string]int {
	out := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		if name := yamlName(t.Field(i)); name != "" {
			out[name] = i
		}
	}
	return out
}

// yamlName returns the key of a struct field, or "" for fields that have none.
func yamlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	return name
}

// suggest returns ` (did you mean "x"?)` when a known key is within two edits of name.
func suggest(name string, fields map[string]int) string {
	best, bestDist := "", 3
	for k := range fields {
		if dist := editDistance(name, k); dist < bestDist || (dist == bestDist && k < best) {
			best, bestDist = k, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance of two short strings.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
