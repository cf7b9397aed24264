package main

import (
	"net/http"
	"time"
)

// httpTimeouts bound how long a client may hold a connection without doing its part. gantry
// faces the internet: without them, a client that sends half a request and stops holds a
// connection (and the memory of what it sent) forever.
type httpTimeouts struct {
	// ReadHeader bounds the request line and headers.
	ReadHeader time.Duration
	// Read bounds the whole request, body included: GitLab sends a webhook at once (at most 25
	// MiB), so a body still arriving after this is a stalled or hostile client.
	Read time.Duration
	// Write bounds an answer. A followed log moves its own deadline on every chunk (api's
	// FollowWriteTimeout), so following a long job is not cut here.
	Write time.Duration
	// Idle bounds a kept-alive connection between requests.
	Idle time.Duration
}

// defaultHTTPTimeouts are generous for GitLab (which gives up on a webhook after 10 s, docs/gitlab.md
// §1.3) and for people on slow links reading pages, and short enough that stalled clients are
// dropped within a minute.
var defaultHTTPTimeouts = httpTimeouts{
	ReadHeader: 10 * time.Second,
	Read:       30 * time.Second,
	Write:      60 * time.Second,
	Idle:       2 * time.Minute,
}

// newHTTPServer is the one HTTP server gantry runs, with its timeouts.
func newHTTPServer(h http.Handler, t httpTimeouts) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		// Headers are small in every request gantry serves; the default 1 MiB is more than a
		// stalled client should be able to make it keep.
		MaxHeaderBytes: 64 << 10,
	}
}
