package webhook

import (
	"bytes"
	"errors"
	"fmt"
)

// maxDepth bounds how deeply a payload's arrays and objects nest. GitLab's payloads nest 4
// deep at most (TestFixturesNestShallow measures client-go's whole testdata), so 64 refuses
// nothing GitLab sends while keeping every recursive decoder far from the stack's end.
const maxDepth = 64

// errTooDeep is returned for a body nested deeper than maxDepth.
var errTooDeep = errors.New("JSON nested too deeply")

// checkDepth refuses a body nested deeper than maxDepth, in one pass that does not recurse.
//
// It is written here because no decoder gantry uses bounds nesting: segmentio's decoder
// recurses without limit (a 4.5 MB `[[[…` overflowed the stack, a fatal error), client-go's
// ParseHook and encoding/json stop at 10,000, and segmentio's Tokenizer, which tracks depth,
// would tokenize the whole body (numbers, literals) where this only looks for brackets and
// strings.
func checkDepth(b []byte) error {
	if d := nestingDepth(b, maxDepth); d > maxDepth {
		return fmt.Errorf("%w: more than %d levels", errTooDeep, maxDepth)
	}
	return nil
}

// nestingDepth returns how deeply JSON text b nests arrays and objects, counting the brackets
// outside strings, and stops counting once past limit. It agrees with a decoder on any valid
// prefix of the text, which is all a decoder reads before it fails; a closing bracket never
// takes the depth below 0, so surplus closings cannot pay for later openings.
func nestingDepth(b []byte, limit int) int {
	depth, deepest := 0, 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			end := stringEnd(b, i)
			if end < 0 {
				return deepest // an unterminated string: no decoder goes past it
			}
			i = end
		case '[', '{':
			depth++
			if depth > deepest {
				deepest = depth
				if deepest > limit {
					return deepest
				}
			}
		case ']', '}':
			if depth > 0 {
				depth--
			}
		}
	}
	return deepest
}

// stringEnd returns the index of the quote that closes the string opening at b[open], or -1.
// A quote is escaped when an odd number of backslashes precede it. Each run of backslashes is
// counted once, so the pass stays linear.
func stringEnd(b []byte, open int) int {
	for from := open + 1; ; {
		q := bytes.IndexByte(b[from:], '"')
		if q < 0 {
			return -1
		}
		q += from
		n := 0
		for j := q - 1; j > open && b[j] == '\\'; j-- {
			n++
		}
		if n%2 == 0 {
			return q
		}
		from = q + 1
	}
}
