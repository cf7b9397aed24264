// Package jobs runs gantry's CI jobs — build, test and release — on a Docker engine through the
// Engine API. It implements orchestrator.Executor.
package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"text/template"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"go.uber.org/zap"

	"github.com/gantry-ci/gantry/orchestrator"
)

// Labels gantry puts on what it creates, so that it can be found and cleaned up again.
const (
	LabelPipeline = "gantry.pipeline"
	LabelProject  = "gantry.project"
	LabelJob      = "gantry.job"
)

// DefaultMaxContextBytes bounds the unpacked source archive that is held in memory for a build.
const DefaultMaxContextBytes int64 = 512 << 20

// DefaultMaxLogBytes bounds the engine's output that reaches a job log from one build or
// one test container.
const DefaultMaxLogBytes int64 = 4 << 20

// cleanupTimeout bounds removals that run after the job's context may have been cancelled.
const cleanupTimeout = 30 * time.Second

// Options configures Connect.
type Options struct {
	// Host is the engine's address; empty means DOCKER_HOST or the local socket. TLS comes
	// from DOCKER_TLS_VERIFY and DOCKER_CERT_PATH either way.
	Host string
	// Registries are the credentials used when pushing to a registry host.
	Registries []Registry
	// Logger receives what happens on the engine's side of gantry; nil logs nothing.
	Logger *zap.Logger
	// MaxContextBytes bounds the unpacked source archive; zero means DefaultMaxContextBytes.
	MaxContextBytes int64
	// MaxLogBytes bounds the output that reaches the job log from one build (base and app
	// count apart) or one test container, whose own log on the engine's disk it bounds too;
	// zero means DefaultMaxLogBytes.
	MaxLogBytes int64
	// CertPath, when set, is a directory with ca.pem, cert.pem and key.pem for an engine that
	// wants TLS (docker.tls_verify); otherwise DOCKER_TLS_VERIFY and DOCKER_CERT_PATH apply.
	CertPath string
	// ShareImages pushes every test image to its registry after the build, for workers on
	// several engines: a test that runs on an engine without the image pulls it. A fork's
	// test image is never pushed: its tests need the engine that built it (see forkTagPrefix).
	ShareImages bool
	// Templates holds the Dockerfile templates for projects without a Dockerfile, laid out like
	// configs.Templates (templates/python-base.Dockerfile.tmpl and
	// templates/python-app.Dockerfile.tmpl). Nil leaves such projects failing their build.
	Templates fs.FS
}

// Registry is a login for one registry host, e.g. "registry.example.com" or "127.0.0.1:5000".
type Registry struct {
	Host     string
	Username string
	Password string
}

// String keeps the password out of anything that formats a Registry.
func (r Registry) String() string {
	return fmt.Sprintf("{%s %s ***}", r.Host, r.Username)
}

// GoString keeps the password out of %#v as well.
func (r Registry) GoString() string { return r.String() }

// Docker runs jobs on one Docker engine.
type Docker struct {
	cli        *client.Client
	log        *zap.Logger
	registries []Registry
	maxContext int64
	maxLog     int64              // Options.MaxLogBytes
	templates  *template.Template // nil without Options.Templates
	share      bool               // Options.ShareImages
	// reading holds one slot: reports are read one at a time, because go-junit's tree of a
	// report at the bounds costs about 160 MiB of heap (BenchmarkParseReport), and a worker
	// runs several tests at once.
	reading chan struct{}
}

var _ orchestrator.Executor = (*Docker)(nil)

// Connect creates a client for the engine and pings it once, negotiating the API version, so
// that an unreachable or too old engine is reported now rather than by the first job.
func Connect(ctx context.Context, opts Options) (*Docker, error) {
	// Parsed first, so that broken templates stop the worker at startup, not one build at a time.
	var templates *template.Template
	if opts.Templates != nil {
		var err error
		if templates, err = parseTemplates(opts.Templates); err != nil {
			return nil, err
		}
	}
	clientOpts := []client.Opt{client.FromEnv, client.WithUserAgent("gantry")}
	if opts.Host != "" {
		clientOpts = append(clientOpts, client.WithHost(opts.Host))
	}
	if opts.CertPath != "" {
		clientOpts = append(clientOpts, client.WithTLSClientConfig(filepath.Join(opts.CertPath, "ca.pem"),
			filepath.Join(opts.CertPath, "cert.pem"), filepath.Join(opts.CertPath, "key.pem")))
	}
	cli, err := client.New(clientOpts...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	// The client negotiates lazily otherwise, and that path swallows a negotiation failure.
	ping, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	if err != nil {
		_ = cli.Close()
		return nil, fmt.Errorf("docker engine at %s: %w", cli.DaemonHost(), err)
	}
	d := &Docker{
		cli:        cli,
		log:        opts.Logger,
		registries: opts.Registries,
		maxContext: opts.MaxContextBytes,
		maxLog:     cmp.Or(max(opts.MaxLogBytes, 0), DefaultMaxLogBytes),
		templates:  templates,
		share:      opts.ShareImages,
		reading:    make(chan struct{}, 1),
	}
	if d.log == nil {
		d.log = zap.NewNop()
	}
	if d.maxContext <= 0 {
		d.maxContext = DefaultMaxContextBytes
	}
	d.log.Info("docker engine connected",
		zap.String("host", cli.DaemonHost()), zap.String("api_version", ping.APIVersion))
	return d, nil
}

// APIVersion is the Engine API version negotiated with the engine, e.g. "1.41".
func (d *Docker) APIVersion() string { return d.cli.ClientVersion() }

// Close releases the client's idle connections.
func (d *Docker) Close() error { return d.cli.Close() }

// Ping reports whether the engine answers, for readiness checks.
func (d *Docker) Ping(ctx context.Context) error {
	if _, err := d.cli.Ping(ctx, client.PingOptions{}); err != nil {
		return fmt.Errorf("docker engine at %s: %w", d.cli.DaemonHost(), err)
	}
	return nil
}

// RemoveContainers force-removes every container, running or not, that carries all the given
// labels, and reports how many it removed. It refuses an empty filter, which would match every
// container on the host.
func (d *Docker) RemoveContainers(ctx context.Context, labelFilter map[string]string) (int, error) {
	if len(labelFilter) == 0 {
		return 0, errors.New("remove containers: refusing an empty label filter")
	}
	filters := make(client.Filters)
	for k, v := range labelFilter {
		filters.Add("label", k+"="+v)
	}
	list, err := d.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filters})
	if err != nil {
		return 0, fmt.Errorf("list containers: %w", err)
	}
	var errs []error
	removed := 0
	for _, c := range list.Items {
		_, err := d.cli.ContainerRemove(ctx, c.ID, removeOptions())
		switch {
		case err == nil:
			removed++
		case !cerrdefs.IsNotFound(err): // gone already is what we wanted
			errs = append(errs, fmt.Errorf("remove container %.12s: %w", c.ID, err))
		}
	}
	return removed, errors.Join(errs...)
}

// RemoveImage removes an image reference (a tag or an ID) and the untagged parents it leaves
// behind. A reference that does not exist is not an error.
func (d *Docker) RemoveImage(ctx context.Context, ref string) error {
	_, err := d.cli.ImageRemove(ctx, ref, client.ImageRemoveOptions{PruneChildren: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove image %s: %w", ref, err)
	}
	return nil
}

// removeOptions removes a container whether it runs or not, with its anonymous volumes: an
// image's VOLUME gives every container one, which the test can fill and nothing else would
// ever remove. Named volumes are not touched (and a test container mounts none).
func removeOptions() client.ContainerRemoveOptions {
	return client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}
}

// removeContainer force-removes a job's container. It runs on a context that survives the job's
// cancellation, because a cancelled job must not leak its container.
func (d *Docker) removeContainer(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_, err := d.cli.ContainerRemove(ctx, id, removeOptions())
	if err != nil && !cerrdefs.IsNotFound(err) {
		d.log.Warn("container not removed", zap.String("container", id), zap.Error(err))
	}
}

// projectFault marks a failure as the project's own, so the orchestrator does not retry it.
func projectFault(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, orchestrator.ErrProjectFault)...)
}
