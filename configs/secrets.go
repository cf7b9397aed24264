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

// shown is how a message quotes a value that may be a URL or host: with any
// userinfo and everything from a query or fragment on replaced, since those are
// where credentials ride. Quoting still helps the operator spot a typo.
func shown(s string) string {
	rest, scheme := s, ""
	if i := strings.Index(s, "://"); i >= 0 {
		scheme, rest = s[:i+3], s[i+3:]
	}
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		rest = rest[:i] + redacted
	}
	authority, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		authority = redacted + authority[i:]
	}
	return scheme + authority + path
}

// redact replaces every known secret value in the messages, for the values
// that reached a key where nothing else would hide them (a token pasted as a
// listen address). Values under 4 characters are left alone: replacing them
// would garble messages, and they are refused as too short anyway.
func (es Errors) redact(c *Config) {
	var secrets []string
	add := func(s Secret) {
		if len(s) >= 4 {
			secrets = append(secrets, s.Value())
		}
	}
	add(c.Redis.URL)
	add(c.GitLab.Token)
	add(c.API.OAuth.Secret)
	add(c.API.OAuth.CookieSecret)
	for _, t := range c.API.Tokens {
		add(t)
	}
	for _, r := range c.Registries {
		add(r.Password)
	}
	for _, p := range c.Projects {
		add(p.WebhookSecret)
	}
	for i := range es {
		for _, s := range secrets {
			es[i].Message = strings.ReplaceAll(es[i].Message, s, redacted)
			es[i].Key = strings.ReplaceAll(es[i].Key, s, redacted)
		}
	}
}
