package webhook

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/google/go-cmp/cmp"
	gl "gitlab.com/gitlab-org/api/client-go"
)

// clientGoDir is where the GitLab client module, with its real payload fixtures, was downloaded.
func clientGoDir(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "gitlab.com/gitlab-org/api/client-go").Output()
	if err != nil {
		t.Fatalf("locate client-go: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// fixture reads a real GitLab payload shipped with the GitLab client module.
func fixture(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(clientGoDir(t), "testdata", rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// eachFixture calls f with every payload fixture the GitLab client ships: dir is webhooks or
// systemhooks, file its name there.
func eachFixture(t *testing.T, f func(dir, file string, body []byte)) {
	t.Helper()
	root := filepath.Join(clientGoDir(t), "testdata")
	for _, dir := range []string{"webhooks", "systemhooks"} {
		files, err := os.ReadDir(filepath.Join(root, dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, file := range files {
			body, err := os.ReadFile(filepath.Join(root, dir, file.Name()))
			if err != nil {
				t.Fatal(err)
			}
			f(dir, file.Name(), body)
		}
	}
}

func TestConvertRealPayloads(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file, header string
		want         event
	}{
		{"webhooks/push.json", "Push Hook", event{Project: "mike/diaspora", HookProjectID: 15, Trigger: orchestrator.Trigger{
			Project: "mike/diaspora", ProjectID: 15, ProjectURL: "http://example.com/mike/diaspora",
			Kind: orchestrator.TriggerPush, Ref: "master", SHA: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
			Commit: orchestrator.Commit{Title: "fixed readme", Author: "GitLab dev user",
				URL: "http://example.com/mike/diaspora/commit/da1560886d4f094c3e6c9ef40349f7d38b5d27d7"}}}},
		{"webhooks/tag_push.json", "Tag Push Hook", event{Project: "jsmith/example", HookProjectID: 1, Trigger: orchestrator.Trigger{
			Project: "jsmith/example", ProjectID: 1, ProjectURL: "http://example.com/jsmith/example",
			Kind: orchestrator.TriggerTag, Ref: "v1.0.0", SHA: "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7",
			Commit: orchestrator.Commit{Title: "Merge branch 'some-feature' into 'master'", Author: "John Smith",
				URL: "http://example.com/jsmith/example/commit/82b3d5ae55f7080f1e6022629cdb57bfae7cccc7"}}}},
		{"webhooks/note_commit.json", "Note Hook", event{Ignored: `event type "Note Hook" starts no pipeline`}},
	}
	for _, tt := range tests {
		got, err := convert(tt.header, fixture(t, tt.file))
		if err != nil {
			t.Errorf("convert(%s) error: %v", tt.file, err)
			continue
		}
		if d := cmp.Diff(tt.want, got); d != "" {
			t.Errorf("convert(%s) mismatch (-want +got):\n%s", tt.file, d)
		}
	}
}

func TestConvertAnnotatedTagBuildsCheckoutSHA(t *testing.T) {
	t.Parallel()
	got, err := convert("Tag Push Hook", fixture(t, "systemhooks/tag_push.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got.Trigger.SHA, "5937ac") {
		t.Errorf("annotated tag SHA = %q, want checkout_sha 5937ac…", got.Trigger.SHA)
	}
}

// TestConvertPushes holds what a push or tag push becomes: the commit built is checkout_sha
// (never `after`, docs/gitlab.md §2.1–2.2), and a push without one — a deleted ref, or any push
// GitLab sent no checkout_sha for — starts nothing rather than a pipeline of an empty SHA.
func TestConvertPushes(t *testing.T) {
	t.Parallel()
	head := "1111111111111111111111111111111111111111"
	other := "2222222222222222222222222222222222222222"
	ref := func(ref, after, checkout string) string {
		sha := "null"
		if checkout != "" {
			sha = jsonString(checkout)
		}
		return `{"ref":` + jsonString(ref) + `,"before":"` + other + `","after":"` + after + `","checkout_sha":` + sha +
			`,"project_id":3,"project":{"id":3,"path_with_namespace":"g/app","web_url":"https://gitlab.example.com/g/app"},"commits":[]}`
	}
	trigger := func(kind orchestrator.TriggerKind, name, sha string) event {
		return event{Project: "g/app", HookProjectID: 3, Trigger: orchestrator.Trigger{Project: "g/app", ProjectID: 3,
			ProjectURL: "https://gitlab.example.com/g/app", Kind: kind, Ref: name, SHA: sha, CheckSkip: true}}
	}
	ignored := func(why string) event { return event{Project: "g/app", HookProjectID: 3, Ignored: why} }
	tests := []struct {
		name, header, body string
		want               event
	}{
		{"branch", "Push Hook", ref("refs/heads/dev", head, head), trigger(orchestrator.TriggerPush, "dev", head)},
		{"branch built at checkout_sha, not after", "Push Hook", ref("refs/heads/dev", other, head), trigger(orchestrator.TriggerPush, "dev", head)},
		{"branch deleted", "Push Hook", ref("refs/heads/gone", zeroSHA, ""), ignored("branch gone deleted")},
		{"branch without checkout_sha", "Push Hook", ref("refs/heads/dev", head, ""), ignored("branch dev deleted")},
		{"after zeros with a checkout_sha", "Push Hook", ref("refs/heads/dev", zeroSHA, head), ignored("branch dev deleted")},
		{"tag ref in a push", "Push Hook", ref("refs/tags/v1", head, head), ignored(`ref "refs/tags/v1" is not a branch`)},
		{"tag", "Tag Push Hook", ref("refs/tags/v1", other, head), trigger(orchestrator.TriggerTag, "v1", head)},
		{"tag deleted", "Tag Push Hook", ref("refs/tags/v1", zeroSHA, ""), ignored("tag v1 deleted")},
		{"tag without checkout_sha", "Tag Push Hook", ref("refs/tags/v1", head, ""), ignored("tag v1 deleted")},
		{"branch ref in a tag push", "Tag Push Hook", ref("refs/heads/dev", head, head), ignored(`ref "refs/heads/dev" is not a tag`)},
	}
	for _, tt := range tests {
		got, err := convert(tt.header, []byte(tt.body))
		if err != nil {
			t.Errorf("%s: convert error: %v", tt.name, err)
			continue
		}
		if d := cmp.Diff(tt.want, got); d != "" {
			t.Errorf("%s: convert mismatch (-want +got):\n%s", tt.name, d)
		}
	}
	if _, err := convert("Push Hook", []byte("{not json")); err == nil {
		t.Error("convert(broken JSON) = nil error, want one")
	}
}

// TestConvertMergeRequests holds which merge request events start a pipeline: opening,
// reopening, and an update that brought commits (it has oldrev, docs/gitlab.md §2.3). An update
// without oldrev is an edit of the title, labels or description and must start nothing, or every
// edit would rebuild the merge request once the delivery dedup window passed. The pipeline
// builds last_commit in the source project, a fork's when the merge request comes from one.
func TestConvertMergeRequests(t *testing.T) {
	t.Parallel()
	head := "3333333333333333333333333333333333333333"
	mr := func(attrs string) string {
		return `{"object_kind":"merge_request","project":{"id":15,"path_with_namespace":"g/app","web_url":"https://gitlab.example.com/g/app"},
			"object_attributes":{"iid":4,"source_branch":"feature","target_branch":"main","target_project_id":15,` + attrs + `}}`
	}
	commit := `"last_commit":{"id":"` + head + `","message":"add a feature"}`
	same := `"source_project_id":15,"source":{"web_url":"https://gitlab.example.com/g/app"},` + commit
	fork := `"source_project_id":22,"source":{"web_url":"https://gitlab.example.com/someone/app"},` + commit
	built := event{Project: "g/app", HookProjectID: 15, Trigger: orchestrator.Trigger{Project: "g/app", ProjectID: 15,
		ProjectURL: "https://gitlab.example.com/g/app", Kind: orchestrator.TriggerMergeRequest, Ref: "feature", SHA: head, MergeRequestIID: 4}}
	fromFork := built
	fromFork.Trigger.ProjectID, fromFork.Trigger.ProjectURL, fromFork.Trigger.Fork = 22, "https://gitlab.example.com/someone/app", true
	skipped := built
	skipped.Ignored = "skipped: [skip ci] in the commit message"
	ignored := func(why string) event { return event{Project: "g/app", HookProjectID: 15, Ignored: why} }
	tests := []struct {
		name, body string
		want       event
	}{
		{"open", mr(`"action":"open",` + same), built},
		{"reopen", mr(`"action":"reopen",` + same), built},
		{"update with new commits", mr(`"action":"update","oldrev":"1111111111111111111111111111111111111111",` + same), built},
		{"update without oldrev", mr(`"action":"update",` + same), ignored("merge request updated without new commits")},
		{"update with an empty oldrev", mr(`"action":"update","oldrev":"",` + same), ignored("merge request updated without new commits")},
		{"close, even with oldrev", mr(`"action":"close","oldrev":"abc",` + same), ignored(`merge request action "close" starts no pipeline`)},
		{"approved", mr(`"action":"approved",` + same), ignored(`merge request action "approved" starts no pipeline`)},
		{"open without a last commit", mr(`"action":"open","source_project_id":15`), ignored("merge request has no last commit")},
		{"open from a fork", mr(`"action":"open",` + fork), fromFork},
		{"open without a source project object", mr(`"action":"open","source_project_id":15,` + commit), built},
		{"[skip ci] in the last commit", mr(`"action":"open","source_project_id":15,"last_commit":{"id":"` + head + `","message":"wip [skip ci]"}`), skipped},
	}
	for _, tt := range tests {
		got, err := convert("Merge Request Hook", []byte(tt.body))
		if err != nil {
			t.Errorf("%s: convert error: %v", tt.name, err)
			continue
		}
		if d := cmp.Diff(tt.want, got); d != "" {
			t.Errorf("%s: convert mismatch (-want +got):\n%s", tt.name, d)
		}
	}
}

// TestFastDecodeMatchesClient holds parse to the GitLab client's own ParseHook: for every
// fixture the client ships, with every event type that parse decodes itself, both give the
// same event, or both an error.
func TestFastDecodeMatchesClient(t *testing.T) {
	t.Parallel()
	compared := 0
	eachFixture(t, func(dir, file string, body []byte) {
		name := dir + "/" + file
		for _, typ := range []gl.EventType{gl.EventTypePush, gl.EventTypeTagPush, gl.EventTypeMergeRequest} {
			want, wantErr := gl.ParseHook(typ, body)
			got, gotErr := parse(typ, body)
			if (wantErr == nil) != (gotErr == nil) {
				t.Errorf("%s as %s: error %v, client's %v", name, typ, gotErr, wantErr)
				continue
			}
			if d := cmp.Diff(want, got); wantErr == nil && d != "" {
				t.Errorf("%s as %s differs from the client's (-client +parse):\n%s", name, typ, d)
			}
			compared++
		}
	})
	if compared < 90 {
		t.Errorf("compared %d decodings, expected every fixture three times", compared)
	}
}
