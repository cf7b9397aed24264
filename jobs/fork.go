package jobs

import (
	"fmt"
	"strconv"
	"strings"
)

// A merge request from a fork runs content its author controls — the Dockerfiles, the base
// inputs, the code — under the project's name. What it builds must never reach the project's
// registry, where trusted builds and other engines would take it for the project's own, and
// must never be found by a trusted build on a shared engine. So every image gantry builds from
// a fork is tagged with forkTagPrefix, and:
//   - nothing under such a tag is pushed (neither the base nor, with share_images, the test
//     image) or pulled;
//   - a trusted build looks its base up only under <base image>:<hash>, which a fork never
//     writes; a fork looks up the trusted tag first (reading it is harmless) and else builds
//     its own <base image>:fork-<hash> on this engine.
//
// With docker.share_images a fork's test image therefore exists only on the engine that built
// it: a test job of that pipeline that lands on another engine fails with an infrastructure
// error (see ensureImage) and is retried, possibly on the right engine; once the retries are
// spent the job fails. That is the price of never letting a fork write to the registry.
const forkTagPrefix = "fork-"

// testTag is the tag of a pipeline's test image: test-<id>, or fork-test-<id> for a fork.
func testTag(pipelineID int64, fork bool) string {
	tag := "test-" + strconv.FormatInt(pipelineID, 10)
	if fork {
		tag = forkTagPrefix + tag
	}
	return tag
}

// baseTag is the tag of a base image of the given content hash: the hash, or fork-<hash> for a
// base built from a fork.
func baseTag(hash string, fork bool) string {
	if fork {
		return forkTagPrefix + hash
	}
	return hash
}

// isForkRef reports whether an image reference has a fork's tag. The tag follows the last
// colon, unless that colon belongs to a registry's host:port.
func isForkRef(ref string) bool {
	i := strings.LastIndex(ref, ":")
	if i < 0 || strings.Contains(ref[i:], "/") {
		return false
	}
	return strings.HasPrefix(ref[i+1:], forkTagPrefix)
}

// errForkRef refuses a registry transfer of a fork's image, for the paths that must never see
// one; the callers do not ask for it, this is the last line.
func errForkRef(ref string) error {
	return fmt.Errorf("%s was built from a fork: a fork's images never go to or come from the registry", ref)
}
