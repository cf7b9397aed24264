package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// newCapped is a store whose logs keep at most logCap bytes.
func newCapped(t *testing.T, b testBundle, logCap int) *Store {
	t.Helper()
	s := New(b.rdb, Options{LogCap: logCap})
	t.Cleanup(func() { s.Close() })
	return s
}

func TestLogCapKeepsTheTail(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	s := newCapped(t, b, 1024)
	var all strings.Builder
	for i := range 200 {
		line := fmt.Sprintf("line %03d\n", i) // 9 bytes
		all.WriteString(line)
		if err := s.AppendLog(ctx, 1, "test/unit", 2, []byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	kept, err := b.rdb.Get(ctx, s.keyLog(1, "test/unit", 2)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(kept) > 1024 || !strings.HasSuffix(all.String(), kept) {
		t.Fatalf("kept %d bytes %q, want at most 1024 bytes ending the output", len(kept), kept)
	}
	dropped := all.Len() - len(kept)
	got, err := s.Log(ctx, 1, "test/unit", 2)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("[gantry: the first %d bytes of this log were dropped to stay under the 1 KiB cap]\n", dropped) + kept
	if got != want {
		t.Errorf("Log = %q, want %q", got, want)
	}
	if _, next, _ := s.LogFrom(ctx, 1, "test/unit", 2, 0); next != int64(all.Len()) {
		t.Errorf("LogFrom(0) next = %d, want %d (every byte written)", next, all.Len())
	}
}

// TestLogFollowByOffset reads along while the head is cut: every byte arrives once, in order.
func TestLogFollowByOffset(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	s := newCapped(t, b, 64)
	var all, read strings.Builder
	var next int64
	for i := range 100 {
		chunk := fmt.Sprintf("%d,", i)
		all.WriteString(chunk)
		if err := s.AppendLog(ctx, 1, "build", 1, []byte(chunk)); err != nil {
			t.Fatal(err)
		}
		var text string
		var err error
		text, next, err = s.LogFrom(ctx, 1, "build", 1, next)
		if err != nil {
			t.Fatal(err)
		}
		read.WriteString(text)
	}
	if read.String() != all.String() {
		t.Errorf("followed log = %q, want %q", read.String(), all.String())
	}
	// A reader that fell behind is told how much it missed, then gets the kept tail.
	dropped, _ := b.rdb.Get(ctx, s.keyLogDropped(1, "build", 1)).Int64()
	kept := b.rdb.Get(ctx, s.keyLog(1, "build", 1)).Val()
	want := fmt.Sprintf("[gantry: %d more bytes of this log were dropped to stay under the 64 bytes cap]\n", dropped-10) + kept
	if text, end, _ := s.LogFrom(ctx, 1, "build", 1, 10); text != want || end != next {
		t.Errorf("LogFrom(10) = %q, %d; want %q, %d: a note on the bytes missed since 10, then the kept tail", text, end, want, next)
	}
	// Nothing new: nothing read, and the offset stays.
	if text, again, _ := s.LogFrom(ctx, 1, "build", 1, next); text != "" || again != next {
		t.Errorf("LogFrom(end) = %q, %d; want \"\", %d", text, again, next)
	}
}

func TestLogCapKeepsCharactersWhole(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	s := newCapped(t, b, 100)
	for range 40 {
		if err := s.AppendLog(ctx, 1, "build", 1, []byte("é€😀")); err != nil { // 2+3+4 bytes
			t.Fatal(err)
		}
		got, err := s.Log(ctx, 1, "build", 1)
		if err != nil {
			t.Fatal(err)
		}
		if !utf8.ValidString(got) {
			t.Fatalf("Log = %q, not valid UTF-8", got)
		}
	}
	tail, _, _ := s.LogFrom(ctx, 1, "build", 1, -10)
	if !utf8.ValidString(tail) || !strings.HasPrefix(tail, "[gantry: the first ") || !strings.HasSuffix(tail, "😀") {
		t.Errorf("LogFrom(-10) = %q, want a note and the last whole characters", tail)
	}
}

func TestLogOfNothing(t *testing.T) {
	b := setup(t)
	text, next, err := b.store.LogFrom(context.Background(), 9, "release", 1, 0)
	if text != "" || next != 0 || err != nil {
		t.Errorf("LogFrom(no log) = %q, %d, %v; want \"\", 0, nil", text, next, err)
	}
}

func TestSizeText(t *testing.T) {
	for n, want := range map[int]string{1 << 20: "1 MiB", 3 << 20: "3 MiB", 64 << 10: "64 KiB", 1000: "1000 bytes", 1<<20 + 1: "1048577 bytes"} {
		if got := sizeText(n); got != want {
			t.Errorf("sizeText(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestLogFromOddBytes: a log is the job's bytes, valid UTF-8 or not. Read from the start it
// comes back whole whatever its first byte; a tail read skips at most the three bytes left of a
// character it cut into, says how many bytes it leaves out, and gives the offset after the
// last byte; the tail of an empty log is empty.
func TestLogFromOddBytes(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	for i, c := range []struct {
		name, log string
		offset    int64
		want      string
		next      int64
	}{
		{"from the start, a stray continuation byte first", "\x80ab", 0, "\x80ab", 3},
		{"tail cut into a character", "é€😀", -5, "[gantry: the first 5 bytes of this log are not shown here]\n😀", 9},
		{"tail in a run of stray continuation bytes", "ab\x80\x80\x80\x80x", -5, "[gantry: the first 5 bytes of this log are not shown here]\n\x80x", 7},
		{"tail of an empty log", "", -10, "", 0},
	} {
		id := int64(i + 1)
		if err := b.store.AppendLog(ctx, id, "build", 1, []byte(c.log)); err != nil {
			t.Fatal(err)
		}
		text, next, err := b.store.LogFrom(ctx, id, "build", 1, c.offset)
		if err != nil || text != c.want || next != c.next {
			t.Errorf("%s: LogFrom(%d) = %q, %d, %v; want %q, %d", c.name, c.offset, text, next, err, c.want, c.next)
		}
	}
}
