package webhook

import (
	"github.com/gantry-ci/gantry/orchestrator"
	gl "gitlab.com/gitlab-org/api/client-go"
)

// pushCommit is what a push says of the commit it builds, found among the (at most 20, newest)
// commits it carries; empty when that commit is not among them.
func pushCommit(sha string, cs []*gl.PushEventCommit) orchestrator.Commit {
	for _, c := range cs {
		if c != nil && c.ID == sha {
			return orchestrator.Commit{Title: c.Title, Author: c.Author.Name, URL: c.URL}
		}
	}
	return orchestrator.Commit{}
}

// tagCommit is pushCommit for a tag push.
func tagCommit(sha string, cs []*gl.TagEventCommit) orchestrator.Commit {
	for _, c := range cs {
		if c != nil && c.ID == sha {
			return orchestrator.Commit{Title: c.Title, Author: c.Author.Name, URL: c.URL}
		}
	}
	return orchestrator.Commit{}
}
