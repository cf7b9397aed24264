package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gantry-ci/gantry/gitlab"
	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/gantry-ci/gantry/store"
	"github.com/gantry-ci/gantry/webhook"
	"github.com/labstack/echo/v5"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

const (
	// benchProject is the project of push.json, configured in the intake.
	benchProject = "bench/app"
	webhookPath  = "/webhooks/gitlab"
	// floorKey is the list the floor handler writes every body to.
	floorKey = "bench:floor"
	// pipelinesKey is the store's sorted set of every stored pipeline (store/keys.go, keyIndex
	// with the default prefix): its size is the number of events the intake kept.
	pipelinesKey = "gantry:pipelines"
)

// intake is what `gantry serve` mounts for webhooks: the webhook handler on an Engine on a real
// Store. No worker runs, so the queued start tasks just accumulate.
func intake(rdb *redis.Client, token string) (http.Handler, func(), error) {
	st := store.New(rdb, store.Options{})
	// The engine logs every accepted pipeline, as in `gantry serve`: the lines are encoded as
	// there and then dropped, so the figure has the logging work but not a terminal's speed.
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zap.InfoLevel))
	engine, err := orchestrator.NewEngine(orchestrator.EngineOptions{
		Store: st, Queue: st, Statuses: gitlab.NewLogStatuses(log), Logger: log,
		Projects: []orchestrator.Project{{
			Path:    benchProject,
			Image:   "registry.example.com/bench/app",
			Build:   orchestrator.BuildSpec{Dockerfile: "Dockerfile", Context: "."},
			Tests:   []orchestrator.TestSpec{{Name: "unit", Command: []string{"pytest", "-q"}, Timeout: 10 * time.Minute}},
			Release: orchestrator.ReleasePolicy{Branches: []string{"master"}, Tags: []string{"{{.ShortSHA}}", "latest"}},
		}},
	})
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	e := echo.New()
	webhook.New(engine, map[string]string{benchProject: token}, log).Register(e)
	return e, func() { st.Close() }, nil
}

// floorAnswer is about the size of the intake's {"pipeline_id":N}, so both servers write the
// same bytes back.
type floorAnswer struct {
	PipelineID int64 `json:"pipeline_id"`
}

// floor is the least a webhook intake can do: read the body and make one Redis write.
func floor(rdb *redis.Client) http.Handler {
	e := echo.New()
	e.POST(webhookPath, func(c *echo.Context) error {
		r := c.Request()
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return c.JSON(http.StatusBadRequest, floorAnswer{})
		}
		if err := rdb.RPush(r.Context(), floorKey, body).Err(); err != nil {
			return c.JSON(http.StatusServiceUnavailable, floorAnswer{})
		}
		return c.JSON(http.StatusAccepted, floorAnswer{PipelineID: 123456})
	})
	return e
}

// server is one of the two handlers served on a loopback port. It counts the 2xx answers it
// wrote itself, because wrk stops with up to one request per connection in flight: those were
// answered (and stored) but are missing from wrk's count.
type server struct {
	srv  *http.Server
	url  string
	ok   atomic.Int64
	done chan error
}

// serve starts h on 127.0.0.1 on a port of the system's choosing.
func serve(h http.Handler) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	s := &server{url: "http://" + ln.Addr().String() + webhookPath, done: make(chan error, 1)}
	s.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.status >= 200 && rec.status < 300 {
			s.ok.Add(1)
		}
	})}
	go func() { // ends with Shutdown in stop
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return s, nil
}

// stop waits for every request still being handled, so that the counts read afterwards are final.
func (s *server) stop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if serveErr := <-s.done; err == nil {
		err = serveErr
	}
	return err
}

// statusRecorder remembers the status a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection's own writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
