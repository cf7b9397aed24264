package gitlabtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Call is one API call the double received and the answer it gave.
type Call struct {
	Method string
	// Path is the request path as sent, still escaped: /api/v4/projects/group%2Fapp/statuses/<sha>.
	Path  string
	Query url.Values
	// Body holds the body's parameters (JSON or form), every value as text: "pipeline_id": "501".
	Body map[string]string
	// ProjectID is the project the call was routed to, 0 when none.
	ProjectID int64
	// User is the token owner's username, "" when the call was not authenticated.
	User   string
	Status int
	// Injected is true when the answer came from FailNext or FailNextAfter instead of GitLab's
	// logic; after FailNextAfter the call was still carried out.
	Injected bool
	Time     time.Time
	// Answer is the body the client was sent when it was JSON, cut at maxAnswer bytes, so a test
	// can show what GitLab said (a status's pipeline_id, say) when a later call goes wrong.
	Answer string
}

// maxAnswer bounds Call.Answer: a status or an error fits, a long listing is cut.
const maxAnswer = 4096

// acceptance is a commit status state that GitLab accepted.
type acceptance struct {
	project   int64
	sha, name string
	state     string
}

// fault is an answer forced on one call.
type fault struct {
	code int
	// after means the call is carried out first, as when a proxy loses GitLab's answer.
	after bool
}

// FailNext makes the next n API calls answer code without being carried out. 429 comes with
// GitLab's rate-limit headers and "Retry later" text, 502 and 504 with a proxy's HTML page, 409
// with the commit status lock message, any other code with {"message":"<code> <text>"}.
func (s *Server) FailNext(n, code int) { s.addFaults(n, fault{code: code}) }

// FailNextAfter makes the next n API calls be carried out and then answer code, as when GitLab
// did the work but a proxy timed out on the answer: a client that retries replays the call.
func (s *Server) FailNextAfter(n, code int) { s.addFaults(n, fault{code: code, after: true}) }

func (s *Server) addFaults(n int, f fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, f)
	}
}

// CutNextArchive makes the next archive answer break off halfway: the headers promise the whole
// archive, half of it is sent, then the connection is dropped.
func (s *Server) CutNextArchive() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cutNext = true
}

// Calls returns every API call received so far, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// ClientClosedRequest is the status recorded for a call whose client went away before its answer
// was made, nginx's 499 as GitLab's own logs show it. No client reads it.
const ClientClosedRequest = 499

// Rejected returns the calls GitLab itself answered with a 4xx (injected faults and calls whose
// client went away excluded), so a test can assert that a client sent nothing GitLab refuses. A raw file read answered 404 is
// not one: that is how GitLab says the commit has no such file (docs/gitlab.md §5.3), and
// gantry asks for a pipeline file that most commits do not have.
func (s *Server) Rejected() []Call {
	var out []Call
	for _, c := range s.Calls() {
		noFile := c.Status == http.StatusNotFound && c.Method == http.MethodGet &&
			strings.Contains(c.Path, "/repository/files/") && strings.HasSuffix(c.Path, "/raw")
		if c.Status >= 400 && c.Status < ClientClosedRequest && !c.Injected && !noFile {
			out = append(out, c)
		}
	}
	return out
}

// StatusHistory returns, per status name, the states GitLab accepted for a commit, in order.
// sha is the full commit SHA.
func (s *Server) StatusHistory(projectID int64, sha string) map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]string{}
	for _, a := range s.accepted {
		if a.project == projectID && a.sha == sha {
			out[a.name] = append(out[a.name], a.state)
		}
	}
	return out
}

// serveHTTP answers into a recorder first, so that a call can be recorded with its answer before
// the client sees it, and an injected fault can replace the answer after the work was done.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	call := &Call{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.Query(), Time: time.Now()}
	body, bodyErr := readBody(r)
	call.Body = body

	s.mu.Lock()
	var f fault
	if len(s.faults) > 0 {
		f, s.faults = s.faults[0], s.faults[1:]
		call.Injected = true
	}
	s.mu.Unlock()

	rec := httptest.NewRecorder()
	req := &request{r: r, params: maps.Clone(body), call: call}
	for k, v := range r.URL.Query() {
		if _, ok := req.params[k]; !ok {
			req.params[k] = v[0]
		}
	}
	switch {
	case call.Injected && !f.after:
	case bodyErr != nil:
		writeJSON(rec, http.StatusBadRequest, map[string]string{"error": bodyErr.Error()})
	default:
		s.route(rec, req)
	}
	if req.user != nil {
		call.User = req.user.username
	}
	if call.Injected {
		rec, req.cut = httptest.NewRecorder(), false
		f.write(rec)
	}
	call.Status = rec.Code
	if r.Context().Err() != nil {
		// The client hung up before the answer was made (a worker killed mid-download): a git
		// command the handler ran was cut off, so its 404 is the double's, not GitLab's.
		call.Status = ClientClosedRequest
	}
	if ct, _, _ := mime.ParseMediaType(rec.Header().Get("Content-Type")); ct == "application/json" {
		call.Answer = string(rec.Body.Bytes()[:min(rec.Body.Len(), maxAnswer)])
	}

	s.mu.Lock()
	s.calls = append(s.calls, *call)
	s.mu.Unlock()

	maps.Copy(w.Header(), rec.Header())
	data := rec.Body.Bytes()
	if req.cut {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(rec.Code)
		_, _ = w.Write(data[:len(data)/2])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // drops the connection without logging a stack
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(data)
}

// write answers the fault's code the way GitLab and the proxies in front of it do.
func (f fault) write(w http.ResponseWriter) {
	h := w.Header()
	switch f.code {
	case http.StatusTooManyRequests:
		// Rack::Attack's throttle answer (docs/gitlab.md §3.3). The limit is GitLab.com's, so a client
		// that configures its limiter from it (docs/gitlab.md §7) is barely slowed.
		reset := time.Now().Truncate(time.Second).Add(2 * time.Second)
		h.Set("RateLimit-Name", "throttle_authenticated_api")
		h.Set("RateLimit-Limit", "2000")
		h.Set("RateLimit-Observed", "2001")
		h.Set("RateLimit-Remaining", "0")
		h.Set("RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
		h.Set("RateLimit-ResetTime", reset.UTC().Format(http.TimeFormat))
		h.Set("Retry-After", "1")
		h.Set("Content-Type", "text/plain")
		w.WriteHeader(f.code)
		_, _ = io.WriteString(w, "Retry later\n")
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		h.Set("Content-Type", "text/html")
		w.WriteHeader(f.code)
		text := fmt.Sprintf("%d %s", f.code, http.StatusText(f.code))
		_, _ = fmt.Fprintf(w, "<html><head><title>%s</title></head><body><h1>%s</h1></body></html>\n", text, text)
	case http.StatusConflict:
		writeJSON(w, f.code, message("Another update to this commit status is in progress"))
	default:
		writeJSON(w, f.code, message(fmt.Sprintf("%d %s", f.code, http.StatusText(f.code))))
	}
}

// readBody decodes a JSON or form body into text values, as Grape sees parameters.
func readBody(r *http.Request) (map[string]string, error) {
	out := map[string]string{}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		raw, err := io.ReadAll(r.Body)
		if err != nil || len(bytes.TrimSpace(raw)) == 0 {
			return out, err
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			return out, errors.New("body is not valid JSON")
		}
		for k, v := range m {
			switch v := v.(type) {
			case nil:
			case string:
				out[k] = v
			case json.Number:
				out[k] = v.String()
			case bool:
				out[k] = strconv.FormatBool(v)
			default:
				b, _ := json.Marshal(v)
				out[k] = string(b)
			}
		}
	case "application/x-www-form-urlencoded", "multipart/form-data":
		if err := r.ParseMultipartForm(1 << 20); err != nil && !errors.Is(err, http.ErrNotMultipart) {
			return out, err
		}
		for k, v := range r.PostForm {
			out[k] = v[0]
		}
	}
	return out, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
