package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// TestEngineGuardAtStart is the planning check with GitLab's facts, in the start task: a
// release the guard refuses is skipped from created with the reason, and nothing is posted for
// it; build and tests run all the same.
func TestEngineGuardAtStart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		tr     Trigger
		mark   string // the branch's last release
		reason string
	}{
		{"API trigger of an older commit of master", Trigger{Kind: TriggerAPI, Ref: "master", SHA: "0123456789"}, "9999999999", "outdated: master already released 99999999"},
		{"API trigger of a commit never on master", Trigger{Kind: TriggerAPI, Ref: "master", SHA: "5tray00000"}, "", "not released: 5tray000 is not on master"},
		{"schedule of an older commit", Trigger{Kind: TriggerSchedule, Ref: "master", SHA: "0123456789"}, "9999999999", "outdated"},
		{"tag pointing at another commit", Trigger{Kind: TriggerTag, Ref: "v1.2.3", SHA: "0123456789"}, "", "not released: tag v1.2.3 does not point at 01234567"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setupTagEngine(t)
			if tt.mark != "" {
				b.store.MarkReleased(context.Background(), "g/app", "master", tt.mark)
			}
			b.exec.ReleaseFunc = func(ReleaseRequest) (ReleaseResult, error) {
				t.Error("Release called for a release the guard refused")
				return ReleaseResult{}, nil
			}
			tr := tt.tr
			tr.Project, tr.ProjectID = "g/app", 7
			p := b.pushTrigger(t, tr)
			b.drain(t, 0)
			got, _ := b.store.Pipeline(context.Background(), p.ID)
			if j, _ := got.Job(JobRelease); j.State != StateSkipped || !strings.HasPrefix(j.Description, tt.reason) {
				t.Errorf("release = %s %q, want skipped %q…", j.State, j.Description, tt.reason)
			}
			if got.State() != StateSuccess {
				t.Errorf("pipeline = %s, want success: the commit is built and tested", got.State())
			}
			if posts := b.statuses.posts["gantry/release"]; posts != nil {
				t.Errorf("release statuses = %v, want none", posts)
			}
		})
	}
}

// TestEngineTagRelease: a tag that points at its commit in GitLab releases under its own
// name, not latest, and leaves the branch's release mark alone.
func TestEngineTagRelease(t *testing.T) {
	t.Parallel()
	b := setupTagEngine(t)
	var pushed []string
	b.exec.ReleaseFunc = func(r ReleaseRequest) (ReleaseResult, error) {
		pushed = r.Tags
		return ReleaseResult{Digest: "sha256:dig"}, nil
	}
	b.pushTrigger(t, Trigger{Project: "g/app", ProjectID: 7, Kind: TriggerTag, Ref: "v1.2.3", SHA: "commit-of-v1.2.3"})
	b.drain(t, 0)
	if !cmp.Equal(pushed, []string{"v1.2.3"}) {
		t.Errorf("released tags = %v, want [v1.2.3]", pushed)
	}
	if r, _ := b.store.Released(context.Background(), "g/app", "master"); r != "" {
		t.Errorf("Released(master) = %q after a tag release, want none", r)
	}
}

// setupTagEngine is setupEngine with a project that releases v-tags under their own name.
func setupTagEngine(t *testing.T) engineBundle {
	t.Helper()
	b := setupEngine(t)
	proj, _ := b.engine.Project("g/app")
	proj.Release.TagPushes, proj.Release.TagPattern, proj.Release.TagTags = true, regexp.MustCompile(`^v[0-9]`), []string{"{{.Tag}}"}
	b.engine.projects["g/app"] = proj
	return b
}

// TestEngineResumedReleaseAsksTheGuardAgain: the worker pushing a release is lost, and while
// its lock lapsed a newer commit of the branch was released. The new attempt of the release
// job must ask the guard again instead of pushing the older image over the newer release; the
// job shows running in GitLab, where skipped cannot follow running, so it ends canceled with
// the guard's reason.
func TestEngineResumedReleaseAsksTheGuardAgain(t *testing.T) {
	t.Parallel()
	b := setupEngine(t)
	b.push(t, "master")
	pushes := 0
	b.exec.ReleaseFunc = func(ReleaseRequest) (ReleaseResult, error) {
		pushes++
		if pushes == 1 {
			b.store.MarkReleased(context.Background(), "g/app", "master", "9999999999")
			return ReleaseResult{}, errors.New("worker lost")
		}
		t.Error("the resumed release pushed over a newer release")
		return ReleaseResult{Digest: "sha256:dig"}, nil
	}
	b.drain(t, 1)
	if got := b.statuses.posts["gantry/release"]; !cmp.Equal(got, []string{"pending", "running", "canceled"}) {
		t.Errorf("release statuses = %v, want pending, running, canceled", got)
	}
	if d := b.statuses.descs["gantry/release"]; !strings.HasPrefix(d, "outdated") {
		t.Errorf("release description = %q, want outdated…", d)
	}
}

// TestEngineLostLockStopsThePush: a release lock lost before the push (its renewal failed) stops
// the push from starting; the retry resumes under a new lock, asks the guard again and pushes.
func TestEngineLostLockStopsThePush(t *testing.T) {
	t.Parallel()
	b := setupEngine(t)
	b.store.lostLocks = 1
	pushes := 0
	b.exec.ReleaseFunc = func(ReleaseRequest) (ReleaseResult, error) {
		pushes++
		return ReleaseResult{Digest: "sha256:dig"}, nil
	}
	p := b.push(t, "master")
	b.drain(t, 1)
	if pushes != 1 {
		t.Errorf("pushes = %d, want 1: none under the lost lock, one after", pushes)
	}
	if got := b.statuses.posts["gantry/release"]; !cmp.Equal(got, []string{"pending", "running", "success"}) {
		t.Errorf("release statuses = %v, want pending, running, success", got)
	}
	if log := b.store.logs[fmt.Sprintf("%d/release/1", p.ID)]; !strings.Contains(log, "lock lost") {
		t.Errorf("release log = %q, want the lost lock told", log)
	}
}

// TestEngineReleaseAroundTheLastRelease is the boundary of check 4 as the engine gathers the
// facts: the very commit the branch last released releases again (a retry or a schedule of the
// head), and so does a descendant of it, while an ancestor is outdated. In fakeSource's history
// a commit descends from those that sort before it.
func TestEngineReleaseAroundTheLastRelease(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, mark string
		released   bool
	}{
		{"nothing released yet", "", true},
		{"the released commit itself", "0123456789", true},
		{"a descendant of the released commit", "0123456788", true},
		{"an ancestor of the released commit", "012345678a", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupEngine(t)
			ctx := context.Background()
			if tt.mark != "" {
				b.store.MarkReleased(ctx, "g/app", "master", tt.mark)
			}
			pushes := 0
			b.exec.ReleaseFunc = func(ReleaseRequest) (ReleaseResult, error) {
				pushes++
				return ReleaseResult{Digest: "sha256:dig"}, nil
			}
			p := b.pushTrigger(t, Trigger{Project: "g/app", ProjectID: 7, Kind: TriggerAPI, Ref: "master", SHA: "0123456789"})
			b.drain(t, 0)
			got, _ := b.store.Pipeline(ctx, p.ID)
			j, _ := got.Job(JobRelease)
			want, wantPushes, wantMark := StateSuccess, 1, p.Trigger.SHA
			if !tt.released {
				want, wantPushes, wantMark = StateSkipped, 0, tt.mark
			}
			if j.State != want || pushes != wantPushes {
				t.Errorf("release = %s %q after %d pushes, want %s after %d", j.State, j.Description, pushes, want, wantPushes)
			}
			if !tt.released && !strings.HasPrefix(j.Description, "outdated") {
				t.Errorf("release description = %q, want outdated…", j.Description)
			}
			if r, _ := b.store.Released(ctx, "g/app", "master"); r != wantMark {
				t.Errorf("Released(master) = %q, want %q", r, wantMark)
			}
		})
	}
}

// lockEnds is a memStore whose release locks have already ended, for cause.
type lockEnds struct {
	*memStore
	cause error
}

func (s lockEnds) LockRelease(ctx context.Context, project, ref string) (context.Context, func(), error) {
	held, end := context.WithCancelCause(ctx)
	end(s.cause)
	return held, func() {}, nil
}

// TestEngineLockEndedSaysWhy: a release lock that ended before the push stops it, and the job
// says why the lock ended (here Redis not answering), not only that it did.
func TestEngineLockEndedSaysWhy(t *testing.T) {
	t.Parallel()
	b := setupEngine(t)
	b.engine.store = lockEnds{memStore: b.store, cause: errors.New("redis: i/o timeout")}
	b.exec.ReleaseFunc = func(ReleaseRequest) (ReleaseResult, error) {
		t.Error("pushed without the release lock")
		return ReleaseResult{}, nil
	}
	p := b.push(t, "master")
	b.drain(t, 0)
	got, _ := b.store.Pipeline(context.Background(), p.ID)
	if j, _ := got.Job(JobRelease); j.State != StateFailed || j.Description != "infrastructure: release lock of master: redis: i/o timeout" {
		t.Errorf("release = %s %q, want failed, the lock's end told", j.State, j.Description)
	}
}

// TestReleaseDescription: the release job's status names the tags it pushed and the digest,
// within GitLab's 255 characters (docs/gitlab.md §3.4), counting the tags that do not fit.
func TestReleaseDescription(t *testing.T) {
	t.Parallel()
	const digest = "sha256:0123456789abcdef0123456789abcdef"
	// The longest second tag after "latest" that fits: "pushed latest, " and " (sha256:0123456789ab)".
	const lastTagFits = MaxDescription - len("pushed latest, ") - len(" (sha256:0123456789ab)")
	many := make([]string, 40)
	for i := range many {
		many[i] = fmt.Sprintf("registry.example.com:5000/group/app:release-candidate-%02d", i)
	}
	for _, tt := range []struct {
		name   string
		pushed []string
		want   string
	}{
		{"two", []string{"registry.example.com:5000/group/app:latest", "registry.example.com:5000/group/app:1a2b3c4"},
			"pushed latest, 1a2b3c4 (sha256:0123456789ab)"},
		{"many", many, "pushed " + strings.Join(tagNames(many[:9]), ", ") + " and 31 more (sha256:0123456789ab)"},
		{"one too long", []string{"r/app:" + strings.Repeat("x", 300)}, "pushed 1 tags (sha256:0123456789ab)"},
		// The last tag needs no room for a count after it: it is named when it fits exactly.
		{"last tag at the limit", []string{"r/app:latest", "r/app:" + strings.Repeat("v", lastTagFits)},
			"pushed latest, " + strings.Repeat("v", lastTagFits) + " (sha256:0123456789ab)"},
		{"last tag one past it", []string{"r/app:latest", "r/app:" + strings.Repeat("v", lastTagFits+1)},
			"pushed latest and 1 more (sha256:0123456789ab)"},
	} {
		got := releaseDescription(tt.pushed, digest)
		if got != tt.want || utf8.RuneCountInString(got) > MaxDescription {
			t.Errorf("%s: releaseDescription = %q (%d characters), want %q", tt.name, got, utf8.RuneCountInString(got), tt.want)
		}
	}

	// And the engine posts it: the release job's success in GitLab names its tag.
	b := setupEngine(t)
	p := b.push(t, "master")
	b.drain(t, 0)
	got, _ := b.store.Pipeline(context.Background(), p.ID)
	if j, _ := got.Job(JobRelease); j.State != StateSuccess || j.Description != "pushed latest (sha256:dig)" {
		t.Errorf("release job = %s %q, want success \"pushed latest (sha256:dig)\"", j.State, j.Description)
	}
}

func tagNames(refs []string) []string {
	var out []string
	for _, r := range refs {
		out = append(out, r[strings.LastIndex(r, ":")+1:])
	}
	return out
}
