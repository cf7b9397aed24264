package jobs

import (
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/orchestrator"
)

// TestTestLogCapped: a test that prints without end fills the job log (and Redis behind it) up
// to a cap, says where it stopped, and still ends normally.
func TestTestLogCapped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	got := b.runTest(t, b.env.busybox, orchestrator.TestSpec{Name: "chatty",
		Command: []string{"sh", "-c", "head -c 10m /dev/zero | tr '\\0' x; echo; echo the end"}})
	if got.err != nil || got.res.ExitCode != 0 {
		t.Fatalf("Test(chatty) = %+v, %v", got.res, got.err)
	}
	if len(got.log) > 5<<20 || !strings.Contains(got.log, "output truncated after 4 MiB") || strings.Contains(got.log, "the end") {
		t.Errorf("Test(10 MiB of output) log has %d bytes, ends %q; want 4 MiB and a truncation line", len(got.log), got.log[max(0, len(got.log)-200):])
	}
	if !strings.Contains(got.log, "exit 0 after ") {
		t.Errorf("Test(chatty) log lacks its exit line after the truncation: ends %q", got.log[max(0, len(got.log)-200):])
	}
}

func TestCappedWriter(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	c := &cappedWriter{w: &out, left: 1 << 19, limit: 1 << 19}
	chunk := strings.Repeat("x", 100<<10)
	for range 8 {
		if n, err := c.Write([]byte(chunk)); n != len(chunk) || err != nil {
			t.Fatalf("Write(100 KiB) = %d, %v, want all of it taken", n, err)
		}
	}
	want := strings.Repeat("x", 1<<19) + "\n… output truncated after 0.5 MiB\n"
	if out.String() != want {
		t.Errorf("cappedWriter(512 KiB) wrote %d bytes ending %q, want %d ending %q",
			out.Len(), out.String()[max(0, out.Len()-50):], len(want), want[len(want)-50:])
	}
}
