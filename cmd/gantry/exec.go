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
// non-zero exit) unless the pipeline succeeds. It never releases.
func execCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("exec", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "config file with the project (default $GANTRY_CONFIG or configs/gantry.yaml)")
	project := fs.String("project", "", "the configured project to run (needed when the config has several)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir := "."
	if fs.NArg() > 0 {
		dir = fs.Arg(0)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	log := zap.NewNop()
	cfg, err := loadConfig(*configPath, getenv, log)
	if err != nil {
		return err
	}
	proj, err := execProject(cfg, *project, dir)
	if err != nil {
		return err
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
	printer := &statusPrinter{w: stdout, start: time.Now()}
	engine, err := orchestrator.NewEngine(orchestrator.EngineOptions{
		Store: st, Queue: st, Executor: docker, Source: localSource{dir: dir}, Statuses: printer,
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
	if p.State() != orchestrator.StateSuccess {
		return fmt.Errorf("pipeline %s", p.State())
	}
	return nil
}

// execProject picks the configured project to run, or makes one that only builds the
// directory's Dockerfile when there is no config.
func execProject(cfg *configs.Config, name, dir string) (orchestrator.Project, error) {
	projects := wire.Projects(cfg)
	switch {
	case name != "":
		for _, p := range projects {
			if strings.EqualFold(p.Path, name) {
				return p, nil
			}
		}
		return orchestrator.Project{}, fmt.Errorf("project %s is not in the config", name)
	case len(projects) == 1:
		return projects[0], nil
	case len(projects) > 1:
		return orchestrator.Project{}, errors.New("the config has several projects: name one with --project")
	}
	base := filepath.Base(dir)
	return orchestrator.Project{Path: "local/" + base, Image: "gantry-exec/" + strings.ToLower(base)}, nil
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
