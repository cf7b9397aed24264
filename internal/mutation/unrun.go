package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strings"

	"golang.org/x/tools/cover"
)

// caseConditions tells which mutants gremlins reports NOT COVERED only because Go's coverage
// has no counter for a switch case's condition: gremlins v0.6.0 looks the mutant's position up
// in the profile and finds no block (go-gremlins/gremlins#298; the fix, #299, is not
// released). Such a mutant is never run, so it counts nowhere, like a timed-out one, when a
// test runs its case's body: the code is covered, only the tool cannot say so. A case whose
// body no test runs keeps its mutants NOT COVERED.
type caseConditions struct {
	// blocks are the coverage profile's blocks by file name (an import path and a base name).
	blocks map[string][]cover.ProfileBlock
	fset   *token.FileSet
	files  map[string]*ast.File
}

func readCaseConditions(profile string) (*caseConditions, error) {
	ps, err := cover.ParseProfiles(profile)
	if err != nil {
		return nil, err
	}
	c := &caseConditions{blocks: map[string][]cover.ProfileBlock{}, fset: token.NewFileSet(), files: map[string]*ast.File{}}
	for _, p := range ps {
		c.blocks[p.FileName] = p.Blocks
	}
	return c, nil
}

// unrun reports whether the mutant at line:col of file (a path from the module's root) sits in
// a case clause's condition whose body the profile shows run.
func (c *caseConditions) unrun(file string, line, col int) bool {
	if c == nil {
		return false
	}
	f, ok := c.files[file]
	if !ok {
		f, _ = parser.ParseFile(c.fset, file, nil, parser.SkipObjectResolution)
		c.files[file] = f // nil when it does not parse: nothing is excused
	}
	if f == nil {
		return false
	}
	tf := c.fset.File(f.Pos())
	if line < 1 || line > tf.LineCount() {
		return false
	}
	at := tf.LineStart(line) + token.Pos(col-1)
	found := false
	ast.Inspect(f, func(n ast.Node) bool {
		clause, ok := n.(*ast.CaseClause)
		if found || !ok {
			return !found
		}
		for _, e := range clause.List {
			if e.Pos() <= at && at < e.End() && len(clause.Body) > 0 {
				found = c.ran(file, c.fset.Position(clause.Body[0].Pos()))
			}
		}
		return !found
	})
	return found
}

// ran reports whether a block that holds pos has run.
func (c *caseConditions) ran(file string, pos token.Position) bool {
	for name, blocks := range c.blocks {
		if !strings.HasSuffix(name, "/"+file) {
			continue
		}
		for _, b := range blocks {
			after := pos.Line > b.StartLine || pos.Line == b.StartLine && pos.Column >= b.StartCol
			before := pos.Line < b.EndLine || pos.Line == b.EndLine && pos.Column <= b.EndCol
			if after && before && b.Count > 0 {
				return true
			}
		}
	}
	return false
}
