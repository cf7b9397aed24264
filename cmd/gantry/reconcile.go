package main

import (
	"context"
	"strings"

	"github.com/gantry-ci/gantry/configs"
	"github.com/gantry-ci/gantry/gitlab"
	"github.com/gantry-ci/gantry/metrics"
	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/robfig/cron/v3"
	"go.uber.org/zap"
)

// addReconcile schedules, every gitlab.reconcile_every, the two checks for webhooks GitLab
// never sent: the heads of branches no webhook announced get pipelines (Engine.Reconcile), and
// hooks GitLab disabled are logged and counted in gantry_hook_disabled{project} and, with
// gitlab.reenable_hooks, gantry's own are sent a test delivery that re-enables them.
func addReconcile(ctx context.Context, sched *cron.Cron, cfg *configs.Config, engine *orchestrator.Engine, client *gitlab.Client, hooks *metrics.Hooks, log *zap.Logger) {
	every := cfg.GitLab.ReconcileEvery.Duration
	if every == 0 {
		return
	}
	own := ownHookURL(cfg)
	projects := make([]string, 0, len(cfg.Projects))
	for _, p := range cfg.Projects {
		projects = append(projects, p.Path)
	}
	sched.Schedule(cron.Every(every), cron.FuncJob(func() {
		if n, err := engine.Reconcile(ctx, every); err != nil && ctx.Err() == nil {
			log.Warn("reconciling branch heads with GitLab", zap.Error(err))
		} else if n > 0 {
			log.Warn("pipelines started for heads no webhook announced", zap.Int("pipelines", n))
		}
		reports, err := client.CheckHooks(ctx, projects)
		if err != nil && ctx.Err() == nil {
			log.Warn("checking the projects' hooks", zap.Error(err))
		}
		for _, r := range reports {
			hooks.Disabled(r.Project, len(r.Disabled))
			for _, h := range r.Disabled {
				log.Error("GitLab disabled a hook: its deliveries are lost until it is re-enabled (gantry hooks register)",
					zap.String("project", r.Project), zap.Int64("hook", h.ID), zap.String("alert_status", h.AlertStatus))
				if own != "" && h.URL == own {
					reenable(ctx, client, r.Project, h.ID, log)
				}
			}
		}
	}))
}

// ownHookURL is the URL of gantry's hooks, when gitlab.reenable_hooks asks to re-enable them:
// another service's hook on the same project is never touched.
func ownHookURL(cfg *configs.Config) string {
	if !cfg.GitLab.ReenableHooks || cfg.Server.PublicURL == "" {
		return ""
	}
	return strings.TrimSuffix(cfg.Server.PublicURL, "/") + webhookPath
}

func reenable(ctx context.Context, client *gitlab.Client, project string, hookID int64, log *zap.Logger) {
	fields := []zap.Field{zap.String("project", project), zap.Int64("hook", hookID)}
	if err := client.ReenableHook(ctx, project, hookID); err != nil {
		log.Error("the test delivery that would re-enable the hook failed", append(fields, zap.Error(err))...)
		return
	}
	log.Info("hook re-enabled by a test delivery", fields...)
}
