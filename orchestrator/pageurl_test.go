package orchestrator

import (
	"strings"
	"testing"
)

func TestPageURL(t *testing.T) {
	t.Parallel()
	long := "https://gantry.example.com/" + strings.Repeat("a", 200)
	const jobFits = maxTargetURL - len("https://gantry.example.com/pipelines/42#job-test/")
	tests := []struct {
		publicURL, job, want string
	}{
		{"https://gantry.example.com", "build", "https://gantry.example.com/pipelines/42#job-build"},
		{"https://gantry.example.com", "test/unit", "https://gantry.example.com/pipelines/42#job-test/unit"},
		{"https://gantry.example.com", "test/a b#c", "https://gantry.example.com/pipelines/42#job-test/a%20b%23c"},
		// A link to the job of just GitLab's 255 characters is kept; one more, and the link is
		// the page alone.
		{"https://gantry.example.com", "test/" + strings.Repeat("x", jobFits), "https://gantry.example.com/pipelines/42#job-test/" + strings.Repeat("x", jobFits)},
		{"https://gantry.example.com", "test/" + strings.Repeat("x", jobFits+1), "https://gantry.example.com/pipelines/42"},
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
