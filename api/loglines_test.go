package api

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/orchestrator"
)

func TestLogLines(t *testing.T) {
	t.Parallel()
	got := string(logLines("test/unit", 12, "\x1b[31mred\nstill red\x1b[0m\n\nlast"))
	want := `<span class="line" id="test/unit-L12"><a class="ln" href="#test/unit-L12" data-n="12"></a><span class="fg1">red</span>` + "\n</span>" +
		`<span class="line" id="test/unit-L13"><a class="ln" href="#test/unit-L13" data-n="13"></a><span class="fg1">still red</span>` + "\n</span>" +
		`<span class="line" id="test/unit-L14"><a class="ln" href="#test/unit-L14" data-n="14"></a>` + "\n</span>" +
		`<span class="line" id="test/unit-L15"><a class="ln" href="#test/unit-L15" data-n="15"></a>last` + "\n</span>"
	if got != want {
		t.Errorf("logLines = %s\nwant %s", got, want)
	}
	if got := logLines("build", 1, ""); got != "" {
		t.Errorf("logLines of nothing = %q, want nothing", got)
	}
	// A name that needs escaping in an attribute and in a fragment gets both.
	if got, want := string(logLines(`a "b"`, 1, "x")), `id="a &#34;b&#34;-L1"><a class="ln" href="#a%20%22b%22-L1"`; !strings.Contains(got, want) {
		t.Errorf("logLines with an odd name = %s, want it to hold %s", got, want)
	}
}

// TestPipelinePageNumbersLines: a log longer than the page carries is cut at a line's start,
// and its lines are numbered as in the whole log; a running job's last line without its
// newline is left to the script, which reads on from that line's start.
func TestPipelinePageNumbersLines(t *testing.T) {
	t.Parallel()
	m := newFixture()
	var long strings.Builder
	for i := 1; i <= 10000; i++ {
		fmt.Fprintf(&long, "line %05d\n", i)
	}
	m.appendLog(4, "build", 1, long.String())
	m.setJob(4, "test/lint", func(j *orchestrator.Job) { j.State = orchestrator.StateRunning })
	m.appendLog(4, "test/lint", 1, "half a line")
	page := do(newServer(m, nil), http.MethodGet, "/pipelines/4", "", "").Body.String()
	for _, want := range []string{
		`id="build-L10002"><a class="ln" href="#build-L10002" data-n="10002"></a>line 10000` + "\n</span></pre>",
		`<pre class="log" data-offset="8"><span class="line" id="test/lint-L1"><a class="ln" href="#test/lint-L1" data-n="1"></a>lint ok` + "\n</span></pre>",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	// The build's log on the page begins with a whole line, numbered as it is in the log.
	i := strings.Index(page, `data-job="build"`)
	first := page[strings.Index(page[i:], "<pre")+i:]
	first = first[:strings.Index(first, "\n")]
	var n, k int
	if _, err := fmt.Sscanf(first[strings.Index(first, `data-n="`):], `data-n="%d"></a>line %05d`, &n, &k); err != nil || n != k+2 {
		t.Errorf("first line of the build log on the page = %s, want line k numbered k+2 (after the fixture's 2)", first)
	}
	if n != 10002-pageLogLines+1 || len(page) > 4*pageLogTail {
		t.Errorf("page of %d bytes starts the build log at line %d, want its last %d lines only", len(page), n, pageLogLines)
	}
}

// hostileLog tries to get markup, links or terminal control onto the page through escape codes.
const hostileLog = "\x1b[1;32mPASSED\x1b[0m test_ok\n" +
	"\x1b]8;;javascript:alert(1)\x1b\\click me\x1b]8;;\x1b\\\n" +
	"\x1b[31m<script>alert(2)</script>\n" +
	"\x1b]0;<img src=x onerror=alert(3)>\x07title gone\n" +
	"unterminated \x1b[38;5\n" +
	"\x1b[\"><svg onload=alert(4)>m\n"

func TestPipelinePageRendersColours(t *testing.T) {
	t.Parallel()
	m := newFixture()
	m.appendLog(4, "test/lint", 1, hostileLog)
	page := do(newServer(m, nil), http.MethodGet, "/pipelines/4", "", "").Body.String()
	for _, want := range []string{
		`<span class="fg2 bold">PASSED</span> test_ok`,
		`data-n="3"></a>click me` + "\n",
		`<span class="fg1">&lt;script&gt;alert(2)&lt;/script&gt;</span>`,
		`<span class="fg1">title gone</span>`,
		`<span class="fg1">unterminated </span>`,
		`<span class="fg1">&gt;&lt;svg onload=alert(4)&gt;m</span>`, // " is an intermediate byte, > ends the sequence
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	for _, bad := range []string{"\x1b", "javascript:", "<script>alert", "<img", "<svg"} {
		if strings.Contains(page, bad) {
			t.Errorf("page carries %q", bad)
		}
	}
}

// TestStatusLinksLandOnTheirJob: the link a job's commit status carries (orchestrator.PageURL)
// names an element of the page, the job's.
func TestStatusLinksLandOnTheirJob(t *testing.T) {
	t.Parallel()
	page := do(newServer(newFixture(), nil), http.MethodGet, "/pipelines/4", "", "").Body.String()
	for _, j := range finishedPipeline().Jobs {
		link, err := url.Parse(orchestrator.PageURL("https://gantry.example.com", 4, j.Name))
		if err != nil || link.Path != "/pipelines/4" || link.Fragment == "" {
			t.Fatalf("PageURL(…, 4, %q) = %v, %v; want the page with a fragment", j.Name, link, err)
		}
		if want := `<details class="job" id="` + html.EscapeString(link.Fragment) + `" data-job="` + j.Name + `"`; !strings.Contains(page, want) {
			t.Errorf("status link of %s has fragment %q; page lacks %s", j.Name, link.EscapedFragment(), want)
		}
	}
}

// TestLineStart: the page's part of a log begins at the first line that begins at or after the
// cut, or, when the rest is one line, in that line at a character's start.
func TestLineStart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, all string
		at, want  int
	}{
		{"the cut at the log's start", "ab\ncd\n", 0, 0},
		{"the cut before the log's start", "ab\ncd\n", -3, 0},
		{"the cut in a line", "abc\ndef\n", 1, 4},
		{"the cut at a newline", "ab\ncd\n", 2, 3},
		{"the cut at a line's start", "ab\ncd\nef\n", 3, 3},
		{"the rest one line, its newline at the end", "abc\n", 1, 1},
		{"the rest one line, the cut in a character", "日本", 1, 3},
		{"the rest one line, the cut in its last character", "a日", 2, 4},
	}
	for _, tt := range tests {
		if got := lineStart(tt.all, tt.at); got != tt.want {
			t.Errorf("%s: lineStart(%q, %d) = %d, want %d", tt.name, tt.all, tt.at, got, tt.want)
		}
	}
}
