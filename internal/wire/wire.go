// Package wire translates the configuration into the orchestrator's terms. It is the one place
// where the configuration's shape meets the domain's, shared by the commands (gantry and its
// benchmarks) so that they cannot drift apart.
package wire

import (
	"errors"

	"github.com/gantry-ci/gantry/configs"
	"github.com/gantry-ci/gantry/orchestrator"
)

// Projects translates the configured projects into the orchestrator's terms.
func Projects(cfg *configs.Config) []orchestrator.Project {
	out := make([]orchestrator.Project, 0, len(cfg.Projects))
	for i := range cfg.Projects {
		out = append(out, Project(&cfg.Projects[i]))
	}
	return out
}

// Project translates one configured project.
func Project(p *configs.Project) orchestrator.Project {
	dp := orchestrator.Project{
		Path:  p.Path,
		Image: p.Image,
		Build: orchestrator.BuildSpec{
			Dockerfile: p.Build.Dockerfile, Context: p.Build.Context, Args: p.Build.Args,
			Target: p.Build.Target, PullAlways: p.Build.Pull == configs.PullAlways,
			Memory: int64(p.Build.Memory), CPUs: p.Build.CPUs, Network: p.Build.Network,
		},
		Release: orchestrator.ReleasePolicy{
			Branches: p.Release.Branches, Tags: p.Release.Tags,
			TagPushes: p.Release.TagPushes, TagPattern: p.Release.TagRegexp(), TagTags: p.Release.TagTags,
		},
		Supersede:      p.SupersedeEnabled(),
		Approval:       orchestrator.ApprovalMode(p.Approval),
		ApprovalExpiry: p.ApprovalExpiry.Duration,
		Untrusted: orchestrator.UntrustedSpec{
			Network: p.Untrusted.Network, Memory: int64(p.Untrusted.Memory), CPUs: p.Untrusted.CPUs, Pass: p.Untrusted.Pass,
		},
		PipelineFile: p.PipelineFileName(),
	}
	if p.Base != nil && p.Base.Dockerfile != "" { // base.image alone waits for a pipeline file's tier
		dp.Base = &orchestrator.BaseSpec{Dockerfile: p.Base.Dockerfile, Inputs: p.Base.Inputs, Image: p.Base.Image}
	}
	if g := p.Generate.Python; g != nil {
		dp.Generate = &orchestrator.GenerateSpec{
			Image: g.Image, IndexURL: g.IndexURL, Wheels: g.Wheels, SystemPackages: g.SystemPackages,
			SetupPy: g.SetupPy, Command: g.Command,
		}
	}
	for _, t := range p.Tests {
		dp.Tests = append(dp.Tests, orchestrator.TestSpec{
			Name: t.Name, Command: t.Command, Env: t.Env, Timeout: t.Timeout.Duration,
			Memory: int64(t.Memory), CPUs: t.CPUs, Pids: t.Pids, Network: t.Network,
			JUnit: t.JUnit, Coverage: t.CoverageRegexp(),
		})
	}
	return dp
}

// ApplyFile applies a commit's pipeline file to the configured project of the same path, for
// the engine: the configuration decides what the file may set (configs.Project.ApplyRepoFile),
// and the result is translated like the configured project. A refused file comes back as an
// *orchestrator.FileError.
func ApplyFile(cfg *configs.Config) orchestrator.ApplyFile {
	return func(p orchestrator.Project, file []byte) (orchestrator.Project, error) {
		cp, ok := cfg.Project(p.Path)
		if !ok {
			return p, nil
		}
		eff, err := cp.ApplyRepoFile(file)
		var rf *configs.RepoFileError
		switch {
		case errors.As(err, &rf):
			fe := &orchestrator.FileError{Summary: rf.Error()}
			for _, pr := range rf.Problems {
				fe.Problems = append(fe.Problems, rf.File+": "+pr.Error())
			}
			return orchestrator.Project{}, fe
		case err != nil:
			return orchestrator.Project{}, err
		}
		return Project(&eff), nil
	}
}
