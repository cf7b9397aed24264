package orchestrator

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"text/template"
	"time"
)

// logWriter sends a job attempt's output to the store while the job runs, so the log can be
// followed. Output is gathered for at most logFlushDelay, or until logFlushSize bytes, and sent
// in one call: a test that prints line by line (PYTHONUNBUFFERED, pytest -v) would otherwise
// cost a Redis round trip per line. Close sends the rest; the log is whole once it returns.
type logWriter struct {
	ctx      context.Context
	store    Store
	pipeline int64
	job      string
	attempt  int

	mu    sync.Mutex
	buf   []byte
	timer *time.Timer // set while buf waits for a flush
	err   error       // the first failed flush: the log is broken from there on
}

const (
	logFlushDelay = 100 * time.Millisecond
	logFlushSize  = 64 << 10
)

func newLogWriter(ctx context.Context, store Store, pipeline int64, job string, attempt int) *logWriter {
	return &logWriter{ctx: ctx, store: store, pipeline: pipeline, job: job, attempt: attempt}
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	w.buf = append(w.buf, p...)
	if len(w.buf) >= logFlushSize {
		if err := w.flush(); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	if w.timer == nil {
		w.timer = time.AfterFunc(logFlushDelay, func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.flush()
		})
	}
	return len(p), nil
}

// Close sends what is gathered and reports whether the whole log reached the store.
func (w *logWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flush()
}

// flush sends buf; w.mu is held.
func (w *logWriter) flush() error {
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	if w.err != nil || len(w.buf) == 0 {
		return w.err
	}
	// The job's context may be cancelled (a cancel, a shutdown): its output is still kept.
	if err := w.store.AppendLog(context.WithoutCancel(w.ctx), w.pipeline, w.job, w.attempt, w.buf); err != nil {
		w.err = fmt.Errorf("append log: %w", err)
		return w.err
	}
	w.buf = w.buf[:0]
	return nil
}

// tailWriter passes output on and keeps its last few KiB, where a test runner's summary is.
type tailWriter struct {
	w   interface{ Write([]byte) (int, error) }
	mu  sync.Mutex
	buf []byte
}

const tailSize = 8 << 10

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailSize {
		t.buf = t.buf[len(t.buf)-tailSize:]
	}
	t.mu.Unlock()
	return t.w.Write(p)
}

func (t *tailWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// reservedTag reports whether a tag has the form of gantry's own test images (test-<id>, and a
// fork's fork-test-<id>), which live in the release repository: a release under such a tag (a
// pushed tag matching a loose tag_pattern) would replace one. Docker tags are case-sensitive,
// registries' storage not always, hence the fold.
func reservedTag(tag string) bool {
	lower := strings.ToLower(tag)
	return strings.HasPrefix(lower, "test-") || strings.HasPrefix(lower, "fork-")
}

// badTagChars are the characters a Docker tag may not hold; a ref like "feature/x" becomes
// "feature-x".
var badTagChars = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

func renderTags(templates []string, data TagData) ([]string, error) {
	tags := make([]string, 0, len(templates))
	for _, src := range templates {
		tmpl, err := template.New("tag").Option("missingkey=error").Parse(src)
		if err != nil {
			return nil, fmt.Errorf("tag %q: %w", src, err)
		}
		var b bytes.Buffer
		if err := tmpl.Execute(&b, data); err != nil {
			return nil, fmt.Errorf("tag %q: %w", src, err)
		}
		tag := strings.TrimLeft(badTagChars.ReplaceAllString(b.String(), "-"), ".-")
		if tag == "" || len(tag) > 128 {
			return nil, fmt.Errorf("tag %q renders to %q, not a valid Docker tag", src, b.String())
		}
		if reservedTag(tag) {
			return nil, fmt.Errorf("tag %q renders to %q, which names gantry's test images", src, tag)
		}
		tags = append(tags, tag)
	}
	return tags, nil
}
