package main

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// wrkScript is given to wrk for both servers; see its header for its arguments.
//
//go:embed ingest.lua
var wrkScript []byte

// pushTemplate is a GitLab push payload (docs/gitlab.md §2.1) with "@SHA@" where the commit goes.
//
//go:embed push.json
var pushTemplate []byte

// load is one wrk setting, the same for every run of a benchmark.
type load struct {
	wrk         string // path of the wrk binary
	threads     int
	connections int
	duration    time.Duration
	// dir holds the script and the payload template.
	dir   string
	token string
	nonce string
}

// writeFiles puts the script and the payload where wrk can read them.
func (l load) writeFiles() error {
	if err := os.WriteFile(filepath.Join(l.dir, "ingest.lua"), wrkScript, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(l.dir, "push.json"), pushTemplate, 0o644)
}

// args is wrk's command line for one run against url.
func (l load) args(url string) []string {
	return []string{
		"-t" + strconv.Itoa(l.threads), "-c" + strconv.Itoa(l.connections),
		"-d" + strconv.Itoa(int(l.duration.Seconds())) + "s", "--latency",
		"-s", filepath.Join(l.dir, "ingest.lua"), url,
		"--", l.token, l.nonce, filepath.Join(l.dir, "push.json"),
	}
}

// run loads url for the configured duration and returns what the script's done() reported.
func (l load) run(ctx context.Context, url string) (wrkResult, error) {
	cmd := exec.CommandContext(ctx, l.wrk, l.args(url)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk %s: %w: %s", url, err, strings.TrimSpace(stderr.String()))
	}
	res, err := parseWrk(out)
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk %s: %w\n%s", url, err, out)
	}
	return res, nil
}

// wrkResult is the BENCH line of ingest.lua's done(). Times are in microseconds.
type wrkResult struct {
	Requests   int64 // answers received in full, whatever their status
	DurationUS int64
	Bytes      int64
	// Connect, Read and Write are socket errors: those requests got no answer.
	Connect, Read, Write int64
	// Status counts answers with a status above 399.
	Status int64
	// Timeout counts answers slower than wrk's timeout (2 s); they are missing from the
	// percentiles.
	Timeout                   int64
	P50, P75, P90, P99, MaxUS int64
}

// RPS is requests per second, as wrk's own "Requests/sec".
func (r wrkResult) RPS() float64 {
	if r.DurationUS == 0 {
		return 0
	}
	return float64(r.Requests) / (float64(r.DurationUS) / 1e6)
}

// OK is the number of answers below 400: the intake answers only 2xx or 4xx/5xx.
func (r wrkResult) OK() int64 { return r.Requests - r.Status }

// SocketErrors is the number of requests that got no answer at all.
func (r wrkResult) SocketErrors() int64 { return r.Connect + r.Read + r.Write }

// parseWrk reads the BENCH line out of wrk's output; the human report around it is ignored.
func parseWrk(out []byte) (wrkResult, error) {
	var res wrkResult
	fields := map[string]*int64{
		"requests": &res.Requests, "duration_us": &res.DurationUS, "bytes": &res.Bytes,
		"errors_connect": &res.Connect, "errors_read": &res.Read, "errors_write": &res.Write,
		"errors_status": &res.Status, "errors_timeout": &res.Timeout,
		"p50_us": &res.P50, "p75_us": &res.P75, "p90_us": &res.P90, "p99_us": &res.P99, "max_us": &res.MaxUS,
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "BENCH ")
		if !ok {
			continue
		}
		seen := map[string]bool{}
		for _, kv := range strings.Fields(rest) {
			k, v, _ := strings.Cut(kv, "=")
			p, known := fields[k]
			if !known {
				continue
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return wrkResult{}, fmt.Errorf("BENCH %s=%q: %w", k, v, err)
			}
			*p, seen[k] = n, true
		}
		for k := range fields {
			if !seen[k] {
				return wrkResult{}, fmt.Errorf("BENCH line has no %s", k)
			}
		}
		return res, nil
	}
	return wrkResult{}, errors.New("no BENCH line in wrk's output")
}
