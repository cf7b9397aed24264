package main

import (
	"io"
	"unicode/utf8"
)

// terminalSafe passes a job's log to a terminal without its control sequences. A job's output
// is written by whoever pushed the code under test: escape sequences in it could retitle the
// window, rewrite what was printed before, or on some terminals answer back as if typed. Line
// feeds and tabs pass; every other C0 control, DEL, the C1 controls and whole escape sequences
// (CSI, OSC, DCS and the like, up to their final byte or string terminator) are dropped.
//
// Written here because the ANSI libraries at hand (charmbracelet/x/ansi's Strip and the like)
// take whole strings, and a followed log arrives in chunks that may cut a sequence in two: this
// keeps its state across writes.
type terminalSafe struct {
	w     io.Writer
	state escState
	// pending holds the start of a UTF-8 character cut at the end of a write.
	pending []byte
}

type escState int

const (
	escNone   escState = iota
	escStart           // after ESC
	escCSI             // ESC [ … final byte 0x40–0x7e
	escString          // ESC ] / P / X / ^ / _ … BEL or ESC \
	escStrESC          // ESC inside a string: the terminator's first half
)

func (t *terminalSafe) Write(p []byte) (int, error) {
	n := len(p)
	buf := append(t.pending, p...)
	t.pending = nil
	out := make([]byte, 0, len(buf))
	for i := 0; i < len(buf); {
		b := buf[i]
		switch t.state {
		case escStart:
			switch b {
			case '[':
				t.state = escCSI
			case ']', 'P', 'X', '^', '_':
				t.state = escString
			default:
				t.state = escNone // a two-byte sequence (ESC c, ESC 7, …): dropped whole
			}
			i++
			continue
		case escCSI:
			if b >= 0x40 && b <= 0x7e {
				t.state = escNone
			}
			i++
			continue
		case escString:
			switch b {
			case 0x07:
				t.state = escNone
			case 0x1b:
				t.state = escStrESC
			}
			i++
			continue
		case escStrESC:
			t.state = escString
			if b == '\\' {
				t.state = escNone
			}
			i++
			continue
		}
		if b < utf8.RuneSelf {
			switch {
			case b == 0x1b:
				t.state = escStart
			case b == '\n' || b == '\t' || (b >= 0x20 && b != 0x7f):
				out = append(out, b)
			}
			i++
			continue
		}
		if !utf8.FullRune(buf[i:]) {
			t.pending = append([]byte(nil), buf[i:]...)
			break
		}
		r, size := utf8.DecodeRune(buf[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			out = append(out, "\uFFFD"...)
		case r >= 0x80 && r <= 0x9f: // C1 controls, CSI among them
		default:
			out = append(out, buf[i:i+size]...)
		}
		i += size
	}
	if _, err := t.w.Write(out); err != nil {
		return 0, err
	}
	return n, nil
}
