package gitlab_test

import (
	"context"
	"errors"
	"testing"

	"github.com/gantry-ci/gantry/gitlab"
	"github.com/gantry-ci/gantry/gitlab/gitlabtest"
	"github.com/gantry-ci/gantry/orchestrator"
)

// TestAccountsAnswerForTheUser: Accounts asks with the user's own token: a Reporter reads with
// level 20, a stranger to a private project cannot read it (even though gantry's token could), a
// user of an internal project reads it without a level, and a revoked token is ErrTokenRejected.
func TestAccountsAnswerForTheUser(t *testing.T) {
	t.Parallel()
	srv := gitlabtest.New(t)
	secret := srv.AddProject("g/secret", t.TempDir())
	srv.MakePrivate(secret.ID)
	srv.AddProject("g/internal", t.TempDir())
	srv.AddMember(secret.ID, "rita", 20)
	srv.AddToken("tok-rita-0123456789", "rita")
	srv.AddToken("tok-olaf-0123456789", "olaf")
	srv.AddMember(secret.ID, "bob", 30)
	srv.AddToken("tok-bob-01234567890", "bob")
	srv.BlockUser("bob")
	a, err := gitlab.NewAccounts(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rita, err := a.CurrentUser(ctx, "tok-rita-0123456789")
	if err != nil || rita.Username != "rita" {
		t.Fatalf("CurrentUser = %+v, %v; want rita", rita, err)
	}
	olaf, _ := a.CurrentUser(ctx, "tok-olaf-0123456789")
	bob, _ := a.CurrentUser(ctx, "tok-bob-01234567890")
	for _, tc := range []struct {
		token   string
		user    int64
		project string
		want    orchestrator.Access
	}{
		{"tok-rita-0123456789", rita.ID, "g/secret", orchestrator.Access{Read: true, Level: 20}},
		{"tok-olaf-0123456789", olaf.ID, "g/secret", orchestrator.Access{}},
		{"tok-olaf-0123456789", olaf.ID, "g/internal", orchestrator.Access{Read: true}},
		{"tok-olaf-0123456789", olaf.ID, "g/none", orchestrator.Access{}},
		// A blocked member keeps the membership but none of its rights (docs/gitlab.md §8).
		{"tok-bob-01234567890", bob.ID, "g/secret", orchestrator.Access{Read: true}},
	} {
		got, err := a.ProjectAccess(ctx, tc.token, tc.user, tc.project)
		if err != nil || got != tc.want {
			t.Errorf("ProjectAccess(%s, %s) = %+v, %v; want %+v", tc.token, tc.project, got, err, tc.want)
		}
	}
	srv.RevokeToken("tok-rita-0123456789")
	if _, err := a.ProjectAccess(ctx, "tok-rita-0123456789", rita.ID, "g/secret"); !errors.Is(err, orchestrator.ErrTokenRejected) {
		t.Errorf("ProjectAccess with a revoked token = %v, want ErrTokenRejected", err)
	}
	if _, err := a.CurrentUser(ctx, "tok-rita-0123456789"); !errors.Is(err, orchestrator.ErrTokenRejected) {
		t.Errorf("CurrentUser with a revoked token = %v, want ErrTokenRejected", err)
	}
}

// TestNewAccountsWantsAnHTTPURL: the sign-in's GitLab is an http or https URL with a host.
func TestNewAccountsWantsAnHTTPURL(t *testing.T) {
	t.Parallel()
	for url, ok := range map[string]bool{
		"https://gitlab.example.com": true, "http://127.0.0.1:8929/gitlab": true,
		"ftp://gitlab.example.com": false, "https://": false, "gitlab.example.com": false, "http://%zz": false,
	} {
		if _, err := gitlab.NewAccounts(url); (err == nil) != ok {
			t.Errorf("NewAccounts(%q) error = %v, want accepted %t", url, err, ok)
		}
	}
}
