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
