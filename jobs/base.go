package jobs

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/moby/moby/api/pkg/authconfig"
	"github.com/moby/moby/client"
	"go.uber.org/zap"
)

// The base tier is content-addressed and shared through the registry: built once by whichever
// worker needs it first, pushed, and pulled by every other engine. Neither the pull nor the push
// is required for a correct build, so their failures are logged and the build goes on: a worker
// that cannot pull builds the base itself.

// pullBase tries to pull a base image from its registry and reports whether it now exists here.
func (d *Docker) pullBase(ctx context.Context, ref string, log io.Writer) bool {
	if isForkRef(ref) {
		return false
	}
	login := d.login(ref)
	auth, err := authconfig.Encode(login)
	if err != nil {
		return false
	}
	start := time.Now()
	resp, err := d.cli.ImagePull(ctx, ref, client.ImagePullOptions{RegistryAuth: auth})
	if err == nil {
		defer resp.Close()
		err = resp.Wait(ctx)
	}
	if err != nil {
		// "manifest unknown" or "not found" is the usual answer: nobody built it yet.
		fmt.Fprintf(log, "base image %s not in the registry (%s), building it\n", ref, redact(login, firstLine(err.Error())))
		return false
	}
	fmt.Fprintf(log, "base image %s pulled from the registry in %.1fs\n", ref, time.Since(start).Seconds())
	return true
}

// pushBase pushes a freshly built base image so other engines can pull it.
func (d *Docker) pushBase(ctx context.Context, ref string, log io.Writer) {
	if isForkRef(ref) {
		fmt.Fprintf(log, "base image %s not pushed: %s\n", ref, errForkRef(ref))
		return
	}
	login := d.login(ref)
	auth, err := authconfig.Encode(login)
	if err != nil {
		return
	}
	start := time.Now()
	if _, err := d.push(ctx, ref, auth, io.Discard); err != nil {
		msg := redact(login, firstLine(err.Error()))
		fmt.Fprintf(log, "base image %s not pushed (other engines will build it too): %s\n", ref, msg)
		d.log.Warn("base image not pushed", zap.String("image", ref), zap.String("error", msg))
		return
	}
	fmt.Fprintf(log, "pushed base image %s in %.1fs\n", ref, time.Since(start).Seconds())
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// shareTestImage pushes a test image for workers on other engines. Unlike the base, they cannot
// do without it, so a failure fails the build (for the infrastructure: it is retried).
func (d *Docker) shareTestImage(ctx context.Context, ref string, log io.Writer) error {
	if isForkRef(ref) {
		return fmt.Errorf("build: share test image: %w", errForkRef(ref))
	}
	login := d.login(ref)
	auth, err := authconfig.Encode(login)
	if err != nil {
		return fmt.Errorf("build: encode registry login: %w", err)
	}
	start := time.Now()
	if _, err := d.push(ctx, ref, auth, io.Discard); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("build: share test image %s: %w", ref, ctx.Err())
		}
		return fmt.Errorf("build: share test image %s: %s", ref, redact(login, firstLine(err.Error())))
	}
	fmt.Fprintf(log, "pushed test image %s for the other engines in %.1fs\n", ref, time.Since(start).Seconds())
	return nil
}

// ensureImage makes sure a test image is on this engine: a test may run on another engine than
// its build did, and then pulls the image the build shared. The pulled image must be the very
// one built (same ID), never whatever the tag points to now.
func (d *Docker) ensureImage(ctx context.Context, id, ref string, log io.Writer) error {
	if _, err := d.cli.ImageInspect(ctx, id); err == nil || !cerrdefs.IsNotFound(err) {
		return err
	}
	if ref == "" {
		return fmt.Errorf("image %s is not on this engine", id)
	}
	if isForkRef(ref) {
		// Not the project's fault: the queue retries, and a retry may land on the right engine.
		return fmt.Errorf("image %s is not on this engine and cannot be pulled: %w; its tests run only on the engine that built it", id, errForkRef(ref))
	}
	login := d.login(ref)
	auth, err := authconfig.Encode(login)
	if err != nil {
		return fmt.Errorf("encode registry login for %s", login.ServerAddress)
	}
	resp, err := d.cli.ImagePull(ctx, ref, client.ImagePullOptions{RegistryAuth: auth})
	if err == nil {
		defer resp.Close()
		err = resp.Wait(ctx)
	}
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("pull %s: %w", ref, ctx.Err())
		}
		return fmt.Errorf("image %s is not on this engine and %s could not be pulled: %s", id, ref, redact(login, firstLine(err.Error())))
	}
	img, err := d.cli.ImageInspect(ctx, ref)
	if err != nil {
		return err
	}
	if img.ID != id {
		return fmt.Errorf("%s in the registry is %s, not the tested image %s", ref, img.ID, id)
	}
	fmt.Fprintf(log, "pulled test image %s\n", ref)
	return nil
}
