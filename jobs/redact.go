package jobs

import (
	"cmp"
	"encoding/base64"
	"slices"
	"strings"

	"github.com/moby/moby/api/pkg/authconfig"
	"github.com/moby/moby/api/types/registry"
)

// redact removes a registry login's secrets from a message of the engine's or a registry's.
// Neither is ours to trust with a secret: the engine passes on what the registry answered, and
// a registry or a proxy in front of it may repeat the credentials it was sent. So the password
// goes, in the forms it travels in: as itself, inside the X-Registry-Auth value gantry gives the
// engine (base64url JSON), and inside the Basic Authorization header the engine sends the
// registry (base64 of user:password). Every path that talks to a registry — release, the base
// tier's pull and push, sharing a test image and pulling it — passes its messages through here
// before they reach an error, the job log or gantry's log.
func redact(login registry.AuthConfig, msg string) string {
	if login.Password == "" {
		return msg
	}
	basic := []byte(login.Username + ":" + login.Password)
	secrets := []string{
		login.Password,
		base64.StdEncoding.EncodeToString(basic),
		base64.URLEncoding.EncodeToString(basic),
		base64.RawStdEncoding.EncodeToString(basic),
	}
	if auth, err := authconfig.Encode(login); err == nil {
		secrets = append(secrets, auth)
	}
	// Longest first: where two secrets start at the same place, the replacer takes the first
	// listed, and a shorter one must not leave the rest of a longer one behind.
	slices.SortFunc(secrets, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	pairs := make([]string, 0, 2*len(secrets))
	for _, s := range secrets {
		pairs = append(pairs, s, "***")
	}
	return strings.NewReplacer(pairs...).Replace(msg)
}
