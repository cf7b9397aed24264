package configs

import (
	"encoding"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

var textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()

// preparer readies a YAML tree for decoding. yaml.v3 stops at the first value
// it cannot convert and names lines rather than keys, and KnownFields only
// applies when decoding bytes, not an already expanded tree. So the tree is
// walked alongside the Go types first: ${VAR} references are expanded, and
// every unknown key and every value of the wrong shape is reported with its
// key path and removed. The decode that follows then cannot fail, and
// validation still sees the rest of the file, which lets Load report every
// problem at once.
type preparer struct {
	getenv func(string) string
	errs   *Errors
	// expanded remembers anchored nodes, which are reached once per alias,
	// so that a value is expanded only once.
	expanded map[*yaml.Node]bool
	// unset are the ${NAME} references without default that came out empty.
	unset []UnsetVar
	// literal turns ${VAR} expansion off: a repository's pipeline file is
	// written by whoever can push, and expanding it would hand them the
	// server's environment (GITLAB_TOKEN in a test's env).
	literal bool
	// refuse, when set, says why a key unknown to struct t is refused, or
	// returns "" to report it as unknown.
	refuse func(t reflect.Type, name string) string
}

// value checks n against type t. It reports false when n must not reach the
// decoder; the caller then drops it.
func (p *preparer) value(n *yaml.Node, t reflect.Type, key string) bool {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return true // an empty value keeps the default
	}
	switch {
	case reflect.PointerTo(t).Implements(textUnmarshalerType):
		return p.scalar(n, t, key)
	case t.Kind() == reflect.Struct, t.Kind() == reflect.Map:
		return p.mapping(n, t, key)
	case t.Kind() == reflect.Slice:
		return p.list(n, t, key)
	default:
		return p.scalar(n, t, key)
	}
}

// mapping checks a struct (keys are its yaml tags) or a map of strings.
func (p *preparer) mapping(n *yaml.Node, t reflect.Type, key string) bool {
	if n.Kind != yaml.MappingNode {
		p.errs.add(key, "must be a mapping, not %s", describeNode(n))
		return false
	}
	var fields map[string]reflect.Type
	if t.Kind() == reflect.Struct {
		fields = yamlFields(t)
	}
	seen := map[string]bool{}
	kept := n.Content[:0] // filtering in place: the write index never passes the read index
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.Style == 0 {
			if p.merge(v, t, key) {
				kept = append(kept, k, v)
			}
			continue
		}
		fk := field(key, k.Value)
		var vt reflect.Type // nil for an unknown key
		if fields != nil {
			vt = fields[k.Value]
		} else {
			vt = t.Elem()
		}
		switch {
		case k.Kind != yaml.ScalarNode:
			p.errs.add(key, "keys must be plain names, not %s", describeNode(k))
		case vt == nil && fields != nil && p.refuse != nil && p.refuse(t, k.Value) != "":
			p.errs.add(fk, "%s", p.refuse(t, k.Value))
		case vt == nil && fields != nil && retiredKey(t, k.Value, n) != "":
			if p.setTo(v, fk) {
				p.errs.add(fk, "%s", retiredKey(t, k.Value, n))
			}
		case vt == nil:
			p.errs.add(fk, "unknown key%s", suggest(k.Value, fields))
		case seen[k.Value]:
			p.errs.add(fk, "set twice")
		case p.value(v, vt, fk):
			kept = append(kept, k, v)
		}
		seen[k.Value] = true
	}
	n.Content = kept
	return true
}

// retiredKey says why key name of struct t, which gantry once accepted and
// ignored, is refused now, or returns "" for any other key. An unknown-key
// error would leave the operator guessing what to do with the setting.
// siblings is the mapping holding the key, for a message naming the
// registry's host.
func retiredKey(t reflect.Type, name string, siblings *yaml.Node) string {
	if t != reflect.TypeFor[Registry]() || name != "ca_file" {
		return ""
	}
	host := "HOST"
	for i := 0; i+1 < len(siblings.Content); i += 2 {
		if k, v := siblings.Content[i], siblings.Content[i+1]; k.Value == "host" && registryHost.MatchString(strings.ToLower(v.Value)) {
			host = v.Value
		}
	}
	return "is not used by gantry: the Docker engine talks to the registry, so put the CA in /etc/docker/certs.d/" +
		host + "/ca.crt on the engine's host"
}

// setTo reports whether n sets something: a retired key left empty, as in
// configs copied from an older example, is no setting and is let pass.
func (p *preparer) setTo(n *yaml.Node, key string) bool {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind != yaml.ScalarNode {
		return true
	}
	return p.expand(n, key) && n.ShortTag() != "!!null" && n.Value != ""
}

// merge checks the target of a YAML merge key (<<: *anchor), which is a
// mapping or a list of mappings merged into the mapping at key.
func (p *preparer) merge(v *yaml.Node, t reflect.Type, key string) bool {
	if v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	if v.Kind != yaml.SequenceNode {
		return p.mapping(v, t, key)
	}
	ok := true
	for _, e := range v.Content {
		ok = p.merge(e, t, key) && ok
	}
	return ok
}

// list checks a sequence. A bad element is replaced rather than dropped, so
// that the indexes in later messages still match the file.
func (p *preparer) list(n *yaml.Node, t reflect.Type, key string) bool {
	if n.Kind != yaml.SequenceNode {
		p.errs.add(key, "must be a list, not %s", describeNode(n))
		return false
	}
	for i, e := range n.Content {
		if !p.value(e, t.Elem(), index(key, i)) {
			n.Content[i] = placeholder(t.Elem())
		}
	}
	return true
}

// scalar expands a single value and checks that it converts to t.
func (p *preparer) scalar(n *yaml.Node, t reflect.Type, key string) bool {
	if n.Kind != yaml.ScalarNode {
		p.errs.add(key, "must be %s, not %s", describeType(t), describeNode(n))
		return false
	}
	if !p.expand(n, key) {
		return false
	}
	if p.expanded[n] && t.Kind() != reflect.String {
		// "${WORKERS:-4}" parses as a string, quoted or not. Let the decoder
		// resolve the expanded text instead, so that it becomes the number
		// (or boolean) it now spells, and an empty result leaves the key
		// unset. String targets keep the text as it is: "00123", "null" or
		// "" from the environment are strings there, not numbers or nulls.
		n.Style, n.Tag = 0, ""
	}
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		if reflect.PointerTo(t).Implements(textUnmarshalerType) {
			p.errs.add(key, "%v", err) // these errors quote the value themselves
		} else {
			p.errs.add(key, "%q is not %s", n.Value, describeType(t))
		}
		return false
	}
	return true
}

// expand replaces the ${VAR} references in n, once even if n is reached
// through several aliases.
func (p *preparer) expand(n *yaml.Node, key string) bool {
	if p.literal || p.expanded[n] || !strings.Contains(n.Value, "${") {
		return true
	}
	v, unset, err := expand(n.Value, p.getenv)
	if err != nil {
		p.errs.add(key, "%v", err)
		return false
	}
	for _, name := range unset {
		p.unset = append(p.unset, UnsetVar{Key: key, Name: name})
	}
	p.expanded[n] = true
	n.Value = v
	return true
}

// yamlFields maps each yaml key of struct t to its field type.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	fields := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if f.IsExported() && name != "" && name != "-" {
			fields[name] = f.Type
		}
	}
	return fields
}

// placeholder stands in for a dropped list element of type t.
func placeholder(t reflect.Type) *yaml.Node {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.Struct && !reflect.PointerTo(t).Implements(textUnmarshalerType):
		return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	case t.Kind() == reflect.String:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str"}
	default:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"}
	}
}

// describeNode names the shape of n without quoting it: the text may be a secret.
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return "a single value"
	}
}

// describeType names what a value of type t is written as.
func describeType(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[Duration]():
		return "a duration"
	case reflect.TypeFor[ByteSize]():
		return "a byte size"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice:
		return "a list"
	case reflect.Struct, reflect.Map:
		return "a mapping"
	default:
		return "a string"
	}
}

// suggest names the known key closest to a misspelt one, if any is close.
func suggest(name string, fields map[string]reflect.Type) string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys) // ties go to the same key on every run
	best, bestDist := "", 3
	for _, k := range keys {
		if d := editDistance(name, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best == "" {
		return ""
	}
	return " (did you mean " + best + "?)"
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
