package jobs

import (
	"archive/tar"
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// applyDockerignore drops from the context what the project's .dockerignore excludes. The
// engine does not do it for a context sent through the API — the docker CLI does it while
// packing — so without this a project's .dockerignore would be silently ignored. Like the CLI,
// the Dockerfiles in keep and .dockerignore itself always stay, for the engine to read. It
// returns how many entries it dropped. moby/patternmatcher is the CLI's own matcher, so the
// patterns mean what they mean with `docker build`.
func (bc *buildContext) applyDockerignore(keep ...string) (int, error) {
	if _, ok := bc.names[".dockerignore"]; !ok {
		return 0, nil
	}
	var patterns []string
	err := eachEntry(&bc.tar, func(hdr *tar.Header, data []byte) error {
		if hdr.Name != ".dockerignore" {
			return nil
		}
		var err error
		patterns, err = ignorefile.ReadAll(bytes.NewReader(data))
		return err
	})
	if err != nil {
		return 0, projectFault(".dockerignore: %v", err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return 0, projectFault(".dockerignore: %v", err)
	}
	keep = append(keep, ".dockerignore")
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	dropped := 0
	err = eachEntry(&bc.tar, func(hdr *tar.Header, data []byte) error {
		name := strings.TrimSuffix(hdr.Name, "/")
		if !slices.Contains(keep, name) {
			excluded, err := pm.MatchesOrParentMatches(name)
			if err != nil {
				return projectFault(".dockerignore: %v", err)
			}
			if excluded {
				dropped++
				return nil
			}
		}
		return writeEntry(tw, hdr, data)
	})
	if err != nil {
		return 0, err
	}
	if err := tw.Close(); err != nil {
		return 0, fmt.Errorf("build context: %w", err)
	}
	bc.tar = out
	return dropped, nil
}
