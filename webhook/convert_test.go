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
			Kind: orchestrator.TriggerPush, Ref: "master", SHA: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"}}},
		{"webhooks/tag_push.json", "Tag Push Hook", event{Project: "jsmith/example", HookProjectID: 1, Trigger: orchestrator.Trigger{
			Project: "jsmith/example", ProjectID: 1, ProjectURL: "http://example.com/jsmith/example",
			Kind: orchestrator.TriggerTag, Ref: "v1.0.0", SHA: "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7"}}},
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

func TestConvertPushes(t *testing.T) {
	t.Parallel()
	deleted := `{"object_kind":"push","ref":"refs/heads/gone","before":"1111111111111111111111111111111111111111","after":"0000000000000000000000000000000000000000","checkout_sha":null,"project_id":3,"project":{"path_with_namespace":"g/app"},"commits":[]}`
	got, err := convert("Push Hook", []byte(deleted))
	if err != nil || got.Ignored != "branch gone deleted" || got.Project != "g/app" {
		t.Errorf("convert(branch deletion) = %+v, %v, want ignored for g/app", got, err)
	}
	if _, err := convert("Push Hook", []byte("{not json")); err == nil {
		t.Error("convert(broken JSON) = nil error, want one")
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
