package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 200; i >= 1; i-- { // out of order on purpose
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{
		{0, 1 * time.Millisecond}, {50, 100 * time.Millisecond}, {90, 180 * time.Millisecond},
		{99, 198 * time.Millisecond}, {100, 200 * time.Millisecond},
	} {
		if got := percentile(ds, tc.p); got != tc.want {
			t.Errorf("percentile(1..200 ms, %v) = %s, want %s", tc.p, got, tc.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile(nil, 50) = %s, want 0", got)
	}
}

func TestVerdicts(t *testing.T) {
	var v verdicts
	v.check("fast enough", "1 ms", true)
	v.figure("speed", "3 per minute")
	var out bytes.Buffer
	if err := v.print(&out); err != nil {
		t.Fatalf("print with every target met = %v, want nil", err)
	}
	if s := out.String(); !strings.Contains(s, "PASS") || !strings.Contains(s, "(no target)") {
		t.Errorf("table = %q, want a PASS row and a row without a target", s)
	}
	v.check("small enough", "9 MB", false)
	err := v.print(&out)
	if err == nil || !strings.Contains(err.Error(), "small enough") || strings.Contains(err.Error(), "fast enough") {
		t.Errorf("print with one target missed = %v, want an error naming that target alone", err)
	}
}
