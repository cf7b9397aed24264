package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// mapFiles is a FileSource over sha → content; a SHA it lacks has no file. It counts reads.
type mapFiles struct {
	mu    sync.Mutex
	files map[string]string
	reads []string
}

func (m *mapFiles) File(_ context.Context, _ int64, sha, path string, limit int64) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads = append(m.reads, sha+":"+path)
	f, ok := m.files[sha]
	if !ok {
		return nil, ErrNotFound
	}
	if int64(len(f)) > limit {
		f = f[:limit]
	}
	return []byte(f), nil
}

// wordsFile applies a pipeline file of the form "tests: a b": those tests replace the
// project's, and the build target becomes "from-file". "refuse" is a file the project refuses.
func wordsFile(p Project, file []byte) (Project, error) {
	if file == nil {
		return p, nil
	}
	s := string(file)
	if s == "refuse" {
		return Project{}, &FileError{Summary: ".gantry.yml: release: set in the server's config, not the repository",
			Problems: []string{".gantry.yml: release: no", ".gantry.yml: image: no"}}
	}
	p.Tests = nil
	for _, name := range strings.Fields(strings.TrimPrefix(s, "tests:")) {
		p.Tests = append(p.Tests, TestSpec{Name: name})
	}
	p.Build.Target = "from-file"
	return p, nil
}

// fileEngine is setupEngine's bundle with a project that reads a pipeline file.
func fileEngine(t *testing.T, files *mapFiles) engineBundle {
	t.Helper()
	b := setupEngine(t)
	e, err := NewEngine(EngineOptions{
		Store: b.store, Queue: b.queue, Executor: b.exec, Source: fakeSource{}, Statuses: b.statuses,
		Files: files, ApplyFile: wordsFile,
		Projects: []Project{{Path: "g/app", Image: "r/app", PipelineFile: ".gantry.yml", Tests: []TestSpec{{Name: "unit"}, {Name: "lint"}},
			Release: ReleasePolicy{Branches: []string{"master"}, Tags: []string{"latest"}}}},
		Metrics: b.metrics, Logger: b.logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	b.engine = e
	return b
}

func TestEnginePipelineFile(t *testing.T) {
	t.Parallel()
	once := []string{"pending", "running", "success"}
	tests := []struct {
		name, file string // "" for no file
		jobs       []string
		statuses   map[string][]string
	}{
		{"tests from the file", "tests: fast smoke", []string{"build", "test/fast", "test/smoke", "release"},
			map[string][]string{"gantry/build": once, "gantry/test/fast": once, "gantry/test/smoke": once, "gantry/release": once}},
		{"no file: the server's tests", "", []string{"build", "test/unit", "test/lint", "release"},
			map[string][]string{"gantry/build": once, "gantry/test/unit": once, "gantry/test/lint": once, "gantry/release": once}},
		{"no tests", "tests:", []string{"build", "release"},
			map[string][]string{"gantry/build": once, "gantry/release": once}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			files := &mapFiles{files: map[string]string{}}
			if tt.file != "" {
				files.files["0123456789"] = tt.file
			}
			b := fileEngine(t, files)
			var mu sync.Mutex
			var targets, ran []string
			b.exec.BuildFunc = func(r BuildRequest) (BuildResult, error) {
				mu.Lock()
				defer mu.Unlock()
				targets = append(targets, r.Project.Build.Target)
				return BuildResult{ImageID: "sha256:img"}, nil
			}
			b.exec.TestFunc = func(r TestRequest, _ io.Writer) (TestResult, error) {
				mu.Lock()
				defer mu.Unlock()
				ran = append(ran, r.Test.Name)
				return TestResult{}, nil
			}
			p := b.push(t, "master")
			if len(p.Jobs) != 2 {
				t.Errorf("planned at intake: %+v, want build and release only: no code is read there", p.Jobs)
			}
			b.drain(t, 0)
			got, _ := b.store.Pipeline(context.Background(), p.ID)
			var jobs []string
			for _, j := range got.Jobs {
				jobs = append(jobs, j.Name)
			}
			if d := cmp.Diff(tt.jobs, jobs); d != "" {
				t.Errorf("jobs (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tt.statuses, b.statuses.posts); d != "" {
				t.Errorf("statuses (-want +got):\n%s", d)
			}
			if got.State() != StateSuccess || len(files.reads) != 1 {
				t.Errorf("pipeline %s, file read %v; want success, the file read once", got.State(), files.reads)
			}
			if tt.file != "" && (len(targets) != 1 || targets[0] != "from-file") {
				t.Errorf("build targets %v, want the file's", targets)
			}
			if len(ran) != len(tt.jobs)-2 {
				t.Errorf("tests run: %v", ran)
			}
		})
	}
}

// TestEnginePipelineFileRefused: a refused file fails the build with its one-line summary and
// every problem in the log, and nothing else runs.
func TestEnginePipelineFileRefused(t *testing.T) {
	t.Parallel()
	b := fileEngine(t, &mapFiles{files: map[string]string{"0123456789": "refuse"}})
	built := false
	b.exec.BuildFunc = func(BuildRequest) (BuildResult, error) { built = true; return BuildResult{}, nil }
	p := b.push(t, "feature")
	b.drain(t, 2)
	got, _ := b.store.Pipeline(context.Background(), p.ID)
	if len(got.Jobs) != 1 || got.Jobs[0].State != StateFailed || got.Jobs[0].ErrorClass != ClassProject ||
		got.Jobs[0].Description != ".gantry.yml: release: set in the server's config, not the repository" {
		t.Fatalf("jobs = %+v, want the build alone, failed for the project with the file's summary", got.Jobs)
	}
	if built {
		t.Error("the build ran with a refused file")
	}
	log := b.store.logs[fmt.Sprintf("%d/build/1", p.ID)]
	if !strings.Contains(log, ".gantry.yml: release: no\n.gantry.yml: image: no\n") {
		t.Errorf("build log = %q, want every problem", log)
	}
	if d := cmp.Diff(map[string][]string{"gantry/build": {"pending", "running", "failed"}}, b.statuses.posts); d != "" {
		t.Errorf("statuses (-want +got):\n%s", d)
	}
}

// meetingSource's commit message read waits for the pipeline file's read to begin: it reports
// whether the two GitLab reads were in flight together.
type meetingSource struct {
	fakeSource
	fileAsked chan struct{}
	met       bool
}

func (s *meetingSource) CommitMessage(ctx context.Context, id int64, sha string) (string, error) {
	select {
	case <-s.fileAsked:
		s.met = true
	case <-time.After(2 * time.Second):
	}
	return s.fakeSource.CommitMessage(ctx, id, sha)
}

// announcingFiles closes asked at the first read.
type announcingFiles struct {
	*mapFiles
	asked chan struct{}
	once  sync.Once
}

func (f *announcingFiles) File(ctx context.Context, id int64, sha, path string, limit int64) ([]byte, error) {
	f.once.Do(func() { close(f.asked) })
	return f.mapFiles.File(ctx, id, sha, path, limit)
}

// TestPipelineFileReadWithTheCommitMessage: a pipeline whose head commit gantry must read for
// [skip ci] reads its pipeline file at the same time, one GitLab round trip before the first
// status instead of two; the file still plans the tests, and a skipped commit runs nothing.
func TestPipelineFileReadWithTheCommitMessage(t *testing.T) {
	t.Parallel()
	for _, sha := range []string{"0123456789", "5k1p456789"} {
		asked := make(chan struct{})
		files := &announcingFiles{mapFiles: &mapFiles{files: map[string]string{sha: "tests: fast"}}, asked: asked}
		b := fileEngine(t, files.mapFiles)
		src := &meetingSource{fileAsked: asked}
		b.engine.source, b.engine.files = src, files
		p := b.pushTrigger(t, Trigger{Project: "g/app", ProjectID: 7, Kind: TriggerPush, Ref: "feature", SHA: sha, CheckSkip: true})
		b.drain(t, 0)
		got, _ := b.store.Pipeline(context.Background(), p.ID)
		var jobs []string
		for _, j := range got.Jobs {
			jobs = append(jobs, j.Name+" "+string(j.State))
		}
		want := []string{"build success", "test/fast success"}
		if strings.HasPrefix(sha, "5k1p") {
			want = []string{"build skipped"}
		}
		if !src.met || !cmp.Equal(jobs, want) {
			t.Errorf("commit %s: reads together %v, jobs %v; want together and %v", sha, src.met, jobs, want)
		}
	}
}

// TestForkPipelineFileWaitsForApproval: a fork's pipeline file is code of the fork's author, read
// only once a maintainer approved the pipeline, even when the commit message is read before.
func TestForkPipelineFileWaitsForApproval(t *testing.T) {
	t.Parallel()
	b := setupApproval(t, func(p *Project) { p.PipelineFile = ".gantry.yml" })
	files := &mapFiles{files: map[string]string{"f0f0f0f0f0": "tests: fast"}}
	b.engine.files, b.engine.apply = files, wordsFile
	p := b.pushTrigger(t, Trigger{Project: "g/app", ProjectID: 50, HookProjectID: 7, Kind: TriggerMergeRequest,
		Ref: "feature", SHA: "f0f0f0f0f0", Fork: true, MergeRequestIID: 4, CheckSkip: true})
	b.drain(t, 0)
	b.wantWaiting(t, b.stored(t, p.ID))
	if len(files.reads) != 0 {
		t.Fatalf("file read before approval: %v", files.reads)
	}
	if _, err := b.engine.Approve(context.Background(), p.ID, Review{By: "maint"}); err != nil {
		t.Fatal(err)
	}
	b.drain(t, 0)
	if got := b.stored(t, p.ID); len(files.reads) != 1 || got.State() != StateSuccess || len(got.Jobs) != 2 || got.Jobs[1].Name != "test/fast" {
		t.Errorf("after approval: reads %v, pipeline %s %+v; want the file read once and its test run", files.reads, got.State(), got.Jobs)
	}
}

// fileFunc is a FileSource of one function.
type fileFunc func(sha string) ([]byte, error)

func (f fileFunc) File(_ context.Context, _ int64, sha, _ string, _ int64) ([]byte, error) {
	return f(sha)
}

// TestPipelineFileReadOutcomes: a file GitLab could not serve fails the start task, which is
// retried and plans from the file then, never from the server's tests in its place; an empty
// file (GitLab's empty body) is a file with no tests, not a missing one.
func TestPipelineFileReadOutcomes(t *testing.T) {
	t.Parallel()
	failures := 1
	for _, tt := range []struct {
		name string
		read fileFunc
		jobs []string
	}{
		{"unreadable once", func(string) ([]byte, error) {
			if failures > 0 {
				failures--
				return nil, errors.New("GitLab answered 502")
			}
			return []byte("tests: fast"), nil
		}, []string{"build", "test/fast"}},
		{"empty", func(string) ([]byte, error) { return nil, nil }, []string{"build"}},
	} {
		b := fileEngine(t, nil)
		b.engine.files = tt.read
		p := b.push(t, "feature")
		b.drain(t, 1)
		got, _ := b.store.Pipeline(context.Background(), p.ID)
		var jobs []string
		for _, j := range got.Jobs {
			jobs = append(jobs, j.Name)
		}
		if got.State() != StateSuccess || !cmp.Equal(jobs, tt.jobs) {
			t.Errorf("%s: pipeline %s with jobs %v, want success with %v", tt.name, got.State(), jobs, tt.jobs)
		}
	}
}
