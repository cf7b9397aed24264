package jobs

import (
	"bytes"
	"context"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/google/go-cmp/cmp"

	"github.com/gantry-ci/gantry/orchestrator"
)

func TestBuildSingleTier(t *testing.T) {
	t.Parallel()
	b := setup(t)
	marker := randomHex(8)
	p := b.project()
	p.Build.Args = map[string]string{"GREETING": "hello"}
	res, log, err := b.build(t, p, map[string]string{
		"Dockerfile": "FROM " + b.env.busybox + "\nARG GREETING\nCOPY . /app\nRUN echo \"$GREETING " + marker + "\" > /app/greeting\n",
		"run.sh":     "#!/bin/sh\necho run\n",
	})
	if err != nil {
		t.Fatalf("Build() error = %v\nlog:\n%s", err, log)
	}
	wantRef := b.image + ":test-" + b.pipelineLabel()
	if res.ImageRef != wantRef || !strings.HasPrefix(res.ImageID, "sha256:") || res.BaseImage != "" || res.BaseBuilt {
		t.Errorf("Build() = %+v, want ImageRef %s, an image ID and no base", res, wantRef)
	}
	// All labels in one step at the end, not one step each (see withLabels).
	if !strings.Contains(log, "Step 4/5 : RUN echo") || !strings.Contains(log, "Step 5/5 : LABEL") {
		t.Errorf("Build() log does not show the build steps with one LABEL step last:\n%s", log)
	}
	img, err := b.d.cli.ImageInspect(t.Context(), res.ImageRef)
	if err != nil {
		t.Fatalf("ImageInspect(%s) error = %v", res.ImageRef, err)
	}
	if img.ID != res.ImageID {
		t.Errorf("ImageInspect(%s).ID = %s, want %s", res.ImageRef, img.ID, res.ImageID)
	}
	wantLabels := map[string]string{
		"org.opencontainers.image.source": "https://gitlab.example.com/" + p.Path,
		"gantry.pipeline":                 b.pipelineLabel(),
		"gantry.project":                  p.Path,
	}
	labels := img.Config.Labels
	if len(labels["org.opencontainers.image.revision"]) != 40 {
		t.Errorf("revision label = %q, want the commit", labels["org.opencontainers.image.revision"])
	}
	delete(labels, "org.opencontainers.image.revision")
	if diff := cmp.Diff(wantLabels, labels); diff != "" {
		t.Errorf("image labels (-want +got):\n%s", diff)
	}

	// The build arg reached the RUN, and run.sh kept its mode through the re-packing.
	out := b.runTest(t, res.ImageID, orchestrator.TestSpec{Name: "check",
		Command: []string{"sh", "-c", "cat /app/greeting && /app/run.sh && test ! -e /app/.gantry-build.Dockerfile && test ! -e /app/.dockerignore"}})
	if out.res.ExitCode != 0 || !strings.Contains(out.log, "hello "+marker) || !strings.Contains(out.log, "run\n") {
		t.Errorf("test of the built image = %+v, log:\n%s", out.res, out.log)
	}
}

func TestBuildProjectFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		dockerfile string
		files      map[string]string
		want       string // in the error
	}{
		{"failing RUN", "Dockerfile", map[string]string{
			"Dockerfile": "FROM {busybox}\nRUN echo about to fail {marker} && false\n",
		}, "echo about to fail {marker} && false"},
		{"parse error", "Dockerfile", map[string]string{
			"Dockerfile": "FROM {busybox}\nNOPE {marker}\n",
		}, "unknown instruction: NOPE"},
		{"missing Dockerfile", "build/Dockerfile", map[string]string{
			"Dockerfile": "FROM {busybox}\n",
		}, `"build/Dockerfile" not found`},
		{"missing base image", "Dockerfile", map[string]string{
			"Dockerfile": "FROM 127.0.0.1:1/gantry-jobs-test/missing:{marker}\n",
		}, "127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			marker := randomHex(8)
			expand := strings.NewReplacer("{busybox}", b.env.busybox, "{marker}", marker).Replace
			files := map[string]string{}
			for k, v := range tt.files {
				files[k] = expand(v)
			}
			p := b.project()
			p.Build.Dockerfile = tt.dockerfile
			res, log, err := b.build(t, p, files)
			if !isProjectFault(err) || !strings.Contains(err.Error(), expand(tt.want)) {
				t.Fatalf("Build() = %+v, %v; want a project fault containing %q\nlog:\n%s", res, err, expand(tt.want), log)
			}
			t.Logf("Build() error = %v", err)
			ref := b.image + ":test-" + strconv.FormatInt(b.pipeline, 10)
			if _, err := b.d.cli.ImageInspect(t.Context(), ref); !cerrdefs.IsNotFound(err) {
				t.Errorf("ImageInspect(%s) error = %v, want not found: a failed build tags nothing", ref, err)
				b.removeImages(t, ref)
			}
		})
	}
}

func TestBuildTwoTier(t *testing.T) {
	t.Parallel()
	b := setup(t)
	marker := randomHex(8)
	p := b.project()
	p.Base = &orchestrator.BaseSpec{Dockerfile: "Dockerfile.base", Inputs: []string{"requirements.txt"}, Image: b.image + "-base"}
	files := map[string]string{
		"Dockerfile.base":  "FROM " + b.env.busybox + "\nCOPY requirements.txt /deps/\nRUN cat /deps/requirements.txt > /deps/installed\n",
		"requirements.txt": "pytest " + marker + "\n",
		"Dockerfile":       "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY . /app\n",
		"app.py":           "print(1)\n",
	}

	first, log, err := b.build(t, p, files)
	if err != nil {
		t.Fatalf("first Build() error = %v\nlog:\n%s", err, log)
	}
	b.removeImages(t, first.BaseImage)
	if tag, ok := strings.CutPrefix(first.BaseImage, p.Base.Image+":"); !first.BaseBuilt || !ok || !isHex(tag, 64) {
		t.Errorf("first Build() = %+v, want a base built as %s:<the 64 hex digits of a SHA-256>", first, p.Base.Image)
	}

	files["app.py"] = "print(2)\n"
	b.pipeline++
	second, log, err := b.build(t, p, files)
	if err != nil {
		t.Fatalf("second Build() error = %v\nlog:\n%s", err, log)
	}
	if second.BaseBuilt || second.BaseImage != first.BaseImage || !strings.Contains(log, "base image "+first.BaseImage+" reused") {
		t.Errorf("Build() after a code change = %+v, want base %s reused\nlog:\n%s", second, first.BaseImage, log)
	}
	if second.ImageID == first.ImageID {
		t.Errorf("Build() after a code change gave the same image %s", second.ImageID)
	}

	files["requirements.txt"] = "pytest " + marker + " changed\n"
	b.pipeline++
	third, log, err := b.build(t, p, files)
	if err != nil {
		t.Fatalf("third Build() error = %v\nlog:\n%s", err, log)
	}
	b.removeImages(t, third.BaseImage)
	if !third.BaseBuilt || third.BaseImage == first.BaseImage {
		t.Errorf("Build() after an input change = %+v, want a new base built", third)
	}
	out := b.runTest(t, third.ImageID, orchestrator.TestSpec{Name: "deps", Command: []string{"cat", "/deps/installed", "/app/app.py"}})
	if want := "pytest " + marker + " changed\nprint(2)\n"; !strings.HasPrefix(out.log, want) {
		t.Errorf("app image on the new base shows %q, want %q first", out.log, want)
	}

	delete(files, "requirements.txt")
	b.pipeline++
	_, _, err = b.build(t, p, files)
	if !isProjectFault(err) || !strings.Contains(err.Error(), "requirements.txt") {
		t.Errorf("Build() without the base input error = %v, want a project fault naming requirements.txt", err)
	}
}

// TestBaseSharedThroughRegistry: a base built by one engine is pushed; an engine without it
// (here: the same engine after the local copy is removed) pulls it instead of building it.
func TestBaseSharedThroughRegistry(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.project()
	repo := b.env.registry + "/" + strings.ReplaceAll(b.image, "/", "-")
	p.Base = &orchestrator.BaseSpec{Dockerfile: "Dockerfile.base", Inputs: []string{"requirements.txt"}, Image: repo + "-base"}
	files := map[string]string{
		"Dockerfile.base":  "FROM " + b.env.busybox + "\nCOPY requirements.txt /deps/\n",
		"requirements.txt": "pytest " + randomHex(8) + "\n",
		"Dockerfile":       "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY . /app\n",
	}
	first, log, err := b.build(t, p, files)
	if err != nil || !first.BaseBuilt || !strings.Contains(log, "pushed base image "+first.BaseImage) {
		t.Fatalf("first build = %+v, %v, want the base built and pushed; log:\n%s", first, err, log)
	}
	t.Cleanup(func() { b.removeImages(t, first.BaseImage) })
	if err := b.d.RemoveImage(t.Context(), first.BaseImage); err != nil {
		t.Fatal(err)
	}
	second, log, err := b.build(t, p, files)
	if err != nil || second.BaseBuilt || second.BaseImage != first.BaseImage || !strings.Contains(log, "pulled from the registry") {
		t.Errorf("second build = %+v, %v, want the same base pulled, not built; log:\n%s", second, err, log)
	}
}

// TestTestImageSharedAcrossEngines: with ShareImages the build pushes the test image; a test on
// an engine without it (here: after the local image is removed) pulls exactly that image.
func TestTestImageSharedAcrossEngines(t *testing.T) {
	t.Parallel()
	b := setup(t)
	shared, err := Connect(t.Context(), Options{
		Registries:  []Registry{{Host: b.env.registry, Username: b.env.user, Password: b.env.password}},
		ShareImages: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	b.d = shared
	p := b.project()
	p.Image = b.env.registry + "/" + strings.ReplaceAll(b.image, "/", "-")
	res, log, err := b.build(t, p, map[string]string{"Dockerfile": "FROM " + b.env.busybox + "\nCOPY . /app\n", "ok.sh": "echo shared\n"})
	if err != nil || !strings.Contains(log, "pushed test image "+res.ImageRef) {
		t.Fatalf("Build(ShareImages) = %+v, %v, want the test image pushed; log:\n%s", res, err, log)
	}
	if err := shared.Discard(t.Context(), res.ImageID); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shared.Discard(context.Background(), res.ImageID) })
	var out bytes.Buffer
	got, err := shared.Test(t.Context(), orchestrator.TestRequest{PipelineID: b.pipeline, Project: p.Path, ImageID: res.ImageID, ImageRef: res.ImageRef,
		Test: orchestrator.TestSpec{Name: "shared", Command: []string{"sh", "/app/ok.sh"}, Timeout: time.Minute}}, &out)
	if err != nil || got.ExitCode != 0 || !strings.Contains(out.String(), "pulled test image") {
		t.Errorf("Test on an engine without the image = %+v, %v, want it pulled and passing; log:\n%s", got, err, out.String())
	}
}

// isHex reports whether s is n lower-case hex digits.
func isHex(s string, n int) bool {
	_, err := hex.DecodeString(s)
	return len(s) == n && err == nil && strings.ToLower(s) == s
}
