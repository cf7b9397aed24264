package configs

import (
	"fmt"
	"strings"
)

// FieldError is one problem with the configuration, tied to what causes it.
type FieldError struct {
	// Key is the key path at fault, such as "projects[1].tests[0].timeout",
	// or the name of the environment variable at fault.
	Key string
	// Message says what is wrong. It never contains a secret's value.
	Message string
}

// Error returns "key: message".
func (e FieldError) Error() string {
	if e.Key == "" {
		return e.Message
	}
	return e.Key + ": " + e.Message
}

// Errors is every problem Load found, so that one run tells the operator
// everything to fix: first the keys and values that could not be read, in
// the order of the file, then the values that were read but are not allowed.
// Use errors.As to get it from the error Load returns.
type Errors []FieldError

// Error lists the problems one per line.
func (es Errors) Error() string {
	if len(es) == 1 {
		return es[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d problems:", len(es))
	for _, e := range es {
		b.WriteString("\n\t")
		b.WriteString(e.Error())
	}
	return b.String()
}

func (es *Errors) add(key, format string, args ...any) {
	*es = append(*es, FieldError{Key: key, Message: fmt.Sprintf(format, args...)})
}

// covers reports whether key is, or lies under, a key that already has a
// problem, so that a value the file got wrong is not reported a second time
// as missing once it has been dropped. A problem with a *_file key covers
// the secret it stands for.
func (es Errors) covers(key string) bool {
	for _, e := range es {
		if e.Key == "" {
			continue
		}
		if key == e.Key || key+"_file" == e.Key || strings.HasPrefix(key, e.Key+".") || strings.HasPrefix(key, e.Key+"[") {
			return true
		}
	}
	return false
}

// field returns the key path of field name under parent ("" for the root).
func field(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// index returns the key path of element i of the list at parent.
func index(parent string, i int) string {
	return fmt.Sprintf("%s[%d]", parent, i)
}
