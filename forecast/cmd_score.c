/* tessera score: the scorecard of a forecast file against ERA5-format
 * truth, with persistence, climatology and any further ensembles as
 * baselines (the driver is eval/scorecard.c; docs/score.md).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "eval/perfect_model.h"
#include "eval/score.h"
#include "forecast/commands.h"
#include "io/era5_read.h"
#include "io/forecast_read.h"

/* score.baselines: "name=path, name=path" into sys; the names and paths
 * point into *store (free it after the run). */
static size_t parse_baselines(const char *text, ts_score_system *sys, char **store, size_t max) {
    size_t n = 0;
    char *copy = ts_malloc(strlen(text) + 1);
    strcpy(copy, text);
    *store = copy;
    for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ",")) {
        while (*tok == ' ') tok++;
        char *end = tok + strlen(tok);
        while (end > tok && end[-1] == ' ') *--end = '\0';
        if (!*tok) continue;
        if (n == max) ts_usage_error("score.baselines: at most %zu systems", max);
        char *eq = strchr(tok, '=');
        if (!eq || eq == tok || !eq[1])
            ts_usage_error("score.baselines: '%s' wants name=path, e.g. perfect_model=out/perfect_model.nc", tok);
        *eq = '\0';
        sys[n++] = (ts_score_system){tok, eq + 1};
    }
    return n;
}

static void config_path(const ts_command_ctx *ctx, const char *key, const char *deflt, char *buf, size_t cap) {
    const char *v = ts_config_str(ctx->cfg, key);
    if (*v)
        snprintf(buf, cap, "%s", v);
    else
        snprintf(buf, cap, "%s/%s", ctx->out, deflt);
}

/* score.restarts, or the folder of the first truth file: synth-era5 writes
 * its restart files beside its ERA5 files. */
static void restart_dir(const ts_config *cfg, const char *first_truth, char *buf, size_t cap) {
    const char *v = ts_config_str(cfg, "score.restarts");
    if (*v) {
        snprintf(buf, cap, "%s", v);
        return;
    }
    const char *slash = strrchr(first_truth, '/');
    if (!slash) snprintf(buf, cap, ".");
    else if (slash == first_truth) snprintf(buf, cap, "/");
    else snprintf(buf, cap, "%.*s", (int)(slash - first_truth), first_truth);
}

/* score.perfect_model: rerun the reference simulator from its restart
 * states on tessera's cases into OUT/perfect_model.nc (eval/perfect_model.h)
 * and score it as system perfect_model. */
static void add_perfect_model(const ts_command_ctx *ctx, const char *forecast, const char *first_truth,
                              ts_score_system *sys, size_t *nsys, size_t max, char *path, size_t cap) {
    char dir[4096], err[2048];
    if (*nsys == max) ts_usage_error("score.baselines: at most %zu systems with score.perfect_model", max - 1);
    restart_dir(ctx->cfg, first_truth, dir, sizeof dir);
    snprintf(path, cap, "%s/perfect_model.nc", ctx->out);
    int64_t seed = ts_config_int(ctx->cfg, "seed");
    ts_perfect_model_opts pm = {forecast, dir, path, TS_PERFECT_MODEL_AMPLITUDE, (uint64_t)seed};
    ts_info("score: building the perfect-model ensemble from the restart files in %s", dir);
    if (ts_perfect_model_forecast(&pm, err, sizeof err)) ts_fatal("%s", err);
    sys[(*nsys)++] = (ts_score_system){"perfect_model", path};
}

int cmd_score(const ts_command_ctx *ctx) {
    if (ctx->layout->rank != 0) return 0; /* scoring is serial (see the top of this file) */
    const ts_config *cfg = ctx->cfg;
    char err[2048], forecast[4096], stats[4096];
    config_path(ctx, "score.forecast", "forecast.nc", forecast, sizeof forecast);
    config_path(ctx, "data.stats", "stats.nc", stats, sizeof stats);
    enum { MAX_SYSTEMS = 32 };
    ts_score_system sys[MAX_SYSTEMS];
    char *store = NULL;
    sys[0] = (ts_score_system){"tessera", forecast};
    size_t nsys = 1 + parse_baselines(ts_config_str(cfg, "score.baselines"), sys + 1, &store, MAX_SYSTEMS - 1);
    if (ts_score_check_systems(sys, nsys, err, sizeof err)) ts_usage_error("%s (score.baselines)", err);

    const char *files = ts_config_str(cfg, "data.files");
    if (!*files) ts_usage_error("data.files is empty: name the ERA5-format truth files (globs allowed)");
    char **paths;
    size_t npaths;
    if (ts_era5_expand_files(files, &paths, &npaths, err, sizeof err)) ts_usage_error("%s", err);
    char pm_path[4096];
    if (ts_config_bool(cfg, "score.perfect_model")) {
        add_perfect_model(ctx, forecast, paths[0], sys, &nsys, MAX_SYSTEMS, pm_path, sizeof pm_path);
        if (ts_score_check_systems(sys, nsys, err, sizeof err)) ts_usage_error("%s (score.perfect_model)", err);
    }
    ts_era5_open_opts eo;
    ts_era5_opts_from_config(cfg, &eo);

    ts_score_opts o = {sys,
                       nsys,
                       (const char *const *)paths,
                       npaths,
                       eo.fill,
                       eo.grid,
                       eo.row_rule,
                       stats,
                       (size_t)ts_config_int(cfg, "score.bootstrap"),
                       (uint64_t)ts_config_int(cfg, "seed"),
                       ctx->out,
                       stdout};
    ts_score_row *rows;
    size_t n;
    int rc = ts_score_run(&o, &rows, &n, err, sizeof err);
    ts_era5_free_paths(paths, npaths);
    free(store);
    if (rc) ts_fatal("%s", err);
    char fields[4200], esc[4096];
    ts_json_escape(esc, sizeof esc, ctx->out);
    snprintf(fields, sizeof fields, "\"path\":\"%s/scorecard.csv\",\"rows\":%zu", esc, n);
    ts_log_event("scorecard_written", fields);
    ts_info("wrote %s/scorecard.csv and %s/scorecard.jsonl (%zu rows)", ctx->out, ctx->out, n);
    free(rows);
    return 0;
}
