package jobs

import (
	"archive/tar"
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gantry-ci/gantry/orchestrator"
)

// pytestReport is what pytest --junitxml writes for one passing, one failing and one skipped case.
const pytestReport = `<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="0" failures="1" skipped="1" tests="3" time="0.05">` +
	`<testcase classname="tests.test_app" name="test_ok" time="0.001" />` +
	`<testcase classname="tests.test_app" name="test_bad" time="0.002"><failure message="assert 1 == 2">def test_bad():
&gt;       assert 1 == 2
E       assert 1 == 2</failure><system-out>printed</system-out></testcase>` +
	`<testcase classname="tests.test_app" name="test_later"><skipped type="pytest.skip" message="later">skip</skipped></testcase>` +
	`</testsuite></testsuites>`

// billionLaughs declares entities that expand to a billion "lol"s.
func billionLaughs() string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">`)
	prev := "lol"
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, `<!ENTITY lol%d "%s">`, i, strings.Repeat("&"+prev+";", 10))
		prev = fmt.Sprintf("lol%d", i)
	}
	b.WriteString(`]><testsuite><testcase name="&lol9;"/></testsuite>`)
	return b.String()
}

func deepReport(depth int) string {
	return `<testsuites>` + strings.Repeat(`<testsuite>`, depth) + `<testcase name="deep"/>` +
		strings.Repeat(`</testsuite>`, depth) + `</testsuites>`
}

// TestParseReport: a report within bounds is read with its cases; hostile or broken XML is
// refused with a reason before go-junit builds anything of it.
func TestParseReport(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		xml     string
		want    *orchestrator.TestReport
		wantErr string
	}{
		{name: "Pytest", xml: pytestReport, want: &orchestrator.TestReport{Tests: 3, Passed: 1, Failed: 1, Skipped: 1, Cases: []orchestrator.TestCase{
			{Name: "test_bad", Classname: "tests.test_app", Status: orchestrator.CaseFailed, Message: "assert 1 == 2",
				Output: "def test_bad():\n>       assert 1 == 2\nE       assert 1 == 2\nprinted"},
			{Name: "test_ok", Classname: "tests.test_app", Status: orchestrator.CasePassed},
			{Name: "test_later", Classname: "tests.test_app", Status: orchestrator.CaseSkipped, Message: "later"},
		}}},
		{name: "NestedSuitesAndErrors", xml: `<testsuites><testsuite name="a"><testsuite name="b"><testcase name="x"><error message="boom"/></testcase></testsuite></testsuite></testsuites>`,
			want: &orchestrator.TestReport{Tests: 1, Errored: 1, Cases: []orchestrator.TestCase{{Name: "x", Status: orchestrator.CaseErrored, Message: "boom"}}}},
		{name: "Empty", xml: ``, want: &orchestrator.TestReport{Cases: []orchestrator.TestCase{}}},
		{name: "DepthAtTheLimit", xml: deepReport(maxReportDepth - 2),
			want: &orchestrator.TestReport{Tests: 1, Passed: 1, Cases: []orchestrator.TestCase{{Name: "deep", Status: orchestrator.CasePassed}}}},
		{name: "DeepNesting", xml: deepReport(100_000), wantErr: "nested deeper than 16 elements"},
		{name: "BillionLaughs", xml: billionLaughs(), wantErr: "DOCTYPE and entity declarations are refused (<!DOCTYPE)"},
		{name: "EntityWithoutDoctype", xml: `<testsuite><testcase name="&xxe;"/></testsuite>`, wantErr: "not XML"},
		{name: "ExternalEntity", xml: `<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><testsuite><testcase name="&xxe;"/></testsuite>`,
			wantErr: "DOCTYPE and entity declarations are refused"},
		{name: "ManyElements", xml: "<testsuite>" + strings.Repeat("<testcase/>", maxReportElements) + "</testsuite>", wantErr: "more than 150000 elements"},
		{name: "NotXML", xml: "<testsuite><testcase></testsuite>", wantErr: "not"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseReport([]byte(tt.xml))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("parseReport(%s) = %v, %v; want an error containing %q", tt.name, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseReport(%s) error = %v", tt.name, err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("parseReport(%s) (-want +got):\n%s", tt.name, d)
			}
		})
	}
}

type tarEntry struct {
	name     string
	typeflag byte
	body     string
	link     string
}

func tarOf(t *testing.T, entries ...tarEntry) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typeflag, Mode: 0o644, Size: int64(len(e.body)), Linkname: e.link}
		if e.typeflag != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if e.typeflag == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	return &buf
}

// TestReadReportFile: of the engine's tar stream only a first entry that is a regular file within
// the limit is read; a directory, a link or an oversized file is refused, whatever follows it.
func TestReadReportFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		entries []tarEntry
		want    string
		wantErr string
	}{
		{name: "RegularFile", entries: []tarEntry{{"junit.xml", tar.TypeReg, "<testsuite/>", ""}}, want: "<testsuite/>"},
		{name: "LaterEntriesUnread", entries: []tarEntry{{"junit.xml", tar.TypeReg, "first", ""}, {"other", tar.TypeReg, "second", ""}}, want: "first"},
		{name: "AtTheLimit", entries: []tarEntry{{"junit.xml", tar.TypeReg, strings.Repeat("x", 64), ""}}, want: strings.Repeat("x", 64)},
		{name: "OverTheLimit", entries: []tarEntry{{"junit.xml", tar.TypeReg, strings.Repeat("x", 65), ""}}, wantErr: "more than"},
		{name: "Directory", entries: []tarEntry{{"out/", tar.TypeDir, "", ""}, {"out/junit.xml", tar.TypeReg, "x", ""}}, wantErr: "is a directory"},
		{name: "Symlink", entries: []tarEntry{{"junit.xml", tar.TypeSymlink, "", "/etc/passwd"}}, wantErr: "is a link, which is not followed"},
		{name: "HardLink", entries: []tarEntry{{"junit.xml", tar.TypeLink, "", "etc/passwd"}}, wantErr: "is a link"},
		{name: "Fifo", entries: []tarEntry{{"junit.xml", tar.TypeFifo, "", ""}}, wantErr: "not a regular file"},
		{name: "Empty", wantErr: "no file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := readReportFile(tarOf(t, tt.entries...), 64)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("readReportFile(%s) = %q, %v; want an error containing %q", tt.name, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Errorf("readReportFile(%s) = %q, %v; want %q", tt.name, got, err, tt.want)
			}
		})
	}
	if _, err := readReportFile(strings.NewReader("not a tar stream at all, and long enough to have a header's worth of bytes in it"+strings.Repeat(".", 600)), 64); err == nil {
		t.Errorf("readReportFile(garbage) error = nil, want one")
	}
}

// TestTestReport runs tests that leave hostile things at their report's path on the engine: the
// report is read when it is one, refused with a reason otherwise, and the test's own exit code
// stands either way.
func TestTestReport(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const path = "/out/junit.xml"
	tests := []struct {
		name    string
		script  string
		exit    int
		wantErr string
	}{
		{name: "Report", script: "cat > " + path + " <<'EOF'\n" + pytestReport + "\nEOF\nexit 1", exit: 1},
		{name: "Missing", script: "rm -f " + path, wantErr: path + " not found"},
		{name: "Directory", script: "mkdir -p " + path + "; exit 2", exit: 2, wantErr: path + " is a directory"},
		{name: "Symlink", script: "ln -s /etc/passwd " + path, wantErr: path + " is a symbolic link, which is not followed"},
		{name: "Huge", script: "head -c 6291456 /dev/zero > " + path, wantErr: path + " is 6.0 MiB, more than the 5.0 MiB read"},
		{name: "BillionLaughs", script: "cat > " + path + " <<'EOF'\n" + billionLaughs() + "\nEOF", wantErr: "DOCTYPE and entity declarations are refused"},
		{name: "DeepNesting", script: "cat > " + path + " <<'EOF'\n" + deepReport(5000) + "\nEOF", wantErr: "nested deeper than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spec := orchestrator.TestSpec{Name: strings.ToLower(tt.name), JUnit: path,
				Command: []string{"sh", "-c", "mkdir -p /out; " + tt.script}}
			got := b.runTest(t, b.env.busybox, spec)
			if got.err != nil || got.res.ExitCode != tt.exit {
				t.Fatalf("Test(%s) = exit %d, %v; want exit %d\nlog:\n%s", tt.name, got.res.ExitCode, got.err, tt.exit, got.log)
			}
			if tt.wantErr == "" {
				if got.res.ReportErr != nil || got.res.Report == nil || got.res.Report.Failed != 1 || got.res.Report.Cases[0].Name != "test_bad" {
					t.Errorf("Test(%s) report = %+v, %v; want test_bad failing", tt.name, got.res.Report, got.res.ReportErr)
				}
				return
			}
			if got.res.Report != nil || got.res.ReportErr == nil || !strings.Contains(got.res.ReportErr.Error(), tt.wantErr) {
				t.Errorf("Test(%s) report = %+v, %v; want none, and an error containing %q", tt.name, got.res.Report, got.res.ReportErr, tt.wantErr)
			}
		})
	}
}

// BenchmarkParseReport reads the worst reports the bounds let through, for what one costs the
// worker: `go test -bench ParseReport -benchmem ./jobs`.
func BenchmarkParseReport(b *testing.B) {
	var cases strings.Builder
	cases.WriteString("<testsuites><testsuite>")
	for i := 0; cases.Len() < maxReportBytes-200; i++ {
		fmt.Fprintf(&cases, `<testcase classname="tests.test_app" name="test_%d"><failure message="x">assert %d</failure></testcase>`, i, i)
	}
	cases.WriteString("</testsuite></testsuites>")
	// Every element keeps its inner XML, so the deepest document with the most text costs most.
	deep := strings.Repeat("<testsuite>", maxReportDepth-2) + `<testcase name="t"><system-out>` +
		strings.Repeat("x", maxReportBytes-1000) + `</system-out></testcase>` + strings.Repeat("</testsuite>", maxReportDepth-2)
	many := "<testsuite>" + strings.Repeat("<testcase/>", maxReportElements-1) + "</testsuite>"
	for name, doc := range map[string]string{"ManyCases": cases.String(), "DeepText": deep, "MostElements": many} {
		if len(doc) > maxReportBytes {
			b.Fatalf("%s is %d bytes, over the limit", name, len(doc))
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			for b.Loop() {
				if _, err := parseReport([]byte(doc)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
