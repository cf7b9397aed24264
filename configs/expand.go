package configs

import (
	"errors"
	"regexp"
	"strings"
)

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expand replaces ${NAME} with getenv(NAME), and ${NAME:-default} with
// default when NAME is empty or unset (getenv cannot tell the two apart).
// $${ stands for a literal ${, so a test command can still mention a shell
// variable. What getenv returns is inserted as is and never expanded again,
// so an environment value cannot pull in other variables.
//
// unset names the variables of ${NAME} references without a default that
// getenv answered empty for, so the caller can say which one is missing: an
// empty secret otherwise only shows up as "required", or not at all.
//
// Errors do not quote s: the value around a bad reference may be a secret.
func expand(s string, getenv func(string) string) (out string, unset []string, err error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), unset, nil
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		ref, rest, ok := strings.Cut(s[i+2:], "}")
		if !ok {
			return "", nil, errors.New("unterminated ${ (write $${ for a literal ${)")
		}
		name, def, hasDefault := strings.Cut(ref, ":-")
		if !envName.MatchString(name) {
			return "", nil, errors.New("bad ${...} reference: want ${NAME} or ${NAME:-default}")
		}
		v := getenv(name)
		if v == "" && hasDefault {
			v = def
		} else if v == "" {
			unset = append(unset, name)
		}
		b.WriteString(v)
		s = rest
	}
}
