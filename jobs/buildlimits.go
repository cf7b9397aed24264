package jobs

import (
	"cmp"
	"fmt"
	"strings"

	"github.com/moby/moby/client"

	"github.com/gantry-ci/gantry/orchestrator"
)

// defaultBuildMemory bounds a build step when the project sets no limit: a pip install of a
// large scientific stack fits, a runaway step does not take the worker's host down with it.
const defaultBuildMemory = 4 << 30

// cpuPeriod is the CFS period a CPU limit is expressed in, the engine's own default (100 ms):
// the build API takes a quota and a period where containers take NanoCPUs.
const cpuPeriod = 100_000

// Build networks a project may choose. Any other mode would share the host's or another
// container's namespace with the project's Dockerfile.
const (
	buildNetworkBridge = "bridge"
	buildNetworkNone   = "none"
)

// buildLimits are the resources and the network of a build's step containers. The classic
// builder of Docker 20.10 hands Memory, MemorySwap, CPUQuota, CPUPeriod and NetworkMode to the
// container of every RUN step (BuildKit would ignore some of them); the test
// TestBuildLimits checks each from inside a RUN.
type buildLimits struct {
	memory              int64
	cpuQuota, cpuPeriod int64 // both 0: no CPU limit
	network             string
}

// limitsOf turns a project's build spec into limits, with the defaults for what it leaves out;
// a network gantry does not allow is the project's fault.
func limitsOf(b orchestrator.BuildSpec) (buildLimits, error) {
	l := buildLimits{memory: cmp.Or(b.Memory, defaultBuildMemory), network: cmp.Or(b.Network, buildNetworkBridge)}
	if l.network != buildNetworkBridge && l.network != buildNetworkNone {
		return buildLimits{}, projectFault("build: network %q is not allowed", b.Network)
	}
	if b.CPUs > 0 {
		// The engine refuses a quota under 1 ms.
		l.cpuPeriod, l.cpuQuota = cpuPeriod, max(int64(b.CPUs*cpuPeriod), 1000)
	}
	return l, nil
}

// apply sets the limits on a build. MemorySwap equals Memory: no swap, so a step that outgrows
// its limit is killed instead of slowing the host down.
func (l buildLimits) apply(opts *client.ImageBuildOptions) {
	opts.Memory, opts.MemorySwap = l.memory, l.memory
	opts.CPUQuota, opts.CPUPeriod = l.cpuQuota, l.cpuPeriod
	opts.NetworkMode = l.network
}

// explainKill adds to a failed step's message what its exit status 137 (SIGKILL) most likely
// means in a build: the kernel's OOM killer enforcing the memory limit. The classic builder
// reports no more than the status.
func (l buildLimits) explainKill(msg string) string {
	if !strings.HasSuffix(msg, "non-zero code: 137") {
		return msg
	}
	return fmt.Sprintf("%s (killed: most likely the step outgrew the build's memory limit of %g MiB, projects[].build.memory)",
		msg, float64(l.memory)/(1<<20))
}
