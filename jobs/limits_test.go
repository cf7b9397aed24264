package jobs

import (
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/moby/moby/client"

	"github.com/gantry-ci/gantry/orchestrator"
)

// TestTestLogCapped: a test that prints without end fills the job log (and Redis behind it) up
// to a cap, says where it stopped, and still ends normally.
func TestTestLogCapped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	got := b.runTest(t, b.env.busybox, orchestrator.TestSpec{Name: "chatty",
		Command: []string{"sh", "-c", "head -c 10m /dev/zero | tr '\\0' x; echo; echo the end"}})
	if got.err != nil || got.res.ExitCode != 0 {
		t.Fatalf("Test(chatty) = %+v, %v", got.res, got.err)
	}
	if len(got.log) > 5<<20 || !strings.Contains(got.log, "output truncated after 4 MiB") || strings.Contains(got.log, "the end") {
		t.Errorf("Test(10 MiB of output) log has %d bytes, ends %q; want 4 MiB and a truncation line", len(got.log), got.log[max(0, len(got.log)-200):])
	}
	if !strings.Contains(got.log, "exit 0 after ") {
		t.Errorf("Test(chatty) log lacks its exit line after the truncation: ends %q", got.log[max(0, len(got.log)-200):])
	}
}

func TestCappedWriter(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	c := newCappedWriter(&out, 1<<19)
	chunk := strings.Repeat("x", 100<<10)
	for range 8 {
		if n, err := c.Write([]byte(chunk)); n != len(chunk) || err != nil {
			t.Fatalf("Write(100 KiB) = %d, %v, want all of it taken", n, err)
		}
	}
	want := strings.Repeat("x", 1<<19) + "\n… output truncated after 0.5 MiB\n"
	if out.String() != want {
		t.Errorf("cappedWriter(512 KiB) wrote %d bytes ending %q, want %d ending %q",
			out.Len(), out.String()[max(0, out.Len()-50):], len(want), want[len(want)-50:])
	}
}

// buildInside is a Dockerfile whose RUN shows the build container's limits and network
// interfaces; the marker keeps the step out of the cache.
func buildInside(busybox, marker string) string {
	return "FROM " + busybox + "\nRUN echo " + marker + ` && cd /sys/fs/cgroup && \
	if [ -d memory ]; then echo limits v1 $(cat memory/memory.limit_in_bytes memory/memory.memsw.limit_in_bytes cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us); \
	else echo limits v2 $(cat memory.max memory.swap.max cpu.max); fi && \
	echo interfaces $(ls /sys/class/net)
`
}

// TestBuildDefaultLimits: a project that sets nothing builds within safe limits that still let
// pip install reach its index: 4 GiB without swap, and Docker's bridge network.
func TestBuildDefaultLimits(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, log, err := b.build(t, b.project(), map[string]string{"Dockerfile": buildInside(b.env.busybox, randomHex(8))})
	if err != nil {
		t.Fatalf("Build() error = %v\nlog:\n%s", err, log)
	}
	limits := "limits v1 4294967296 4294967296 -1 100000\n"
	if strings.Contains(log, "\nlimits v2 ") {
		limits = "limits v2 4294967296 0 max 100000\n"
	}
	for _, want := range []string{limits, "interfaces eth0 lo\n"} {
		if !strings.Contains(log, want) {
			t.Errorf("Build() log lacks %q:\n%s", want, log)
		}
	}
}

func TestLimitsOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		spec orchestrator.BuildSpec
		want client.ImageBuildOptions
	}{
		{"defaults", orchestrator.BuildSpec{},
			client.ImageBuildOptions{Memory: 4 << 30, MemorySwap: 4 << 30, NetworkMode: "bridge"}},
		{"everything set", orchestrator.BuildSpec{Memory: 1 << 30, CPUs: 1.5, Network: "none"},
			client.ImageBuildOptions{Memory: 1 << 30, MemorySwap: 1 << 30, CPUQuota: 150_000, CPUPeriod: 100_000, NetworkMode: "none"}},
		{"a sliver of a CPU", orchestrator.BuildSpec{CPUs: 0.001, Network: "bridge"},
			client.ImageBuildOptions{Memory: 4 << 30, MemorySwap: 4 << 30, CPUQuota: 1000, CPUPeriod: 100_000, NetworkMode: "bridge"}},
	}
	for _, tt := range tests {
		l, err := limitsOf(tt.spec)
		if err != nil {
			t.Errorf("limitsOf(%s) error = %v", tt.name, err)
			continue
		}
		var got client.ImageBuildOptions
		l.apply(&got)
		if diff := gocmp.Diff(tt.want, got); diff != "" {
			t.Errorf("limitsOf(%s) applied (-want +got):\n%s", tt.name, diff)
		}
	}
	for _, network := range []string{"host", "container:abc", "default", "gantry-net"} {
		if _, err := limitsOf(orchestrator.BuildSpec{Network: network}); !isProjectFault(err) {
			t.Errorf("limitsOf(network %q) error = %v, want a project fault", network, err)
		}
	}
	l, _ := limitsOf(orchestrator.BuildSpec{Memory: 64 << 20})
	if got := l.explainKill("The command '/bin/sh -c x' returned a non-zero code: 137"); !strings.Contains(got, "memory limit of 64 MiB") {
		t.Errorf("explainKill(137) = %q, want it to name the memory limit", got)
	}
	if got := l.explainKill("returned a non-zero code: 1"); got != "returned a non-zero code: 1" {
		t.Errorf("explainKill(1) = %q, want it unchanged", got)
	}
}

// TestBuildLimits: what a project sets reaches every RUN step of the classic builder — on the
// base tier as on the app — as the kernel enforces it.
func TestBuildLimits(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.project()
	p.Build.Memory, p.Build.CPUs, p.Build.Network = 64<<20, 0.5, "none"
	p.Base = &orchestrator.BaseSpec{Dockerfile: "Dockerfile.base", Image: b.image + "-base"}
	res, log, err := b.build(t, p, map[string]string{
		"Dockerfile.base": buildInside(b.env.busybox, randomHex(8)),
		"Dockerfile":      "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n" + strings.SplitN(buildInside("x", randomHex(8)), "\n", 2)[1],
	})
	if err != nil {
		t.Fatalf("Build() error = %v\nlog:\n%s", err, log)
	}
	b.removeImages(t, res.BaseImage)
	limits := "limits v1 67108864 67108864 50000 100000\n"
	if strings.Contains(log, "\nlimits v2 ") {
		limits = "limits v2 67108864 0 50000 100000\n"
	}
	if n := strings.Count(log, limits); n != 2 {
		t.Errorf("Build() log shows %q %d times, want once for the base and once for the app:\n%s", limits, n, log)
	}
	if n := strings.Count(log, "interfaces lo\n"); n != 2 {
		t.Errorf("Build() log shows a loopback-only network %d times, want 2:\n%s", n, log)
	}

	// A step that outgrows the limit is killed: the project's fault, and the error says why.
	p = b.project()
	p.Build.Memory = 32 << 20
	b.pipeline++
	_, log, err = b.build(t, p, map[string]string{
		"Dockerfile": "FROM " + b.env.busybox + "\nRUN echo " + randomHex(8) + " && head -c 200m /dev/zero | tail\n",
	})
	if !isProjectFault(err) || !strings.Contains(err.Error(), "memory limit of 32 MiB") {
		t.Errorf("Build(step over the memory limit) error = %v, want a project fault naming the limit\nlog:\n%s", err, log)
	}

	// Without a network, nothing is reached. (nc, not wget: the static busybox's wget crashes.)
	p = b.project()
	p.Build.Network = "none"
	b.pipeline++
	_, log, err = b.build(t, p, map[string]string{
		"Dockerfile": "FROM " + b.env.busybox + "\nRUN echo " + randomHex(8) + " && nc -w 3 151.101.0.223 443 </dev/null\n",
	})
	if !isProjectFault(err) || !strings.Contains(log, "Network is unreachable") {
		t.Errorf("Build(nc without a network) error = %v, want a project fault after nc failed\nlog:\n%s", err, log)
	}

	p.Build.Network = "host"
	if _, _, err := b.build(t, p, map[string]string{"Dockerfile": "FROM " + b.env.busybox + "\n"}); !isProjectFault(err) {
		t.Errorf("Build(network host) error = %v, want a project fault", err)
	}
}

// TestBuildLogCapped: a build step's output reaches the job log up to the same cap as a
// test's, and the build goes on.
func TestBuildLogCapped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, log, err := b.build(t, b.project(), map[string]string{
		"Dockerfile": "FROM " + b.env.busybox + "\nRUN echo " + randomHex(8) + " && head -c 10m /dev/zero | tr '\\0' x && echo && echo end-$((6*7))\n",
	})
	if err != nil {
		t.Fatalf("Build() error = %v", err)
	}
	// end-42 is printed after the cap; the step's command line shows only its formula.
	if len(log) > 5<<20 || !strings.Contains(log, "output truncated after 4 MiB") || strings.Contains(log, "end-42") {
		t.Errorf("Build(10 MiB of output) log has %d bytes, ends %q; want 4 MiB and a truncation line", len(log), log[max(0, len(log)-300):])
	}
}
