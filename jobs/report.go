package jobs

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	junit "github.com/joshdk/go-junit"
	"github.com/moby/moby/client"

	"github.com/gantry-ci/gantry/orchestrator"
)

// A test's JUnit report is written by the project's own code, so everything about it is
// attacker-controlled: its size, its XML, and what sits at its path. These bound what reading
// one may cost the worker.
const (
	// maxReportBytes bounds the report file; a larger one is refused, not cut, since a cut
	// XML document does not parse anyway.
	maxReportBytes = 5 << 20
	// maxReportDepth bounds element nesting. JUnit needs four levels (testsuites, testsuite,
	// testcase, failure) and nested suites a few more; go-junit keeps each element's inner XML,
	// so its memory grows with depth times size.
	maxReportDepth = 16
	// maxReportElements bounds how many elements go-junit builds a node for: 5 MiB of "<a/>"
	// would otherwise be more than a million of them.
	maxReportElements = 150_000
	// reportCopyTimeout bounds waiting for a turn, copying the report out and reading it, so a
	// stuck engine cannot hold the job.
	reportCopyTimeout = 30 * time.Second
)

// testReport copies the JUnit report at path out of the stopped container id and reads it. The
// Engine API hands out a path as a tar stream (docs/docker.md §2.g); only a regular file is
// read, and no other entry of the stream.
func (d *Docker) testReport(ctx context.Context, id, path string) (*orchestrator.TestReport, error) {
	ctx, cancel := context.WithTimeout(ctx, reportCopyTimeout)
	defer cancel()
	select {
	case d.reading <- struct{}{}:
		defer func() { <-d.reading }()
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: waiting for another report to be read: %w", path, ctx.Err())
	}
	res, err := d.cli.CopyFromContainer(ctx, id, client.CopyFromContainerOptions{SourcePath: path})
	if cerrdefs.IsNotFound(err) {
		return nil, fmt.Errorf("%s not found", path)
	}
	if err != nil {
		return nil, fmt.Errorf("copy %s out of the container: %w", path, err)
	}
	defer res.Content.Close()
	// The engine stats the path without following a symlink at its end (docs/docker.md §2.g);
	// refusing here saves reading the stream, and readReportFile checks again.
	switch st := res.Stat; {
	case st.Mode.IsDir():
		return nil, fmt.Errorf("%s is a directory", path)
	case st.Mode&os.ModeSymlink != 0:
		return nil, fmt.Errorf("%s is a symbolic link, which is not followed", path)
	case !st.Mode.IsRegular():
		return nil, fmt.Errorf("%s is not a regular file", path)
	case st.Size > maxReportBytes:
		return nil, fmt.Errorf("%s is %s, more than the %s read", path, mib(st.Size), mib(maxReportBytes))
	}
	data, err := readReportFile(res.Content, maxReportBytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	r, err := parseReport(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// readReportFile reads the one file of a CopyFromContainer tar stream: its first entry, which
// must be a regular file of at most limit bytes. Nothing after it is read.
func readReportFile(r io.Reader, limit int64) ([]byte, error) {
	tr := tar.NewReader(r)
	hdr, err := tr.Next()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("the engine sent no file")
	}
	if err != nil {
		return nil, fmt.Errorf("read the engine's archive: %w", err)
	}
	switch {
	case hdr.Typeflag == tar.TypeDir:
		return nil, errors.New("is a directory")
	case hdr.Typeflag == tar.TypeSymlink || hdr.Typeflag == tar.TypeLink:
		return nil, errors.New("is a link, which is not followed")
	case hdr.Typeflag != tar.TypeReg:
		return nil, fmt.Errorf("is not a regular file (tar type %q)", hdr.Typeflag)
	case hdr.Size > limit:
		return nil, fmt.Errorf("is %s, more than the %s read", mib(hdr.Size), mib(limit))
	}
	// The header's size is the engine's word; the reader stops at limit whatever it says.
	data, err := io.ReadAll(io.LimitReader(tr, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read the engine's archive: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("is more than the %s read", mib(limit))
	}
	return data, nil
}

// errUnsafeXML marks XML refused before go-junit sees it.
var errUnsafeXML = errors.New("refused")

// checkReportXML walks the XML's tokens before go-junit parses it, because go-junit builds a
// tree of the whole document with no bounds of its own. It refuses DTDs (DOCTYPE and ENTITY
// declarations: encoding/xml expands no custom entity, but nothing in a test report needs one,
// and a billion-laughs file is better refused by name than by a confusing parse error), nesting
// deeper than maxReportDepth and more than maxReportElements elements.
func checkReportXML(data []byte) error {
	dec := xml.NewDecoder(bytes.NewReader(data))
	depth, elements := 0, 0
	for {
		tok, err := dec.RawToken()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("not XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return fmt.Errorf("DOCTYPE and entity declarations are %w (<!%s)", errUnsafeXML, firstWord(t))
		case xml.StartElement:
			depth++
			elements++
			if depth > maxReportDepth {
				return fmt.Errorf("nested deeper than %d elements: %w", maxReportDepth, errUnsafeXML)
			}
			if elements > maxReportElements {
				return fmt.Errorf("more than %d elements: %w", maxReportElements, errUnsafeXML)
			}
		case xml.EndElement:
			depth--
		}
	}
}

func firstWord(b []byte) string {
	w, _, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
	return cutBytes(w, 16)
}

func cutBytes(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// parseReport reads a JUnit XML report with go-junit, a maintained parser that knows the
// dialects test runners write (pytest, Jest, Go's gotestsum, Maven's surefire), once the XML is
// known to be within bounds.
func parseReport(data []byte) (*orchestrator.TestReport, error) {
	if err := checkReportXML(data); err != nil {
		return nil, err
	}
	suites, err := junit.Ingest(data)
	if err != nil {
		return nil, fmt.Errorf("not a JUnit report: %w", err)
	}
	var cases []orchestrator.TestCase
	var walk func([]junit.Suite)
	walk = func(suites []junit.Suite) {
		for _, s := range suites {
			for _, t := range s.Tests {
				cases = append(cases, testCase(t))
			}
			walk(s.Suites)
		}
	}
	walk(suites)
	return orchestrator.NewTestReport(cases), nil
}

var caseStatuses = map[junit.Status]orchestrator.CaseStatus{
	junit.StatusPassed:  orchestrator.CasePassed,
	junit.StatusFailed:  orchestrator.CaseFailed,
	junit.StatusError:   orchestrator.CaseErrored,
	junit.StatusSkipped: orchestrator.CaseSkipped,
}

// testCase is a go-junit case in the domain's terms; its output is the failure's text (a
// traceback) followed by what the case printed.
func testCase(t junit.Test) orchestrator.TestCase {
	var out []string
	var failure junit.Error
	if errors.As(t.Error, &failure) && failure.Body != "" {
		out = append(out, failure.Body)
	}
	for _, s := range []string{t.SystemOut, t.SystemErr} {
		if strings.TrimSpace(s) != "" {
			out = append(out, s)
		}
	}
	return orchestrator.TestCase{
		Name: t.Name, Classname: t.Classname, Status: caseStatuses[t.Status],
		Message: t.Message, Output: strings.Join(out, "\n"),
	}
}
