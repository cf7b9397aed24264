package configs

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

const redacted = "[redacted]"

// Secret is a credential. Every way of printing or encoding it (fmt verbs,
// String, JSON, YAML, text) yields "[redacted]", so a Config can be logged or
// dumped without leaking; only Value returns the credential. An empty Secret
// prints as empty, which tells "not set" apart without revealing anything.
type Secret string

// Value returns the credential itself, for the one place that needs it.
func (s Secret) Value() string { return string(s) }

// String returns "[redacted]", or "" for an empty Secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// Format makes every fmt verb, including %#v and %x, print the redacted form;
// without it %x and %#v would reach the underlying string.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprint(f, strconv.Quote(s.String()))
		return
	}
	fmt.Fprint(f, s.String())
}

// MarshalJSON encodes the redacted form.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalYAML encodes the redacted form.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalText encodes the redacted form, for encoders such as log/slog that
// look for encoding.TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Duration is a time.Duration written as "90s", "10m" or "1h30m" in YAML.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string. A bare number is refused: "600"
// could mean seconds or minutes, and guessing wrong stops tests early.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("%q is not a duration (e.g. 90s, 10m, 1h30m)", b)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration the way UnmarshalText reads it.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// ByteSize is a number of bytes, written as a plain integer or with a unit:
// "512MiB", "1GiB", "256m", "512M". Units are binary whether or not the "i"
// is written, as in docker run --memory, because test limits go to Docker.
type ByteSize int64

// Binary units for ByteSize.
const (
	KiB ByteSize = 1 << (10 * (iota + 1))
	MiB
	GiB
	TiB
)

var byteSizePattern = regexp.MustCompile(`(?i)^([0-9]+(?:\.[0-9]+)?) ?(?:([kmgt])(?:i?b)?|b)?$`)

// UnmarshalText parses a size such as "512MiB".
func (s *ByteSize) UnmarshalText(b []byte) error {
	bad := fmt.Errorf("%q is not a byte size (e.g. 512MiB, 1GiB, 256m, 1048576)", b)
	m := byteSizePattern.FindStringSubmatch(strings.TrimSpace(string(b)))
	if m == nil {
		return bad
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return bad
	}
	if m[2] != "" {
		n *= float64(unitSize(m[2][0]))
	}
	if n >= math.MaxInt64 { // float64(math.MaxInt64) is 2^63, one past the largest int64
		return bad
	}
	*s = ByteSize(n)
	return nil
}

func unitSize(c byte) ByteSize {
	switch c | 0x20 { // lower-case an ASCII letter
	case 'k':
		return KiB
	case 'm':
		return MiB
	case 'g':
		return GiB
	default:
		return TiB
	}
}

// String writes the size in the largest binary unit that divides it exactly.
func (s ByteSize) String() string {
	for _, u := range []struct {
		size ByteSize
		name string
	}{{TiB, "TiB"}, {GiB, "GiB"}, {MiB, "MiB"}, {KiB, "KiB"}} {
		if s != 0 && s%u.size == 0 {
			return strconv.FormatInt(int64(s/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}

// MarshalText writes the size the way UnmarshalText reads it.
func (s ByteSize) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
