package orchestrator

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// MaxDescription is GitLab's limit on a commit status description, in characters
// (docs/gitlab.md §3.1, §3.4). The engine writes descriptions that fit, so the part that matters
// (the failing cases' names) is not the part GitLab's client cuts off.
const MaxDescription = 255

// A test report is kept in the pipeline record, which every step of the pipeline reads: these
// bound what one test job adds to it (about 130 KiB at most). The whole report stays in the
// container's file; the record keeps what a reader of a failed pipeline looks at first.
const (
	// MaxReportCases is how many cases a report keeps, failing ones first.
	MaxReportCases = 50
	// MaxCaseMessage bounds a case's message, in bytes.
	MaxCaseMessage = 512
	// MaxCaseOutput bounds a failing case's output, in bytes; its end is kept, where a
	// traceback names the assertion.
	MaxCaseOutput = 2 << 10
)

// CaseStatus is how one test case ended, as JUnit reports say it.
type CaseStatus string

// The case statuses.
const (
	CasePassed  CaseStatus = "passed"
	CaseFailed  CaseStatus = "failed"
	CaseErrored CaseStatus = "error"
	CaseSkipped CaseStatus = "skipped"
)

// Failing reports a case that counts against the test: a failure or an error.
func (s CaseStatus) Failing() bool { return s == CaseFailed || s == CaseErrored }

// TestCase is one case of a test report.
type TestCase struct {
	Name      string     `json:"name"`
	Classname string     `json:"classname,omitempty"`
	Status    CaseStatus `json:"status"`
	Message   string     `json:"message,omitempty"`
	// Output is a failing case's failure text and captured output, the end of it when long.
	Output string `json:"output,omitempty"`
}

// TestReport is what a test's JUnit report says: the counts of every case, and some cases.
type TestReport struct {
	Tests   int `json:"tests"`
	Passed  int `json:"passed"`
	Failed  int `json:"failed"`
	Errored int `json:"errored"`
	Skipped int `json:"skipped"`
	// Cases holds the failing cases first, in report order, then the others, at most
	// MaxReportCases of them; Omitted counts the rest.
	Cases   []TestCase `json:"cases"`
	Omitted int        `json:"omitted,omitempty"`
}

// NewTestReport counts cases and keeps the bounded part of them that a pipeline record holds.
func NewTestReport(cases []TestCase) *TestReport {
	r := &TestReport{Tests: len(cases), Cases: []TestCase{}}
	for _, c := range cases {
		switch c.Status {
		case CaseFailed:
			r.Failed++
		case CaseErrored:
			r.Errored++
		case CaseSkipped:
			r.Skipped++
		default:
			r.Passed++
		}
	}
	ordered := slices.Clone(cases)
	slices.SortStableFunc(ordered, func(a, b TestCase) int {
		return cmpBool(b.Status.Failing(), a.Status.Failing())
	})
	for _, c := range ordered[:min(len(ordered), MaxReportCases)] {
		out := c.Output
		c.Message, c.Output = cutEnd(c.Message, MaxCaseMessage), ""
		if c.Status.Failing() { // a passing case's output is noise next to a failure's
			c.Output = keepEnd(out, MaxCaseOutput)
		}
		r.Cases = append(r.Cases, c)
	}
	r.Omitted = len(cases) - len(r.Cases)
	return r
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// failing is how many cases failed or errored.
func (r *TestReport) failing() int { return r.Failed + r.Errored }

// counts says what the report holds, e.g. "40 passed, 1 skipped".
func (r *TestReport) counts() string {
	var parts []string
	for _, c := range []struct {
		n    int
		what string
	}{{r.Passed, "passed"}, {r.Failed, "failed"}, {r.Errored, "errors"}, {r.Skipped, "skipped"}} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c.n, c.what))
		}
	}
	return cmp.Or(strings.Join(parts, ", "), "no test cases")
}

// failures names the failing cases first, as far as limit characters allow:
// "2 of 41 failed: test_a, test_b", or "… test_a and 3 more" when not all fit.
func (r *TestReport) failures(limit int) string {
	s := fmt.Sprintf("%d of %d failed", r.failing(), r.Tests)
	var names []string
	for _, c := range r.Cases {
		if c.Status.Failing() {
			names = append(names, cmp.Or(c.Name, c.Classname, "(unnamed)"))
		}
	}
	// Room for the longest " and N more" there can be, so that whatever is left out is said.
	reserve := utf8.RuneCountInString(fmt.Sprintf(" and %d more", r.failing()))
	shown := 0
	for i, n := range names {
		sep := ", "
		if i == 0 {
			sep = ": "
		}
		room := limit - utf8.RuneCountInString(s) - utf8.RuneCountInString(sep)
		if i < len(names)-1 || r.failing() > len(names) {
			room -= reserve
		}
		if utf8.RuneCountInString(n) > room {
			if i == 0 && room > 1 { // one name too long to fit: its start tells enough
				s, shown = s+sep+cutRunes(n, room-1)+"…", 1
			}
			break
		}
		s, shown = s+sep+n, i+1
	}
	if more := r.failing() - shown; more > 0 && shown > 0 {
		s += fmt.Sprintf(" and %d more", more)
	}
	return cutRunes(s, limit)
}

// cutRunes cuts s to n characters, counting runes as GitLab counts characters.
func cutRunes(s string, n int) string {
	for i := range s {
		if n <= 0 {
			return s[:i]
		}
		n--
	}
	return s
}

// cutEnd keeps at most n bytes of s, from its start, without splitting a rune.
func cutEnd(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// keepEnd keeps at most n bytes of s, from its end, without splitting a rune.
func keepEnd(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := len(s) - n
	for i < len(s) && !utf8.RuneStart(s[i]) {
		i++
	}
	return "…" + s[i:]
}
