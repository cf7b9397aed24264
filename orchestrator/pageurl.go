package orchestrator

import (
	"net/url"
	"strconv"
)

// maxTargetURL is the longest target_url GitLab takes on a commit status (docs/gitlab.md §3.1).
const maxTargetURL = 255

// JobAnchor is the id of a job's element on its pipeline's page, which the job's commit status
// links to. The api package gives the element this id; the prefix keeps it apart from the ids
// of log lines ("test/unit-L12").
func JobAnchor(job string) string { return "job-" + job }

// PageURL is the link of a job's commit status: the pipeline's page at the job, the job's name
// escaped as a URL's fragment must be. When that would be longer than GitLab takes, the link
// leaves the job out: the pipeline's page is still the right one. publicURL has no trailing
// slash.
func PageURL(publicURL string, id int64, job string) string {
	page := publicURL + "/pipelines/" + strconv.FormatInt(id, 10)
	withJob := page + "#" + (&url.URL{Fragment: JobAnchor(job)}).EscapedFragment()
	if len(withJob) > maxTargetURL {
		return page
	}
	return withJob
}

// Commit is what a webhook said of the commit a pipeline builds, shown on the pipeline's page:
// empty when the trigger did not say (an API trigger, a schedule, a push whose head commit is
// not among the 20 a push event carries).
type Commit struct {
	Title string `json:"title,omitempty"`
	// Author is the author's name; gantry keeps no e-mail addresses.
	Author string `json:"author,omitempty"`
	// URL is the commit's page in GitLab.
	URL string `json:"url,omitempty"`
}

// CommitURL is the commit's page in GitLab: the one the webhook gave, else the project's commit
// page when the project's URL is known, else "".
func (t Trigger) CommitURL() string {
	if t.Commit.URL != "" {
		return t.Commit.URL
	}
	if t.ProjectURL == "" || t.SHA == "" {
		return ""
	}
	return t.ProjectURL + "/-/commit/" + url.PathEscape(t.SHA)
}
