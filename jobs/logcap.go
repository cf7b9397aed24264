package jobs

import (
	"fmt"
	"io"
)

// cappedWriter passes the first limit bytes of a build's or a test's output to the job log,
// then one line that says the rest was left out, and swallows the rest: the build or the
// container goes on, and its stream must be drained to its end to know how it ended.
type cappedWriter struct {
	w           io.Writer
	left, limit int64
	truncated   bool
}

func newCappedWriter(w io.Writer, limit int64) *cappedWriter {
	return &cappedWriter{w: w, left: limit, limit: limit}
}

func (c *cappedWriter) Write(p []byte) (int, error) {
	if c.truncated {
		return len(p), nil
	}
	if int64(len(p)) <= c.left {
		n, err := c.w.Write(p)
		c.left -= int64(n)
		return n, err
	}
	if _, err := c.w.Write(p[:c.left]); err != nil {
		return 0, err
	}
	c.left, c.truncated = 0, true
	if _, err := fmt.Fprintf(c.w, "\n… output truncated after %g MiB\n", float64(c.limit)/(1<<20)); err != nil {
		return 0, err
	}
	return len(p), nil
}
