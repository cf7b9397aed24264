package api

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
)

func TestJobLog(t *testing.T) {
	tests := []struct {
		name, path string
		code       int
		body       string
	}{
		{"escaped job name", "/api/v1/pipelines/4/jobs/test%2Funit/log", 200, markupLog},
		{"raw job name", "/api/v1/pipelines/4/jobs/test/unit/log", 200, markupLog},
		{"latest attempt by number", "/api/v1/pipelines/4/jobs/test%2Funit/log?attempt=2", 200, markupLog},
		{"earlier attempt", "/api/v1/pipelines/4/jobs/test%2Funit/log?attempt=1", 200, "first attempt: engine lost\n"},
		{"from an offset", "/api/v1/pipelines/4/jobs/build/log?offset=33", 200, "Successfully built 1111aaaa\n"},
		{"from offset 0", "/api/v1/pipelines/4/jobs/build/log?offset=0", 200, "Step 1/3 : FROM python:3.11-slim\n"},
		{"page route", "/pipelines/4/jobs/test%2Flint/log", 200, "lint ok\n"},
		{"unknown job", "/api/v1/pipelines/4/jobs/test%2Fnope/log", 404, `"detail":"pipeline 4 has no job test/nope"`},
		{"unknown attempt", "/api/v1/pipelines/4/jobs/build/log?attempt=2", 404, `"detail":"job build of pipeline 4 has no attempt 2"`},
		{"bad attempt", "/api/v1/pipelines/4/jobs/build/log?attempt=x", 400, `"error":"bad request"`},
		{"bad offset", "/api/v1/pipelines/4/jobs/build/log?offset=-1", 400, `"error":"bad request"`},
		{"unknown pipeline", "/api/v1/pipelines/9/jobs/build/log", 404, `"error":"Not Found"`},
		{"not a log", "/api/v1/pipelines/4/jobs/build/logs", 404, `"detail":"no such route`},
	}
	e := newServer(newFixture(), nil)
	for _, tt := range tests {
		rec := do(e, http.MethodGet, tt.path, "secret-token", "")
		if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.body) {
			t.Errorf("%s: GET %s = %d %q, want %d containing %q", tt.name, tt.path, rec.Code, rec.Body, tt.code, tt.body)
		}
		if tt.code == 200 {
			h := rec.Header()
			if h.Get("Content-Type") != "text/plain; charset=utf-8" || h.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("%s: GET %s headers = %v, want text/plain and nosniff", tt.name, tt.path, h)
			}
		}
	}
	if rec := do(e, http.MethodGet, "/api/v1/pipelines/4/jobs/build/log", "", ""); rec.Code != 401 {
		t.Errorf("GET log without token = %d, want 401", rec.Code)
	}
}

// TestJobLogFollowsUntilTheJobEnds streams a running job's log: output arrives while the job
// runs, and the answer ends once the job is over, with everything it wrote.
func TestJobLogFollowsUntilTheJobEnds(t *testing.T) {
	m := newFixture()
	m.setJob(4, "test/lint", func(j *orchestrator.Job) { j.State, j.Attempt = orchestrator.StateRunning, 2 })
	m.appendLog(4, "test/lint", 2, "line 0\n")
	srv := httptest.NewServer(newServer(m, nil))
	defer srv.Close()

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/pipelines/4/jobs/test%2Flint/log?follow=1", nil)
	req.Header.Set("Authorization", "Bearer secret-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Gantry-Log-Attempt") != "2" {
		t.Fatalf("follow = %d %v, want 200 on attempt 2", resp.StatusCode, resp.Header)
	}
	lines := bufio.NewReader(resp.Body)
	for i := range 3 {
		if i > 0 {
			m.appendLog(4, "test/lint", 2, "line "+string(rune('0'+i))+"\n")
		}
		got, err := readLineWithin(lines, 5*time.Second)
		if want := "line " + string(rune('0'+i)) + "\n"; got != want || err != nil {
			t.Fatalf("followed line %d = %q, %v; want %q while the job runs", i, got, err, want)
		}
	}
	// The last output and the end of the job come together: the line still arrives, then EOF.
	m.appendLog(4, "test/lint", 2, "done\n")
	m.setJob(4, "test/lint", func(j *orchestrator.Job) { j.State = orchestrator.StateSuccess })
	rest := make(chan string, 1)
	go func() { // ends when the server ends the answer, or when the deferred Close cuts it
		b, _ := io.ReadAll(lines)
		rest <- string(b)
	}()
	select {
	case got := <-rest:
		if got != "done\n" {
			t.Errorf("rest of the followed log = %q, want %q", got, "done\n")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not end after the job ended")
	}
}

// TestJobLogFollowOfAFinishedJob ends at once with the whole log, even an empty one.
func TestJobLogFollowOfAFinishedJob(t *testing.T) {
	e := newServer(newFixture(), nil)
	rec := do(e, http.MethodGet, "/api/v1/pipelines/4/jobs/build/log?follow=1", "secret-token", "")
	if rec.Code != 200 || !strings.HasSuffix(rec.Body.String(), "Successfully built 1111aaaa\n") {
		t.Errorf("follow of a finished job = %d %q, want its whole log", rec.Code, rec.Body)
	}
	rec = do(e, http.MethodGet, "/api/v1/pipelines/4/jobs/release/log?follow=1", "secret-token", "")
	if rec.Code != 200 || rec.Body.Len() != 0 || rec.Header().Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("follow of a job without output = %d %q %v, want 200, empty text", rec.Code, rec.Body, rec.Header())
	}
}

func readLineWithin(r *bufio.Reader, d time.Duration) (string, error) {
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() { // ends when a line arrives or the body is closed by the test's defers
		s, err := r.ReadString('\n')
		ch <- res{s, err}
	}()
	select {
	case got := <-ch:
		return got.s, got.err
	case <-time.After(d):
		return "", io.ErrNoProgress
	}
}

// TestJobLogFollowOutlivesServerTimeouts follows a log for longer than the HTTP server's read
// and write timeouts: those bound a request and its ordinary answer, not a followed log, which
// must keep streaming while the job runs.
func TestJobLogFollowOutlivesServerTimeouts(t *testing.T) {
	const serverTimeout = 200 * time.Millisecond
	m := newFixture()
	m.setJob(4, "test/lint", func(j *orchestrator.Job) { j.State, j.Attempt = orchestrator.StateRunning, 2 })
	m.appendLog(4, "test/lint", 2, "line 0\n")
	srv := httptest.NewUnstartedServer(newServer(m, func(o *Options) { o.FollowWriteTimeout = serverTimeout }))
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = serverTimeout, serverTimeout
	srv.Start()
	defer srv.Close()

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/pipelines/4/jobs/test%2Flint/log?follow=1", nil)
	req.Header.Set("Authorization", "Bearer secret-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewReader(resp.Body)
	for i := range 3 {
		if i > 0 {
			// Quiet for longer than both timeouts, as a job between two steps.
			time.Sleep(3 * serverTimeout)
			m.appendLog(4, "test/lint", 2, "line "+string(rune('0'+i))+"\n")
		}
		got, err := readLineWithin(lines, 5*time.Second)
		if want := "line " + string(rune('0'+i)) + "\n"; got != want || err != nil {
			t.Fatalf("followed line %d = %q, %v; want %q past the server's %v timeouts", i, got, err, want, serverTimeout)
		}
	}
	time.Sleep(3 * serverTimeout)
	m.appendLog(4, "test/lint", 2, "done\n")
	m.setJob(4, "test/lint", func(j *orchestrator.Job) { j.State = orchestrator.StateSuccess })
	rest, err := io.ReadAll(lines)
	if string(rest) != "done\n" || err != nil {
		t.Errorf("end of the followed log = %q, %v; want %q and a clean end", rest, err, "done\n")
	}
}

// TestJobLogTellsWhereToGoOn: a plain read says in X-Gantry-Log-Next where the next read starts
// (the log's length so far); follow=1 and follow=true stream instead, and so carry no such
// header, while any other follow value reads plainly.
func TestJobLogTellsWhereToGoOn(t *testing.T) {
	e := newServer(newFixture(), nil)
	const build = "Step 1/3 : FROM python:3.11-slim\nSuccessfully built 1111aaaa\n"
	for query, next := range map[string]string{"": "61", "?follow=0": "61", "?follow=1": "", "?follow=true": ""} {
		rec := do(e, http.MethodGet, "/api/v1/pipelines/4/jobs/build/log"+query, "secret-token", "")
		if rec.Code != 200 || rec.Body.String() != build || rec.Header().Get("X-Gantry-Log-Next") != next {
			t.Errorf("GET build log%s = %d %q, X-Gantry-Log-Next %q; want 200, the whole log, %q",
				query, rec.Code, rec.Body, rec.Header().Get("X-Gantry-Log-Next"), next)
		}
	}
}
