package api

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
)

// These tests load the pages in a real browser, Debian's chromium, headless: the DOM it dumps
// is what a user sees after the page's script ran. Without chromium they skip, except under
// CI=true, where they fail (scripts/testenv.sh installs it).

// browser runs chromium headless with args and returns what it printed.
func browser(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		msg := "chromium is not installed: apt-get install chromium (scripts/testenv.sh up does)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	home := t.TempDir()
	// --no-sandbox: tests run as root in CI, where chromium's sandbox refuses to start.
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
		"--hide-scrollbars", "--user-data-dir=" + filepath.Join(home, "profile")}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+home)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.String()
}

// artifacts is where screenshots go: $GANTRY_ARTIFACTS when set, so CI keeps them.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("GANTRY_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// jobRow is a job as the dumped DOM shows it: its element's data-state and the state it reads.
var jobRow = regexp.MustCompile(`<details class="job" data-job="([^"]+)" data-state="([^"]*)"[^>]*>\s*<summary>\s*` +
	`<span class="name">([^<]*)</span>\s*<span class="state ([^"]*)">([^<]*)</span>`)

// jobStates reads every job row of a dumped pipeline page: name → state, checking that the
// row's name, attribute, class and text agree.
func jobStates(t *testing.T, dom string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range jobRow.FindAllStringSubmatch(dom, -1) {
		name, state := m[1], m[2]
		if m[3] != name || m[4] != state || m[5] != state {
			t.Errorf("job row %q reads name %q, class %q, state %q; want them to agree", name, m[3], m[4], m[5])
		}
		out[name] = state
	}
	return out
}

// TestPipelinePageInBrowser loads the page of a finished pipeline: every job is there with its
// state, the log's markup stayed text, and on a phone's width it is screenshot for a person.
func TestPipelinePageInBrowser(t *testing.T) {
	srv := httptest.NewServer(newServer(newFixture(), func(o *Options) { o.List = recentPipelines }))
	defer srv.Close()
	dom := browser(t, "--dump-dom", srv.URL+"/pipelines/4")

	want := map[string]string{}
	for _, j := range finishedPipeline().Jobs {
		want[j.Name] = string(j.State)
	}
	got := jobStates(t, dom)
	for name, state := range want {
		if got[name] != state {
			t.Errorf("browser shows job %s as %q, want %q", name, got[name], state)
		}
	}
	if len(got) != len(want) {
		t.Errorf("browser shows jobs %v, want %v", got, want)
	}
	if !strings.Contains(dom, `<span class="state failed">failed</span></h1>`) {
		t.Error("browser does not show the pipeline failed")
	}
	// The log's markup is text in the DOM: no element, no handler, no script came of it.
	if !strings.Contains(dom, `&lt;b id="injected"&gt;bold&lt;/b&gt;`) {
		t.Error("browser does not show the log's markup as text")
	}
	for _, bad := range []string{`<b id="injected">`, `data-pwned`, `<title>pwned`} {
		if strings.Contains(dom, bad) {
			t.Errorf("log markup became part of the page: %s", bad)
		}
	}

	dir := artifacts(t)
	for name, path := range map[string]string{"pipeline-page.png": "/pipelines/4", "pipelines-list.png": "/pipelines"} {
		shot := filepath.Join(dir, name)
		browser(t, "--screenshot="+shot, "--window-size=390,900", srv.URL+path)
		if b, err := os.ReadFile(shot); err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Fatalf("screenshot %s: %v", shot, err)
		}
		t.Logf("screenshot of %s at a phone's width: %s", path, shot)
	}
}

// recentPipelines lists pipeline 4 and a few others, for the screenshot of the list.
func recentPipelines(context.Context, Filter) ([]*orchestrator.Pipeline, error) {
	out := []*orchestrator.Pipeline{}
	for i, state := range []orchestrator.State{orchestrator.StateRunning, orchestrator.StatePending, orchestrator.StateSuccess} {
		p := finishedPipeline()
		p.ID, p.CreatedAt = int64(7-i), t0.Add(time.Duration(9-i)*time.Minute)
		p.Trigger.Ref, p.Trigger.SHA = []string{"feature/login-form", "master", "master"}[i], fmt.Sprintf("%d0f9e8d7c6b5a4", 7-i)
		for j := range p.Jobs {
			p.Jobs[j].State = state
		}
		out = append(out, p)
	}
	return append(out, finishedPipeline()), nil
}

// TestPipelinePageFollowsInBrowser loads the page while a job runs: the page's script streams
// the job's new output into its log and shows the job's end, without a reload.
func TestPipelinePageFollowsInBrowser(t *testing.T) {
	m := newFixture()
	m.setJob(4, "test/lint", func(j *orchestrator.Job) { j.State = orchestrator.StateRunning })
	fake := m.fake()
	var once sync.Once
	following := make(chan struct{})
	read := fake.LogFromFunc
	fake.LogFromFunc = func(ctx context.Context, id int64, job string, attempt int, offset int64) (string, int64, error) {
		if job == "test/lint" && offset >= 0 { // the page itself reads tails; its script follows
			once.Do(func() { close(following) })
		}
		return read(ctx, id, job, attempt, offset)
	}
	done := make(chan struct{})
	go func() { // ends after the job ends, or when the test gives up waiting for the script
		defer close(done)
		select {
		case <-following:
		case <-time.After(60 * time.Second):
			return
		}
		time.Sleep(300 * time.Millisecond) // the page has loaded and its script waits on the log
		for _, line := range []string{"streamed 1\n", "<b>streamed</b> 2\n", "streamed 3\n"} {
			m.appendLog(4, "test/lint", 1, line)
		}
		m.setJob(4, "test/lint", func(j *orchestrator.Job) { j.State = orchestrator.StateSuccess })
	}()
	srv := httptest.NewServer(newServer(m, func(o *Options) { o.Pipelines = fake }))
	defer srv.Close()

	// Virtual time stands still while a request waits for its answer, and the followed log
	// answers only when the job writes, after the script asked: so the dump waits for it.
	dom := browser(t, "--virtual-time-budget=20000", "--dump-dom", srv.URL+"/pipelines/4")
	<-done
	if got := jobStates(t, dom)["test/lint"]; got != "success" {
		t.Errorf("after following, browser shows test/lint as %q, want success", got)
	}
	want := "lint ok\nstreamed 1\n&lt;b&gt;streamed&lt;/b&gt; 2\nstreamed 3\n</pre>"
	if !strings.Contains(dom, want) {
		t.Errorf("followed log in the browser lacks %q:\n%s", want, dom)
	}
}
