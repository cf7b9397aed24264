package orchestrator

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

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
