package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
)

// pipelinesCommand runs `gantry pipelines list|show|log|retry|cancel|approve|decline|trigger` against the REST
// API at $GANTRY_URL with $GANTRY_TOKEN. Output is for people unless --json asks for the API's
// own JSON; any answer that is not a success is an error, so the exit status says it too.
func pipelinesCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	wants := map[string][]string{"list": nil, "show": {"ID"}, "cancel": {"ID"}, "retry": {"ID"},
		"approve": {"ID"}, "decline": {"ID"}, "log": {"ID", "JOB"}, "trigger": {"PROJECT", "REF"}}
	if len(args) == 0 {
		args = []string{""}
	}
	sub := args[0]
	if _, ok := wants[sub]; !ok {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("pipelines: unknown subcommand %q: want list, show, log, retry, cancel, approve, decline or trigger", sub)
	}
	fs := flag.NewFlagSet("pipelines "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the API's JSON")
	var project, ref, sha, status, job, as *string
	var limit, attempt *int
	var follow, raw, force *bool
	switch sub {
	case "list":
		project, ref = fs.String("project", "", "only pipelines of this project path"), fs.String("ref", "", "only pipelines of this branch or tag")
		sha, status = fs.String("sha", "", "only pipelines of commits starting with this"), fs.String("status", "", "only pipelines in this state")
		limit = fs.Int("limit", 20, "at most this many (the API allows 100)")
	case "retry":
		job = fs.String("job", "", "retry this finished job (and what depends on it) instead of the failed ones")
	case "trigger":
		sha = fs.String("sha", "", "the commit to build (default: where REF points now)")
		force = fs.Bool("force", false, "run the commit again even if it has a pipeline")
	case "approve", "decline":
		as = fs.String("as", getenv("USER"), "your name, recorded with the decision")
		if sub == "approve" {
			sha = fs.String("sha", "", "approve only if the pipeline builds this commit (the one you reviewed)")
		}
	case "log":
		attempt = fs.Int("attempt", 0, "this attempt of the job (default: its latest)")
		follow = fs.Bool("follow", false, "keep printing new output until the job ends")
		raw = fs.Bool("raw", false, "print the output as the job wrote it, terminal escape sequences included")
	}
	pos, err := parseArgs(fs, args[1:], wants[sub]...)
	if err != nil {
		return err
	}
	c := apiClient{base: strings.TrimRight(cmp.Or(getenv("GANTRY_URL"), "http://127.0.0.1:8080"), "/"), token: getenv("GANTRY_TOKEN")}
	out := output{w: stdout, json: *asJSON, base: c.base}
	var pipeline string
	if len(pos) > 0 {
		pipeline = "/api/v1/pipelines/" + url.PathEscape(pos[0])
	}
	switch sub {
	case "list":
		// Empty filters are sent as they are: the API takes them as no filter.
		q := url.Values{"project": {*project}, "ref": {*ref}, "sha": {*sha}, "status": {*status}, "limit": {strconv.Itoa(*limit)}}
		return c.call(ctx, http.MethodGet, "/api/v1/pipelines?"+q.Encode(), nil, out.as(out.list))
	case "show":
		return c.call(ctx, http.MethodGet, pipeline, nil, out.shown)
	case "cancel":
		return c.call(ctx, http.MethodPost, pipeline+"/cancel", nil, out.pipeline("cancel asked"))
	case "retry":
		if *job != "" {
			return c.orShortName(ctx, pipeline, *job, stderr, func(name string) error {
				return c.call(ctx, http.MethodPost, pipeline+"/jobs/"+url.PathEscape(name)+"/retry", nil, out.pipeline("retry queued"))
			})
		}
		return c.call(ctx, http.MethodPost, pipeline+"/retry", nil, out.pipeline("retry queued"))
	case "approve", "decline":
		body := map[string]any{}
		if *as != "" {
			body["by"] = *as
		}
		if sha != nil && *sha != "" {
			body["sha"] = *sha
		}
		return c.call(ctx, http.MethodPost, pipeline+"/"+sub, body, out.pipeline(sub+"d"))
	case "trigger":
		body := map[string]any{"ref": pos[1]}
		if *sha != "" {
			body["sha"] = *sha
		}
		if *force {
			body["force"] = true
		}
		return c.call(ctx, http.MethodPost, "/api/v1/projects/"+url.PathEscape(pos[0])+"/pipelines", body, out.as(out.triggered))
	}
	q := url.Values{"follow": {strconv.FormatBool(*follow)}} // log
	if *attempt > 0 {
		q.Set("attempt", strconv.Itoa(*attempt))
	}
	var w io.Writer = &terminalSafe{w: stdout}
	if *raw {
		w = stdout
	}
	return c.orShortName(ctx, pipeline, pos[1], stderr, func(name string) error {
		return c.stream(ctx, pipeline+"/jobs/"+url.PathEscape(name)+"/log?"+q.Encode(), w)
	})
}

// orShortName calls do with a job's name; when the API has no such job and the name has no "/",
// it is tried as a test's short name ("unit" for "test/unit"): job names are build,
// test/<name> and release, and test names are unique in a project, so a short name matches
// one job at most, and it is taken for it.
func (c apiClient) orShortName(ctx context.Context, pipeline, name string, stderr io.Writer, do func(name string) error) error {
	err := do(name)
	if !isStatus(err, http.StatusNotFound) || strings.Contains(name, "/") {
		return err
	}
	full, ferr := c.jobNamed(ctx, pipeline, name)
	if ferr != nil || full == "" {
		return err
	}
	fmt.Fprintf(stderr, "gantry: job %s is %s\n", name, full)
	return do(full)
}

// jobNamed is the pipeline's job whose last path element is short ("unit" for "test/unit"), or
// "" when none or several are.
func (c apiClient) jobNamed(ctx context.Context, pipeline, short string) (string, error) {
	var found []string
	err := c.call(ctx, http.MethodGet, pipeline, nil, func(b []byte) error {
		var p remotePipeline
		if err := json.Unmarshal(b, &p); err != nil {
			return err
		}
		for _, j := range p.Jobs {
			if strings.HasSuffix(j.Name, "/"+short) {
				found = append(found, j.Name)
			}
		}
		return nil
	})
	if err != nil || len(found) != 1 {
		return "", err
	}
	return found[0], nil
}

// parseArgs parses flags wherever they stand among the arguments ("show 4 --json" as well as
// "show --json 4") and wants exactly the named positional arguments.
func parseArgs(fs *flag.FlagSet, args []string, names ...string) ([]string, error) {
	pos, err := interspersed(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) != len(names) {
		return nil, fmt.Errorf("%s: want %d arguments (%s), got %q", fs.Name(), len(names), strings.Join(names, " "), pos)
	}
	return pos, nil
}

// interspersed parses flags wherever they stand among the arguments and returns the others in
// order; everything after "--" is an argument. The flag package alone stops at the first
// argument and leaves later flags as arguments, silently.
func interspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		rest := fs.Args()
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// apiClient calls gantry's REST API.
type apiClient struct {
	base, token string
}

// send makes one request and turns an answer that is not a success into an error that carries
// the API's own error and detail.
func (c apiClient) send(ctx context.Context, method, path string, body map[string]any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body) // strings and booleans always marshal
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		// The parse error quotes the URL, password included.
		return nil, fmt.Errorf("GANTRY_URL %s is not a URL", redactURL(c.base))
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("gantry at %s (GANTRY_URL): %w", redactURL(c.base), err) // net/http's error hides the password itself
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct{ Error, Detail string }
	msg := strings.TrimSpace(string(raw))
	if json.Unmarshal(raw, &e) == nil && e.Error != "" {
		msg = cmp.Or(e.Detail, e.Error) // the error mostly repeats the status
	}
	if resp.StatusCode == http.StatusUnauthorized {
		msg += " (set GANTRY_TOKEN to one of the config's api.tokens)"
	}
	return nil, &statusError{status: resp.StatusCode, text: fmt.Sprintf("%s %s: %s: %s", method, strings.SplitN(path, "?", 2)[0], resp.Status, msg), detail: msg}
}

// statusError is an answer of the API that is no success.
type statusError struct {
	status int
	text   string // "GET /api/v1/pipelines/4: 404 Not Found: pipeline 4: not found"
	detail string // the API's own words
}

// Error is the refusal alone for a 409, whose words say what was refused ("pipeline 3 is
// already canceled"); the request and status otherwise, which help find what went wrong.
func (e *statusError) Error() string {
	if e.status == http.StatusConflict {
		return e.detail
	}
	return e.text
}

// isStatus reports whether err is the API's answer with that status.
func isStatus(err error, status int) bool {
	var e *statusError
	return errors.As(err, &e) && e.status == status
}

// call makes a request and hands the answer's JSON to show. It takes a minute at most: only a
// followed log (stream) lasts as long as its job.
func (c apiClient) call(ctx context.Context, method, path string, body map[string]any, show func([]byte) error) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	resp, err := c.send(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return show(raw)
}

// stream copies a log to w as it comes; it ends when the API ends the answer or ctx ends.
func (c apiClient) stream(ctx context.Context, path string, w io.Writer) error {
	resp, err := c.send(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil && ctx.Err() == nil {
		return fmt.Errorf("reading the log: %w", err)
	}
	return nil
}

// remotePipeline is a pipeline as the API answers it.
type remotePipeline struct {
	orchestrator.Pipeline
	State           orchestrator.State `json:"state"`
	DurationSeconds float64            `json:"duration_seconds"`
}

// output prints API answers for people, or as the API's JSON.
type output struct {
	w    io.Writer
	json bool
	base string
}

// as prints an answer with human, or as the API's JSON as it came when --json asks.
func (o output) as(human func([]byte) error) func([]byte) error {
	if !o.json {
		return human
	}
	return func(b []byte) error {
		_, err := o.w.Write(b)
		return err
	}
}

// list prints a listing as a table.
func (o output) list(b []byte) error {
	var l struct{ Pipelines []remotePipeline }
	if err := json.Unmarshal(b, &l); err != nil {
		return fmt.Errorf("reading the listing: %w", err)
	}
	tw := tabwriter.NewWriter(o.w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPROJECT\tREF\tSHA\tSTATE\tCREATED\tDURATION")
	for _, p := range l.Pipelines {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, clean(p.Trigger.Project), clean(p.Trigger.Ref),
			p.Trigger.ShortSHA(), p.State, age(p.CreatedAt), seconds(p.DurationSeconds))
	}
	return tw.Flush()
}

// shown prints a pipeline as pipeline does and makes its end the exit status: a script's
// `gantry pipelines show N` fails when the pipeline did.
func (o output) shown(b []byte) error {
	if err := o.pipeline("")(b); err != nil {
		return err
	}
	var p remotePipeline
	if err := json.Unmarshal(b, &p); err != nil {
		return fmt.Errorf("reading the pipeline: %w", err)
	}
	return pipelineExit(p.ID, p.State)
}

// pipeline prints one pipeline and its jobs, after what was done to it, if anything.
func (o output) pipeline(done string) func([]byte) error {
	return o.as(func(b []byte) error {
		var p remotePipeline
		if err := json.Unmarshal(b, &p); err != nil {
			return fmt.Errorf("reading the pipeline: %w", err)
		}
		if done != "" {
			done = " (" + done + ")"
		}
		tw := tabwriter.NewWriter(o.w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "pipeline\t#%d %s%s\n", p.ID, p.State, done)
		fmt.Fprintf(tw, "project\t%s\nref\t%s (%s)\ncommit\t%s\n", clean(p.Trigger.Project), clean(p.Trigger.Ref), p.Trigger.Kind, p.Trigger.SHA)
		fmt.Fprintf(tw, "created\t%s (%s)\n", p.CreatedAt.UTC().Format("2006-01-02 15:04:05 UTC"), age(p.CreatedAt))
		for _, kv := range [][2]string{{"duration", seconds(p.DurationSeconds)}, {"image", p.Image}, {"test image", p.ImageRef}, {"digest", p.Digest}} {
			if kv[1] != "" {
				fmt.Fprintf(tw, "%s\t%s\n", kv[0], kv[1])
			}
		}
		if a := p.Approval; a != nil {
			fmt.Fprintf(tw, "approval\t%s\n", approvalText(p.ID, a))
		}
		fmt.Fprintf(tw, "page\t%s/pipelines/%d\n\n", o.base, p.ID)
		fmt.Fprintln(tw, "STAGE\tJOB\tSTATE\tATTEMPT\tDURATION\tDESCRIPTION")
		for _, j := range p.Jobs {
			desc := clean(j.Description)
			if j.ErrorClass != "" {
				desc += " (" + string(j.ErrorClass) + " failure)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", j.Stage, clean(j.Name), j.State, j.Attempt, seconds(j.Duration().Seconds()), desc)
		}
		return tw.Flush()
	})
}

// approvalText says how a pipeline's wait for approval stands.
func approvalText(id int64, a *orchestrator.Approval) string {
	if v := a.Verdict; v != nil {
		who := strings.TrimSpace(clean(v.By) + " (" + clean(v.Via) + ")")
		return fmt.Sprintf("%s by %s at %s", v.Decision, who, v.At.UTC().Format("2006-01-02 15:04:05 UTC"))
	}
	return fmt.Sprintf("waiting: %s; expires %s; gantry pipelines approve|decline %d", clean(a.Reason),
		a.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC"), id)
}

// triggered prints the new pipeline's number and page.
func (o output) triggered(b []byte) error {
	var a struct {
		PipelineID int64 `json:"pipeline_id"`
		Existing   bool  `json:"existing"`
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	note := ""
	if a.Existing {
		note = " (the commit's pipeline already; --force runs it again)"
	}
	_, err := fmt.Fprintf(o.w, "pipeline #%d%s\n%s/pipelines/%d\n", a.PipelineID, note, o.base, a.PipelineID)
	return err
}

// clean keeps control characters (a terminal's escape sequences among them) out of the table.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// seconds writes a duration as people read it: "3.2s", "1m12s".
func seconds(sec float64) string {
	switch d := time.Duration(sec * float64(time.Second)); {
	case d <= 0:
		return ""
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

// age says how long ago t was, coarsely: "5m ago", "3h ago", "2d ago".
func age(t time.Time) string {
	switch d := time.Since(t); {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd ago", int(d.Hours()/24))
	}
}
