package webhook

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	gl "gitlab.com/gitlab-org/api/client-go"
)

// FuzzIntake throws arbitrary bodies and event headers at the intake. It must never panic, and
// a well-formed request — valid JSON under a header GitLab sends — must never get a 5xx, which
// would count towards GitLab disabling the hook. `.ci/run` runs it for a bounded time.
func FuzzIntake(f *testing.F) {
	// Seeds are written out here rather than read from client-go's fixtures: locating those runs
	// `go list`, which hangs inside the fuzzing workers.
	f.Add("Push Hook", []byte(`{"object_kind":"push","ref":"refs/heads/master","before":"0000000000000000000000000000000000000000","after":"da1560886d4f094c3e6c9ef40349f7d38b5d27d7","checkout_sha":"da1560886d4f094c3e6c9ef40349f7d38b5d27d7","project_id":15,"project":{"path_with_namespace":"mike/diaspora","web_url":"http://example.com/mike/diaspora"},"commits":[{"id":"da1560886d4f094c3e6c9ef40349f7d38b5d27d7","message":"fix [skip ci]"}],"total_commits_count":1,"push_options":{}}`))
	f.Add("Merge Request Hook", []byte(`{"object_kind":"merge_request","project":{"path_with_namespace":"mike/diaspora"},"object_attributes":{"iid":1,"action":"update","oldrev":"a","source_branch":"f","source_project_id":2,"target_project_id":15,"last_commit":{"id":"b","message":"m"},"source":{"web_url":"x"}}}`))
	f.Add("System Hook", []byte(`{"event_name":"push"}`))
	f.Add("Tag Push Hook", []byte(`{"object_kind":"tag_push","ref":"refs/tags/v1","after":"1","checkout_sha":null,"project":{"path_with_namespace":"mike/diaspora"}}`))
	f.Add("Push Hook", []byte(`{"push_options":{"ci":{"skip":"yes"}},"project":{"path_with_namespace":"mike/diaspora"},"ref":"refs/heads/x","checkout_sha":"a","commits":[null]}`))
	e := newHandler(&fakeAcceptor{})
	f.Fuzz(func(t *testing.T, event string, body []byte) {
		done := make(chan int, 1)
		go func() { code, _ := post(e, event, "tok", body); done <- code }()
		var code int
		select {
		case code = <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("X-Gitlab-Event %q, body %q: no answer in 5s", event, body)
		}
		if code >= http.StatusInternalServerError {
			t.Errorf("X-Gitlab-Event %q, body %q: answered %d", event, body, code)
		}
	})
}

// FuzzDecodeMatchesClient holds parse to the client's ParseHook on arbitrary bodies: whatever
// the client decodes, parse decodes the same, so the faster decoder can never turn a payload
// GitLab's own library reads into a 400.
func FuzzDecodeMatchesClient(f *testing.F) {
	f.Add(uint8(0), []byte(`{"object_kind":"push","ref":"refs/heads/master","checkout_sha":"da15","project":{"path_with_namespace":"mike/diaspora"},"commits":[{"id":"da15","message":"m","timestamp":"2011-12-12T14:27:31+02:00","added":["a"]}]}`))
	f.Add(uint8(1), []byte(`{"object_kind":"tag_push","ref":"refs/tags/v1","checkout_sha":null,"project":{"PATH_WITH_NAMESPACE":"a/b"}}`))
	f.Add(uint8(2), []byte(`{"object_attributes":{"iid":1,"action":"update","oldrev":"a","last_commit":{"id":"b","timestamp":"2012-01-03T23:36:29+02:00"},"created_at":"2013-12-03T17:23:34Z"},"labels":[{"id":1}]}`))
	types := []gl.EventType{gl.EventTypePush, gl.EventTypeTagPush, gl.EventTypeMergeRequest}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		typ := types[int(which)%len(types)]
		want, wantErr := gl.ParseHook(typ, body)
		if wantErr != nil {
			return // a body the client refuses is a 400 either way
		}
		got, err := parse(typ, body)
		if err != nil {
			t.Fatalf("%s %q: client decodes it, parse fails: %v", typ, body, err)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Fatalf("%s %q: parse differs from the client (-client +parse):\n%s", typ, body, d)
		}
	})
}
