package main

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gantry-ci/gantry/configs"
	"github.com/gantry-ci/gantry/internal/wire"
	"github.com/gantry-ci/gantry/jobs"
	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/gantry-ci/gantry/store"
	"go.uber.org/zap"
)

// execCommand is `gantry exec [dir]`: the project's pipeline on a local working tree, on the
// same engine, with no GitLab and no Redis to run — what `gitlab-runner exec` users lost. It
// uses an in-process Redis, prints every job's state as it changes, and returns an error (a
// non-zero exit) unless the pipeline succeeds. It never releases, and leaves nothing behind on
// the engine but the base images (a cache the next run reuses) and, with --keep, the image.
func execCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	opts, err := parseExecArgs(args, stderr)
	if err != nil {
		return err
	}
	dir := opts.dir
	log := zap.NewNop()
	cfg, err := loadExecConfig(opts.config, getenv, stderr)
	if err != nil {
		return err
	}
	cp, err := execProject(cfg, opts.project, dir)
	if err != nil {
		return err
	}
	proj := wire.Project(&cp)
	if len(cfg.Projects) == 0 {
		fmt.Fprintf(stderr, "gantry exec: running with local defaults: project %s, image %s (never pushed), what the directory's .gantry.yml says (else its Dockerfile and no tests), the Docker engine of $DOCKER_HOST or the local socket\n", proj.Path, proj.Image)
	}
	rdb, closeRedis, err := openRedis(ctx, "", log)
	if err != nil {
		return err
	}
	defer closeRedis()
	st := store.New(rdb, store.Options{})
	defer st.Close()
	docker, err := jobs.Connect(ctx, dockerOptions(cfg, log))
	if err != nil {
		return fmt.Errorf("docker engine: %w", err)
	}
	defer docker.Close()
	var pipelineID int64 // set once the pipeline is accepted
	// Deferred before the workers' shutdown, so it runs after it: no job uses the image any more.
	defer func() { cleanUpExec(ctx, st, docker, proj.Path, pipelineID, opts.keep, stderr) }()
	printer := &statusPrinter{w: stdout, start: time.Now()}
	engine, err := orchestrator.NewEngine(orchestrator.EngineOptions{
		Store: st, Queue: st, Executor: docker, Source: localSource{dir: dir}, Statuses: printer,
		Files: localSource{dir: dir}, ApplyFile: wire.ApplyFile(&configs.Config{Projects: []configs.Project{cp}}),
		Projects: []orchestrator.Project{proj}, Logger: log,
	})
	if err != nil {
		return err
	}
	worker := store.NewWorker(rdb, store.WorkerOptions{Concurrency: cfg.Workers.Concurrency, ShutdownGrace: time.Second, Logger: log})
	if err := worker.Start(engine.Handle); err != nil {
		return err
	}
	defer worker.Shutdown()
	loops := orchestrator.NewService(engine)
	if err := loops.Start(ctx); err != nil {
		return err
	}
	defer loops.Stop() // before the workers' shutdown: deferred calls run last first

	fmt.Fprintf(stdout, "gantry exec %s (%s)\n", dir, proj.Path)
	a, err := engine.Accept(ctx, orchestrator.Trigger{Project: proj.Path, Kind: orchestrator.TriggerLocal, Ref: "local", SHA: localRevision(dir)})
	if err != nil {
		return err
	}
	pipelineID = a.Pipeline.ID
	p, err := waitDone(ctx, st, a.Pipeline.ID)
	if err != nil {
		return err
	}
	for _, j := range p.Jobs {
		if j.State == orchestrator.StateFailed {
			out, _ := st.Log(ctx, p.ID, j.Name, j.Attempt)
			fmt.Fprintf(stdout, "\n--- log of %s ---\n%s\n", j.Name, tail(out, 4000))
		}
	}
	fmt.Fprintf(stdout, "pipeline %s in %s\n", p.State(), time.Since(printer.start).Round(100*time.Millisecond))
	if err := pipelineExit(p.ID, p.State()); err != nil {
		return err
	}
	if p.State() != orchestrator.StateSuccess {
		return fmt.Errorf("pipeline %s", p.State())
	}
	return nil
}

// execOptions are exec's arguments.
type execOptions struct {
	dir, config, project string
	keep                 bool
}

// parseExecArgs reads `gantry exec [DIR] [flags]`. Flags may follow the directory, as the usage
// writes them ("gantry exec . --config F"): the flag package alone would stop at DIR and leave
// them unread.
func parseExecArgs(args []string, stderr io.Writer) (execOptions, error) {
	fs := flag.NewFlagSet("exec", flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", "", "config file with the project (default $GANTRY_CONFIG or configs/gantry.yaml)")
	project := fs.String("project", "", "the configured project to run (needed when the config has several)")
	keep := fs.Bool("keep", false, "keep the image the pipeline built, to run or inspect it afterwards")
	pos, err := interspersed(fs, args)
	if err != nil {
		return execOptions{}, err
	}
	if len(pos) > 1 {
		return execOptions{}, fmt.Errorf("exec: one directory at most, got %q", pos)
	}
	dir := "."
	if len(pos) > 0 {
		dir = pos[0]
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return execOptions{}, err
	}
	return execOptions{dir: dir, config: *config, project: *project, keep: *keep}, nil
}

// loadExecConfig loads the config as `gantry exec` needs it: the keys only the intake reads are
// neither required nor checked (configs.LoadLocal), and without a config file it says on stderr
// that it runs with defaults, since a silent default project is what made a misplaced --config
// look like a Docker error.
func loadExecConfig(flagPath string, getenv func(string) string, stderr io.Writer) (*configs.Config, error) {
	path, explicit := configPath(flagPath, getenv)
	cfg, err := configs.LoadLocal(path, getenv)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		fmt.Fprintf(stderr, "gantry exec: no config file (looked for %s; --config or $GANTRY_CONFIG names one)\n", path)
		return configs.FromEnv(getenv)
	}
	if err != nil {
		return nil, err
	}
	for _, u := range cfg.Unset {
		fmt.Fprintf(stderr, "gantry exec: warning: %s\n", u)
	}
	return cfg, nil
}

// cleanUpExec removes what the local pipeline left on the engine: its containers (a job
// stopped by Ctrl-C may leave one) and, unless keep, the image it built with its tags. It runs
// when exec ends for any reason, so on a context that outlives a cancel (docs/style.md, habit 9).
func cleanUpExec(ctx context.Context, st *store.Store, docker *jobs.Docker, project string, id int64, keep bool, stderr io.Writer) {
	if id == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if _, err := docker.RemoveContainers(ctx, map[string]string{jobs.LabelProject: project, jobs.LabelPipeline: strconv.FormatInt(id, 10)}); err != nil {
		fmt.Fprintf(stderr, "gantry exec: %v\n", err)
	}
	p, err := st.Pipeline(ctx, id)
	if err != nil || p.Image == "" {
		return
	}
	if keep {
		fmt.Fprintf(stderr, "gantry exec: kept the image %s (%s)\n", p.ImageRef, p.Image)
		return
	}
	if err := docker.Discard(ctx, p.Image); err != nil {
		fmt.Fprintf(stderr, "gantry exec: %v\n", err)
	}
}

// execProject picks the configured project to run, or, when there is no config, the local
// defaults (configs.Local): the directory's pipeline file then says what to build and test.
func execProject(cfg *configs.Config, name, dir string) (configs.Project, error) {
	paths := make([]string, 0, len(cfg.Projects))
	for _, p := range cfg.Projects {
		paths = append(paths, p.Path)
	}
	switch {
	case name != "":
		if p, ok := cfg.Project(name); ok {
			return *p, nil
		}
		if len(paths) == 0 {
			return configs.Project{}, fmt.Errorf("project %s is not in the config: it has no projects", name)
		}
		return configs.Project{}, fmt.Errorf("project %s is not in the config: it has %s", name, strings.Join(paths, ", "))
	case len(cfg.Projects) == 1:
		return cfg.Projects[0], nil
	case len(cfg.Projects) > 1:
		return configs.Project{}, fmt.Errorf("the config has several projects: name one with --project (%s)", strings.Join(paths, ", "))
	}
	return configs.Local(filepath.Base(dir)), nil
}

func waitDone(ctx context.Context, st *store.Store, id int64) (*orchestrator.Pipeline, error) {
	for {
		p, err := st.Pipeline(ctx, id)
		if err != nil {
			return nil, err
		}
		if p.State().Terminal() {
			return p, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// statusPrinter shows on the terminal the commit statuses a pipeline would post.
type statusPrinter struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
}

func (p *statusPrinter) Post(_ context.Context, u orchestrator.StatusUpdate) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "%7.1fs  %-24s %-8s %s\n", time.Since(p.start).Seconds(), u.Name, u.State, u.Description)
	return 0, nil
}

// localSource serves a working tree as GitLab would serve an archive of it: a tar.gz whose
// entries sit under one top-level folder. .git is left out; uncommitted changes are included,
// which is the point of running locally.
type localSource struct{ dir string }

func (s localSource) Archive(ctx context.Context, _ int64, _ string) (io.ReadCloser, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeArchive(pw, s.dir)) }() // ends when the tree is written or the reader closes
	return pr, nil
}

func (localSource) CommitMessage(context.Context, int64, string) (string, error) { return "", nil }
func (s localSource) Project(context.Context, string) (int64, string, error) {
	return 0, "file://" + s.dir, nil
}
func (localSource) ResolveRef(context.Context, int64, string) (string, error) { return "local", nil }

// MergeRequest is never asked: a local run is no merge request.
func (localSource) MergeRequest(context.Context, int64, int64) (orchestrator.MergeRequestHead, error) {
	return orchestrator.MergeRequestHead{}, orchestrator.ErrNotFound
}

// IsAncestor says no: a local run never releases (the guard refuses TriggerLocal before it asks).
func (localSource) IsAncestor(context.Context, int64, string, string) (bool, error) {
	return false, nil
}

// DefaultBranch knows none: a local run is never reconciled.
func (localSource) DefaultBranch(context.Context, int64) (string, error) { return "", nil }

// MemberAccess knows no members: a local run has no merge request to gate.
func (localSource) MemberAccess(context.Context, int64, int64) (int, error) {
	return 0, nil
}

// File reads the working tree's pipeline file, as GitLab serves a commit's; os.OpenInRoot keeps
// a symbolic link from reading outside the tree, as a commit's file cannot.
func (s localSource) File(_ context.Context, _ int64, _, path string, limit int64) ([]byte, error) {
	f, err := os.OpenInRoot(s.dir, filepath.FromSlash(path))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", path, orchestrator.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}

func writeArchive(w io.Writer, dir string) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		} else if !info.Mode().IsRegular() && !info.IsDir() {
			return nil
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(filepath.Join("local", rel))
		if info.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

// localRevision is the working tree's commit when it is a git checkout, for the image's
// revision label.
func localRevision(dir string) string {
	out, err := exec.Command("git", "-C", dir, "rev-parse", "HEAD").Output()
	if err != nil {
		return "local"
	}
	return strings.TrimSpace(string(out))
}
