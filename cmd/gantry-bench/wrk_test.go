package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// wrkOutput is what wrk 4.1 prints with --latency and ingest.lua's done().
const wrkOutput = `Running 10s test @ http://127.0.0.1:41237/webhooks/gitlab
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.10ms    1.35ms  31.09ms   86.77%
    Req/Sec     7.89k   612.45     9.11k    71.00%
  Latency Distribution
     50%    1.79ms
     75%    2.51ms
     90%    3.49ms
     99%    7.02ms
  157044 requests in 10.00s, 22.02MB read
  Non-2xx or 3xx responses: 3
Requests/sec:  15701.48
Transfer/sec:      2.20MB
BENCH requests=157044 duration_us=10001940 bytes=23089012 errors_connect=0 errors_read=1 errors_write=2 errors_status=3 errors_timeout=4 p50_us=1790 p75_us=2510 p90_us=3490 p99_us=7020 max_us=31090
`

func TestParseWrk(t *testing.T) {
	got, err := parseWrk([]byte(wrkOutput))
	if err != nil {
		t.Fatalf("parseWrk: %v", err)
	}
	want := wrkResult{
		Requests: 157044, DurationUS: 10001940, Bytes: 23089012, Read: 1, Write: 2, Status: 3, Timeout: 4,
		P50: 1790, P75: 2510, P90: 3490, P99: 7020, MaxUS: 31090,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseWrk (-want +got):\n%s", diff)
	}
	if got.OK() != 157041 || got.SocketErrors() != 3 {
		t.Errorf("OK, SocketErrors = %d, %d, want 157041, 3", got.OK(), got.SocketErrors())
	}
}

func TestParseWrkRefusesIncompleteOutput(t *testing.T) {
	for name, out := range map[string]string{
		"no BENCH line": strings.Split(wrkOutput, "BENCH")[0],
		"missing field": "BENCH requests=1 duration_us=2\n",
		"not a number":  strings.Replace(wrkOutput, "p99_us=7020", "p99_us=7.02ms", 1),
	} {
		if got, err := parseWrk([]byte(out)); err == nil {
			t.Errorf("%s: parseWrk = %+v, nil; want an error", name, got)
		}
	}
}
