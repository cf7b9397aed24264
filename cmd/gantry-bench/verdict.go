package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// verdicts is the final table of a benchmark: one row per target, PASS or FAIL, and rows for
// figures the issue gives no target for, so that every number a reader looks for is in one place.
type verdicts struct {
	rows   [][3]string
	missed []string
}

// check adds a target row.
func (v *verdicts) check(name, figure string, ok bool) {
	verdict := "PASS"
	if !ok {
		verdict = "FAIL"
		v.missed = append(v.missed, name)
	}
	v.rows = append(v.rows, [3]string{name, figure, verdict})
}

// figure adds a row without a target.
func (v *verdicts) figure(name, figure string) {
	v.rows = append(v.rows, [3]string{name, figure, "(no target)"})
}

// print writes the table and returns an error naming the targets missed, so that the command
// exits non-zero and a CI step shows which.
func (v *verdicts) print(w io.Writer) error {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\tfigure\tresult\t")
	for _, r := range v.rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t\n", r[0], r[1], r[2])
	}
	tw.Flush()
	if len(v.missed) > 0 {
		return errors.New("targets missed: " + strings.Join(v.missed, "; "))
	}
	return nil
}

// percentile is the nearest-rank percentile (p in 0–100) of durations: the smallest sample
// that at least p% of the samples do not exceed. With 200 samples, p99 is the 198th.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(ds))
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

// medianDuration is the median of durations, the mean of the middle two for an even count.
func medianDuration(ds []time.Duration) time.Duration {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = float64(d)
	}
	return time.Duration(median(xs))
}

// ms shows a duration in milliseconds with one decimal, the unit every figure here reads best in.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

// secs shows a duration in seconds with two decimals.
func secs(d time.Duration) string {
	return fmt.Sprintf("%.2f s", d.Seconds())
}
