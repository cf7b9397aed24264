package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/api"
	"github.com/gantry-ci/gantry/configs"
	"github.com/gantry-ci/gantry/gitlab"
	"github.com/gantry-ci/gantry/internal/wire"
	"github.com/gantry-ci/gantry/jobs"
	"github.com/gantry-ci/gantry/metrics"
	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/gantry-ci/gantry/store"
	"github.com/gantry-ci/gantry/webhook"
	"github.com/labstack/echo/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/robfig/cron/v3"
	"go.uber.org/zap"
)

// serve builds every part a process of this role needs, runs them until ctx ends, then stops
// them in order: HTTP first (no new work comes in), then the scheduler and the engine's loops
// (no new work starts), then the workers (running jobs get the grace period, then go back to
// the queue), then Redis. Each part's Stop waits for its goroutines.
func serve(ctx context.Context, r role, configPath string, getenv func(string) string, stderr io.Writer) error {
	log := newLogger(stderr)
	defer log.Sync()

	cfg, err := loadConfig(configPath, getenv, log)
	if err != nil {
		return err
	}
	warnUnset(cfg, r, log)
	rdb, closeRedis, err := openRedis(ctx, cfg.Redis.URL.Value(), log)
	if err != nil {
		return err
	}
	defer closeRedis()
	retries := cfg.Workers.JobRetries
	st := store.New(rdb, store.Options{Retries: &retries, MinReplicas: cfg.Redis.MinReplicas, ReplicaTimeout: cfg.Redis.ReplicaWait()})
	defer st.Close()

	statuses, client, err := openGitLab(cfg, log)
	if err != nil {
		return err
	}
	checks := map[string]api.Check{"redis": st.Ping}
	var docker *jobs.Docker
	if r.workers {
		docker, err = jobs.Connect(ctx, dockerOptions(cfg, log))
		if err != nil {
			return fmt.Errorf("docker engine: %w", err)
		}
		defer docker.Close()
		checks["docker"] = docker.Ping
		log.Info("docker engine ready", zap.String("api_version", docker.APIVersion()))
	}
	reg := newRegistry()
	metrics.NewHealth(reg, func(ctx context.Context) (metrics.Health, error) {
		h, err := st.QueueHealth(ctx)
		return metrics.Health(h), err
	})
	engine, err := newEngine(cfg, st, docker, statuses, client, reg, log)
	if err != nil {
		return err
	}

	var httpDone <-chan error
	var srv *http.Server
	if r.http && client != nil {
		// The webhook refuses a payload naming another id than GitLab's for its project as soon
		// as the id is known; asked once here, within a bound, so a slow GitLab delays the
		// start by seconds at most. Whatever is not known yet the start task checks.
		resolveCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := engine.ResolveProjects(resolveCtx); err != nil {
			log.Warn("project ids not all known yet; each is checked when its pipelines start", zap.Error(err))
		}
		cancel()
	}
	if r.http {
		srv, httpDone, err = startHTTP(cfg, engine, st, checks, reg, log)
		if err != nil {
			return err
		}
	}
	var worker *store.Worker
	if r.workers {
		worker = store.NewWorker(rdb, store.WorkerOptions{
			Concurrency: cfg.Workers.Concurrency, ShutdownGrace: cfg.Workers.ShutdownGrace.Duration, Logger: log,
		})
		if err := worker.Start(engine.Handle); err != nil {
			return fmt.Errorf("start workers: %w", err)
		}
		log.Info("workers started", zap.Int("concurrency", cfg.Workers.Concurrency))
	}
	loops := orchestrator.NewService(engine)
	if r.workers {
		// Starts the pipelines webhooks store, and stops this process's jobs that any process
		// cancelled.
		if err := loops.Start(ctx); err != nil {
			return err
		}
	}
	sched, err := newScheduler(ctx, r, cfg, engine, st, docker, client, reg, log)
	if err != nil {
		return err
	}
	sched.Start()

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-httpDone:
	}
	log.Info("shutting down")
	stopInOrder(ctx, srv, sched, loops, worker, log)
	return serveErr
}

// newEngine is the orchestrator as the config makes it, on the store, the Docker engine (nil
// for a process that runs no jobs) and GitLab (a nil client without one).
func newEngine(cfg *configs.Config, st *store.Store, docker *jobs.Docker, statuses orchestrator.Statuses, client *gitlab.Client,
	reg *prometheus.Registry, log *zap.Logger) (*orchestrator.Engine, error) {
	var source orchestrator.Source // nil, not a nil *gitlab.Client, without a GitLab
	var files orchestrator.FileSource
	if client != nil {
		source, files = client, client
	}
	return orchestrator.NewEngine(orchestrator.EngineOptions{
		Store: st, Queue: st, Executor: executor(docker), Source: source, Statuses: statuses,
		Files: files, ApplyFile: wire.ApplyFile(cfg),
		Projects: wire.Projects(cfg), StatusPrefix: cfg.GitLab.StatusPrefix, PublicURL: cfg.Server.PublicURL,
		ImageRetention: cfg.Workers.ImageRetention.Duration, DeliveryWindow: deliveryWindow(cfg),
		// A commit's pipeline answers for it while the pipeline is kept (30 days when kept forever).
		CommitWindow: cfg.Redis.PipelineRetention.Duration,
		Logger:       log, Metrics: metrics.NewEngine(reg),
	})
}

// stopInOrder stops a process's parts: HTTP first (no new work comes in), then what starts
// work: scheduled runs and sweeps (waited for), the engine's loops (no new pipeline is taken;
// one not taken stays stored for another process or the next start). Then the workers: running
// jobs get the grace period, then go back to the queue; a job cancelled meanwhile finds itself
// over in the store when it ends. Redis closes last (serve's defer). srv and worker may be nil.
func stopInOrder(ctx context.Context, srv *http.Server, sched *cron.Cron, loops *orchestrator.Service, worker *store.Worker, log *zap.Logger) {
	if srv != nil {
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		if err := srv.Shutdown(shutdownCtx); err != nil {
			log.Warn("http shutdown", zap.Error(err))
		}
		cancel()
	}
	<-sched.Stop().Done()
	loops.Stop()
	if worker != nil {
		worker.Shutdown()
	}
}

// newScheduler gathers what runs on a timer in a process of this role: the workers' checks,
// every process's housekeeping, and the HTTP side's hook reconcile and scheduled pipelines. A
// panicking scheduled job is logged, not allowed to take the process down.
func newScheduler(ctx context.Context, r role, cfg *configs.Config, engine *orchestrator.Engine, st *store.Store,
	docker *jobs.Docker, client *gitlab.Client, reg *prometheus.Registry, log *zap.Logger) (*cron.Cron, error) {
	sched := cron.New(cron.WithChain(cron.Recover(cronLogger{log.Sugar()})))
	if r.workers {
		addWorkerChecks(ctx, sched, engine, docker, log)
	}
	addHousekeeping(ctx, sched, st, cfg, log)
	if r.http && client != nil {
		addReconcile(ctx, sched, cfg, engine, client, metrics.NewHooks(reg), log)
	}
	if r.http {
		if err := addSchedules(ctx, sched, cfg, engine, log); err != nil {
			return nil, err
		}
	}
	return sched, nil
}

// addWorkerChecks schedules what a worker process checks on its own: stored pipelines whose
// first task was lost, jobs whose worker died, and images builds left dangling.
func addWorkerChecks(ctx context.Context, sched *cron.Cron, engine *orchestrator.Engine, docker *jobs.Docker, log *zap.Logger) {
	// The sweep queues again any stored pipeline whose first task was lost, so that an event
	// answered 2xx is always run.
	sched.AddFunc("@every 30s", func() {
		if err := engine.Sweep(ctx); err != nil && ctx.Err() == nil {
			log.Warn("sweep", zap.Error(err))
		}
	})
	// A job whose worker died is handed on once its lease runs out (store.DefaultJobLeaseTTL):
	// the lease plus this interval is the takeover time.
	sched.AddFunc("@every 3s", func() {
		if err := engine.TakeOver(ctx); err != nil && ctx.Err() == nil {
			log.Warn("takeover check", zap.Error(err))
		}
	})
	started := time.Now()
	sched.AddFunc("@every 10m", func() {
		if n, err := docker.SweepDangling(ctx, started); err != nil {
			log.Warn("dangling image sweep", zap.Error(err))
		} else if n > 0 {
			log.Info("removed dangling images left by builds", zap.Int("images", n))
		}
	})
}

// addHousekeeping applies the retention on every process's scheduler; the store lets one
// process run each tick, however many there are.
func addHousekeeping(ctx context.Context, sched *cron.Cron, st *store.Store, cfg *configs.Config, log *zap.Logger) {
	every := cfg.Redis.HousekeepingEvery.Duration
	r := store.Retention{Pipelines: cfg.Redis.PipelineRetention.Duration, Logs: cfg.Redis.LogRetention.Duration}
	sched.Schedule(cron.Every(every), cron.FuncJob(func() {
		sw, err := st.Housekeep(ctx, r, time.Now(), every)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("housekeeping", zap.Error(err))
		case sw.Pipelines+sw.Logs+sw.Backfilled > 0:
			log.Info("housekeeping", zap.Int("pipelines_removed", sw.Pipelines), zap.Int("logs_removed", sw.Logs),
				zap.Int("ends_backfilled", sw.Backfilled))
		}
	}))
}

// deliveryWindow remembers a delivery id a week, as long as the pipeline it names is kept.
func deliveryWindow(cfg *configs.Config) time.Duration {
	const week = 7 * 24 * time.Hour
	if r := cfg.Redis.PipelineRetention.Duration; r > 0 {
		return min(week, r)
	}
	return week
}

// executor keeps a nil *jobs.Docker from becoming a non-nil interface.
func executor(d *jobs.Docker) orchestrator.Executor {
	if d == nil {
		return nil
	}
	return d
}

func loadConfig(path string, getenv func(string) string, log *zap.Logger) (*configs.Config, error) {
	path, explicit := configPath(path, getenv)
	cfg, err := configs.Load(path, getenv)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		log.Warn("no config file: running with embedded defaults and no projects", zap.String("looked_for", path))
		return configs.FromEnv(getenv)
	}
	return cfg, err // Load's errors name the file already
}

// configPath is the config file to read: --config, else $GANTRY_CONFIG, else
// configs/gantry.yaml; explicit says whether the user named it, so that only the
// default may be missing.
func configPath(path string, getenv func(string) string) (_ string, explicit bool) {
	explicit = path != "" || getenv("GANTRY_CONFIG") != ""
	return cmp.Or(path, getenv("GANTRY_CONFIG"), "configs/gantry.yaml"), explicit
}

// warnUnset logs the config's ${VAR} references that came out empty, leaving out
// those this role never reads: the HTTP side never pushes (registries), the
// worker side serves no API (api.tokens).
func warnUnset(cfg *configs.Config, r role, log *zap.Logger) {
	for _, u := range cfg.Unset {
		if by := u.ReadBy(); (!r.workers && by == configs.WorkerRole) || (!r.http && by == configs.IntakeRole) {
			continue
		}
		log.Warn("config variable not set", zap.String("key", u.Key), zap.String("variable", u.Name), zap.String("detail", u.String()))
	}
}

// warnNoPersistence says at start when Redis keeps nothing on disk: a restart then loses every
// pipeline, log and queued job (ids go on in a new epoch, so GitLab's links stay right). A Redis
// that refuses CONFIG (managed services often do) is not judged.
func warnNoPersistence(ctx context.Context, rdb *redis.Client, log *zap.Logger) {
	cfg, err := rdb.ConfigGet(ctx, "*").Result() // one call for both; a pattern list needs Redis 7
	if err != nil {
		log.Info("could not read Redis's persistence settings", zap.Error(err))
		return
	}
	if msg := persistenceWarning(cfg["appendonly"], cfg["save"]); msg != "" {
		log.Warn(msg)
	}
}

// persistenceWarning is the warning for Redis's appendonly and save settings, "" when Redis
// writes its data to disk one way or the other.
func persistenceWarning(appendonly, save string) string {
	if appendonly == "yes" || strings.TrimSpace(save) != "" {
		return ""
	}
	return "REDIS KEEPS NOTHING ON DISK (appendonly no, save \"\"): a Redis restart loses every pipeline, " +
		"log and queued job. Turn on appendonly (or RDB snapshots) for anything but a trial."
}

// openGitLab returns where statuses go and the GitLab client sources come from (nil without a
// GitLab). Without a token, statuses are only logged, which is enough to try gantry on public
// projects.
func openGitLab(cfg *configs.Config, log *zap.Logger) (orchestrator.Statuses, *gitlab.Client, error) {
	if cfg.GitLab.URL == "" {
		if len(cfg.Projects) > 0 {
			return nil, nil, errors.New("gitlab.url is required when projects are configured: sources are fetched from it")
		}
		return gitlab.NewLogStatuses(log), nil, nil
	}
	client, err := gitlab.New(cfg.GitLab.URL, cfg.GitLab.Token.Value(), log)
	if err != nil {
		return nil, nil, err
	}
	if cfg.GitLab.Token.Value() == "" {
		log.Warn("no GitLab token: commit statuses are logged, not posted")
		return gitlab.NewLogStatuses(log), client, nil
	}
	return client, client, nil
}

func registries(cfg *configs.Config) []jobs.Registry {
	out := make([]jobs.Registry, 0, len(cfg.Registries))
	for _, r := range cfg.Registries {
		out = append(out, jobs.Registry{Host: r.Host, Username: r.Username, Password: r.Password.Value()})
	}
	return out
}

// startHTTP serves the webhook, the API and the pages.
func startHTTP(cfg *configs.Config, engine *orchestrator.Engine, st *store.Store, checks map[string]api.Check, reg *prometheus.Registry, log *zap.Logger) (*http.Server, <-chan error, error) {
	e := echo.New()
	webhook.New(engine, webhookSecrets(cfg), log, webhook.WithProjectIDs(engine), webhook.WithMetrics(reg)).Register(e)
	tokens := make([]string, 0, len(cfg.API.Tokens))
	for _, t := range cfg.API.Tokens {
		tokens = append(tokens, t.Value())
	}
	signIn, err := signInWithGitLab(cfg)
	if err != nil {
		return nil, nil, err
	}
	api.New(api.Options{Pipelines: st, Engine: engine, Checks: checks, Tokens: tokens, PublicPages: cfg.API.PublicPages, SignIn: signIn, Logger: log, Metrics: reg,
		List: func(ctx context.Context, f api.Filter) ([]*orchestrator.Pipeline, error) {
			return st.List(ctx, store.Filter(f))
		},
	}).Register(e)

	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return nil, nil, fmt.Errorf("listen %s: %w", cfg.Server.Listen, err)
	}
	srv := newHTTPServer(e, defaultHTTPTimeouts)
	done := make(chan error, 1)
	go func() { // ends with srv.Shutdown in serve
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			done <- err
		}
		close(done)
	}()
	log.Info("listening", zap.String("addr", ln.Addr().String()))
	return srv, done, nil
}

// signInWithGitLab is the pages' sign-in from api.oauth; nil when it is not configured.
func signInWithGitLab(cfg *configs.Config) (*api.SignIn, error) {
	o := cfg.API.OAuth
	if !o.Enabled() {
		return nil, nil
	}
	accounts, err := gitlab.NewAccounts(cfg.GitLab.URL)
	if err != nil {
		return nil, err
	}
	return api.NewSignIn(api.SignInConfig{ClientID: o.ApplicationID, ClientSecret: o.Secret.Value(), GitLabURL: cfg.GitLab.URL,
		PublicURL: cfg.Server.PublicURL, CookieSecret: o.CookieSecret.Value(), Lifetime: o.Lifetime(), Accounts: accounts})
}

// addSchedules runs the projects' scheduled pipelines. Every process serving HTTP runs them;
// the engine's dedup window turns the processes' triggers into one pipeline.
func addSchedules(ctx context.Context, sched *cron.Cron, cfg *configs.Config, engine *orchestrator.Engine, log *zap.Logger) error {
	for _, p := range cfg.Projects {
		for _, sc := range p.Schedules {
			project, ref := p.Path, sc.Ref
			_, err := sched.AddFunc(sc.Cron, func() {
				a, err := engine.Schedule(ctx, project, ref)
				if err != nil {
					log.Error("scheduled pipeline not started", zap.String("project", project), zap.String("ref", ref), zap.Error(err))
					return
				}
				log.Info("scheduled pipeline", zap.String("project", project), zap.String("ref", ref),
					zap.Int64("pipeline", a.Pipeline.ID), zap.Bool("duplicate", a.Duplicate))
			})
			if err != nil {
				return fmt.Errorf("schedule %q of %s: %w", sc.Cron, project, err)
			}
		}
	}
	return nil
}

// dockerOptions are the engine settings of the config.
func dockerOptions(cfg *configs.Config, log *zap.Logger) jobs.Options {
	o := jobs.Options{Host: cfg.Docker.Host, Registries: registries(cfg), Logger: log, Templates: configs.Templates,
		ShareImages: cfg.Docker.ShareImages}
	if cfg.Docker.TLSVerify {
		o.CertPath = cfg.Docker.CertPath
	}
	return o
}
