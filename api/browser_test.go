//go:build !nobrowser

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

// chromium is the path of the browser; without it the test skips, or fails under CI=true.
func chromium(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		msg := "chromium is not installed: apt-get install chromium (scripts/testenv.sh up does)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return bin
}

// browser runs chromium headless with args and returns what it printed.
func browser(t *testing.T, args ...string) string {
	t.Helper()
	bin := chromium(t)
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
var jobRow = regexp.MustCompile(`<details class="job" id="job-[^"]+" data-job="([^"]+)" data-state="([^"]*)"[^>]*>\s*<summary>\s*` +
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
	m := newFixture()
	m.appendLog(4, "test/unit", 2, pytestLog+hostileLog)
	m.pipelines[4].Trigger.ProjectURL = "https://gitlab.example.com/g/app"
	m.pipelines[4].Trigger.Commit = orchestrator.Commit{Title: "Check the login form's fields", Author: "Ann Example"}
	m.setJob(4, "test/unit", func(j *orchestrator.Job) { j.Report, j.Coverage = unitReport(), ptr(81.25) })
	srv := httptest.NewServer(newServer(m, func(o *Options) { o.List = recentPipelines }))
	defer srv.Close()
	dom := browser(t, "--dump-dom", srv.URL+"/pipelines/4")
	if want := `<p class="counts">2 test cases: 1 passed, 1 failed</p>`; !strings.Contains(dom, want) {
		t.Errorf("browser does not show test/unit's report: lacks %s", want)
	}

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
	if want := `<span class="fg1 bold">E       assert 1 == 2</span>`; !strings.Contains(dom, want) {
		t.Errorf("browser does not show the log's colours: lacks %s", want)
	}
	for _, bad := range []string{`<b id="injected">`, `data-pwned`, `<title>pwned`, "javascript:", "<svg", "\x1b"} {
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

// pytestLog is a failing test run as pytest colours it.
const pytestLog = "\x1b[1m============================= test session starts ==============================\x1b[0m\n" +
	"collected 3 items\n\n" +
	"test_app.py \x1b[32m.\x1b[0m\x1b[31mF\x1b[0m\x1b[33ms\x1b[0m\x1b[31m                                                     [100%]\x1b[0m\n\n" +
	"\x1b[1m\x1b[31mE       assert 1 == 2\x1b[0m\n" +
	"\x1b[31m========================= \x1b[31m\x1b[1m1 failed\x1b[0m, \x1b[32m1 passed\x1b[0m, \x1b[33m1 skipped\x1b[0m\x1b[31m in 0.12s\x1b[0m\x1b[31m ==========================\x1b[0m\n"

// recentPipelines lists pipeline 4 and a few others, for the screenshot of the list.
func recentPipelines(context.Context, Filter) ([]*orchestrator.Pipeline, error) {
	out := []*orchestrator.Pipeline{}
	for i, state := range []orchestrator.State{orchestrator.StateRunning, orchestrator.StatePending, orchestrator.StateSuccess} {
		p := finishedPipeline()
		p.ID, p.CreatedAt = int64(7-i), t0.Add(time.Duration(9-i)*time.Minute)
		p.Trigger.Ref, p.Trigger.SHA = []string{"feature/login-form", "master", "master"}[i], fmt.Sprintf("%d0f9e8d7c6b5a4", 7-i)
		p.Trigger.Commit.Title = []string{"Validate the login form", "Merge branch 'feature/login-form'", "Bump the base image"}[i]
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
	done := writeWhenFollowed(&fake, false, func() {
		for _, line := range []string{"streamed 1\n", "<b>streamed</b> 2\n", "streamed 3\n"} {
			m.appendLog(4, "test/lint", 1, line)
		}
		m.setJob(4, "test/lint", func(j *orchestrator.Job) {
			j.State, j.Report, j.Coverage = orchestrator.StateSuccess, unitReport(), ptr(90.0)
		})
	})
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
	if !strings.Contains(withoutLineMarkup(dom), want) {
		t.Errorf("followed log in the browser lacks %q:\n%s", want, dom)
	}
	// The report that came with the job's end is shown as the server renders it, as text.
	for _, want := range []string{`<span class="coverage">coverage 90%</span>`,
		`<div class="report"><p class="counts">2 test cases: 1 passed, 1 failed</p>`,
		`<code>tests.test_app::test_&lt;b&gt;bad&lt;/b&gt;</code> <span class="state failed">failed</span>`,
		`<pre class="output">E  &lt;script&gt;alert(1)&lt;/script&gt;</pre>`} {
		if !strings.Contains(dom, want) {
			t.Errorf("browser after the job's end lacks %s:\n%s", want, dom)
		}
	}
}

// TestLinksOpenTheirJobInBrowser: a commit status's link and a log line's link open the job
// they point into, folded as a finished job's log is, and mark the line.
func TestLinksOpenTheirJobInBrowser(t *testing.T) {
	srv := httptest.NewServer(newServer(newFixture(), nil))
	defer srv.Close()
	folded := regexp.MustCompile(`<details class="job" id="job-test/lint" data-job="test/lint" data-state="success" data-attempt="1">`)
	if !folded.MatchString(do(newServer(newFixture(), nil), "GET", "/pipelines/4", "", "").Body.String()) {
		t.Fatal("test/lint is not folded on the page as served; the test shows nothing")
	}
	for _, link := range []string{
		orchestrator.PageURL(srv.URL, 4, "test/lint"), // as its commit status links to it
		srv.URL + "/pipelines/4#job-test%2Flint",      // escaped further, as some tools do
		srv.URL + "/pipelines/4#test/lint-L1",         // a line of its log
	} {
		dom := browser(t, "--dump-dom", link)
		if !strings.Contains(dom, `<details class="job" id="job-test/lint" data-job="test/lint" data-state="success" data-attempt="1" open="">`) {
			t.Errorf("%s: test/lint's log is not open:\n%s", link, dom)
		}
	}
}

// followedOutput is what test/lint writes while the page follows it: colours, a hyperlink,
// markup, a progress bar redrawn with carriage returns, a C1 control sequence, control
// characters and a byte that is no UTF-8, a line the page first sees half of, and a last line
// without its newline.
var followedOutput = []string{
	"\x1b[1;31mstreamed\x1b[0m 1\n",
	"<b>streamed</b> \x1b]8;;javascript:alert(1)\x1b\\2\x1b]8;;\x1b\\\n",
	"\x1b[32m 10%\r 50%\r\u009b1m100%\x1b[0m\ttab\x00\x07\xff\n",
	"\x1b[38;5;208mstreamed",
	" 3\x1b[2K\n\x1b[44mno newline at the end",
}

// TestFollowedLogRendersAsThePage: the lines the page's script follows read exactly as the
// page renders them after a reload (gantry.js renders by the rules of ansi.go), including the
// line the page left half to the script and a last line without its newline.
func TestFollowedLogRendersAsThePage(t *testing.T) {
	m := newFixture()
	m.setJob(4, "test/lint", func(j *orchestrator.Job) { j.State = orchestrator.StateRunning })
	m.appendLog(4, "test/lint", 1, "half a line, ") // the page leaves it to the script
	fake := m.fake()
	done := writeWhenFollowed(&fake, true, func() {
		for _, out := range followedOutput {
			m.appendLog(4, "test/lint", 1, out)
		}
		m.setJob(4, "test/lint", func(j *orchestrator.Job) { j.State = orchestrator.StateSuccess })
	})
	srv := httptest.NewServer(newServer(m, func(o *Options) { o.Pipelines = fake }))
	defer srv.Close()

	// Virtual time stands still while a request waits for its answer, and the followed log
	// answers only when the job writes, after the script asked: so the dump waits for it.
	dom := browser(t, "--virtual-time-budget=20000", "--dump-dom", srv.URL+"/pipelines/4")
	<-done
	if got := jobStates(t, dom)["test/lint"]; got != "success" {
		t.Errorf("after following, browser shows test/lint as %q, want success", got)
	}
	// The script wrote the ended job's times as the server writes them.
	if want := `<span class="times"><time class="started" datetime="2026-11-26T10:00:05Z">10:00:05</time>–` +
		`<time class="finished" datetime="2026-11-26T10:00:09Z">10:00:09</time></span>` + "\n" + `<span class="duration">4.0s</span>`; !strings.Contains(dom, want) {
		t.Errorf("browser after test/lint's end lacks %s", want)
	}
	whole := "lint ok\nhalf a line, " + strings.Join(followedOutput, "")
	if got, want := logOf(t, dom, "test/lint"), domText(string(logLines("test/lint", 1, whole))); got != want {
		t.Errorf("followed log in the browser:\n%s\nwant it as the page renders it:\n%s", got, want)
	}
	for _, bad := range []string{"\x1b", "javascript:", "<b>"} {
		if strings.Contains(dom, bad) {
			t.Errorf("followed log put %q on the page", bad)
		}
	}
}

// logOf is the inside of a job's log element in a dumped page.
func logOf(t *testing.T, dom, job string) string {
	t.Helper()
	re := regexp.MustCompile(`data-job="` + regexp.QuoteMeta(job) + `"[\s\S]*?<pre class="log"[^>]*>([\s\S]*?)</pre>`)
	m := re.FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("no log of %s in the page:\n%s", job, dom)
	}
	return m[1]
}

// lineStartMarkup is the markup logLines puts before each line of a log; after it, "\n</span>".
var lineStartMarkup = regexp.MustCompile(`<span class="line" id="[^"]*"><a class="ln" href="[^"]*" data-n="[0-9]+"></a>`)

// withoutLineMarkup is a dumped page with its logs' lines as plain text again.
func withoutLineMarkup(dom string) string {
	return strings.ReplaceAll(lineStartMarkup.ReplaceAllString(dom, ""), "\n</span>", "\n")
}

// domText is server-rendered markup as chromium writes it back when it dumps the DOM: quotes
// in text unescaped.
func domText(s string) string {
	return strings.NewReplacer("&#34;", `"`, "&#39;", "'").Replace(s)
}

// writeWhenFollowed calls write (a running job's new output and its end) once the page's script
// follows test/lint's log: the page itself reads tails, its script reads from an offset. With
// hold, the followed log answers nothing until write has run, so the script gets everything in
// one answer (virtual time runs on once an answer has begun). The channel closes after write,
// or after a minute when the script never follows.
func writeWhenFollowed(fake *fakePipelines, hold bool, write func()) <-chan struct{} {
	var once sync.Once
	following, written := make(chan struct{}), make(chan struct{})
	read := fake.LogFromFunc
	fake.LogFromFunc = func(ctx context.Context, id int64, job string, attempt int, offset int64) (string, int64, error) {
		if job == "test/lint" && offset >= 0 {
			once.Do(func() { close(following) })
			select {
			case <-written:
			default:
				if hold {
					return "", offset, nil
				}
			}
		}
		return read(ctx, id, job, attempt, offset)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-following:
		case <-time.After(60 * time.Second):
			return
		}
		time.Sleep(300 * time.Millisecond) // the page has loaded and its script waits on the log
		write()
		close(written)
	}()
	return done
}
