package orchestrator

import (
	"bytes"
	"io"
	"regexp"
	"strconv"
	"sync"
)

// maxCoverageLine bounds the part of one output line a coverage pattern is matched on, so that
// a test printing megabytes without a newline costs no more than a log line does.
const maxCoverageLine = 4 << 10

// coverageNumber is the number taken from a coverage pattern's group, as GitLab CI takes the
// first number of the match (docs/gitlab.md §3.4): "87.5% of statements" is 87.5. Done by hand
// because no library reads GitLab's coverage; the rule is one regular expression.
var coverageNumber = regexp.MustCompile(`\d+(?:\.\d+)?`)

// coverageWriter passes a test's output on and matches it, line by line, against the test's
// coverage pattern, the way GitLab CI reads a job's `coverage:` (docs/gitlab.md §3.4): the last
// matching line wins.
// It sees the whole output, where the job's tail (tailWriter) holds only its end.
type coverageWriter struct {
	w    io.Writer
	re   *regexp.Regexp
	mu   sync.Mutex
	line []byte
	last string // the pattern's group in the last matching line
}

func newCoverageWriter(w io.Writer, re *regexp.Regexp) *coverageWriter {
	return &coverageWriter{w: w, re: re}
}

func (c *coverageWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	for rest := p; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			c.add(rest)
			break
		}
		c.add(rest[:i])
		c.match()
		rest = rest[i+1:]
	}
	c.mu.Unlock()
	return c.w.Write(p)
}

// add keeps the start of the current line, up to maxCoverageLine bytes.
func (c *coverageWriter) add(p []byte) {
	if room := maxCoverageLine - len(c.line); room > 0 {
		c.line = append(c.line, p[:min(len(p), room)]...)
	}
}

func (c *coverageWriter) match() {
	line := bytes.TrimSuffix(c.line, []byte("\r"))
	if m := c.re.FindSubmatch(line); len(m) > 1 && m[1] != nil {
		c.last = string(m[1])
	}
	c.line = c.line[:0]
}

// Coverage is the percentage the last matching line gave, nil when no line matched or its
// number is no percentage.
func (c *coverageWriter) Coverage() *float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.line) > 0 { // output that does not end with a newline
		c.match()
	}
	return parseCoverage(c.last)
}

func parseCoverage(group string) *float64 {
	n := coverageNumber.FindString(group)
	if n == "" {
		return nil
	}
	v, err := strconv.ParseFloat(n, 64)
	if err != nil || v > 100 {
		return nil
	}
	return &v
}
