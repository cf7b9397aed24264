package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingStore counts AppendLog calls on top of the memory store, and can fail them.
type countingStore struct {
	*memStore
	appends atomic.Int64
	fail    atomic.Bool
}

func (c *countingStore) AppendLog(ctx context.Context, id int64, job string, attempt int, p []byte) error {
	c.appends.Add(1)
	if c.fail.Load() {
		return errors.New("redis: connection refused")
	}
	return c.memStore.AppendLog(ctx, id, job, attempt, p)
}

func newCountingStore() *countingStore {
	return &countingStore{memStore: &memStore{pipelines: map[int64]*Pipeline{}, released: map[string]string{}, logs: map[string]string{}}}
}

func (c *countingStore) log() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.logs["1/test/unit/1"]
}

// TestLogWriterGathersLines: a test printing line by line costs a store call per batch, not
// per line, and nothing is lost or reordered.
func TestLogWriterGathersLines(t *testing.T) {
	t.Parallel()
	st := newCountingStore()
	w := newLogWriter(context.Background(), st, 1, "test/unit", 1)
	var want strings.Builder
	for i := range 20000 {
		line := fmt.Sprintf("test_%05d PASSED\n", i)
		want.WriteString(line)
		if _, err := w.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := st.log(); got != want.String() {
		t.Fatalf("log has %d bytes, want the %d written, in order", len(got), want.Len())
	}
	// 20,000 lines of 17 bytes are 340,000 bytes: six batches of 64 KiB, or a few more when a
	// delay ran out first.
	if n := st.appends.Load(); n > 50 {
		t.Errorf("%d store calls for 20,000 lines, want a few batches", n)
	}
}

// TestLogWriterFlushesWhileRunning: output reaches the store without Close, so a running job's
// log can be followed.
func TestLogWriterFlushesWhileRunning(t *testing.T) {
	t.Parallel()
	st := newCountingStore()
	w := newLogWriter(context.Background(), st, 1, "test/unit", 1)
	w.Write([]byte("collecting ...\n"))
	deadline := time.Now().Add(5 * time.Second)
	for st.log() != "collecting ...\n" {
		if time.Now().After(deadline) {
			t.Fatal("output of a running job never reached the store")
		}
		time.Sleep(10 * time.Millisecond)
	}
	w.Close()
}

// TestLogWriterReportsFailure: once the store refuses output, writes fail, so the executor
// learns its output is not kept.
func TestLogWriterReportsFailure(t *testing.T) {
	t.Parallel()
	st := newCountingStore()
	st.fail.Store(true)
	w := newLogWriter(context.Background(), st, 1, "test/unit", 1)
	w.Write([]byte("lost\n"))
	if err := w.Close(); err == nil {
		t.Fatal("Close = nil after the store refused the output")
	}
	if _, err := w.Write([]byte("more\n")); err == nil {
		t.Error("Write = nil after the store refused earlier output")
	}
}

// TestLogWriterFlushesAtTheSize: a write that fills a batch (64 KiB) reaches the store at once,
// without waiting for the delay, and is reported written whole.
func TestLogWriterFlushesAtTheSize(t *testing.T) {
	t.Parallel()
	st := newCountingStore()
	w := newLogWriter(context.Background(), st, 1, "test/unit", 1)
	defer w.Close()
	batch := strings.Repeat("x", logFlushSize)
	if n, err := w.Write([]byte(batch)); n != len(batch) || err != nil {
		t.Fatalf("Write(64 KiB) = %d, %v, want %d, nil", n, err, len(batch))
	}
	if got := st.log(); got != batch {
		t.Errorf("store holds %d bytes right after a 64 KiB write, want all %d", len(got), len(batch))
	}
}
