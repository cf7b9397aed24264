package gitlabtest_test

import (
	"net/http"
	"testing"

	gitlab "gitlab.com/gitlab-org/api/client-go"
)

// TestMergeBase checks the merge_base endpoint's answers and GitLab's exact error bodies.
func TestMergeBase(t *testing.T) {
	t.Parallel()
	b := setup(t)
	second := b.repo.Commit("Second", map[string]string{"README.md": "again\n"})
	b.repo.Git("checkout", "-q", "--orphan", "unrelated")
	unrelated := b.repo.Commit("No shared history", map[string]string{"other.txt": "x\n"})
	b.repo.Git("checkout", "-q", "-f", "main")
	h := http.Header{"Private-Token": {b.srv.Token}}
	base := b.srv.URL + "/api/v4/projects/1001/repository/merge_base?"
	tests := []struct {
		name, query string
		code        int
		body        string // exact body for errors; the merge base's id for 200
	}{
		{"ancestor and branch", "refs[]=" + b.sha + "&refs[]=refs/heads/main", 200, b.sha},
		{"branch and its ancestor", "refs[]=main&refs[]=" + b.sha, 200, b.sha},
		{"same commit", "refs[]=" + second + "&refs[]=" + second, 200, second},
		{"one ref", "refs[]=main", 400, `{"message":"Provide at least 2 refs"}`},
		{"unknown ref", "refs[]=nope&refs[]=main", 400, `{"message":"Could not find ref: nope"}`},
		{"unknown refs", "refs[]=nope&refs[]=nada", 400, `{"message":"Could not find refs: nope, nada"}`},
		{"no shared history", "refs[]=" + unrelated + "&refs[]=main", 404, `{"message":"404 Merge Base Not Found"}`},
	}
	for _, tt := range tests {
		resp, body := raw(t, http.MethodGet, base+tt.query, h, "")
		if resp.StatusCode != tt.code {
			t.Errorf("%s: GET merge_base?%s = %d %s, want %d", tt.name, tt.query, resp.StatusCode, body, tt.code)
			continue
		}
		if tt.code != 200 && body != tt.body {
			t.Errorf("%s: body = %s, want %s", tt.name, body, tt.body)
		}
	}
	c, _, err := b.gl.Repositories.MergeBase("group/app", nil)
	if err == nil {
		t.Errorf("MergeBase(no refs) = %+v, want an error", c)
	}
	// The merge base through client-go: its commit entity.
	got, _, err := b.gl.Repositories.MergeBase("group/app", &gitlab.MergeBaseOptions{Ref: &[]string{b.sha, second}})
	if err != nil || got.ID != b.sha || got.ShortID != b.sha[:8] {
		t.Errorf("MergeBase(%.8s, %.8s) = %+v, %v, want %s", b.sha, second, got, err, b.sha)
	}
}
