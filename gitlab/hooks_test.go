package gitlab

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/gitlab/gitlabtest"
	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	gl "gitlab.com/gitlab-org/api/client-go"
)

const hookURL = "https://gantry.example.com/webhooks/gitlab"

var spec = HookSpec{URL: hookURL, Token: "hook-s3cret", PushEvents: true, TagPushEvents: true, MergeRequestsEvents: true, EnableSSLVerification: true}

// registered is the hook RegisterHook(spec) should leave on the double.
func (b *testBundle) registered(id int64) gitlabtest.Hook {
	return gitlabtest.Hook{
		ID: id, ProjectID: b.proj.ID, URL: hookURL, Token: spec.Token,
		PushEvents: true, TagPushEvents: true, MergeRequestsEvents: true, EnableSSLVerification: true,
		BranchFilterStrategy: "all_branches", AlertStatus: "executable",
	}
}

// hooksWith returns the project's hooks whose URL is u.
func (b *testBundle) hooksWith(u string) []gitlabtest.Hook {
	var out []gitlabtest.Hook
	for _, h := range b.srv.Hooks(b.proj.ID) {
		if h.URL == u {
			out = append(out, h)
		}
	}
	return out
}

var ignoreCreated = cmpopts.IgnoreFields(gitlabtest.Hook{}, "CreatedAt")

func TestRegisterHookTwice(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	first, err := b.c.RegisterHook(ctx, b.proj.PathWithNamespace, spec)
	if err != nil || !first.Created || first.ID == 0 {
		t.Fatalf("first RegisterHook = %+v, %v; want a created hook", first, err)
	}
	second, err := b.c.RegisterHook(ctx, b.proj.PathWithNamespace, spec)
	if want := (HookResult{ID: first.ID}); err != nil || !cmp.Equal(second, want) {
		t.Fatalf("second RegisterHook = %+v, %v; want %+v", second, err, want)
	}
	if diff := cmp.Diff([]gitlabtest.Hook{b.registered(first.ID)}, b.srv.Hooks(b.proj.ID), ignoreCreated); diff != "" {
		t.Errorf("hooks after two registrations (-want +got):\n%s", diff)
	}
	// The update states every switch, so nothing is left to GitLab's defaults.
	var put *gitlabtest.Call
	for _, c := range b.srv.Calls() {
		if c.Method == "PUT" {
			put = &c
		}
	}
	if put == nil {
		t.Fatal("no PUT was made")
	}
	want := map[string]string{
		"url": hookURL, "token": spec.Token, "push_events": "true", "tag_push_events": "true",
		"merge_requests_events": "true", "enable_ssl_verification": "true", "push_events_branch_filter": "",
		"branch_filter_strategy": "all_branches", "issues_events": "false", "confidential_issues_events": "false",
		"note_events": "false", "confidential_note_events": "false", "job_events": "false", "pipeline_events": "false",
		"wiki_page_events": "false", "deployment_events": "false", "releases_events": "false", "emoji_events": "false",
		"resource_access_token_events": "false", "vulnerability_events": "false",
	}
	if diff := cmp.Diff(want, put.Body); diff != "" {
		t.Errorf("PUT body (-want +got):\n%s", diff)
	}
	if r := b.srv.Rejected(); len(r) != 0 {
		t.Errorf("GitLab refused %v", r)
	}
}

// TestRegisterHookRepairs is a hook someone edited in GitLab's UI: the URL still matches, so
// the hook is gantry's, and every switch and the token are put back.
func TestRegisterHookRepairs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	old := b.srv.AddHook(b.proj.ID, gitlabtest.Hook{
		URL: hookURL, IssuesEvents: true, PipelineEvents: true, PushEventsBranchFilter: "main",
		CustomHeaders: map[string]string{"X-Team": "ci"},
	})
	res, err := b.c.RegisterHook(context.Background(), b.proj.PathWithNamespace, spec)
	if err != nil || res.Created || res.ID != old.ID {
		t.Fatalf("RegisterHook = %+v, %v; want hook %d updated", res, err, old.ID)
	}
	want := b.registered(old.ID)
	want.CustomHeaders = map[string]string{"X-Team": "ci"} // not gantry's business
	if diff := cmp.Diff([]gitlabtest.Hook{want}, b.srv.Hooks(b.proj.ID), ignoreCreated); diff != "" {
		t.Errorf("hooks (-want +got):\n%s", diff)
	}
}

// TestRegisterHookSecondPage has the matching hook behind 25 others, on the second page of 20.
func TestRegisterHookSecondPage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for i := range 25 {
		b.srv.AddHook(b.proj.ID, gitlabtest.Hook{URL: fmt.Sprintf("https://other.example.com/%d", i), PushEvents: true})
	}
	mine := b.srv.AddHook(b.proj.ID, gitlabtest.Hook{URL: hookURL})
	res, err := b.c.RegisterHook(context.Background(), b.proj.PathWithNamespace, spec)
	if err != nil || res.Created || res.ID != mine.ID {
		t.Fatalf("RegisterHook = %+v, %v; want hook %d updated", res, err, mine.ID)
	}
	if got := b.hooksWith(hookURL); len(got) != 1 || got[0].Token != spec.Token {
		t.Errorf("hooks with the URL = %+v, want one with the token", got)
	}
	if n := len(b.srv.Hooks(b.proj.ID)); n != 26 {
		t.Errorf("%d hooks, want the 26 there were", n)
	}
}

func TestRegisterHookRemovesDuplicates(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var ids []int64
	for i := range 3 {
		b.srv.AddHook(b.proj.ID, gitlabtest.Hook{URL: fmt.Sprintf("https://other.example.com/%d", i)})
		ids = append(ids, b.srv.AddHook(b.proj.ID, gitlabtest.Hook{URL: hookURL}).ID)
	}
	res, err := b.c.RegisterHook(context.Background(), b.proj.PathWithNamespace, spec)
	if want := (HookResult{ID: ids[0], Removed: ids[1:]}); err != nil || !cmp.Equal(res, want) {
		t.Fatalf("RegisterHook = %+v, %v; want %+v", res, err, want)
	}
	if diff := cmp.Diff([]gitlabtest.Hook{b.registered(ids[0])}, b.hooksWith(hookURL), ignoreCreated); diff != "" {
		t.Errorf("hooks with the URL (-want +got):\n%s", diff)
	}
	if n := len(b.srv.Hooks(b.proj.ID)); n != 4 {
		t.Errorf("%d hooks, want 4: the other three are not gantry's", n)
	}
}

// TestRegisterHookURLChanged: someone pointed gantry's hook elsewhere, which made GitLab drop
// its token. That hook is theirs now; gantry gets a new one.
func TestRegisterHookURLChanged(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	first, err := b.c.RegisterHook(ctx, b.proj.PathWithNamespace, spec)
	if err != nil {
		t.Fatal(err)
	}
	moved := "https://moved.example.com/hook"
	if _, _, err := b.c.api.Projects.EditProjectHook(b.proj.ID, first.ID, &gl.EditProjectHookOptions{URL: gl.Ptr(moved)}); err != nil {
		t.Fatal(err)
	}
	second, err := b.c.RegisterHook(ctx, b.proj.PathWithNamespace, spec)
	if err != nil || !second.Created || second.ID == first.ID {
		t.Fatalf("RegisterHook after the URL changed = %+v, %v; want a new hook", second, err)
	}
	if got := b.hooksWith(moved); len(got) != 1 || got[0].Token != "" {
		t.Errorf("moved hooks = %+v, want the old hook, without token", got)
	}
	if diff := cmp.Diff([]gitlabtest.Hook{b.registered(second.ID)}, b.hooksWith(hookURL), ignoreCreated); diff != "" {
		t.Errorf("hooks with the URL (-want +got):\n%s", diff)
	}
}

func TestRegisterHookErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	bad := spec
	bad.URL = "ftp://gantry.example.com/webhooks/gitlab"
	_, err := b.c.RegisterHook(ctx, b.proj.PathWithNamespace, bad)
	if err == nil || !strings.Contains(err.Error(), "Invalid url given") {
		t.Errorf("RegisterHook(ftp URL) error = %v, want GitLab's 422", err)
	}
	_, missing := b.c.RegisterHook(ctx, "group/missing", spec)
	if !errors.Is(missing, orchestrator.ErrNotFound) {
		t.Errorf("RegisterHook(unknown project) error = %v, want ErrNotFound", missing)
	}
	withPassword := spec
	withPassword.URL = "https://user:hunter2@gantry.example.com/hook"
	_, redacted := b.c.RegisterHook(ctx, "group/missing", withPassword)
	for _, err := range []error{err, missing, redacted} {
		if err != nil && (strings.Contains(err.Error(), spec.Token) || strings.Contains(err.Error(), "hunter2")) {
			t.Errorf("error %q shows a secret", err)
		}
	}
	// The URL is still named, its password masked; one that does not parse is not shown at all.
	if redacted == nil || !strings.Contains(redacted.Error(), "https://user:xxxxx@gantry.example.com/hook") {
		t.Errorf("RegisterHook error = %v, want it to name the URL with its password masked", redacted)
	}
	unparsable := spec
	unparsable.URL = "https://user:hunter2@[gantry"
	if _, err := b.c.RegisterHook(ctx, "group/missing", unparsable); err == nil ||
		!strings.Contains(err.Error(), "(a URL that does not parse)") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("RegisterHook(unparsable URL) error = %v, want the URL left out", err)
	}
	// A lost answer to a list is retried; the registration goes through.
	b.srv.FailNext(1, 502)
	if res, err := b.c.RegisterHook(ctx, b.proj.PathWithNamespace, spec); err != nil || !res.Created {
		t.Errorf("RegisterHook after a 502 = %+v, %v; want a created hook", res, err)
	}
	if n := len(b.slept()); n != 1 {
		t.Errorf("%d retries, want 1", n)
	}
}

// TestListHooksNextPageBackwards: a next page that does not move forward (a proxy that rewrites
// X-Next-Page, a GitLab bug) ends the listing instead of asking for the same page for ever.
func TestListHooksNextPageBackwards(t *testing.T) {
	t.Parallel()
	for _, next := range []string{"1", "0"} {
		var mu sync.Mutex
		calls := 0
		c := fakeGitLab(t, func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			calls++
			n := calls
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			if n > 1 {
				// Asked again: answered as a GitLab that lost the project, so a loop fails at once.
				w.WriteHeader(http.StatusNotFound)
				fmt.Fprint(w, `{"message":"404 Project Not Found"}`)
				return
			}
			w.Header().Set("X-Page", "1")
			w.Header().Set("X-Next-Page", next)
			fmt.Fprintf(w, `[{"id":1,"url":%q}]`, hookURL)
		})
		reports, err := c.CheckHooks(context.Background(), []string{"group/app"})
		if err != nil || len(reports) != 1 || len(reports[0].Hooks) != 1 {
			t.Errorf("next page %s: CheckHooks = %+v, %v; want one project with its one hook", next, reports, err)
		}
		mu.Lock()
		if calls != 1 {
			t.Errorf("next page %s: %d calls, want 1", next, calls)
		}
		mu.Unlock()
	}
}

func TestCheckHooks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	other := b.srv.AddProject("group/other", b.repo.Dir)
	b.srv.AddHook(b.proj.ID, gitlabtest.Hook{URL: hookURL})
	temp := b.srv.AddHook(b.proj.ID, gitlabtest.Hook{URL: "https://a.example.com/hook"})
	b.srv.SetHookAlert(b.proj.ID, temp.ID, "temporarily_disabled", &until)
	for i := range 21 {
		b.srv.AddHook(other.ID, gitlabtest.Hook{URL: fmt.Sprintf("https://other.example.com/%d", i)})
	}
	gone := b.srv.AddHook(other.ID, gitlabtest.Hook{URL: hookURL}) // on page 2
	b.srv.SetHookAlert(other.ID, gone.ID, "disabled", nil)

	reports, err := b.c.CheckHooks(context.Background(), []string{"group/app", "group/missing", "group/other"})
	if !errors.Is(err, orchestrator.ErrNotFound) || !strings.Contains(err.Error(), "group/missing") {
		t.Errorf("CheckHooks error = %v, want group/missing not found", err)
	}
	tempHook := Hook{ID: temp.ID, URL: "https://a.example.com/hook", AlertStatus: "temporarily_disabled", DisabledUntil: &until}
	goneHook := Hook{ID: gone.ID, URL: hookURL, AlertStatus: "disabled"}
	if len(reports) != 2 || len(reports[0].Hooks) != 2 || len(reports[1].Hooks) != 22 {
		t.Fatalf("CheckHooks = %+v, want group/app with 2 hooks and group/other with 22", reports)
	}
	got := []any{reports[0].Project, reports[0].Hooks[1], reports[0].Disabled, reports[1].Project, reports[1].Hooks[21], reports[1].Disabled}
	want := []any{"group/app", tempHook, []Hook{tempHook}, "group/other", goneHook, []Hook{goneHook}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CheckHooks (-want +got):\n%s", diff)
	}
}

// TestHooksTokenRefused: GitLab's 401 to the hooks API is ErrTokenRefused, for listing and
// registering alike, so the CLI can say once which setting holds the token; the token is not
// in the error.
func TestHooksTokenRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	bad, err := New(b.srv.URL, "glpat-wrong", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.CheckHooks(context.Background(), []string{"group/app"})
	if !errors.Is(err, ErrTokenRefused) || strings.Contains(err.Error(), "glpat-wrong") {
		t.Errorf("CheckHooks with a wrong token = %v, want ErrTokenRefused without the token", err)
	}
	_, err = bad.RegisterHook(context.Background(), "group/app", HookSpec{URL: hookURL, Token: "t"})
	if !errors.Is(err, ErrTokenRefused) {
		t.Errorf("RegisterHook with a wrong token = %v, want ErrTokenRefused", err)
	}
}
