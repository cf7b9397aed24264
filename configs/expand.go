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
// Errors do not quote s: the value around a bad reference may be a secret.
func expand(s string, getenv func(string) string) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
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
			return "", errors.New("unterminated ${ (write $${ for a literal ${)")
		}
		name, def, hasDefault := strings.Cut(ref, ":-")
		if !envName.MatchString(name) {
			return "", errors.New("bad ${...} reference: want ${NAME} or ${NAME:-default}")
		}
		v := getenv(name)
		if v == "" && hasDefault {
			v = def
		}
		b.WriteString(v)
		s = rest
	}
}
