package configs

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// minSecretLength is the shortest webhook secret or API token accepted. GitLab
// lets a user type any webhook secret, and anyone who can reach gantry can
// guess at both, so a value that a person would type is not enough; 16
// characters still admits a passphrase, and what we document is a random 32+.
const minSecretLength = 16

// secretAdvice ends every refusal: the operator needs a way out, not only a no.
const secretAdvice = "use a random value, e.g. from openssl rand -hex 32"

// weakSecret says why s cannot guard gantry as a webhook secret or API token,
// or returns "" when it can. The reason never quotes s.
func weakSecret(s string) string {
	switch {
	case utf8.RuneCountInString(s) < minSecretLength:
		return fmt.Sprintf("must be at least %d characters long; %s", minSecretLength, secretAdvice)
	case isPlaceholder(s):
		return "looks like a placeholder or a pattern, not a secret; " + secretAdvice
	}
	return ""
}

// isPlaceholder reports whether s is what examples and templates put where a
// secret goes: "<your secret>", "xxxxxxxx…", "change-me-…", "REPLACE_WITH_…".
// The words are matched on the letters and digits alone, lower-cased, so
// "Change_Me" and "change-me" are one; they are long enough that a random
// value practically never contains one.
func isPlaceholder(s string) bool {
	if strings.HasPrefix(s, "<") && strings.HasSuffix(s, ">") {
		return true
	}
	distinct := map[rune]bool{}
	for _, r := range s {
		distinct[r] = true
	}
	if len(distinct) < 3 { // "xxxx…", "0000…", "abab…"
		return true
	}
	norm := strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return unicode.ToLower(r)
		}
		return -1
	}, s)
	for _, w := range []string{"changeme", "replaceme", "replacewith", "placeholder", "yoursecret", "yourtoken", "secrethere", "tokenhere", "example"} {
		if strings.Contains(norm, w) {
			return true
		}
	}
	return false
}
