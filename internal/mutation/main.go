// Command mutation is the gate of scripts/mutation.sh: it reads the report gremlins wrote for
// one package, takes out the mutants listed as equivalent (each with the reason it cannot
// change behaviour), prints what lived, and fails when the package's test efficacy or mutator
// coverage is under its threshold.
//
// Written by hand because gremlins can only leave out whole files: it has no way to mark one
// mutant as equivalent, and its own thresholds would count every equivalent mutant against us.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mutation:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	flags := flag.NewFlagSet("mutation", flag.ContinueOnError)
	equivalents := flags.String("equivalents", "", "the package's equivalent-mutant list (none when the file does not exist)")
	efficacy := flags.Float64("efficacy", 90, "least test efficacy, percent")
	coverage := flags.Float64("coverage", 85, "least mutator coverage, percent")
	partial := flags.Bool("partial", false, "the report covers only the lines changed since a commit: listed mutants outside them are not stale")
	profile := flags.String("cover", "", "the package's coverage profile (go test -coverprofile), to tell the switch case conditions gremlins cannot map")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() != 2 {
		return errors.New("usage: mutation [flags] PACKAGE GREMLINS-REPORT.json")
	}
	pkg, reportPath := flags.Arg(0), flags.Arg(1)
	listed, err := readEquivalents(*equivalents)
	if err != nil {
		return err
	}
	r, err := readReport(reportPath)
	if err != nil {
		return err
	}
	var cases *caseConditions
	if *profile != "" {
		if cases, err = readCaseConditions(*profile); err != nil {
			return err
		}
	}
	s := score(pkg, r, listed, cases)
	for _, m := range s.lived {
		fmt.Fprintf(stdout, "LIVED        %s\n", m)
	}
	for _, m := range s.notCovered {
		fmt.Fprintf(stdout, "NOT COVERED  %s\n", m)
	}
	for _, m := range s.stale {
		if *partial {
			break
		}
		fmt.Fprintf(stdout, "warning: %s is listed as equivalent but did not live: take it off the list\n", m)
	}
	if s.timedOut > 0 {
		fmt.Fprintf(stdout, "warning: %d mutants timed out and count nowhere\n", s.timedOut)
	}
	fmt.Fprintf(stdout, "| %s | %.1f%% (%d killed, %d lived) | %.1f%% | %d | %d |\n",
		pkg, s.efficacy(), s.killed, len(s.lived), s.coverage(), s.equivalent, s.unrun)
	if s.efficacy() < *efficacy || s.coverage() < *coverage {
		return fmt.Errorf("%s: efficacy %.1f%% (least %.0f%%), mutator coverage %.1f%% (least %.0f%%)",
			pkg, s.efficacy(), *efficacy, s.coverage(), *coverage)
	}
	return nil
}

// report is the part of gremlins' JSON report the gate reads.
type report struct {
	Files []struct {
		Name      string `json:"file_name"`
		Mutations []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
			Line   int    `json:"line"`
			Column int    `json:"column"`
		} `json:"mutations"`
	} `json:"files"`
}

func readReport(name string) (*report, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &r, nil
}

// readEquivalents reads lines of "package/file.go:line:column MUTATOR reason"; # starts a
// comment. An entry without a reason is refused: the list is reviewed like code.
func readEquivalents(name string) (map[string]bool, error) {
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) || name == "" {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	listed := map[string]bool{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 3 {
			return nil, fmt.Errorf("%s:%d: want \"package/file.go:line:column MUTATOR reason\", got %q", name, n, line)
		}
		listed[fields[0]+" "+fields[1]] = true
	}
	return listed, sc.Err()
}

// scored is one package's mutants, the listed equivalents taken out.
type scored struct {
	killed, equivalent int
	timedOut           int
	// unrun are case-condition mutants gremlins did not run though their case is covered.
	unrun             int
	lived, notCovered []string
	stale             []string
}

// score counts a package's mutants. As in gremlins, mutants that timed out, were not viable or
// were skipped count nowhere: a time-out says more about a loaded machine than about a test.
// Neither do case conditions gremlins could not map to coverage (caseConditions), counted apart.
func score(pkg string, r *report, listed map[string]bool, cases *caseConditions) scored {
	var s scored
	used := map[string]bool{}
	for _, f := range r.Files {
		for _, m := range f.Mutations {
			key := fmt.Sprintf("%s:%d:%d %s", path.Join(pkg, f.Name), m.Line, m.Column, m.Type)
			switch {
			case listed[key] && (m.Status == "LIVED" || m.Status == "NOT COVERED"):
				s.equivalent++
				used[key] = true
			case m.Status == "KILLED":
				s.killed++
			case m.Status == "TIMED OUT":
				s.timedOut++
			case m.Status == "LIVED":
				s.lived = append(s.lived, key)
			case m.Status == "NOT COVERED" && cases.unrun(path.Join(pkg, f.Name), m.Line, m.Column):
				s.unrun++
			case m.Status == "NOT COVERED":
				s.notCovered = append(s.notCovered, key)
			}
		}
	}
	for key := range listed {
		if strings.HasPrefix(key, pkg+"/") && !used[key] {
			s.stale = append(s.stale, key)
		}
	}
	slices.Sort(s.stale)
	return s
}

// efficacy is the share of covered mutants the tests killed, in percent.
func (s scored) efficacy() float64 {
	return percent(s.killed, s.killed+len(s.lived))
}

// coverage is the share of mutants some test covers, in percent.
func (s scored) coverage() float64 {
	covered := s.killed + len(s.lived)
	return percent(covered, covered+len(s.notCovered))
}

func percent(n, of int) float64 {
	if of == 0 {
		return 100
	}
	return 100 * float64(n) / float64(of)
}
