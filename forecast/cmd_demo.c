/* tessera demo: the whole gridded chain on an embedded configuration.
 *
 *   self-check -> synth-era5 (4 years at 5.625 deg) -> stats -> train (a small
 *   model, about 9 minutes on 2 cores) -> forecast (8 members, 5 days, 4
 *   initial dates of the test year) -> score (against persistence and
 *   climatology) -> plot
 *
 * The split: training 2018-01 .. 2020-09 (the statistics and the
 * climatology baseline come from it alone), validation 2020-10 .. 2020-12,
 * test 2021 (the forecasts and the scorecard). Nothing scored is seen by
 * training or by any choice made on validation.
 *
 * Each stage is the same command a user runs, with the settings below; the
 * demo prints them so they can be rerun and changed one by one.
 * demo.size=quick shrinks every stage to seconds (the test suite runs it).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/log.h"
#include "core/selfcheck.h"
#include "forecast/commands.h"

typedef int (*command_fn)(const ts_command_ctx *);

typedef struct {
    const char *name;
    command_fn run;
    const char *subdir; /* where the stage writes, under OUT ("" = OUT itself) */
    const char *full[32], *quick[32]; /* key=value settings; {DATA} is the data folder */
} stage;

/* Sizes: dim 128, 4 heads, SwiGLU hidden 512, 4 blocks of 8x8 windows on the
 * 32x64 grid (1.5 M parameters), batch 4, 24 h step, 10 sampler levels; the
 * learning rate and noise range of the gridded recipe (docs/results.md). */
static const stage STAGES[] = {
    {"synth-era5", cmd_synth_era5, "data",
     {"synth.start=2018-01-01", "synth.days=1461", "synth.spinup_days=120", "synth.restart_times=2021-03-01T00,2021-06-01T00,2021-09-01T00,2021-12-01T00", NULL},
     {"synth.start=2021-01-01", "synth.days=30", "synth.spinup_days=10", "synth.restart_times=2021-01-21T00,2021-01-24T00",
      NULL}},
    {"stats", cmd_stats, "", {"data.files={DATA}/*.nc", "stats.residual_hours=24", "stats.end=2020-10-01", NULL},
     {"data.files={DATA}/*.nc", "stats.residual_hours=24", "stats.end=2021-01-17", NULL}},
    {"train", cmd_train, "",
     {"data.files={DATA}/*.nc", "train.step_hours=24", "model.dim=128", "model.heads=4", "model.hidden=512",
      "model.depth=4", "model.window=8", "train.batch=4", "train.steps=700", "train.warmup=30", "train.lr=1e-3",
      "train.lr_min=1e-5", "train.sigma_min=0.2", "train.sigma_max=500", "train.ema=0.99", "train.end=2020-10-01",
      "train.val_start=2020-10-01", "train.val_end=2021-01-01", "train.val_every=175", "train.val_samples=4",
      "train.val_levels=4", "train.val_members=2", "train.log_every=25", "train.checkpoint_every=175", NULL},
     {"data.files={DATA}/*.nc", "train.step_hours=24", "model.dim=16", "model.heads=2", "model.hidden=32",
      "model.depth=2", "model.window=8", "train.batch=2", "train.steps=6", "train.warmup=2", "train.end=2021-01-17",
      "train.val_start=2021-01-17", "train.val_end=2021-01-20", "train.val_every=3", "train.val_samples=2",
      "train.log_every=2", NULL}},
    {"forecast", cmd_forecast, "",
     {"data.files={DATA}/*.nc", "forecast.inits=2021-03-01,2021-06-01,2021-09-01,2021-12-01", "forecast.members=8",
      "forecast.leads=5", "forecast.levels=10", NULL},
     {"data.files={DATA}/*.nc", "forecast.inits=2021-01-21,2021-01-24", "forecast.members=3", "forecast.leads=2",
      "forecast.levels=3", NULL}},
    {"score", cmd_score, "", {"data.files={DATA}/*.nc", "score.perfect_model=true", NULL},
     {"data.files={DATA}/*.nc", "score.bootstrap=50", "score.perfect_model=true", NULL}},
    {"plot", cmd_plot, "", {"data.files={DATA}/*.nc", "plot.variables=z500,t850,t2m", "plot.leads=24,120", NULL},
     {"data.files={DATA}/*.nc", "plot.variables=z500,t2m", "plot.leads=24", NULL}},
};

static void make_dir(const char *path) {
    if (mkdir(path, 0777) != 0 && errno != EEXIST) ts_fatal("cannot create the folder '%s': %s", path, strerror(errno));
}

/* A stage's configuration: defaults, the parent's general keys, the stage's settings. */
static ts_config *stage_config(const ts_command_ctx *ctx, const stage *s, int quick, const char *out, const char *data) {
    ts_config *cfg = ts_config_new();
    char err[1024], kv[8192];
    /* the general keys the user gave the demo */
    snprintf(kv, sizeof kv, "seed=%lld", (long long)ts_config_int(ctx->cfg, "seed"));
    if (ts_config_apply_override(cfg, kv, err, sizeof err)) ts_fatal("%s", err);
    snprintf(kv, sizeof kv, "threads=%lld", (long long)ts_config_int(ctx->cfg, "threads"));
    if (ts_config_apply_override(cfg, kv, err, sizeof err)) ts_fatal("%s", err);
    static const char *const TEXT_KEYS[] = {"device", "log.level"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(kv, sizeof kv, "%s=%s", TEXT_KEYS[i], ts_config_str(ctx->cfg, TEXT_KEYS[i]));
        if (ts_config_apply_override(cfg, kv, err, sizeof err)) ts_fatal("%s", err);
    }
    snprintf(kv, sizeof kv, "out=%s", out);
    if (ts_config_apply_override(cfg, kv, err, sizeof err)) ts_fatal("%s", err);
    printf("\n== tessera %s %s", s->name, kv);
    for (const char *const *p = quick ? s->quick : s->full; *p; p++) {
        const char *brace = strstr(*p, "{DATA}");
        if (brace) snprintf(kv, sizeof kv, "%.*s%s%s", (int)(brace - *p), *p, data, brace + 6);
        else snprintf(kv, sizeof kv, "%s", *p);
        if (ts_config_apply_override(cfg, kv, err, sizeof err)) ts_fatal("%s", err);
        printf(" %s", kv);
    }
    printf("\n");
    fflush(stdout);
    return cfg;
}

int cmd_demo(const ts_command_ctx *ctx) {
    int quick = strcmp(ts_config_str(ctx->cfg, "demo.size"), "quick") == 0;
    if (ctx->layout->rank == 0) {
        int failures = ts_selfcheck(stdout);
        if (failures) {
            ts_log(TS_LOG_ERROR, "self-check failed (%d checks): this build computes wrong results", failures);
            return TS_EXIT_FAILURE;
        }
    }
    char data[4096], dir[4096];
    snprintf(data, sizeof data, "%s/data", ctx->out);
    double t0 = ts_now();
    for (size_t i = 0; i < sizeof STAGES / sizeof STAGES[0]; i++) {
        const stage *s = &STAGES[i];
        if (*s->subdir) snprintf(dir, sizeof dir, "%s/%s", ctx->out, s->subdir);
        else snprintf(dir, sizeof dir, "%s", ctx->out);
        if (ctx->layout->rank == 0) make_dir(dir);
        ts_config *cfg = stage_config(ctx, s, quick, dir, data);
        ts_command_ctx sub = {cfg, ctx->layout, dir};
        double ts = ts_now();
        int rc = s->run(&sub);
        ts_config_free(cfg);
        if (rc) return rc;
        ts_info("demo: %s done in %.1f s (%.1f s so far)", s->name, ts_now() - ts, ts_now() - t0);
    }
    ts_info("demo done in %.1f s: data in %s, the scorecard in %s/scorecard.csv, the plots in %s/plots", ts_now() - t0,
            data, ctx->out, ctx->out);
    return 0;
}
