// Package gitlabtest is a GitLab double for tests: an httptest server answering the part of
// GitLab's REST API that gantry calls — commit statuses with GitLab's transition rules and error
// bodies, repository archives and commits made from real local git repositories — the way
// docs/gitlab.md describes it, and recording every call so a test can assert on what GitLab
// would have received. Where the double and docs/gitlab.md disagree, the double is wrong.
package gitlabtest

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Server is a running GitLab double. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL to give a GitLab client; the API lives under URL + "/api/v4/".
	URL string
	// Token is a valid personal access token, owned by the administrator "gantry-bot".
	Token string

	srv *httptest.Server

	mu        sync.Mutex
	users     map[string]*user // by token
	userCount int64
	projects  []*Project
	pipelines []*pipeline
	jobs      []*job
	calls     []Call
	hooks     []*Hook
	hookCount int64
	accepted  []acceptance
	faults    []fault
	cutNext   bool

	// mergeRequests are the merge requests of every project, in the order they were opened.
	mergeRequests []*mergeRequest
	// members are the access levels of users in projects: members[projectID][userID].
	members map[int64]map[int64]int

	// oauthApp is the OAuth application, signedIn the user /oauth/authorize grants codes for, and
	// grants the codes not redeemed yet (oauth.go).
	oauthApp *oauthApp
	signedIn *user
	grants   map[string]*grant
}

// Project is a project the double serves, backed by a git repository on disk.
type Project struct {
	ID int64
	// PathWithNamespace is the full path, e.g. "group/app"; the API accepts it URL-escaped in
	// place of the id.
	PathWithNamespace string
	// Path is the last component of PathWithNamespace; GitLab names archive folders after it.
	Path string
	// RepoDir is the git repository (work tree or bare) the project's commits come from.
	RepoDir string
	// Public projects can be read without a token (MakePublic).
	Public bool
	// Private projects can be read only by their members and administrators (MakePrivate); the
	// others, GitLab's "internal" ones, by every user with a token.
	Private bool
}

type user struct {
	id       int64
	username string
	// admin users read every project, private ones included, as GitLab's administrators do.
	admin bool
	// blocked users keep their memberships, shown with state "blocked" (BlockUser).
	blocked bool
}

// New starts a GitLab double that is closed when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := Start()
	t.Cleanup(s.Close)
	return s
}

// Start starts a GitLab double outside a test, for benchmark commands; Close stops it.
func Start() *Server {
	s := &Server{Token: "glpat-test", users: map[string]*user{}}
	s.AddToken(s.Token, "gantry-bot")
	s.userNamed("gantry-bot").admin = true
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.URL = s.srv.URL
	return s
}

// Close stops the double.
func (s *Server) Close() { s.srv.Close() }

// AddToken makes tok a valid token of username, creating the user on first use. GitLab scopes
// commit statuses by the token's owner, so two users posting the same name make two jobs.
func (s *Server) AddToken(tok, username string) {
	u := s.userNamed(username)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[tok] = u
}

// userNamed returns the user with this username, making it (with no token) on first use.
func (s *Server) userNamed(username string) *user {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.users {
		if u.username == username {
			return u
		}
	}
	s.userCount++
	u := &user{id: s.userCount, username: username}
	s.users["\x00no-token:"+username] = u // unreachable as a token: headers carry no NUL
	return u
}

// AddProject registers a project backed by the git repository at repoDir. Ids start at 1001.
func (s *Server) AddProject(pathWithNamespace, repoDir string) Project {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := &Project{
		ID:                int64(1001 + len(s.projects)),
		PathWithNamespace: pathWithNamespace,
		Path:              path.Base(pathWithNamespace),
		RepoDir:           repoDir,
	}
	s.projects = append(s.projects, p)
	return *p
}

// MakePublic lets anyone read a project: its archive, commits and statuses are served without a
// token, as GitLab serves public projects. Posting statuses still needs a token.
func (s *Server) MakePublic(projectID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.projects {
		if p.ID == projectID {
			p.Public = true
		}
	}
}

// MakePrivate lets only the project's members (AddMember) and administrators read it: to anyone
// else, GitLab answers 404 for it, as for a project that does not exist (docs/gitlab.md §9.3).
func (s *Server) MakePrivate(projectID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.projects {
		if p.ID == projectID {
			p.Private = true
		}
	}
}

// project returns a copy of the project with this id or path, as the API's :id accepts either.
func (s *Server) project(ref string) *Project {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, err := strconv.ParseInt(ref, 10, 64)
	for _, p := range s.projects {
		if err == nil && p.ID == id || strings.EqualFold(p.PathWithNamespace, ref) {
			found := *p
			return &found
		}
	}
	return nil
}

// authenticate returns the owner of the request's token, accepted the ways docs/gitlab.md §6 lists,
// and whether the request carried a token at all.
func (s *Server) authenticate(r *http.Request) (*user, bool) {
	tok := r.Header.Get("Private-Token")
	if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && tok == "" {
		tok = bearer
	}
	if tok == "" {
		tok = r.URL.Query().Get("private_token")
	}
	if tok == "" {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.users[tok], true
}

// request is one API call on its way through the double.
type request struct {
	r       *http.Request
	user    *user
	project *Project
	params  map[string]string // query and body together, body winning, as Grape merges them
	tail    []string          // unescaped path segments after /projects/:id/
	call    *Call
	cut     bool // break the answer off halfway (CutNextArchive)
}

// route answers an API call. It works on the escaped path because client-go sends a project
// path as one segment with its slash escaped (group%2Fapp).
func (s *Server) route(w http.ResponseWriter, req *request) {
	if s.oauthRoute(w, req) {
		return
	}
	segs := strings.Split(strings.TrimPrefix(req.r.URL.EscapedPath(), "/api/v4/"), "/")
	if !strings.HasPrefix(req.r.URL.EscapedPath(), "/api/v4/") || len(segs) < 2 || segs[0] != "projects" {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "404 Not Found"})
		return
	}
	for i, seg := range segs {
		if u, err := url.PathUnescape(seg); err == nil {
			segs[i] = u
		}
	}
	req.tail = segs[2:]
	handler, method := s.handler(req.r.Method, req.tail)
	switch {
	case handler == nil:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "404 Not Found"})
		return
	case req.r.Method != method:
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "405 Not Allowed"})
		return
	}
	// A wrong token is refused everywhere; no token is refused for writes only, reads go on
	// anonymously and find only public projects (requireProject).
	user, sent := s.authenticate(req.r)
	if user == nil && (sent || method != http.MethodGet) {
		writeJSON(w, http.StatusUnauthorized, message("401 Unauthorized"))
		return
	}
	req.user = user
	// An unknown project is answered by the handler (requireProject), after parameter validation.
	if req.project = s.project(segs[1]); req.project != nil {
		req.call.ProjectID = req.project.ID
		if !s.canRead(user, req.project) {
			req.project = nil // a private project is not there for those who may not read it
		}
	}
	handler(w, req)
}

// handler picks the endpoint for the path after /projects/:id/ and the method it answers;
// where a path answers several methods, the request's method picks among them.
func (s *Server) handler(method string, tail []string) (func(http.ResponseWriter, *request), string) {
	switch {
	case len(tail) == 0:
		return s.showProject, http.MethodGet
	case len(tail) >= 1 && tail[0] == "hooks":
		return s.hookHandler(method, tail)
	case len(tail) == 2 && tail[0] == "statuses":
		return s.postStatus, http.MethodPost
	case len(tail) == 2 && tail[0] == "repository" &&
		(tail[1] == "archive" || strings.HasPrefix(tail[1], "archive.")):
		return s.archive, http.MethodGet
	case len(tail) == 4 && tail[0] == "repository" && tail[1] == "files" && tail[3] == "raw":
		return s.rawFile, http.MethodGet
	case len(tail) == 2 && tail[0] == "repository" && tail[1] == "merge_base":
		return s.mergeBase, http.MethodGet
	case len(tail) == 3 && tail[0] == "repository" && tail[1] == "commits":
		return s.commit, http.MethodGet
	case len(tail) == 4 && tail[0] == "repository" && tail[1] == "commits" && tail[3] == "statuses":
		return s.listStatuses, http.MethodGet
	case len(tail) == 2 && tail[0] == "merge_requests":
		return s.showMergeRequest, http.MethodGet
	case len(tail) == 3 && tail[0] == "members" && tail[1] == "all":
		return s.showMember, http.MethodGet
	}
	return nil, ""
}

// message is GitLab's usual error body, {"message": ...}.
func message(text string) map[string]any {
	return map[string]any{"message": text}
}
