package webhook

import (
	"crypto/sha256"
	"crypto/subtle"
	"strings"
)

// keyring holds the configured webhook secrets, each with the projects that use it. Several
// projects may share a secret (one group hook, one token for a team's projects).
type keyring []key

type key struct {
	// sum is the secret's SHA-256: tokens are compared by their sums, so the comparison takes
	// the same time whatever the token's and the secret's lengths.
	sum      [sha256.Size]byte
	projects projectSet
}

// projectSet maps lower-cased project paths to the paths as configured.
type projectSet map[string]string

// find returns the configured path of project, matched without regard to case as GitLab's
// paths are.
func (s projectSet) find(project string) (string, bool) {
	p, ok := s[strings.ToLower(project)]
	return p, ok
}

// newKeyring groups secrets (project path → secret) by secret. Empty secrets are left out: a
// delivery without a token must never match one.
func newKeyring(secrets map[string]string) keyring {
	bySecret := map[string]projectSet{}
	for path, secret := range secrets {
		if secret == "" {
			continue
		}
		if bySecret[secret] == nil {
			bySecret[secret] = projectSet{}
		}
		bySecret[secret][strings.ToLower(path)] = path
	}
	k := make(keyring, 0, len(bySecret))
	for secret, projects := range bySecret {
		k = append(k, key{sum: sha256.Sum256([]byte(secret)), projects: projects})
	}
	return k
}

// projects returns the projects whose secret token is, nil when it matches none. Every secret
// is compared, in constant time, so the answer's timing tells nothing of which matched or how
// much of a guess was right.
func (k keyring) projects(token string) projectSet {
	if token == "" {
		return nil
	}
	sum := sha256.Sum256([]byte(token))
	var found projectSet
	for i := range k {
		if subtle.ConstantTimeCompare(sum[:], k[i].sum[:]) == 1 {
			found = k[i].projects
		}
	}
	return found
}

// configured reports whether project is one of the configured projects, under any secret.
func (k keyring) configured(project string) bool {
	for i := range k {
		if _, ok := k[i].projects.find(project); ok {
			return true
		}
	}
	return false
}
