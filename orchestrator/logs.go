package orchestrator

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"text/template"
)

// logWriter sends a job attempt's output to the store as it comes, so the log can be followed
// while the job runs.
type logWriter struct {
	ctx      context.Context
	store    Store
	pipeline int64
	job      string
	attempt  int
}

func (w *logWriter) Write(p []byte) (int, error) {
	if err := w.store.AppendLog(context.WithoutCancel(w.ctx), w.pipeline, w.job, w.attempt, p); err != nil {
		return 0, fmt.Errorf("append log: %w", err)
	}
	return len(p), nil
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
		tags = append(tags, tag)
	}
	return tags, nil
}
