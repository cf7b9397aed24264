package api

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/labstack/echo/v5"
	"go.uber.org/zap"
)

// The pages are html/template (every value escaped for where it lands) with one stylesheet and
// one small script, embedded: nothing to build, nothing fetched from elsewhere, and a content
// security policy that lets no inline script run even if some markup slipped through.

//go:embed templates/*.html
var templatesFS embed.FS

//go:embed assets
var assetsFS embed.FS

// assetVersions holds a short content hash per asset, put in asset URLs so a browser never
// keeps an old script beside a new page.
var assetVersions = func() map[string]string {
	out := map[string]string{}
	fs.WalkDir(assetsFS, "assets", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := assetsFS.ReadFile(p)
			sum := sha256.Sum256(b)
			out[path.Base(p)] = hex.EncodeToString(sum[:6])
		}
		return nil
	})
	return out
}()

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"asset":      func(name string) string { return "/assets/" + name + "?v=" + assetVersions[name] },
	"dur":        durationText,
	"ago":        ageText,
	"short":      shortSHA,
	"pathEscape": url.PathEscape,
	"jobAnchor":  orchestrator.JobAnchor,
	"stages":     stageStates,
	"stageMark":  stageMark,
	"trigger":    triggerText,
	"clock":      clockText,
	"iso":        isoText,
	"when":       func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"listURL": func(project, ref string) string {
		q := url.Values{}
		if project != "" {
			q.Set("project", project)
		}
		if ref != "" {
			q.Set("ref", ref)
		}
		return "/pipelines?" + q.Encode()
	},
}).ParseFS(templatesFS, "templates/*.html"))

// contentSecurityPolicy allows only this server's own script, style and requests.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// pageLogTail is how much of each job's log the page carries; the whole log is a link away.
const pageLogTail = 64 << 10

// pageJob is a job with what the page shows of its log.
type pageJob struct {
	jobJSON
	Log     template.HTML // the log's lines as logLines renders them
	LogNext int64         // where the page's script follows the log on from
	Earlier []int         // earlier attempts, whose logs are linked
	// Elapsed is how long a running job has run, in seconds; the page's script counts on.
	Elapsed float64
}

// FailedCases are the failing cases of the job's test report, which the page lists above the
// log: what a reader of a failed test looks for first.
func (j pageJob) FailedCases() []orchestrator.TestCase {
	if j.Report == nil {
		return nil
	}
	var out []orchestrator.TestCase
	for _, c := range j.Report.Cases {
		if c.Status.Failing() {
			out = append(out, c)
		}
	}
	return out
}

// CoverageText is the job's coverage as the page shows it, "81.25%"; "" without one.
func (j pageJob) CoverageText() string {
	if j.Coverage == nil {
		return ""
	}
	return coverageText(*j.Coverage)
}

// Open says whether the job's log is unfolded: when it failed or is under way.
func (j pageJob) Open() bool { return j.State == orchestrator.StateFailed || !j.State.Terminal() }

type pageStage struct {
	Name orchestrator.Stage
	Jobs []pageJob
}

type pipelinePageData struct {
	pipelineJSON
	Stages  []pageStage
	Now     time.Time
	Visitor *visitorView
}

// visitorView is the signed-in visitor as the pages show them: who, the token their forms carry,
// and whether the pipeline's buttons are theirs to press (Developer access or more).
type visitorView struct {
	Username string
	CSRF     string
	Change   bool
}

// visitorOf is the page's visitor, nil without a sign-in; project, when given, is the
// pipeline whose buttons they may or may not have. Without an answer from GitLab the buttons
// are left out; pressing them would be refused anyway.
func (s *Server) visitorOf(c *echo.Context, project string) *visitorView {
	v := visitor(c)
	if v == nil {
		return nil
	}
	out := &visitorView{Username: v.Username, CSRF: v.CSRF}
	if project != "" {
		a, err := s.accessTo(c.Request().Context(), v, project, false)
		out.Change = err == nil && a.Level >= orchestrator.AccessDeveloper
	}
	return out
}

// pipelinePage answers /pipelines/{id}, the page commit statuses link to, and
// /pipelines/{id}.json, the pipeline as the API shows it, which the page's script polls.
func (s *Server) pipelinePage(c *echo.Context) error {
	if id, ok := strings.CutSuffix(c.Param("id"), ".json"); ok {
		p, err := s.pipeline(c, id)
		if p == nil {
			return err
		}
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.JSON(http.StatusOK, pipelineView(p))
	}
	p, err := s.pagePipeline(c, c.Param("id"))
	if p == nil {
		return err
	}
	data := pipelinePageData{pipelineJSON: pipelineView(p), Now: s.now(), Visitor: s.visitorOf(c, p.Trigger.Project)}
	for _, name := range []orchestrator.Stage{orchestrator.StageBuild, orchestrator.StageTest, orchestrator.StageRelease} {
		st := pageStage{Name: name}
		for _, j := range data.Jobs {
			if j.Stage == name {
				st.Jobs = append(st.Jobs, s.pageJob(c, p.ID, j))
			}
		}
		if len(st.Jobs) > 0 {
			data.Stages = append(data.Stages, st)
		}
	}
	return s.render(c, http.StatusOK, "pipeline.html", data)
}

// pageJob reads the tail of a job's current log. A log that cannot be read leaves the page
// standing, with a note in its place.
func (s *Server) pageJob(c *echo.Context, id int64, j jobJSON) pageJob {
	pj := pageJob{jobJSON: j}
	for a := 1; a < j.Attempt; a++ {
		pj.Earlier = append(pj.Earlier, a)
	}
	text, first, next, err := s.pageLog(c.Request().Context(), id, j.Name, j.Attempt, !j.State.Terminal())
	if err != nil {
		s.log.Warn("page log", zap.Int64("pipeline", id), zap.String("job", j.Name), zap.Error(err))
		text, first = "[gantry: the log could not be read]\n", 1
	}
	pj.Log, pj.LogNext = logLines(j.Name, first, text), next
	if j.State == orchestrator.StateRunning && !j.StartedAt.IsZero() {
		pj.Elapsed = max(seconds(s.now().Sub(j.StartedAt)), 0.1) // 0 would read as not running
	}
	return pj
}

type listPageData struct {
	Visitor   *visitorView
	Filter    Filter
	States    []orchestrator.State
	Pipelines []pipelineJSON
	Error     string
	Now       time.Time
}

// Live reports whether a listed pipeline may still change, so the page's script reads the list
// again.
func (d listPageData) Live() bool {
	for _, p := range d.Pipelines {
		if live(p.State) {
			return true
		}
	}
	return false
}

// listPage answers /pipelines: the recent pipelines, filtered by project, ref and state.
func (s *Server) listPage(c *echo.Context) error {
	f, err := parseFilter(c.QueryParams())
	data := listPageData{Visitor: s.visitorOf(c, ""), Filter: f, States: orchestrator.PipelineStates, Now: s.now()}
	if err != nil {
		data.Error = err.Error()
		return s.render(c, http.StatusBadRequest, "pipelines.html", data)
	}
	want := f.Limit
	if data.Visitor != nil {
		// The projects the visitor may not read are left out after the listing: ask for the most
		// the API lists, so that a page of other projects' pipelines does not leave the list empty.
		f.Limit = maxLimit
	}
	ps, err := s.listed(c, f)
	if ps == nil {
		return err
	}
	if ps, err = s.readable(c, ps, want); err != nil {
		return s.pageError(c, 0, err)
	}
	for _, p := range ps {
		data.Pipelines = append(data.Pipelines, pipelineView(p))
	}
	return s.render(c, http.StatusOK, "pipelines.html", data)
}

func (s *Server) render(c *echo.Context, code int, name string, data any) error {
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, name, data); err != nil {
		return s.fail(c, err)
	}
	h := c.Response().Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	return c.HTMLBlob(code, b.Bytes())
}

// asset serves the pages' stylesheet and script.
func (s *Server) asset(c *echo.Context) error {
	name := c.Param("name")
	b, err := assetsFS.ReadFile("assets/" + name)
	if err != nil {
		return notFound(c, "no such asset: "+name)
	}
	ctype := "text/css; charset=utf-8"
	if strings.HasSuffix(name, ".js") {
		ctype = "text/javascript; charset=utf-8"
	}
	c.Response().Header().Set("Cache-Control", "public, max-age=86400")
	c.Response().Header().Set("X-Content-Type-Options", "nosniff")
	return c.Blob(http.StatusOK, ctype, b)
}
