package api

import (
	"regexp"
	"strings"
	"testing"
)

func TestRenderLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"plain text escaped", `<script>alert("x")</script> & 'y'`, `&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#39;y&#39;`},
		{"colour and reset", "\x1b[31mred\x1b[0m plain", `<span class="fg1">red</span> plain`},
		{"empty reset", "\x1b[1;92mok\x1b[m!", `<span class="fg10 bold">ok</span>!`},
		{"attributes", "\x1b[2;3;4mx\x1b[22;23;24my", `<span class="faint italic underline">x</span>y`},
		{"default foreground keeps background", "\x1b[31;44ma\x1b[39mb\x1b[49mc", `<span class="fg1 bg4">a</span><span class="bg4">b</span>c`},
		{"bright background", "\x1b[101mx", `<span class="bg9">x</span>`},
		{"256 colours to the nearest of 16", "\x1b[38;5;196ma\x1b[48;5;21mb\x1b[38;5;3mc\x1b[38;5;244md", `<span class="fg9">a</span><span class="fg9 bg12">b</span><span class="fg3 bg12">c</span><span class="fg7 bg12">d</span>`},
		{"256 colours: the palette's last", "\x1b[38;5;255mw", `<span class="fg15">w</span>`},
		{"256 colours: the greys and the cube's darkest", "\x1b[38;5;232ma\x1b[38;5;238mb\x1b[38;5;88mc", `<span class="fg0">a</span><span class="fg8">bc</span>`},
		{"256 colours: the cube's green", "\x1b[38;5;46mg", `<span class="fg10">g</span>`},
		{"256 colours: a cube component of 3 is on", "\x1b[38;5;124mr\x1b[38;5;34mg\x1b[38;5;19mb", `<span class="fg1">r</span><span class="fg2">g</span><span class="fg4">b</span>`},
		{"RGB to the nearest of 16", "\x1b[38;2;255;255;0my", `<span class="fg11">y</span>`},
		{"RGB with blue at 255", "\x1b[38;2;0;0;255mb", `<span class="fg12">b</span>`},
		{"colon sub-parameters", "\x1b[38:5:2mg", `<span class="fg2">g</span>`},
		{"256 colour out of range", "\x1b[38;5;999;1mz", `<span class="bold">z</span>`},
		{"extended colour cut short", "\x1b[38;5mz", `z`},
		{"unknown codes ignored", "\x1b[5;7;53;31mz", `<span class="fg1">z</span>`},
		{"style changes without text write nothing", "\x1b[31m\x1b[32m\x1b[0m\x1b[33mz", `<span class="fg3">z</span>`},
		{"OSC 8 hyperlink stripped, its text kept", "\x1b]8;;javascript:alert(1)\x1b\\click\x1b]8;;\x1b\\ me", `click me`},
		{"OSC ended by BEL", "\x1b]0;title\x07text", `text`},
		{"OSC ended by C1 ST", "\x1b]0;title\u009ctext", `text`},
		{"OSC unterminated takes the line", "abc\x1b]8;;http://evil.example/<b>", `abc`},
		{"C1 OSC", "\u009d8;;https://x\u009cok", `ok`},
		{"DCS and APC", "\x1bPq#0;2;0;0;0\x1b\\a\x1b_bk;t=1\x07b", `ab`},
		{"cursor moves and erases", "\x1b[2K\x1b[1G\x1b[3A\x1b[10;20Hdone", `done`},
		{"private modes", "\x1b[?25l\x1b[>4;2m\x1b[?2004hx", `x`},
		{"SGR with intermediate is not SGR", "\x1b[1 mx", `x`},
		{"C1 CSI", "\u009b31mred", `<span class="fg1">red</span>`},
		{"two-byte escapes", "\x1b7\x1b(B\x1b=x\x1b8", `x`},
		{"escape with the first and last intermediates, final ~", "\x1b /~x", `x`},
		{"charset designation with final 0", "\x1b(0x", `x`},
		{"escape cut after its intermediate", "ab\x1b(", `ab`},
		{"CSI with the last intermediate", "\x1b[1/mx", `x`},
		{"CSI with the first and last final bytes", "\x1b[2@a\x1b[3~b", `ab`},
		{"unterminated CSI", "abc\x1b[31", `abc`},
		{"lone ESC at the end", "abc\x1b", `abc`},
		{"ESC before a control", "a\x1b\x07b", `ab`},
		{"CSI broken by a control", "a\x1b[3\x07b", `ab`},
		{"CSI broken by text", "a\x1b[31;<script>", `acript&gt;`},
		{"control characters dropped, tab kept", "a\x00b\x08c\x7fd\u0085e\tf", "abcde\tf"},
		{"carriage return redraws the line", "\x1b[32m 10%\r 50%\r\x1b[1m100%", `<span class="fg2 bold">100%</span>`},
		{"trailing carriage return", "line\r", `line`},
		{"invalid UTF-8", "a\xffb\xc3", "a\ufffdb\ufffd"},
		{"wide characters", "✓ 日本 🚀", "✓ 日本 🚀"},
	}
	for _, tt := range tests {
		var st sgr
		if got := string(renderLine(nil, tt.in, &st)); got != tt.want {
			t.Errorf("%s: renderLine(%q) = %s, want %s", tt.name, tt.in, got, tt.want)
		}
	}
}

// TestRenderLineBounded: a log of thousands of codes, or one code with thousands of
// parameters, renders in one pass to output no bigger than a small multiple of itself.
func TestRenderLineBounded(t *testing.T) {
	t.Parallel()
	for name, in := range map[string]string{
		"many codes":           strings.Repeat("\x1b[31m\x1b[1;42m\x1b[0m", 50000) + "x",
		"many parameters":      "\x1b[" + strings.Repeat("38;5;196;", 100000) + "mx",
		"huge parameter":       "\x1b[" + strings.Repeat("9", 100000) + "mx",
		"alternating colours":  strings.Repeat("\x1b[31ma\x1b[32mb", 20000),
		"unterminated strings": strings.Repeat("\x1b]8;;", 50000),
		"many escapes":         strings.Repeat("\x1b", 100000),
	} {
		var st sgr
		out := renderLine(nil, in, &st)
		if len(out) > 8*len(in)+64 {
			t.Errorf("%s: %d bytes in, %d out", name, len(in), len(out))
		}
	}
}

// allowedMarkup is everything renderLine may write that is not text: spans of its classes.
var allowedMarkup = regexp.MustCompile(`<span class="(?:fg(?:1[0-5]|[0-9])|bg(?:1[0-5]|[0-9])|bold|faint|italic|underline)(?: (?:fg(?:1[0-5]|[0-9])|bg(?:1[0-5]|[0-9])|bold|faint|italic|underline))*">|</span>`)

// FuzzRenderLine: whatever a log holds, the line is text (escaped, no control character) and
// spans of the known classes, balanced.
func FuzzRenderLine(f *testing.F) {
	for _, s := range []string{"\x1b[31mred", "<b>\x1b]8;;javascript:x\x1b\\a", "\x1b[38;5;1;48;2;1;2;3m&\"'", "\r\x1b[", "\u009b1m\u009dx"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		in = strings.ReplaceAll(in, "\n", "")
		var st sgr
		out := string(renderLine(nil, in, &st))
		rest := allowedMarkup.ReplaceAllString(out, "")
		if strings.ContainsAny(rest, "<>\"'\x1b\x07\x00\r\n") || strings.ContainsFunc(rest, func(r rune) bool { return r < 0x20 && r != '\t' || r >= 0x7f && r < 0xa0 }) {
			t.Errorf("renderLine(%q) = %q: markup or controls outside its spans", in, out)
		}
		if opened, closed := strings.Count(out, "<span"), strings.Count(out, "</span>"); opened != closed {
			t.Errorf("renderLine(%q) = %q: %d spans opened, %d closed", in, out, opened, closed)
		}
	})
}
