package api

import (
	"strconv"
	"unicode/utf8"
)

// Job logs are what containers printed, and Docker's build output and test runners colour them
// with SGR escape codes (ESC [ … m). The page shows those colours as spans with classes and
// drops every other escape sequence (cursor moves, OSC titles and OSC 8 hyperlinks, DCS, …) and
// control character: none of them ever reaches the page, escaped or not.
//
// Written by hand rather than with a library: the Go ones found (robert-nix/ansihtml,
// buildkite/terminal-to-html) write colours as inline style attributes, which the pages' CSP
// (style-src 'self') refuses, or turn OSC 8 hyperlinks and iTerm images into links and images,
// or emulate a screen for cursor moves, work a hostile log could make large; none renders line
// by line, which line anchors need. And gantry.js renders a followed log by these same rules
// (renderLine there), which only a rule set this small can be kept equal to.
//
// The work is one pass over the text: every byte is looked at a bounded number of times, and a
// sequence's parameters beyond maxSGRParams are ignored, as xterm does.

// maxSGRParams is how many parameters of one SGR sequence are read (xterm reads 30).
const maxSGRParams = 32

// sgr is the style a log has reached. Colours are 0 for the page's own, else 1 + one of the 16
// basic colours: 256-colour and RGB codes are brought to the nearest of them, since each
// colour needs a class in gantry.css (inline styles are refused by the CSP).
type sgr struct {
	fg, bg                         uint8
	bold, faint, italic, underline bool
}

// class is the span class of the style, "" for the page's own.
func (s sgr) class() string {
	var b []byte
	add := func(c string) {
		if len(b) > 0 {
			b = append(b, ' ')
		}
		b = append(b, c...)
	}
	if s.fg != 0 {
		add("fg" + strconv.Itoa(int(s.fg)-1))
	}
	if s.bg != 0 {
		add("bg" + strconv.Itoa(int(s.bg)-1))
	}
	for _, f := range []struct {
		on   bool
		name string
	}{{s.bold, "bold"}, {s.faint, "faint"}, {s.italic, "italic"}, {s.underline, "underline"}} {
		if f.on {
			add(f.name)
		}
	}
	return string(b)
}

// apply changes the style by the parameters of one ESC [ … m ("1;31", "38;5;196", "" for a
// reset). A parameter with a private marker (<=>?) makes it no SGR; unknown codes are ignored.
func (s *sgr) apply(params string) {
	var codes [maxSGRParams]int
	n, cur := 0, 0
	for i := 0; i <= len(params); i++ {
		if i == len(params) || params[i] == ';' || params[i] == ':' {
			if n < len(codes) {
				codes[n] = cur
				n++
			}
			cur = 0
			continue
		}
		c := params[i]
		if c < '0' || c > '9' {
			return
		}
		cur = min(cur*10+int(c-'0'), 1<<16)
	}
	s.set(codes[:n])
}

func (s *sgr) set(codes []int) {
	for i := 0; i < len(codes); i++ {
		switch c := codes[i]; {
		case c == 0:
			*s = sgr{}
		case c == 1:
			s.bold = true
		case c == 2:
			s.faint = true
		case c == 3:
			s.italic = true
		case c == 4:
			s.underline = true
		case c == 22:
			s.bold, s.faint = false, false
		case c == 23:
			s.italic = false
		case c == 24:
			s.underline = false
		case c >= 30 && c <= 37:
			s.fg = uint8(c - 30 + 1)
		case c >= 90 && c <= 97:
			s.fg = uint8(c - 90 + 8 + 1)
		case c == 39:
			s.fg = 0
		case c >= 40 && c <= 47:
			s.bg = uint8(c - 40 + 1)
		case c >= 100 && c <= 107:
			s.bg = uint8(c - 100 + 8 + 1)
		case c == 49:
			s.bg = 0
		case c == 38 || c == 48:
			col, used := extendedColor(codes[i+1:])
			i += used
			if col == 0 {
				continue
			}
			if c == 38 {
				s.fg = col
			} else {
				s.bg = col
			}
		}
	}
}

// extendedColor reads the rest of a 38 or 48 code: 5;n (256 colours) or 2;r;g;b. It returns the
// colour (0 when there is none) and how many codes it used.
func extendedColor(rest []int) (uint8, int) {
	switch {
	case len(rest) >= 2 && rest[0] == 5:
		if rest[1] > 255 {
			return 0, 2
		}
		return 1 + palette16(rest[1]), 2
	case len(rest) >= 4 && rest[0] == 2:
		if rest[1] > 255 || rest[2] > 255 || rest[3] > 255 {
			return 0, 4
		}
		return 1 + cube16(rest[1]*6/256, rest[2]*6/256, rest[3]*6/256), 4
	case len(rest) >= 1 && (rest[0] == 5 || rest[0] == 2):
		return 0, len(rest) // cut short: nothing after it is a code of its own
	}
	return 0, 0
}

// palette16 brings a colour of xterm's 256 to the nearest of the basic 16.
func palette16(n int) uint8 {
	switch {
	case n < 16:
		return uint8(n)
	case n < 232: // the 6×6×6 cube
		n -= 16
		return cube16(n/36, n/6%6, n%6)
	}
	switch grey := n - 232; { // 24 greys, dark to light
	case grey < 6:
		return 0
	case grey < 12:
		return 8
	case grey < 18:
		return 7
	}
	return 15
}

// cube16 brings a colour with components 0–5 to the nearest basic colour: a component of 3 or
// more is on, and the colour is bright when one is at 5.
func cube16(r, g, b int) uint8 {
	hi := max(r, g, b)
	var c uint8
	if r >= 3 {
		c |= 1
	}
	if g >= 3 {
		c |= 2
	}
	if b >= 3 {
		c |= 4
	}
	switch {
	case c == 0 && hi >= 2:
		return 8 // dark grey
	case hi == 5:
		return c + 8
	}
	return c
}

// lineWriter renders one line of a log, escaped, with its style spans.
type lineWriter struct {
	out   []byte
	start int  // where the line's text begins in out
	st    *sgr // the style, carried from line to line
	seg   bool // a segment of text has begun; its style is segSt
	segSt sgr
	span  bool // a span is open
	cr    bool // a carriage return came: the next text overwrites the line
}

// renderLine appends one line of a log (without its newline) to out as HTML.
func renderLine(out []byte, line string, st *sgr) []byte {
	w := lineWriter{out: out, start: len(out), st: st}
	for i := 0; i < len(line); {
		r, size := utf8.DecodeRuneInString(line[i:])
		switch {
		case r == 0x1b:
			i = w.escape(line, i+1)
			continue
		case r == 0x9b: // CSI as one C1 control
			i = w.csi(line, i+size)
			continue
		case r == 0x90 || r == 0x98 || r == 0x9d || r == 0x9e || r == 0x9f: // DCS, SOS, OSC, PM, APC
			i = skipString(line, i+size)
			continue
		case r == '\r':
			w.cr = true
		case r == '\t' || (r >= 0x20 && r < 0x7f) || r >= 0xa0: // invalid UTF-8 is U+FFFD here
			w.text(r)
		}
		i += size // any other control character is dropped
	}
	if w.span {
		w.out = append(w.out, "</span>"...)
	}
	return w.out
}

// escape reads the sequence after an ESC at j and returns where the text goes on.
func (w *lineWriter) escape(line string, j int) int {
	if j >= len(line) {
		return j
	}
	switch c := line[j]; {
	case c == '[':
		return w.csi(line, j+1)
	case c == ']' || c == 'P' || c == 'X' || c == '^' || c == '_':
		return skipString(line, j+1)
	case c >= 0x20 && c <= 0x2f: // intermediate bytes, then a final byte
		for j < len(line) && line[j] >= 0x20 && line[j] <= 0x2f {
			j++
		}
		if j < len(line) && line[j] >= 0x30 && line[j] <= 0x7e {
			j++
		}
		return j
	case c >= 0x30 && c <= 0x7e:
		return j + 1
	}
	return j // an ESC before anything else goes alone
}

// csi reads a control sequence from its parameters at j; only SGR (final byte m) has an effect.
// One cut off or broken by a byte it may not hold is dropped up to that byte.
func (w *lineWriter) csi(line string, j int) int {
	start := j
	for j < len(line) && line[j] >= 0x30 && line[j] <= 0x3f {
		j++
	}
	params, inter := line[start:j], j
	for j < len(line) && line[j] >= 0x20 && line[j] <= 0x2f {
		j++
	}
	if j >= len(line) || line[j] < 0x40 || line[j] > 0x7e {
		return j
	}
	if line[j] == 'm' && j == inter {
		w.st.apply(params)
	}
	return j + 1
}

// skipString skips a control string (OSC, DCS, …) up to its terminator: BEL, ESC \ or the C1
// ST. One never terminated takes the rest of the line.
func skipString(line string, j int) int {
	for ; j < len(line); j++ {
		switch {
		case line[j] == 0x07:
			return j + 1
		case line[j] == 0x1b && j+1 < len(line) && line[j+1] == '\\':
			return j + 2
		case line[j] == 0xc2 && j+1 < len(line) && line[j+1] == 0x9c:
			return j + 2
		}
	}
	return j
}

// text writes one character in the current style.
func (w *lineWriter) text(r rune) {
	if w.cr { // a progress bar redrawing its line: the line shows what was drawn last
		w.out, w.seg, w.span, w.cr = w.out[:w.start], false, false, false
	}
	if !w.seg || w.segSt != *w.st {
		if w.span {
			w.out = append(w.out, "</span>"...)
		}
		c := w.st.class()
		if w.span = c != ""; w.span {
			w.out = append(w.out, `<span class="`...)
			w.out = append(w.out, c...)
			w.out = append(w.out, `">`...)
		}
		w.seg, w.segSt = true, *w.st
	}
	switch r {
	case '<':
		w.out = append(w.out, "&lt;"...)
	case '>':
		w.out = append(w.out, "&gt;"...)
	case '&':
		w.out = append(w.out, "&amp;"...)
	case '"':
		w.out = append(w.out, "&#34;"...)
	case '\'':
		w.out = append(w.out, "&#39;"...)
	default:
		w.out = utf8.AppendRune(w.out, r)
	}
}
