package orchestrator

import (
	"strings"
	"testing"
)

func TestPageURL(t *testing.T) {
	t.Parallel()
	long := "https://gantry.example.com/" + strings.Repeat("a", 200)
	tests := []struct {
		publicURL, job, want string
	}{
		{"https://gantry.example.com", "build", "https://gantry.example.com/pipelines/42#job-build"},
		{"https://gantry.example.com", "test/unit", "https://gantry.example.com/pipelines/42#job-test/unit"},
		{"https://gantry.example.com", "test/a b#c", "https://gantry.example.com/pipelines/42#job-test/a%20b%23c"},
		// Over GitLab's 255 characters with the job, the link is the page alone.
		{long, "test/" + strings.Repeat("x", 40), long + "/pipelines/42"},
	}
	for _, tt := range tests {
		got := PageURL(tt.publicURL, 42, tt.job)
		if got != tt.want {
			t.Errorf("PageURL(%q, 42, %q) = %q, want %q", tt.publicURL, tt.job, got, tt.want)
		}
		if len(got) > maxTargetURL && len(tt.publicURL) < 200 {
			t.Errorf("PageURL(%q, 42, %q) is %d characters, over GitLab's %d", tt.publicURL, tt.job, len(got), maxTargetURL)
		}
	}
}
