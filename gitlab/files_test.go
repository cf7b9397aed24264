package gitlab

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/orchestrator"
)

// TestFile reads a repository file at a commit through the raw file endpoint: at most the limit
// asked for, and ErrNotFound for a file or commit GitLab does not have.
func TestFile(t *testing.T) {
	t.Parallel()
	b := setup(t)
	big := strings.Repeat("x", 1<<20)
	next := b.repo.Commit("pipeline file", map[string]string{".gantry.yml": "tests: []\n", "ci/nested.yml": "a: 1\n", "big.yml": big})
	ctx := context.Background()
	tests := []struct {
		name, sha, path string
		limit           int64
		want            string
		notFound        bool
	}{
		{"file", next, ".gantry.yml", 100, "tests: []\n", false},
		{"nested path", next, "ci/nested.yml", 100, "a: 1\n", false},
		{"cut at the limit", next, "big.yml", 65537, big[:65537], false},
		{"not at the older commit", b.sha, ".gantry.yml", 100, "", true},
		{"no such file", next, "nope.yml", 100, "", true},
		{"no such commit", strings.Repeat("0", 40), ".gantry.yml", 100, "", true},
	}
	for _, tt := range tests {
		got, err := b.c.File(ctx, b.proj.ID, tt.sha, tt.path, tt.limit)
		switch {
		case tt.notFound && !errors.Is(err, orchestrator.ErrNotFound):
			t.Errorf("%s: File = %q, %v; want ErrNotFound", tt.name, got, err)
		case !tt.notFound && (err != nil || string(got) != tt.want):
			t.Errorf("%s: File = %d bytes, %v; want %d bytes", tt.name, len(got), err, len(tt.want))
		}
	}
	// "No such file" is an answer, not a request GitLab refuses.
	if r := b.srv.Rejected(); len(r) != 0 {
		t.Errorf("Rejected() = %+v, want none", r)
	}
}
