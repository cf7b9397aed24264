package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func cases(status CaseStatus, names ...string) []TestCase {
	out := make([]TestCase, 0, len(names))
	for _, n := range names {
		out = append(out, TestCase{Name: n, Classname: "tests.test_app", Status: status})
	}
	return out
}

func manyNames(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s_%03d", prefix, i)
	}
	return out
}

// TestReportFailures: the failing cases' names come first and the description always fits
// GitLab's 255 characters, counted as runes, saying how many names it left out.
func TestReportFailures(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 300) // two bytes, one character each
	tests := []struct {
		name  string
		cases []TestCase
		limit int
		want  string
	}{
		{"TwoOfMany", append(append(cases(CasePassed, manyNames("ok", 39)...), cases(CaseFailed, "test_a")...), cases(CaseErrored, "test_b")...),
			MaxDescription, "2 of 41 failed: test_a, test_b"},
		{"FailuresBeforePasses", append(cases(CasePassed, "test_ok"), cases(CaseFailed, "test_bad")...), MaxDescription, "1 of 2 failed: test_bad"},
		{"TooManyToName", cases(CaseFailed, manyNames("test_failing_case_with_a_long_name", 80)...), MaxDescription, ""},
		{"OneOverlongName", cases(CaseFailed, long), MaxDescription, "1 of 1 failed: " + strings.Repeat("é", 255-len("1 of 1 failed: ")-1) + "…"},
		// A name that takes every character left is shown whole, not cut.
		{"NameFillsTheLimit", cases(CaseFailed, strings.Repeat("é", 255-len("1 of 1 failed: "))), MaxDescription,
			"1 of 1 failed: " + strings.Repeat("é", 255-len("1 of 1 failed: "))},
		// Room for one character only: a lone "…" names nothing, and no "and 1 more" follows
		// when no name came before it.
		{"NoRoomForAName", cases(CaseFailed, "test_a"), len("1 of 1 failed: ") + 1, "1 of 1 failed"},
		{"UnnamedCase", []TestCase{{Classname: "suite", Status: CaseFailed}}, MaxDescription, "1 of 1 failed: suite"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := NewTestReport(tt.cases).failures(tt.limit)
			if n := utf8.RuneCountInString(got); n > tt.limit || !utf8.ValidString(got) {
				t.Fatalf("failures() = %q, %d characters, want at most %d valid ones", got, n, tt.limit)
			}
			if tt.want != "" && got != tt.want {
				t.Errorf("failures() = %q, want %q", got, tt.want)
			}
			if tt.name == "TooManyToName" {
				shown := strings.Count(got, "test_failing_case")
				if !strings.HasPrefix(got, "80 of 80 failed: test_failing_case_with_a_long_name_000") ||
					!strings.HasSuffix(got, fmt.Sprintf(" and %d more", 80-shown)) {
					t.Errorf("failures() = %q, want the first names and how many more", got)
				}
			}
		})
	}
}

// TestNewTestReportBounds: counts cover every case; the record keeps MaxReportCases cases,
// failing ones first, with messages and outputs cut without splitting a character.
func TestNewTestReportBounds(t *testing.T) {
	t.Parallel()
	all := cases(CasePassed, manyNames("ok", 100)...)
	all = append(all, cases(CaseSkipped, "skip")...)
	all = append(all, TestCase{Name: "bad", Status: CaseFailed, Message: strings.Repeat("m", 2000),
		Output: "start\n" + strings.Repeat("ü", 3000) + "\nassert 1 == 2"})
	all[0].Output = "a passing case's output"
	r := NewTestReport(all)
	if got := [5]int{r.Tests, r.Passed, r.Failed, r.Errored, r.Skipped}; got != [5]int{102, 100, 1, 0, 1} {
		t.Errorf("counts = %v, want [102 100 1 0 1]", got)
	}
	if len(r.Cases) != MaxReportCases || r.Omitted != 102-MaxReportCases {
		t.Fatalf("kept %d cases, omitted %d, want %d and %d", len(r.Cases), r.Omitted, MaxReportCases, 102-MaxReportCases)
	}
	bad := r.Cases[0]
	if bad.Name != "bad" || len(bad.Message) > MaxCaseMessage+len("…") || len(bad.Output) > MaxCaseOutput+len("…") {
		t.Errorf("first case = %q, message %d bytes, output %d bytes, want the failure, bounded", bad.Name, len(bad.Message), len(bad.Output))
	}
	if !strings.HasSuffix(bad.Output, "assert 1 == 2") || !utf8.ValidString(bad.Output) || !utf8.ValidString(bad.Message) {
		t.Errorf("failure output = %q…, want its valid end", bad.Output[:20])
	}
	if r.Cases[1].Output != "" {
		t.Errorf("passing case output = %q, want none kept", r.Cases[1].Output)
	}
}

// TestReportCaseCuts: a failing case's message keeps its start and its output its end, each
// whole when it is just at its bound, cut between characters, and cut without a panic where the
// bytes are not UTF-8 at all.
func TestReportCaseCuts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                 string
		message, output      string
		wantMessage, wantOut string
	}{
		{"AtTheBounds", strings.Repeat("m", MaxCaseMessage), strings.Repeat("o", MaxCaseOutput),
			strings.Repeat("m", MaxCaseMessage), strings.Repeat("o", MaxCaseOutput)},
		// "é" is two bytes: both bounds fall inside one, which is then left out whole.
		{"BetweenCharacters", "x" + strings.Repeat("é", 300), strings.Repeat("é", 1100) + "x",
			"x" + strings.Repeat("é", (MaxCaseMessage-1)/2) + "…", "…" + strings.Repeat("é", (MaxCaseOutput-2)/2) + "x"},
		// Not a character start anywhere (jobs' XML parser refuses such bytes, but a report is
		// any TestCase): the cut finds none, and stops at the string's ends.
		{"NotUTF8", strings.Repeat("\x80", 600), strings.Repeat("\x80", 2100), "…", "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := NewTestReport([]TestCase{{Name: "bad", Status: CaseFailed, Message: tt.message, Output: tt.output}})
			if c := r.Cases[0]; c.Message != tt.wantMessage || c.Output != tt.wantOut {
				t.Errorf("case kept message %s, output %s; want %s and %s",
					brief(c.Message), brief(c.Output), brief(tt.wantMessage), brief(tt.wantOut))
			}
		})
	}
}

// brief shows a long string by its ends and length.
func brief(s string) string {
	return fmt.Sprintf("%q…%q (%d bytes)", s[:min(len(s), 8)], s[max(0, len(s)-8):], len(s))
}

// TestCoverageWriter: like GitLab CI, the pattern is matched line by line and the last matching
// line wins; its group's first number is the percentage, 100 at most, and a line is matched on
// its first maxCoverageLine bytes.
func TestCoverageWriter(t *testing.T) {
	t.Parallel()
	const total = `^TOTAL\s+\d+\s+\d+\s+(\d+%)` // coverage.py's report
	tests := []struct {
		name    string
		pattern string
		writes  []string
		want    *float64
	}{
		{"LastLineWins", total, []string{"TOTAL 10 5 50%\n", "TOTAL 10 1 90%\n"}, ptr(90.0)},
		{"SplitAcrossWrites", total, []string{"TOT", "AL 10 2 8", "0%\r\n"}, ptr(80.0)},
		{"NoNewlineAtEnd", total, []string{"x\nTOTAL 8 1 87%"}, ptr(87.0)},
		// A write that starts with a newline ends the line before it there.
		{"WriteStartsWithANewline", total, []string{"TOTAL 10 5 50%\n", "\nTOTAL 10 1 90%\n"}, ptr(90.0)},
		// The newline that ends the output starts no line of its own, even for a pattern that
		// matches an empty one.
		{"FinalNewlineStartsNoLine", `^(\d*)%?$`, []string{"87%\n"}, ptr(87.0)},
		{"NoMatch", total, []string{"nothing here\n"}, nil},
		{"AHundred", total, []string{"TOTAL 10 0 100%\n"}, ptr(100.0)},
		{"NotAPercentage", total, []string{"TOTAL 1 1 101%\n"}, nil},
		{"OverlongLineMatchedOnItsStart", total, []string{"TOTAL 1 1 42% " + strings.Repeat("x", 10*maxCoverageLine) + "\n"}, ptr(42.0)},
		// What follows the first maxCoverageLine bytes of a line is not matched, however the
		// line is split among writes.
		{"MatchPastTheBoundUnseen", total, []string{"TOTAL 10 5 50%\n", "TOTAL 1 ", strings.Repeat(" ", maxCoverageLine) + "1 42%\n"}, ptr(50.0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out strings.Builder
			w := newCoverageWriter(&out, regexp.MustCompile(tt.pattern))
			for _, s := range tt.writes {
				io.WriteString(w, s)
			}
			if d := cmp.Diff(tt.want, w.Coverage()); d != "" {
				t.Errorf("Coverage() after %q (-want +got):\n%s", tt.writes, d)
			}
			if out.String() != strings.Join(tt.writes, "") {
				t.Errorf("output passed on = %q, want all of it", out.String())
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestTestReportOutcome: a failing test's status names its failing cases and carries its
// coverage; a missing report is a note, in the status and the job's log, and the exit code still
// decides; a passing test with a report says what it counted.
func TestTestReportOutcome(t *testing.T) {
	t.Parallel()
	failing := NewTestReport(append(cases(CasePassed, "test_ok"), cases(CaseFailed, "test_bad")...))
	tests := []struct {
		name      string
		res       TestResult
		wantState State
		wantDesc  string
	}{
		{"FailingCasesNamed", TestResult{ExitCode: 1, Report: failing}, StateFailed, "1 of 2 failed: test_bad"},
		{"PassedWithReport", TestResult{Report: NewTestReport(cases(CasePassed, "a", "b"))}, StateSuccess, "2 passed"},
		{"ExitWithoutFailingCases", TestResult{ExitCode: 2, Report: NewTestReport(cases(CasePassed, "a"))}, StateFailed, "exit 2: 1 passed"},
		{"MissingReportIsANote", TestResult{ExitCode: 1, ReportErr: errors.New("/out/junit.xml not found")}, StateFailed,
			"exit 1: 2 passed in 0.10s (no test report: /out/junit.xml not found)"},
		{"MissingReportPassed", TestResult{ReportErr: errors.New("/out/junit.xml not found")}, StateSuccess,
			"2 passed in 0.10s (no test report: /out/junit.xml not found)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupEngine(t)
			b.engine.projects["g/app"] = Project{Path: "g/app", Image: "r/app", Tests: []TestSpec{{
				Name: "unit", JUnit: "/out/junit.xml", Coverage: regexp.MustCompile(`coverage: (\d+\.\d+)%`),
			}}}
			b.exec.TestFunc = func(_ TestRequest, log io.Writer) (TestResult, error) {
				io.WriteString(log, "coverage: 12.5%\n2 passed in 0.10s\ncoverage: 81.25%\n")
				return tt.res, nil
			}
			p := b.push(t, "feature")
			b.drain(t, 0)
			got, _ := b.store.Pipeline(context.Background(), p.ID)
			j, _ := got.Job("test/unit")
			if j.State != tt.wantState || j.Description != tt.wantDesc {
				t.Errorf("test/unit = %s %q, want %s %q", j.State, j.Description, tt.wantState, tt.wantDesc)
			}
			if b.statuses.descs["gantry/test/unit"] != tt.wantDesc {
				t.Errorf("status description = %q, want %q", b.statuses.descs["gantry/test/unit"], tt.wantDesc)
			}
			if c, ok := b.statuses.coverage["gantry/test/unit"]; !ok || c != 81.25 || j.Coverage == nil || *j.Coverage != 81.25 {
				t.Errorf("coverage posted = %v (%t), on the job %v, want 81.25, the last match", c, ok, j.Coverage)
			}
			if d := cmp.Diff(tt.res.Report, j.Report); d != "" {
				t.Errorf("job report (-want +got):\n%s", d)
			}
			note := "no test report"
			if tt.res.ReportErr != nil {
				note = fmt.Sprintf("no test report: %v\n", tt.res.ReportErr)
			}
			if log := b.store.logs[fmt.Sprintf("%d/test/unit/1", p.ID)]; strings.Contains(log, note) != (tt.res.ReportErr != nil) {
				t.Errorf("job log = %q, want %q in it only when the report is missing", log, note)
			}
		})
	}
}

// TestRetryForgetsTheReport: a retried test shows no report or coverage of its earlier attempt
// while it runs again.
func TestRetryForgetsTheReport(t *testing.T) {
	t.Parallel()
	b := setupEngine(t)
	b.engine.projects["g/app"] = Project{Path: "g/app", Image: "r/app", Tests: []TestSpec{{
		Name: "unit", JUnit: "/out/junit.xml", Coverage: regexp.MustCompile(`coverage: (\d+)%`),
	}}}
	runs := 0
	var p *Pipeline
	b.exec.TestFunc = func(_ TestRequest, log io.Writer) (TestResult, error) {
		runs++
		if runs == 1 {
			io.WriteString(log, "coverage: 50%\n")
			return TestResult{ExitCode: 1, Report: NewTestReport(cases(CaseFailed, "test_bad"))}, nil
		}
		got, _ := b.store.Pipeline(context.Background(), p.ID)
		if j, _ := got.Job("test/unit"); j.Report != nil || j.Coverage != nil {
			t.Errorf("retried test/unit while running = report %+v, coverage %v; want neither", j.Report, j.Coverage)
		}
		return TestResult{}, nil
	}
	p = b.push(t, "feature")
	b.drain(t, 0)
	if _, err := b.engine.RetryJob(context.Background(), p.ID, "test/unit"); err != nil {
		t.Fatal(err)
	}
	b.drain(t, 0)
	if runs != 2 {
		t.Errorf("test ran %d times, want 2", runs)
	}
}
