package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/labstack/echo/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// deepBody is the reviewer's crash: a push whose one field opens arrays 4.5 MB deep. Before
// the nesting bound, segmentio's recursive decoder overflowed the stack, a fatal error no
// recover catches.
func deepBody() []byte {
	return append([]byte(`{"x":`), bytes.Repeat([]byte("["), 4_500_000)...)
}

// TestDeepNestingRefused posts the crash with the right token and without one; both are
// answered 4xx and this very process lives on to check it.
func TestDeepNestingRefused(t *testing.T) {
	t.Parallel()
	e := newHandler(&fakeAcceptor{})
	for _, token := range []string{"tok", ""} {
		for _, event := range []string{"Push Hook", "Merge Request Hook", "Issue Hook", "System Hook"} {
			code, ans := post(e, event, token, deepBody())
			if code < 400 || code >= 500 {
				t.Errorf("%s with token %q, 4.5 MB deep: answered %d %v, want 4xx", event, token, code, ans)
			}
		}
	}
}

// TestNestingDepth holds the bracket count of checkDepth to what a decoder sees: brackets inside
// strings do not count, a quote is escaped only by an odd run of backslashes, surplus closing
// brackets cannot pay for later openings, and an unterminated string ends the count (no decoder
// reads past it). A body nested exactly maxDepth deep passes; one level more is refused.
func TestNestingDepth(t *testing.T) {
	t.Parallel()
	open := func(n int) string { return strings.Repeat("[", n) }
	tests := []struct {
		name, body string
		want       int
	}{
		{"flat object", `{"a":1,"b":"c"}`, 1},
		{"siblings", `[[],[],{"a":1}]`, 2},
		{"surplus closings", "]]" + open(maxDepth+1), maxDepth + 1},
		{"brackets in a string", `{"a":"[[[[{{{{"}`, 1},
		{"empty string before nesting", `{"":` + open(maxDepth), maxDepth + 1},
		{"escaped quote keeps the string open", `{"a\"` + open(maxDepth+1) + `":1}`, 1},
		{"escaped backslash closes the string", `{"a\\":` + open(maxDepth), maxDepth + 1},
		{"three backslashes escape the quote", `{"a\\\"` + open(maxDepth+1) + `":1}`, 1},
		{"unterminated string", `["` + open(maxDepth+1), 1},
	}
	for _, tt := range tests {
		if got := nestingDepth([]byte(tt.body), maxDepth); got != tt.want {
			t.Errorf("%s: nestingDepth(%.40q…) = %d, want %d", tt.name, tt.body, got, tt.want)
		}
	}
	if err := checkDepth([]byte(open(maxDepth))); err != nil {
		t.Errorf("checkDepth(%d deep) = %v, want nil", maxDepth, err)
	}
	if err := checkDepth([]byte(open(maxDepth + 1))); !errors.Is(err, errTooDeep) {
		t.Errorf("checkDepth(%d deep) = %v, want errTooDeep", maxDepth+1, err)
	}
}

// watchedBody tells whether the handler read the body.
type watchedBody struct {
	r    io.Reader
	read bool
}

func (b *watchedBody) Read(p []byte) (int, error) {
	b.read = true
	return b.r.Read(p)
}

// TestTokenCheckedFirst: a token that matches no configured secret is answered 401 before a
// byte of the body is read, whatever the body claims to be.
func TestTokenCheckedFirst(t *testing.T) {
	t.Parallel()
	push := fixture(t, "webhooks/push.json")
	for _, token := range []string{"", "nope", "tok ", "to"} {
		body := &watchedBody{r: bytes.NewReader(push)}
		req := httptest.NewRequest(http.MethodPost, "/webhooks/gitlab", body)
		req.Header.Set("X-Gitlab-Event", "Push Hook")
		if token != "" {
			req.Header.Set("X-Gitlab-Token", token)
		}
		rec := httptest.NewRecorder()
		newHandler(&fakeAcceptor{}).ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized || body.read {
			t.Errorf("token %q: answered %d, body read %v; want 401 and the body unread", token, rec.Code, body.read)
		}
	}
}

// TestTokenBindsProject: a token is good only for the projects whose secret it is. A payload
// naming another configured project is answered as a wrong token; one naming a project gantry
// does not build (a group hook sharing the secret fires for every project of the group) is
// ignored with a 200, as the README promises, so GitLab does not disable that hook.
func TestTokenBindsProject(t *testing.T) {
	t.Parallel()
	push := string(fixture(t, "webhooks/push.json")) // project mike/diaspora
	e := echo.New()
	New(&fakeAcceptor{}, map[string]string{"mike/diaspora": "diaspora-secret", "g/app": "app-secret", "g/lib": "app-secret"}, nil).Register(e)
	tests := []struct {
		name, token, project string
		code                 int
	}{
		{"own secret", "diaspora-secret", "mike/diaspora", 202},
		{"own secret, other case", "diaspora-secret", "Mike/Diaspora", 202},
		{"shared secret, first project", "app-secret", "g/app", 202},
		{"shared secret, second project", "app-secret", "g/lib", 202},
		{"another project's secret", "app-secret", "mike/diaspora", 401},
		{"unconfigured project, good token", "app-secret", "nobody/else", 200},
		{"unconfigured project, no token", "", "nobody/else", 401},
		{"unconfigured project, wrong token", "guess", "nobody/else", 401},
	}
	for _, tt := range tests {
		code, ans := post(e, "Push Hook", tt.token, []byte(strings.ReplaceAll(push, "mike/diaspora", tt.project)))
		if code != tt.code {
			t.Errorf("%s: answered %d %v, want %d", tt.name, code, ans, tt.code)
		}
	}
}

// TestBodyMemoryFollowsBytes: a request that claims a 20 MiB body and sends 100 bytes costs
// about 100 bytes, not 20 MiB reserved upfront.
func TestBodyMemoryFollowsBytes(t *testing.T) {
	t.Parallel()
	e := newHandler(&fakeAcceptor{})
	req := httptest.NewRequest(http.MethodPost, "/webhooks/gitlab", strings.NewReader(`{"object_kind":"push"}`))
	req.Header.Set("X-Gitlab-Event", "Push Hook")
	req.Header.Set("X-Gitlab-Token", "tok")
	req.ContentLength = 20 << 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	e.ServeHTTP(httptest.NewRecorder(), req)
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 4<<20 {
		t.Errorf("a 20 MiB Content-Length with a short body allocated %d bytes, want well under 4 MiB", n)
	}
}

// knownIDs is a ProjectIDs that knows the ids it holds.
type knownIDs map[string]int64

func (k knownIDs) KnownProjectID(path string) (int64, bool) {
	id, ok := k[path]
	return id, ok
}

// TestProjectIDBindsTheSecret: once the configured project's GitLab id is known, a payload that
// names another id for it is refused (403) and never accepted; while unknown it is accepted
// and carries the id it named, for the engine to check when the pipeline starts.
func TestProjectIDBindsTheSecret(t *testing.T) {
	t.Parallel()
	push := string(fixture(t, "webhooks/push.json")) // mike/diaspora, project_id 15
	mr := string(fixture(t, "webhooks/merge_request.json"))
	mrProject := gjsonPath(t, mr)
	tests := []struct {
		name  string
		ids   knownIDs
		event string
		body  string
		code  int
		hook  int64 // the HookProjectID accepted, when accepted
	}{
		{"push, id known and right", knownIDs{"mike/diaspora": 15}, "Push Hook", push, 202, 15},
		{"push, id known and another", knownIDs{"mike/diaspora": 16}, "Push Hook", push, 403, 0},
		{"push, id unknown", knownIDs{}, "Push Hook", push, 202, 15},
		{"push naming another id, unknown", knownIDs{}, "Push Hook", strings.ReplaceAll(push, `"project_id": 15`, `"project_id": 99`), 202, 99},
		{"merge request, target id another", knownIDs{mrProject.path: mrProject.id + 1}, "Merge Request Hook", mr, 403, 0},
	}
	for _, tt := range tests {
		acc := &fakeAcceptor{}
		e := echo.New()
		secrets := map[string]string{"mike/diaspora": "tok", mrProject.path: "tok"}
		h := New(acc, secrets, nil, WithProjectIDs(tt.ids))
		h.Register(e)
		code, ans := post(e, tt.event, "tok", []byte(tt.body))
		if code != tt.code {
			t.Errorf("%s: answered %d %v, want %d", tt.name, code, ans, tt.code)
		}
		if code == http.StatusForbidden {
			if len(acc.got) != 0 {
				t.Errorf("%s: refused but accepted %v", tt.name, acc.got)
			}
			if n := testutil.ToFloat64(h.metrics.deliveries.WithLabelValues("project_mismatch")); n != 1 {
				t.Errorf("%s: counted %v project_mismatch, want 1", tt.name, n)
			}
		}
		if code == http.StatusAccepted && (len(acc.got) != 1 || acc.got[0].HookProjectID != tt.hook) {
			t.Errorf("%s: accepted %+v, want one trigger with HookProjectID %d", tt.name, acc.got, tt.hook)
		}
	}
}

// mrTarget is a merge request fixture's target project.
type mrTarget struct {
	path string
	id   int64
}

func gjsonPath(t *testing.T, mr string) mrTarget {
	t.Helper()
	var v struct {
		Project struct {
			ID   int64  `json:"id"`
			Path string `json:"path_with_namespace"`
		} `json:"project"`
	}
	if err := json.Unmarshal([]byte(mr), &v); err != nil || v.Project.Path == "" {
		t.Fatalf("merge request fixture: %v (%+v)", err, v)
	}
	return mrTarget{v.Project.Path, v.Project.ID}
}

// blockedBody is a body that sends nothing until released, like a client that stalls.
type blockedBody struct{ release chan struct{} }

func (b blockedBody) Read([]byte) (int, error) {
	<-b.release
	return 0, io.EOF
}

// TestConcurrentBodiesBounded: with every slot held by a body still arriving, the next delivery
// is answered 503 with a Retry-After at once (no wait configured), and once a slot is free the
// intake takes deliveries again.
func TestConcurrentBodiesBounded(t *testing.T) {
	t.Parallel()
	push := fixture(t, "webhooks/push.json")
	e := echo.New()
	h := New(&fakeAcceptor{}, map[string]string{"mike/diaspora": "tok"}, nil, WithMaxBodies(2), WithSlotWait(0))
	h.Register(e)
	stalled := blockedBody{release: make(chan struct{})}
	done := make(chan int, 2)
	for range 2 {
		go func() {
			req := httptest.NewRequest(http.MethodPost, "/webhooks/gitlab", stalled)
			req.Header.Set("X-Gitlab-Event", "Push Hook")
			req.Header.Set("X-Gitlab-Token", "tok")
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			done <- rec.Code
		}()
	}
	// The two stalled bodies take their slots in their own time; a delivery sent meanwhile
	// could take one first and get the other refused, so the third is sent once both are held.
	for deadline := time.Now().Add(10 * time.Second); len(h.slots) < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the stalled bodies hold %d slots after 10s, want 2", len(h.slots))
		}
		select {
		case code := <-done:
			// Answered before its body arrived: it never took a slot, and waiting on is pointless.
			close(stalled.release)
			t.Fatalf("a stalled delivery was answered %d before its body arrived", code)
		default:
		}
	}
	req := httptest.NewRequest(http.MethodPost, "/webhooks/gitlab", bytes.NewReader(push))
	req.Header.Set("X-Gitlab-Event", "Push Hook")
	req.Header.Set("X-Gitlab-Token", "tok")
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "overloaded") {
		t.Fatalf("third delivery with both slots held answered %d %v %s, want 503 overloaded with Retry-After", rec.Code, rec.Header(), rec.Body)
	}
	if n := testutil.ToFloat64(h.metrics.deliveries.WithLabelValues("overloaded")); n != 1 {
		t.Errorf("counted %v overloaded deliveries, want 1", n)
	}
	close(stalled.release)
	<-done
	<-done
	if code, ans := post(e, "Push Hook", "tok", push); code != http.StatusAccepted {
		t.Errorf("delivery after the slots were freed answered %d %v, want 202", code, ans)
	}
}

// TestSlotWait: by default a delivery that finds every slot taken waits for one rather than
// being answered 503 at once, so a burst is absorbed; WithMaxBodies(0) keeps the default number
// of slots instead of leaving none.
func TestSlotWait(t *testing.T) {
	t.Parallel()
	push := fixture(t, "webhooks/push.json")
	send := func(e *echo.Echo, body io.Reader) int {
		req := httptest.NewRequest(http.MethodPost, "/webhooks/gitlab", body)
		req.Header.Set("X-Gitlab-Event", "Push Hook")
		req.Header.Set("X-Gitlab-Token", "tok")
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		return rec.Code
	}
	e := echo.New()
	h := New(&fakeAcceptor{}, map[string]string{"mike/diaspora": "tok"}, nil, WithMaxBodies(1))
	h.Register(e)
	stalled := blockedBody{release: make(chan struct{})}
	first := make(chan int, 1)
	go func() { first <- send(e, stalled) }()
	for deadline := time.Now().Add(10 * time.Second); len(h.slots) < 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			close(stalled.release)
			t.Fatal("the stalled body took no slot in 10s")
		}
	}
	second := make(chan int, 1)
	go func() { second <- send(e, bytes.NewReader(push)) }()
	select {
	case code := <-second:
		close(stalled.release)
		t.Fatalf("with the only slot taken, a delivery was answered %d at once; want it to wait", code)
	case <-time.After(100 * time.Millisecond):
	}
	close(stalled.release)
	<-first
	if code := <-second; code != http.StatusAccepted {
		t.Errorf("a delivery that waited for the slot answered %d, want 202", code)
	}

	e = echo.New()
	h = New(&fakeAcceptor{}, map[string]string{"mike/diaspora": "tok"}, nil, WithMaxBodies(0), WithSlotWait(0))
	h.Register(e)
	if code := send(e, bytes.NewReader(push)); code != http.StatusAccepted || cap(h.slots) != DefaultMaxBodies {
		t.Errorf("WithMaxBodies(0): answered %d with %d slots, want 202 and the default %d", code, cap(h.slots), DefaultMaxBodies)
	}
}

// TestDeliveryID: the trigger carries the delivery's Idempotency-Key, which GitLab keeps across
// resends, else its X-Gitlab-Event-UUID (docs/gitlab.md §1.1), for the engine to drop duplicates.
func TestDeliveryID(t *testing.T) {
	t.Parallel()
	push := fixture(t, "webhooks/push.json")
	tests := []struct {
		name    string
		headers []string
		want    string
	}{
		{"both", []string{"Idempotency-Key", "key-1", "X-Gitlab-Event-UUID", "uuid-1"}, "key-1"},
		{"uuid only", []string{"X-Gitlab-Event-UUID", "uuid-1"}, "uuid-1"},
		{"key only", []string{"Idempotency-Key", "key-1"}, "key-1"},
		{"none", nil, ""},
	}
	for _, tt := range tests {
		acc := &fakeAcceptor{}
		if code, ans := post(newHandler(acc), "Push Hook", "tok", push, tt.headers...); code != http.StatusAccepted || len(acc.got) != 1 {
			t.Errorf("%s: answered %d %v with %d triggers, want 202 and one", tt.name, code, ans, len(acc.got))
			continue
		}
		if got := acc.got[0].DeliveryID; got != tt.want {
			t.Errorf("%s: DeliveryID = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestBodyBuffers holds the intake's memory policy: the first buffer is the announced length
// (up to firstRead) plus room for the read that sees EOF, or firstRead when no length is
// announced, and a buffer up to keptBuffer is reused by the next delivery while a bigger one
// goes back to the GC.
func TestBodyBuffers(t *testing.T) {
	t.Parallel()
	reads := []struct {
		name   string
		length int64 // Content-Length; -1 chunked
		body   int
		least  int
		most   int
	}{
		{"small body", 100, 100, 100, 100 + 2*bytes.MinRead},
		{"empty body", 0, 0, 0, 2 * bytes.MinRead},
		{"chunked body", -1, 100, firstRead, 2 * firstRead},
		{"announced beyond firstRead", 1 << 20, 100, firstRead, 2 * firstRead},
	}
	for _, tt := range reads {
		req := httptest.NewRequest(http.MethodPost, "/webhooks/gitlab", bytes.NewReader(make([]byte, tt.body)))
		req.ContentLength = tt.length
		var buf bytes.Buffer
		got, err := readBody(&buf, httptest.NewRecorder(), req, DefaultMaxBody)
		if err != nil || len(got) != tt.body {
			t.Errorf("%s: readBody = %d bytes, %v; want %d", tt.name, len(got), err, tt.body)
		}
		if c := buf.Cap(); c < tt.least || c > tt.most {
			t.Errorf("%s: buffer of %d bytes, want %d to %d", tt.name, c, tt.least, tt.most)
		}
	}
	// sync.Pool may drop what it is given (at a GC, or at random under the race detector), so a
	// kept buffer must come back at least once in many tries, and a dropped one never.
	for _, tt := range []struct {
		capacity int
		kept     bool
	}{{firstRead, true}, {keptBuffer, true}, {keptBuffer + 1, false}} {
		var p bodyPool
		back := false
		for range 20 {
			buf := bytes.NewBuffer(make([]byte, 0, tt.capacity))
			p.put(buf)
			back = back || p.get() == buf
		}
		if back != tt.kept {
			t.Errorf("buffer of %d bytes came back from the pool: %v, want %v", tt.capacity, back, tt.kept)
		}
	}
}

// FuzzHandler drives the whole handler with raw bytes in the body and in every header it reads.
// It must never panic or hang, never answer 5xx other than 503, and never accept (2xx with a
// pipeline) a delivery whose token is not the configured secret.
func FuzzHandler(f *testing.F) {
	push := []byte(`{"object_kind":"push","ref":"refs/heads/master","after":"da1560886d4f094c3e6c9ef40349f7d38b5d27d7","checkout_sha":"da1560886d4f094c3e6c9ef40349f7d38b5d27d7","project_id":15,"project":{"id":15,"path_with_namespace":"mike/diaspora"},"commits":[]}`)
	f.Add("Push Hook", "tok", "key-1", int64(-1), push)
	f.Add("Push Hook", "", "", int64(len(push)), push)
	f.Add("Merge Request Hook", "tok", "", int64(3), []byte(`{"object_kind":"merge_request","project":{"id":15,"path_with_namespace":"mike/diaspora"},"object_attributes":{"iid":1,"action":"open","source_project_id":2,"target_project_id":15,"last_commit":{"id":"b"}}}`))
	f.Add("System Hook", "tok\n", "\x00", int64(0), []byte(`{"x":[[[[[[`))
	f.Add("Tag Push Hook", "TOK", "k", int64(1<<40), []byte(`{"object_kind":"tag_push"`))
	e := echo.New()
	acc := &lockedAcceptor{}
	New(acc, map[string]string{"mike/diaspora": "tok"}, nil, WithProjectIDs(knownIDs{"mike/diaspora": 15}), WithSlotWait(0)).Register(e)
	f.Fuzz(func(t *testing.T, event, token, key string, length int64, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/webhooks/gitlab", bytes.NewReader(body))
		// Raw header values, as a client could put them on the wire.
		req.Header["X-Gitlab-Event"] = []string{event}
		req.Header["X-Gitlab-Token"] = []string{token}
		req.Header["Idempotency-Key"] = []string{key}
		req.ContentLength = length
		rec := httptest.NewRecorder()
		done := make(chan struct{})
		go func() { defer close(done); e.ServeHTTP(rec, req) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("event %q token %q length %d body %q: no answer in 5s", event, token, length, body)
		}
		if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
			t.Errorf("event %q token %q body %q: answered %d", event, token, body, rec.Code)
		}
		if token != "tok" && rec.Code < 300 && strings.Contains(rec.Body.String(), "pipeline_id") {
			t.Errorf("event %q token %q body %q: answered %d %s without the secret", event, token, body, rec.Code, rec.Body)
		}
	})
}

// lockedAcceptor accepts everything; fuzzing runs the handler from several goroutines.
type lockedAcceptor struct{ n atomic.Int64 }

func (a *lockedAcceptor) Accept(context.Context, orchestrator.Trigger) (orchestrator.Accepted, error) {
	return orchestrator.Accepted{Pipeline: &orchestrator.Pipeline{ID: a.n.Add(1)}}, nil
}
