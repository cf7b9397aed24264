package main

import (
	"github.com/gantry-ci/gantry/configs"
)

// webhookSecrets maps each project to the token GitLab must send.
func webhookSecrets(cfg *configs.Config) map[string]string {
	out := make(map[string]string, len(cfg.Projects))
	for _, p := range cfg.Projects {
		out[p.Path] = p.WebhookSecret.Value()
	}
	return out
}
