package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// The targets for the intake.
const (
	minRatio = 0.60
	maxP99   = 10 * time.Millisecond
)

// report prints every round, the medians, and the targets; it returns an error naming the
// targets missed, so a CI step can show them.
func report(w io.Writer, rounds []round, connections int) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "round\tfloor req/s\tfloor p99\tfloor ≥400\tintake req/s\tratio\tintake p50\tintake p99\tintake ≥400\tno answer\t2xx (wrk)\t2xx (server)\tstored\t")
	var floorRPS, intakeRPS, ratios, p50s, p99s []float64
	storedOK, timeouts := true, int64(0)
	var stored, answered, seen int64
	for i, r := range rounds {
		f, in := r.floor.wrk, r.intake.wrk
		ratio := in.RPS() / f.RPS()
		fmt.Fprintf(tw, "%d\t%.0f\t%s\t%d\t%.0f\t%.2f\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t\n", i+1,
			f.RPS(), us(f.P99), f.Status, in.RPS(), ratio, us(in.P50), us(in.P99),
			in.Status, in.SocketErrors(), in.OK(), r.intake.answered2xx, r.intake.stored)
		floorRPS, intakeRPS, ratios = append(floorRPS, f.RPS()), append(intakeRPS, in.RPS()), append(ratios, ratio)
		p50s, p99s = append(p50s, float64(in.P50)), append(p99s, float64(in.P99))
		timeouts += in.Timeout
		storedOK = storedOK && storedMatches(r.intake, connections)
		stored, answered, seen = stored+r.intake.stored, answered+r.intake.answered2xx, seen+in.OK()
	}
	fmt.Fprintf(tw, "median\t%.0f\t\t\t%.0f\t%.2f\t%s\t%s\t\t\t\t\t\t\n",
		median(floorRPS), median(intakeRPS), median(ratios), us(int64(median(p50s))), us(int64(median(p99s))))
	tw.Flush()

	ratio, p99 := median(ratios), time.Duration(median(p99s))*time.Microsecond
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\tfigure (median of the rounds)\tresult\t")
	var missed []string
	check := func(name, figure string, ok bool) {
		verdict := "PASS"
		if !ok {
			verdict = "FAIL"
			missed = append(missed, name)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t\n", name, figure, verdict)
	}
	check("intake/floor req/s ≥ 0.60", fmt.Sprintf("%.2f (%.0f / %.0f req/s)", ratio, median(intakeRPS), median(floorRPS)), ratio >= minRatio)
	// A request slower than wrk's 2 s timeout is left out of the percentiles, so any makes p99 unknown.
	check("intake p99 ≤ 10ms", fmt.Sprintf("%s (p50 %s, %d timeouts)", p99.Round(10*time.Microsecond), us(int64(median(p50s))), timeouts),
		p99 <= maxP99 && timeouts == 0)
	check("stored events = 2xx answers", fmt.Sprintf("%d stored, %d answered 2xx, wrk read %d (all rounds)", stored, answered, seen), storedOK)
	tw.Flush()
	// wrk stops with up to one request per connection in flight: answered and stored, never read.
	fmt.Fprintf(w, "\nstored must equal 2xx (server) in every round, and 2xx (wrk) may be short of it by at most %d (connections).\n", connections)
	if len(missed) > 0 {
		return errors.New("targets missed: " + strings.Join(missed, "; "))
	}
	return nil
}

// storedMatches: every 2xx answer is a stored event and nothing else was stored, and wrk read
// all of them but the ones in flight when it stopped.
func storedMatches(m measurement, connections int) bool {
	gap := m.answered2xx - m.wrk.OK()
	return m.stored == m.answered2xx && gap >= 0 && gap <= int64(connections)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// us shows microseconds as a duration, to the nearest 10µs.
func us(n int64) string {
	return (time.Duration(n) * time.Microsecond).Round(10 * time.Microsecond).String()
}
