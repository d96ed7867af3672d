/* tessera synth-era5: check the synth.* keys, then run the reference
 * simulator (sim/synth_era5.h) on rank 0; other ranks have nothing to do. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/caltime.h"
#include "core/config.h"
#include "core/log.h"
#include "core/rng.h"
#include "forecast/commands.h"
#include "sim/synth_era5.h"

enum { MAX_LEVELS = 64, MAX_RESTARTS = 1024 };

/* A date or time (core/caltime.h formats) on a whole hour; -1 otherwise. */
static int parse_hour(const char *s, int64_t *t) { return ts_parse_datetime(s, t) || *t % 3600 ? -1 : 0; }

/* The next comma-separated item of *s into buf (spaces trimmed); 0 at the end. */
static int next_item(const char **s, char *buf, size_t cap) {
    while (**s == ' ' || **s == ',') (*s)++;
    if (!**s) return 0;
    size_t n = strcspn(*s, ",");
    size_t k = n;
    while (k > 0 && (*s)[k - 1] == ' ') k--;
    snprintf(buf, cap, "%.*s", (int)(k < cap ? k : cap - 1), *s);
    *s += n;
    return 1;
}

static int cmp_desc(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

/* synth.levels: hPa in [100, 1000], stored decreasing as the CDS does. */
static size_t parse_levels(const char *text, double *levels) {
    char item[64];
    size_t n = 0;
    for (const char *s = text; next_item(&s, item, sizeof item);) {
        char *end;
        double p = strtod(item, &end);
        if (end == item || *end != '\0')
            ts_usage_error("synth.levels: '%s' is not a pressure in hPa (expected e.g. 500,700,850)", item);
        if (!(p >= 100.0 && p <= 1000.0))
            ts_usage_error("synth.levels: %s hPa is outside 100..1000 hPa, the range the model diagnoses", item);
        if (n == MAX_LEVELS) ts_usage_error("synth.levels: more than %d levels", MAX_LEVELS);
        for (size_t i = 0; i < n; i++)
            if (levels[i] == p) ts_usage_error("synth.levels: %s hPa is listed twice", item);
        levels[n++] = p;
    }
    if (n == 0) ts_usage_error("synth.levels is empty: give at least one pressure level in hPa, e.g. 500,700,850");
    qsort(levels, n, sizeof *levels, cmp_desc);
    return n;
}

static int cmp_time(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* synth.restart_times: "YYYY-MM-DDTHH,..." inside [first, last]. */
static size_t parse_restarts(const char *text, int64_t first, int64_t last, int64_t *times) {
    char item[64];
    size_t n = 0;
    for (const char *s = text; next_item(&s, item, sizeof item);) {
        int64_t t;
        if (parse_hour(item, &t))
            ts_usage_error("synth.restart_times: '%s' is not a whole hour YYYY-MM-DDTHH (e.g. 2020-03-01T00)", item);
        if (t < first || t > last)
            ts_usage_error("synth.restart_times: %s is outside the simulated period (from the start of the "
                           "spin-up to the last valid time written)", item);
        if (n == MAX_RESTARTS) ts_usage_error("synth.restart_times: more than %d times", MAX_RESTARTS);
        times[n++] = t;
    }
    qsort(times, n, sizeof *times, cmp_time);
    for (size_t i = 1; i < n; i++)
        if (times[i] == times[i - 1]) ts_usage_error("synth.restart_times: a time is listed twice");
    return n;
}

int cmd_synth_era5(const ts_command_ctx *ctx) {
    if (ctx->layout->rank != 0) return 0; /* one model, one writer */
    const ts_config *cfg = ctx->cfg;
    ts_synth_era5_opts o = {0};
    o.out_dir = ctx->out;
    int fine = strcmp(ts_config_str(cfg, "synth.grid"), "1.40625") == 0;
    o.nlat = fine ? 128 : 32;
    o.nlon = fine ? 256 : 64;
    const char *start = ts_config_str(cfg, "synth.start");
    if (parse_hour(start, &o.start))
        ts_usage_error("synth.start='%s' is not a date YYYY-MM-DD (e.g. 2020-01-01) or a whole hour YYYY-MM-DDTHH",
                       start);
    o.days = (int)ts_config_int(cfg, "synth.days");
    o.step_hours = (int)ts_config_int(cfg, "synth.step_hours");
    if (24 % o.step_hours)
        ts_usage_error("synth.step_hours=%d must divide 24 (1, 2, 3, 4, 6, 8, 12 or 24)", o.step_hours);
    o.spinup_days = (int)ts_config_int(cfg, "synth.spinup_days");
    double levels[MAX_LEVELS];
    o.nlev = parse_levels(ts_config_str(cfg, "synth.levels"), levels);
    o.levels = levels;
    o.layout = strcmp(ts_config_str(cfg, "synth.layout"), "packed") == 0 ? TS_ERA5_LAYOUT_PACKED : TS_ERA5_LAYOUT_CDS;
    o.split_accum = ts_config_bool(cfg, "synth.split_accum");
    int64_t seed = ts_config_int(cfg, "seed");
    if (seed < 0 || (uint64_t)seed > TS_RNG_SEED_MAX)
        ts_usage_error("seed=%lld is outside 0..2^56-1, the range of the counter RNG", (long long)seed);
    o.seed = (uint64_t)seed;
    int64_t first = o.start - (int64_t)o.spinup_days * 86400;
    int64_t last = o.start + ((int64_t)o.days * 24 / o.step_hours - 1) * o.step_hours * 3600;
    static int64_t restarts[MAX_RESTARTS];
    o.nrestart = parse_restarts(ts_config_str(cfg, "synth.restart_times"), first, last, restarts);
    o.restart_times = restarts;
    o.progress_seconds = 5.0;

    int need = ts_config_to_json(cfg, NULL, 0);
    char *history = ts_malloc((size_t)need + 64);
    int head = snprintf(history, 64, "tessera %s synth-era5 ", TESSERA_VERSION);
    ts_config_to_json(cfg, history + head, (size_t)need + 1);
    o.history = history;

    char err[2048];
    double t0 = ts_now();
    int rc = ts_synth_era5_run(&o, err, sizeof err);
    free(history);
    if (rc) ts_fatal("%s", err);
    ts_info("synth-era5: done in %.1f s; files in %s", ts_now() - t0, ctx->out);
    return 0;
}
