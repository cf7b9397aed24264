package jobs

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/authconfig"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"

	"github.com/gantry-ci/gantry/orchestrator"
)

// Release tags the tested image — the same image ID, never a rebuild — as repository:tag for
// every tag and pushes each tag. Every failure here is the infrastructure's (a registry that is
// down or refuses the login), so none wraps orchestrator.ErrProjectFault.
func (d *Docker) Release(ctx context.Context, req orchestrator.ReleaseRequest, log io.Writer) (orchestrator.ReleaseResult, error) {
	login := d.login(req.Repository)
	auth, err := authconfig.Encode(login)
	if err != nil {
		return orchestrator.ReleaseResult{}, fmt.Errorf("release: encode registry login for %s", login.ServerAddress)
	}
	// The engine's and the registry's messages are not ours to trust with a secret, so errors
	// are passed on as redacted text; only a cancellation stays an error value.
	fail := func(what string, err error) (orchestrator.ReleaseResult, error) {
		if ctx.Err() != nil {
			return orchestrator.ReleaseResult{}, fmt.Errorf("release: %s: %w", what, ctx.Err())
		}
		return orchestrator.ReleaseResult{}, fmt.Errorf("release: %s: %s", what, redact(login, err.Error()))
	}

	var res orchestrator.ReleaseResult
	for _, tag := range req.Tags {
		ref := req.Repository + ":" + tag
		if _, err := d.cli.ImageTag(ctx, client.ImageTagOptions{Source: req.ImageID, Target: ref}); err != nil {
			return fail("tag "+ref, err)
		}
		if digest, ok := d.alreadyThere(ctx, ref, req.ImageID, auth); ok {
			// A release run again (its worker died after pushing) changes nothing.
			res.Digest = cmp.Or(res.Digest, digest)
			res.Pushed = append(res.Pushed, ref)
			fmt.Fprintf(log, "%s@%s already in the registry, not pushed again\n", ref, digest)
			continue
		}
		start := time.Now()
		digest, err := d.push(ctx, ref, auth, log)
		if err != nil {
			return fail("push "+ref, err)
		}
		if res.Digest != "" && digest != res.Digest {
			return orchestrator.ReleaseResult{}, fmt.Errorf("release: push %s: digest %s differs from %s of the tags before",
				ref, digest, res.Digest)
		}
		res.Digest = digest
		res.Pushed = append(res.Pushed, ref)
		fmt.Fprintf(log, "pushed %s@%s in %.1fs\n", ref, digest, time.Since(start).Seconds())
	}
	return res, nil
}

// push pushes one reference and returns the manifest digest the registry stored. The stream is
// read to its end, because the engine answers 200 and reports a refused login or an
// unreachable registry only inside it.
func (d *Docker) push(ctx context.Context, ref, auth string, log io.Writer) (string, error) {
	resp, err := d.cli.ImagePush(ctx, ref, client.ImagePushOptions{RegistryAuth: auth})
	if err != nil {
		return "", err
	}
	pr := newProgress(log)
	var digest string
	for m, err := range resp.JSONMessages(ctx) {
		if err != nil {
			return "", err
		}
		if m.Error != nil {
			return "", fmt.Errorf("%s", m.Error.Message)
		}
		if m.Aux != nil {
			var aux struct{ Digest string }
			if json.Unmarshal(*m.Aux, &aux) == nil && aux.Digest != "" {
				digest = aux.Digest
			}
		}
		pr.message(m)
	}
	if digest == "" {
		return "", fmt.Errorf("push stream ended without a digest")
	}
	return digest, nil
}

// login returns the configured login for the repository's registry host, or an anonymous one:
// the 20.10 engine refuses a push without an X-Registry-Auth header.
func (d *Docker) login(repository string) registry.AuthConfig {
	host := registryHost(repository)
	for _, r := range d.registries {
		h := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(r.Host, "https://"), "http://"), "/")
		if h == host {
			return registry.AuthConfig{Username: r.Username, Password: r.Password, ServerAddress: host}
		}
	}
	return registry.AuthConfig{}
}

// registryHost is the registry part of a repository name, following the engine's rule: the
// first component is a host when it has a dot or a port, or is localhost; else it is Docker Hub.
func registryHost(repository string) string {
	first, _, ok := strings.Cut(repository, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first
	}
	return "docker.io"
}

// progress writes a pull or push stream to a job log without its progress ticks: general
// status lines, and for each layer only the states that end its part of the work.
type progress struct {
	log  io.Writer
	seen map[string]string // layer ID → last state written
}

func newProgress(log io.Writer) *progress {
	return &progress{log: log, seen: map[string]string{}}
}

// busyStates are the per-layer states that are followed by a final one anyway.
var busyStates = map[string]bool{
	"Preparing": true, "Waiting": true, "Pushing": true,
	"Pulling fs layer": true, "Downloading": true, "Verifying Checksum": true,
	"Download complete": true, "Extracting": true,
}

func (p *progress) message(m jsonstream.Message) {
	switch {
	case m.Status == "":
	case m.ID == "":
		fmt.Fprintln(p.log, m.Status)
	case busyStates[m.Status] || p.seen[m.ID] == m.Status:
	default:
		p.seen[m.ID] = m.Status
		fmt.Fprintf(p.log, "%s: %s\n", m.ID, m.Status)
	}
}

// alreadyThere reports whether the registry holds this very image under ref: the digest it
// serves for ref is one this image was pushed with before (the engine records those as the
// image's RepoDigests). Any doubt — no earlier push, a registry that cannot be asked — means no.
func (d *Docker) alreadyThere(ctx context.Context, ref, imageID, auth string) (string, bool) {
	img, err := d.cli.ImageInspect(ctx, imageID)
	if err != nil || len(img.RepoDigests) == 0 {
		return "", false
	}
	remote, err := d.cli.DistributionInspect(ctx, ref, client.DistributionInspectOptions{EncodedRegistryAuth: auth})
	if err != nil {
		return "", false
	}
	digest := remote.Descriptor.Digest.String()
	repo := ref[:strings.LastIndex(ref, ":")] // the tag's colon: the last one, after any host:port
	return digest, slices.Contains(img.RepoDigests, repo+"@"+digest)
}
