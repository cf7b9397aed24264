// Package layout holds the test that keeps the dependency rule of docs/style.md true: the
// domain imports no adapter, adapters import only the domain, and only cmd wires them.
package layout

import (
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/gantry-ci/gantry"

// allowed lists, per package, which of our packages it may import. Test files may also import
// the test-support packages in testSupport. A package missing here fails the test, so a new
// package has to take a place in the rule.
var allowed = map[string][]string{
	"orchestrator":      {},
	"configs":           {},
	"webhook":           {"orchestrator"},
	"jobs":              {"orchestrator"},
	"store":             {"orchestrator"},
	"gitlab":            {"orchestrator"},
	"api":               {"orchestrator"},
	"metrics":           {"orchestrator"},
	"gitlab/gitlabtest": {},
	"internal/testenv":  {},
	"internal/layout":   {},
	"internal/gc":       {},
	// mutation is the gate of scripts/mutation.sh over gremlins' reports.
	"internal/mutation": {},
	// wire is wiring shared by the commands: configuration in, domain types out.
	"internal/wire":    {"configs", "orchestrator"},
	"cmd/gantry":       {"*"},
	"cmd/gantry-bench": {"*"},
}

var testSupport = []string{"internal/testenv", "gitlab/gitlabtest"}

type pkg struct {
	ImportPath                         string
	Imports, TestImports, XTestImports []string
}

func TestDependencyRule(t *testing.T) {
	out, err := exec.Command("go", "list", "-e", "-json", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		seen++
		name := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		rule, ok := allowed[name]
		if !ok {
			t.Errorf("package %s has no place in the dependency rule (add it to allowed)", name)
			continue
		}
		check := func(imports, extra []string, what string) {
			for _, imp := range imports {
				dep, ours := strings.CutPrefix(imp, module+"/")
				if !ours || dep == name || slices.Contains(rule, "*") || slices.Contains(rule, dep) || slices.Contains(extra, dep) {
					continue
				}
				t.Errorf("%s %s imports %s, which the dependency rule forbids", name, what, dep)
			}
		}
		check(p.Imports, nil, "")
		if name == "orchestrator" {
			// The domain counts through its Metrics port; Prometheus lives in the metrics adapter.
			for _, imp := range p.Imports {
				if strings.HasPrefix(imp, "github.com/prometheus/") {
					t.Errorf("orchestrator imports %s: metrics go through orchestrator.Metrics", imp)
				}
			}
		}
		check(append(p.TestImports, p.XTestImports...), testSupport, "(tests)")
	}
	if seen < 5 {
		t.Fatalf("go list saw %d packages; the test is not looking at the module", seen)
	}
}
