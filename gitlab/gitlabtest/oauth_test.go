package gitlabtest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/gitlab/gitlabtest"
	"golang.org/x/oauth2"
)

// authorizeCode runs the browser's half of the flow: GitLab's authorize answer, not followed.
func authorizeCode(t *testing.T, authURL string) url.Values {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize = %d, want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), "https://gantry.example.com/signin/callback?") {
		t.Fatalf("authorize sent the browser to %q", resp.Header.Get("Location"))
	}
	return loc.Query()
}

// TestOAuthCodeFlow: a code with its PKCE verifier becomes a token of the signed-in user, once;
// a wrong verifier, a replayed code or a wrong secret gets none.
func TestOAuthCodeFlow(t *testing.T) {
	t.Parallel()
	g := gitlabtest.New(t)
	g.AddOAuthApp("app-id", "app-secret", "https://gantry.example.com/signin/callback")
	g.SignInAs("ann")
	conf := &oauth2.Config{ClientID: "app-id", ClientSecret: "app-secret", RedirectURL: "https://gantry.example.com/signin/callback",
		Scopes: []string{"read_api"}, Endpoint: oauth2.Endpoint{AuthURL: g.URL + "/oauth/authorize", TokenURL: g.URL + "/oauth/token"}}
	ctx := context.Background()
	verifier := oauth2.GenerateVerifier()
	q := authorizeCode(t, conf.AuthCodeURL("st4te", oauth2.S256ChallengeOption(verifier)))
	if q.Get("state") != "st4te" || q.Get("code") == "" {
		t.Fatalf("callback query %v, want the state back and a code", q)
	}
	if _, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption("not-the-verifier-"+verifier)); err == nil {
		t.Error("a code was redeemed with the wrong verifier")
	}
	q = authorizeCode(t, conf.AuthCodeURL("st4te", oauth2.S256ChallengeOption(verifier)))
	bad := *conf
	bad.ClientSecret = "wrong"
	if _, err := bad.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier)); err == nil {
		t.Error("a code was redeemed with the wrong client secret")
	}
	q = authorizeCode(t, conf.AuthCodeURL("st4te", oauth2.S256ChallengeOption(verifier)))
	tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier)); err == nil {
		t.Error("a code was redeemed twice")
	}
	var me struct{ Username string }
	getJSON(t, g.URL+"/api/v4/user", tok.AccessToken, http.StatusOK, &me)
	if me.Username != "ann" {
		t.Errorf("the token belongs to %q, want ann", me.Username)
	}
	getJSON(t, g.URL+"/api/v4/user", "gloas-made-up", http.StatusUnauthorized, nil)
}

// TestPrivateProjectsAndPermissions: a private project is a 404 to a user who is no member, and
// GET /projects/:id tells a member their access level.
func TestPrivateProjectsAndPermissions(t *testing.T) {
	t.Parallel()
	g := gitlabtest.New(t)
	p := g.AddProject("g/secret", t.TempDir())
	g.MakePrivate(p.ID)
	g.AddMember(p.ID, "rita", 20)
	g.AddToken("tok-rita-0123456789", "rita")
	g.AddToken("tok-olaf-0123456789", "olaf")
	path := g.URL + "/api/v4/projects/" + url.PathEscape("g/secret")
	getJSON(t, path, "tok-olaf-0123456789", http.StatusNotFound, nil)
	getJSON(t, path, "", http.StatusNotFound, nil)
	var got struct {
		Permissions struct {
			ProjectAccess *struct {
				AccessLevel int `json:"access_level"`
			} `json:"project_access"`
		}
	}
	getJSON(t, path, "tok-rita-0123456789", http.StatusOK, &got)
	if got.Permissions.ProjectAccess == nil || got.Permissions.ProjectAccess.AccessLevel != 20 {
		t.Errorf("rita's permissions %+v, want project_access 20", got.Permissions)
	}
	getJSON(t, path, g.Token, http.StatusOK, nil) // the administrator reads every project
}

func getJSON(t *testing.T, u, token string, code int, v any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != code {
		t.Fatalf("GET %s = %d, want %d", u, resp.StatusCode, code)
	}
	if v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
}
