package gitlabtest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Hook is a project webhook as the double stores it (docs/gitlab.md §4); param tags name the API
// parameters. Unlike the API, it shows the Token GitLab would send in X-Gitlab-Token.
type Hook struct {
	ID, ProjectID int64
	URL           string `param:"url"`
	Name          string `param:"name"`
	Description   string `param:"description"`
	// Token is never returned by the API; a PUT that changes URL without sending one empties it.
	Token string `param:"token"`
	// The event switches: a hook created through the API has push events on, the rest off.
	PushEvents                bool   `param:"push_events"`
	TagPushEvents             bool   `param:"tag_push_events"`
	MergeRequestsEvents       bool   `param:"merge_requests_events"`
	IssuesEvents              bool   `param:"issues_events"`
	ConfidentialIssuesEvents  bool   `param:"confidential_issues_events"`
	NoteEvents                bool   `param:"note_events"`
	ConfidentialNoteEvents    bool   `param:"confidential_note_events"`
	JobEvents                 bool   `param:"job_events"`
	PipelineEvents            bool   `param:"pipeline_events"`
	WikiPageEvents            bool   `param:"wiki_page_events"`
	DeploymentEvents          bool   `param:"deployment_events"`
	ReleasesEvents            bool   `param:"releases_events"`
	FeatureFlagEvents         bool   `param:"feature_flag_events"`
	EmojiEvents               bool   `param:"emoji_events"`
	ResourceAccessTokenEvents bool   `param:"resource_access_token_events"`
	EnableSSLVerification     bool   `param:"enable_ssl_verification"`
	PushEventsBranchFilter    string `param:"push_events_branch_filter"`
	// BranchFilterStrategy is wildcard (the default), regex or all_branches.
	BranchFilterStrategy string `param:"branch_filter_strategy"`
	// CustomHeaders maps header names to values; the API shows the names only.
	CustomHeaders map[string]string
	// AlertStatus is executable, temporarily_disabled or disabled: GitLab's auto-disabling
	// (docs/gitlab.md §1.4), which tests drive with SetHookAlert.
	AlertStatus   string
	DisabledUntil *time.Time
	CreatedAt     time.Time
}

// AddHook stores h on a project as it is, as if made before the test, and returns it with its id.
// Its zero values are not GitLab's defaults (push events stay off); only an empty AlertStatus,
// BranchFilterStrategy or CreatedAt is filled in. Ids start at 1. It panics on an unknown project.
func (s *Server) AddHook(projectID int64, h Hook) Hook {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.ContainsFunc(s.projects, func(p *Project) bool { return p.ID == projectID }) {
		panic(fmt.Sprintf("gitlabtest: AddHook on unknown project %d", projectID))
	}
	h.ProjectID, h.CustomHeaders = projectID, maps.Clone(h.CustomHeaders)
	h.AlertStatus = cmp.Or(h.AlertStatus, "executable")
	h.BranchFilterStrategy = cmp.Or(h.BranchFilterStrategy, "wildcard")
	h.CreatedAt = cmp.Or(h.CreatedAt, time.Now())
	return s.storeHook(&h)
}

// Hooks returns a project's hooks in id order, tokens included.
func (s *Server) Hooks(projectID int64) []Hook {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Hook
	for _, h := range s.projectHooks(projectID) {
		out = append(out, *h)
		out[len(out)-1].CustomHeaders = maps.Clone(h.CustomHeaders)
	}
	return out
}

// SetHookAlert makes GitLab report a hook as auto-disabled, or executable again, as failed or
// successful deliveries would (docs/gitlab.md §1.4). A temporarily_disabled hook reads as executable
// once disabledUntil has passed, as in GitLab. It panics on an unknown hook or status.
func (s *Server) SetHookAlert(projectID, hookID int64, status string, disabledUntil *time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.findHook(projectID, hookID)
	if h == nil || !slices.Contains([]string{"executable", "temporarily_disabled", "disabled"}, status) {
		panic(fmt.Sprintf("gitlabtest: SetHookAlert(%d, %d, %q): no such hook or status", projectID, hookID, status))
	}
	h.AlertStatus, h.DisabledUntil = status, disabledUntil
}

// hookHandler routes /projects/:id/hooks[/:hook_id]: it returns the request's method where the
// path answers it, else GET, so that route answers 405.
func (s *Server) hookHandler(method string, tail []string) (func(http.ResponseWriter, *request), string) {
	if len(tail) == 4 && tail[2] == "test" {
		return s.testHook, http.MethodPost
	}
	allowed := map[int][]string{1: {"GET", "POST"}, 2: {"GET", "PUT", "DELETE"}}[len(tail)]
	switch {
	case allowed == nil:
		return nil, ""
	case slices.Contains(allowed, method):
		return s.hooksAPI, method
	}
	return s.hooksAPI, http.MethodGet
}

// hooksAPI answers the project hooks API in GitLab's order: the user (401, even for a public
// project), the project (404), the parameters (400), the hook (404), the model's validation
// (422). The Maintainer check (403) is not modelled: any user of the double manages hooks.
func (s *Server) hooksAPI(w http.ResponseWriter, req *request) {
	if req.user == nil {
		writeJSON(w, http.StatusUnauthorized, message("401 Unauthorized"))
		return
	}
	if !requireProject(w, req) {
		return
	}
	method, now := req.r.Method, time.Now()
	id, err := strconv.ParseInt(strings.Join(req.tail[1:], ""), 10, 64) // the list's "" is no id
	if len(req.tail) == 2 && err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "hook_id is invalid"})
		return
	}
	if method == http.MethodPost || method == http.MethodPut {
		// On a scratch hook: the parameters are checked before the hook is looked up.
		if problem := setHookParams(&Hook{}, req.params); problem != "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": problem})
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.findHook(req.project.ID, id)
	switch {
	case method == http.MethodGet && len(req.tail) == 1:
		// 20 a page unless per_page says otherwise, in id order, with X-* and Link headers.
		mine := s.projectHooks(req.project.ID)
		page, perPage := paginate(w, req.params, len(mine))
		setLink(w, s.URL, req.r.URL, page, perPage, max((len(mine)+perPage-1)/perPage, 1))
		out := []map[string]any{}
		for _, h := range mine[min(len(mine), (page-1)*perPage):min(len(mine), page*perPage)] {
			out = append(out, h.entity(now))
		}
		writeJSON(w, http.StatusOK, out)
	case method == http.MethodPost: // nothing stops a second hook with the same URL
		h = &Hook{PushEvents: true, EnableSSLVerification: true, BranchFilterStrategy: "wildcard", AlertStatus: "executable"}
		setHookParams(h, req.params)
		if validHook(w, h) {
			h.ProjectID, h.CreatedAt = req.project.ID, now
			s.storeHook(h)
			writeJSON(w, http.StatusCreated, h.entity(now))
		}
	case h == nil:
		writeJSON(w, http.StatusNotFound, message("404 Not found"))
	case method == http.MethodGet:
		writeJSON(w, http.StatusOK, h.entity(now))
	case method == http.MethodDelete:
		s.hooks = slices.DeleteFunc(s.hooks, func(o *Hook) bool { return o == h })
		w.WriteHeader(http.StatusNoContent)
	default:
		next := *h
		next.CustomHeaders = maps.Clone(h.CustomHeaders)
		if req.params["url"] != h.URL {
			// WebHooks::Hook#reset_token and #reset_custom_headers: secrets meant for one URL
			// do not go to another, unless the request sets them again.
			next.Token, next.CustomHeaders = "", nil
		}
		setHookParams(&next, req.params)
		if validHook(w, &next) {
			*h = next
			writeJSON(w, http.StatusOK, h.entity(now))
		}
	}
}

// setHookParams sets a request's hook parameters on h, coerced as Grape does, and returns the
// 400 message for the first one missing or that it cannot coerce. POST and PUT both require
// url; an empty one is left to validHook.
func setHookParams(h *Hook, p map[string]string) (problem string) {
	if _, ok := p["url"]; !ok {
		return "url is missing"
	}
	if v, ok := p["branch_filter_strategy"]; ok && v != "wildcard" && v != "regex" && v != "all_branches" {
		return "branch_filter_strategy does not have a valid value"
	}
	eachParam(h, func(name string, field reflect.Value) {
		v, ok := p[name]
		switch {
		case !ok:
		case field.Kind() == reflect.String:
			field.SetString(v)
		default:
			// ParseBool takes true/false, t/f and 1/0; Grape also takes yes/no and on/off.
			on, err := strconv.ParseBool(v)
			if err != nil && problem == "" {
				problem = name + " is invalid"
			}
			field.SetBool(on)
		}
	})
	if v, ok := p["custom_headers"]; ok && problem == "" {
		var headers []struct{ Key, Value string }
		if json.Unmarshal([]byte(v), &headers) != nil {
			return "custom_headers is invalid"
		}
		h.CustomHeaders = map[string]string{}
		for _, kv := range headers {
			h.CustomHeaders[kv.Key] = kv.Value
		}
	}
	if h.BranchFilterStrategy == "all_branches" {
		h.PushEventsBranchFilter = "" // WebHooks::Hook#set_branch_filter_nil
	}
	return problem
}

// eachParam calls fn with the API name and the field of every parameter of h, in field order.
func eachParam(h *Hook, fn func(name string, field reflect.Value)) {
	v := reflect.ValueOf(h).Elem()
	for i := range v.NumField() {
		if name := v.Type().Field(i).Tag.Get("param"); name != "" {
			fn(name, v.Field(i))
		}
	}
}

// validHook is the model validation of a hook's URL, answered as lib/api/project_hooks.rb does.
// Local addresses pass, as with allow_local_requests_from_web_hooks, for test receivers.
func validHook(w http.ResponseWriter, h *Hook) bool {
	if u, err := url.Parse(h.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": "Invalid url given"})
		return false
	}
	return true
}

// storeHook gives h the next id and keeps it. The caller holds s.mu.
func (s *Server) storeHook(h *Hook) Hook {
	s.hookCount++
	h.ID = s.hookCount
	s.hooks = append(s.hooks, h)
	return *h
}

// projectHooks returns a project's hooks in id order. The caller holds s.mu.
func (s *Server) projectHooks(projectID int64) []*Hook {
	return slices.DeleteFunc(slices.Clone(s.hooks), func(h *Hook) bool { return h.ProjectID != projectID })
}

// findHook returns a project's hook by id, nil for another project's. The caller holds s.mu.
func (s *Server) findHook(projectID, id int64) *Hook {
	for _, h := range s.hooks {
		if h.ID == id && h.ProjectID == projectID {
			return h
		}
	}
	return nil
}

// entity is API::Entities::ProjectHook at time now: no token, custom header names only.
func (h *Hook) entity(now time.Time) map[string]any {
	status := h.AlertStatus
	if status == "temporarily_disabled" && h.DisabledUntil != nil && !h.DisabledUntil.After(now) {
		status = "executable" // the backoff is over: GitLab delivers again
	}
	headers := []map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(h.CustomHeaders)) {
		headers = append(headers, map[string]string{"key": k})
	}
	m := map[string]any{
		"id": h.ID, "project_id": h.ProjectID, "created_at": stamp(&h.CreatedAt), "alert_status": status,
		"disabled_until": stamp(h.DisabledUntil), "url_variables": []any{}, "custom_headers": headers,
	}
	eachParam(h, func(name string, field reflect.Value) { m[name] = field.Interface() })
	delete(m, "token")
	if h.PushEventsBranchFilter == "" {
		m["push_events_branch_filter"] = nil // a column never set
	}
	return m
}

// setLink sets GitLab's Link header for offset pagination: prev and next where they exist,
// first and last always, each the request's URL with page and per_page set.
func setLink(w http.ResponseWriter, base string, u *url.URL, page, perPage, pages int) {
	var links []string
	for _, l := range []struct {
		rel  string
		page int
	}{{"prev", page - 1}, {"next", page + 1}, {"first", 1}, {"last", pages}} {
		if l.page >= 1 && l.page <= pages {
			q := u.Query()
			q.Set("page", strconv.Itoa(l.page))
			q.Set("per_page", strconv.Itoa(perPage))
			links = append(links, fmt.Sprintf(`<%s%s?%s>; rel="%s"`, base, u.EscapedPath(), q.Encode(), l.rel))
		}
	}
	w.Header().Set("Link", strings.Join(links, ", "))
}
