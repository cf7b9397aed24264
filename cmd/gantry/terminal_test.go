package main

import (
	"bytes"
	"testing"
)

// TestTerminalSafe: what a hostile test could print to take over the reader's terminal is
// dropped, whatever write boundaries cut it, and ordinary output (UTF-8 included) passes.
func TestTerminalSafe(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"3 passed\n", "3 passed\n"},
		{"\x1b[32mok\x1b[0m\n", "ok\n"},
		{"title\x1b]0;pwned\x07 after\n", "title after\n"},
		{"osc\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\\n", "osclink\n"},
		{"clear\x1b[2J\x1b[H\x1bc\n", "clear\n"},
		{"dcs\x1bPq#0;2;0;0;0\x1b\\end\n", "dcsend\n"},
		{"bell\a back\b cr\r del\x7f\n", "bell back cr del\n"},
		{"c1 \u009b31m csi\n", "c1 31m csi\n"},
		{"héllo → wörld\ttab\n", "héllo → wörld\ttab\n"},
	}
	for _, tt := range tests {
		// Every split of the input into two writes gives the same output.
		for cut := 0; cut <= len(tt.in); cut++ {
			var out bytes.Buffer
			w := &terminalSafe{w: &out}
			for _, part := range []string{tt.in[:cut], tt.in[cut:]} {
				if n, err := w.Write([]byte(part)); n != len(part) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", part, n, err)
				}
			}
			if out.String() != tt.want {
				t.Errorf("terminalSafe(%q cut at %d) = %q, want %q", tt.in, cut, out.String(), tt.want)
				break
			}
		}
	}
}
