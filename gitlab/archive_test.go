package gitlab

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/google/go-cmp/cmp"
)

// files reads a tar stream's regular files, path → content, dropping the first path component
// when strip is set (the folder GitLab puts everything in).
func files(t *testing.T, r io.Reader, strip bool) map[string]string {
	t.Helper()
	out := map[string]string{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := h.Name
		if strip {
			_, name, _ = strings.Cut(name, "/")
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = string(data)
	}
}

func TestArchive(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc, err := b.c.Archive(context.Background(), b.proj.ID, b.sha)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		t.Fatal(err)
	}
	got := files(t, zr, true)

	cmd := exec.Command("git", "archive", "--format=tar", b.sha)
	cmd.Dir = b.repo.Dir
	want, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(files(t, bytes.NewReader(want), false), got); diff != "" {
		t.Errorf("archive content (-git archive +streamed):\n%s", diff)
	}
	if len(got) != 4 {
		t.Errorf("archive has %d files, want the 4 committed", len(got))
	}
}

func TestArchiveNotFound(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tc := range []struct {
		project int64
		sha     string
	}{{b.proj.ID, strings.Repeat("0", 40)}, {999, b.sha}} {
		rc, err := b.c.Archive(context.Background(), tc.project, tc.sha)
		if !errors.Is(err, orchestrator.ErrNotFound) || rc != nil {
			t.Errorf("Archive(%d, %s) = %v, %v; want orchestrator.ErrNotFound", tc.project, tc.sha, rc, err)
		}
		if err != nil && strings.Contains(err.Error(), b.srv.Token) {
			t.Errorf("Archive error %q shows the token", err)
		}
	}
	if len(b.slept()) != 0 {
		t.Errorf("waits %v, want a 404 not retried", b.slept())
	}
}

func TestArchiveRetried(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.srv.FailNext(1, 502)
	rc, err := b.c.Archive(context.Background(), b.proj.ID, b.sha)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Errorf("reading the archive after a 502: %v", err)
	}
	if len(b.slept()) != 1 {
		t.Errorf("waits %v, want one", b.slept())
	}
}

func TestArchiveTransferError(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.srv.CutNextArchive()
	rc, err := b.c.Archive(context.Background(), b.proj.ID, b.sha)
	if err != nil {
		t.Fatalf("Archive of a download that breaks later: %v, want the reader", err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("reading a cut archive: error = %v, want unexpected EOF", err)
	}
}

func TestArchiveCloseEarly(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc, err := b.c.Archive(context.Background(), b.proj.ID, b.sha)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Read(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	// Close returns only once the download goroutine has ended.
	if err := rc.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	if _, err := rc.Read(make([]byte, 10)); err == nil {
		t.Error("Read after Close succeeded")
	}
}
