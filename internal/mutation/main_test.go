package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sampleReport = `{"files":[{"file_name":"a.go","mutations":[
 {"type":"CONDITIONALS_NEGATION","status":"KILLED","line":1,"column":2},
 {"type":"CONDITIONALS_NEGATION","status":"TIMED OUT","line":2,"column":2},
 {"type":"ARITHMETIC_BASE","status":"LIVED","line":3,"column":4},
 {"type":"ARITHMETIC_BASE","status":"LIVED","line":5,"column":6},
 {"type":"INVERT_NEGATIVES","status":"NOT COVERED","line":7,"column":8},
 {"type":"INVERT_NEGATIVES","status":"NOT VIABLE","line":9,"column":1}]}]}`

func writeFiles(t *testing.T, equivalents string) (eq, rep string) {
	t.Helper()
	dir := t.TempDir()
	eq, rep = filepath.Join(dir, "eq.txt"), filepath.Join(dir, "report.json")
	if err := os.WriteFile(eq, []byte(equivalents), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rep, []byte(sampleReport), 0o600); err != nil {
		t.Fatal(err)
	}
	return eq, rep
}

// TestGate: listed mutants leave the counts, timed-out and not viable ones count nowhere, and
// the thresholds decide.
func TestGate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, equivalents string
		efficacy          string
		wantErr           bool
		wantOut           []string
	}{
		{"nothing listed", "", "33", false, []string{
			"LIVED        pkg/a.go:3:4 ARITHMETIC_BASE", "NOT COVERED  pkg/a.go:7:8 INVERT_NEGATIVES",
			"warning: 1 mutants timed out", "| pkg | 33.3% (1 killed, 2 lived) | 75.0% | 0 |"}},
		{"under the threshold", "", "33.4", true, nil},
		{"one listed", "# why\npkg/a.go:3:4 ARITHMETIC_BASE  x*1 is x here\n", "50", false, []string{
			"| pkg | 50.0% (1 killed, 1 lived) | 66.7% | 1 |"}},
		{"a listed mutant that was killed", "pkg/a.go:1:2 CONDITIONALS_NEGATION  stale\nother/a.go:3:4 ARITHMETIC_BASE  another package\n", "30", false, []string{
			"warning: pkg/a.go:1:2 CONDITIONALS_NEGATION is listed as equivalent but did not live",
			"| pkg | 33.3% (1 killed, 2 lived) |"}},
	} {
		eq, rep := writeFiles(t, tt.equivalents)
		var out strings.Builder
		err := run([]string{"-equivalents", eq, "-efficacy", tt.efficacy, "-coverage", "60", "pkg", rep}, &out)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err = %v, want an error %v", tt.name, err, tt.wantErr)
		}
		for _, w := range tt.wantOut {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s: output\n%s\nwant a line with %q", tt.name, out.String(), w)
			}
		}
		if strings.Contains(out.String(), "other/a.go") {
			t.Errorf("%s: another package's entry reported as stale:\n%s", tt.name, out.String())
		}
	}
}

// TestNoEquivalentList: a package without a list has nothing taken out.
func TestNoEquivalentList(t *testing.T) {
	t.Parallel()
	_, rep := writeFiles(t, "")
	var out strings.Builder
	err := run([]string{"-equivalents", filepath.Join(t.TempDir(), "none.txt"), "-efficacy", "30", "pkg", rep}, &out)
	if err == nil || !strings.Contains(out.String(), "| pkg | 33.3% (1 killed, 2 lived) | 75.0% | 0 |") {
		t.Errorf("no list = %v:\n%s\nwant the full counts, and coverage under the default 85%%", err, out.String())
	}
}

// TestEquivalentNeedsReason: an entry without its reason is refused.
func TestEquivalentNeedsReason(t *testing.T) {
	t.Parallel()
	eq, rep := writeFiles(t, "pkg/a.go:3:4 ARITHMETIC_BASE\n")
	if err := run([]string{"-equivalents", eq, "pkg", rep}, &strings.Builder{}); err == nil || !strings.Contains(err.Error(), "eq.txt:1") {
		t.Errorf("an entry without a reason = %v, want an error naming its line", err)
	}
}

// TestCaseConditions: a mutant gremlins calls NOT COVERED in a switch case's condition counts
// nowhere when the profile shows its case's body run, and stays NOT COVERED when it does not
// (go-gremlins/gremlins#298).
func TestCaseConditions(t *testing.T) {
	t.Chdir(t.TempDir())
	src := "package sw\n\nfunc Switch(n int) string {\n\tswitch {\n\tcase n > 10:\n\t\treturn \"big\"\n\tcase n < -10:\n\t\treturn \"very small\"\n\t}\n\treturn \"none\"\n}\n"
	profile := "mode: set\nexample.com/m/sw/sw.go:3.27,4.9 1 1\nexample.com/m/sw/sw.go:5.14,6.15 1 1\nexample.com/m/sw/sw.go:7.15,8.22 1 0\nexample.com/m/sw/sw.go:10.2,10.15 1 1\n"
	report := `{"files":[{"file_name":"sw.go","mutations":[
 {"type":"CONDITIONALS_BOUNDARY","status":"NOT COVERED","line":5,"column":9},
 {"type":"CONDITIONALS_BOUNDARY","status":"NOT COVERED","line":7,"column":9},
 {"type":"CONDITIONALS_NEGATION","status":"KILLED","line":10,"column":2}]}]}`
	for name, body := range map[string]string{"sw/sw.go": src, "cover.out": profile, "report.json": report} {
		if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var out strings.Builder
	if err := run([]string{"-cover", "cover.out", "-coverage", "0", "sw", "report.json"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"NOT COVERED  sw/sw.go:7:9 CONDITIONALS_BOUNDARY", "| sw | 100.0% (1 killed, 0 lived) | 50.0% | 0 | 1 |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output\n%s\nwant a line with %q", out.String(), want)
		}
	}
	if strings.Contains(out.String(), "sw.go:5:9") {
		t.Errorf("output\n%s\nlists the mutant of a covered case", out.String())
	}
}

// TestPartialRun: a run over changed lines only reports no listed mutant as stale, since the
// run did not try those outside the change; it still counts the ones it did try.
func TestPartialRun(t *testing.T) {
	t.Parallel()
	eq, rep := writeFiles(t, "pkg/a.go:1:2 CONDITIONALS_NEGATION  not in this change\npkg/a.go:3:4 ARITHMETIC_BASE  x*1 is x here\n")
	var out strings.Builder
	if err := run([]string{"-partial", "-equivalents", eq, "-efficacy", "40", "-coverage", "60", "pkg", rep}, &out); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "stale") || strings.Contains(out.String(), "take it off") ||
		!strings.Contains(out.String(), "| pkg | 50.0% (1 killed, 1 lived) | 66.7% | 1 |") {
		t.Errorf("partial run output:\n%s\nwant no stale warning and the listed mutant taken out", out.String())
	}
}
