package gitlabtest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// A client that hangs up mid-call (a worker SIGKILLed while it downloads the archive) cuts the
// double's git commands off; the 404 they end in is no refusal of GitLab's and must not read as one.
func TestClientGoneIsNotRejected(t *testing.T) {
	t.Parallel()
	s := New(t)
	repo := NewRepo(t)
	sha := repo.Commit("Add the app", map[string]string{"app.py": "print('hi')\n"})
	s.AddProject("group/app", repo.Dir)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequest(http.MethodGet, "/api/v4/projects/1001/repository/archive.tar.gz?sha="+sha, nil).WithContext(ctx)
	r.Header.Set("Private-Token", s.Token)
	s.serveHTTP(httptest.NewRecorder(), r)
	// The same call from a client that stays is answered.
	r = httptest.NewRequest(http.MethodGet, "/api/v4/projects/1001/repository/archive.tar.gz?sha="+sha, nil)
	r.Header.Set("Private-Token", s.Token)
	s.serveHTTP(httptest.NewRecorder(), r)

	calls := s.Calls()
	if len(calls) != 2 || calls[0].Status != ClientClosedRequest || calls[1].Status != http.StatusOK {
		t.Fatalf("calls = %+v, want the hung-up call recorded %d and the other 200", calls, ClientClosedRequest)
	}
	if rejected := s.Rejected(); len(rejected) != 0 {
		t.Errorf("Rejected() = %+v, want none: nobody was refused", rejected)
	}
}
