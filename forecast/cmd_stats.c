/* tessera stats: normalization statistics of ERA5-format data.
 *
 * Every rank takes a contiguous share of the time axis, reads each of its
 * times once (plus the partner times of the residuals), and accumulates in
 * double: area-weighted sums for means and variances (about a common shift,
 * the first time's channel means, so z at 5e4 m2 s-2 loses no digits),
 * residual sums per time step, and climatology sums per (day of year, hour).
 * The sums are reduced to rank 0, which smooths the climatology and writes
 * the file (io/stats_file.h; layout in docs/formats.md).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/caltime.h"
#include "core/geo.h"
#include "core/log.h"
#include "forecast/commands.h"
#include "forecast/data.h"
#include "io/era5_read.h"
#include "io/stats_file.h"
#include "parallel/collective.h"

enum { MAX_RES = 16 };

typedef struct {
    ts_era5_dataset *ds;
    const ts_era5_grid *grid;
    size_t nt, nstate, nchan, npix;
    size_t first, last; /* the time indices in [stats.start, stats.end): first .. last - 1 */
    int nres, res_hours[MAX_RES];
    int step_hours, nhour;
    double *wrow;   /* (nlat) area weights, 0 on padded rows */
    double *shift;  /* (nchan) */
    /* accumulators, summed over ranks */
    double *acc;    /* (nchan, 3): sum w, sum w (x - shift), sum w (x - shift)^2 */
    double *racc;   /* (nres, nstate, 3) for residuals */
    double *clim;   /* (nstate, 366, nhour, npix) sums, or NULL */
    double *ccount; /* (366, nhour) */
    float *buf, *buf2; /* (nchan, npix) */
} stats_run;

static int parse_hours(const char *text, int *out, int max, char *err, size_t cap) {
    int n = 0;
    const char *p = text;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v <= 0 || v > 24 * 366) {
            return TS_FAIL(err, cap, "stats.residual_hours = '%s': want positive whole hours, comma-separated", text);
        }
        if (n == max) {
            return TS_FAIL(err, cap, "stats.residual_hours = '%s': at most %d steps", text, max);
        }
        out[n++] = (int)v;
        p = end;
        while (*p == ',' || *p == ' ') p++;
    }
    if (n == 0) snprintf(err, cap, "stats.residual_hours is empty");
    return n ? n : -1;
}

static void read_or_die(stats_run *r, size_t t, float *state, float *forcing) {
    char err[1024];
    if (ts_era5_read_block(r->ds, t, 0, r->grid->nlat, 0, r->grid->nlon, state, forcing, err, sizeof err))
        ts_fatal("%s", err);
}

/* Weighted sums of one field about a shift: acc[0..2] += (sum w, sum w d, sum w d^2). */
static void accumulate(double *acc, const float *x, const double *wrow, size_t nlat, size_t nlon, double shift) {
    double sw = 0, s1 = 0, s2 = 0;
    for (size_t i = 0; i < nlat; i++) {
        double rs1 = 0, rs2 = 0;
        for (size_t j = 0; j < nlon; j++) {
            double d = x[i * nlon + j] - shift;
            rs1 += d, rs2 += d * d;
        }
        sw += wrow[i] * (double)nlon, s1 += wrow[i] * rs1, s2 += wrow[i] * rs2;
    }
    acc[0] += sw, acc[1] += s1, acc[2] += s2;
}

static void stats_path(const ts_command_ctx *ctx, char *buf, size_t cap) {
    const char *want = ts_config_str(ctx->cfg, "data.stats");
    if (*want) snprintf(buf, cap, "%s", want);
    else snprintf(buf, cap, "%s/stats.nc", ctx->out);
}

/* The folder data.stats goes into, checked before the data is read rather
 * than after. */
static void check_output_folder(const char *path) {
    char dir[4096];
    const char *slash = strrchr(path, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    struct stat st;
    if (!dir[0]) return; /* "/stats.nc" */
    if (stat(dir, &st) != 0) ts_fatal("%s: cannot write the statistics there: folder %s: %s", path, dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) ts_fatal("%s: cannot write the statistics there: %s is not a folder", path, dir);
}

/* stats.start / stats.end: the statistics (and the climatology baseline
 * scored against forecasts) of the training years only, so that no figure
 * is computed with knowledge of the period it is scored on. Residual pairs
 * need both times inside the range. */
static void select_times(stats_run *r, const ts_config *cfg) {
    const int64_t *times = ts_era5_times(r->ds);
    int64_t lo = ts_config_time(cfg, "stats.start", times[0]);
    int64_t hi = ts_config_time(cfg, "stats.end", times[r->nt - 1] + 1);
    if (!(lo < hi)) ts_usage_error("stats.start = %s is not before stats.end = %s", ts_config_str(cfg, "stats.start"),
                                   ts_config_str(cfg, "stats.end"));
    r->first = 0;
    while (r->first < r->nt && times[r->first] < lo) r->first++;
    r->last = r->first;
    while (r->last < r->nt && times[r->last] < hi) r->last++;
}

static void setup(stats_run *r, const ts_command_ctx *ctx) {
    const ts_config *cfg = ctx->cfg;
    char err[1024];
    char path[4096];
    stats_path(ctx, path, sizeof path);
    if (ctx->layout->rank == 0) check_output_folder(path);
    r->ds = ts_open_data(cfg, 0, ctx->layout);
    r->grid = ts_era5_grid_info(r->ds);
    r->nt = ts_era5_ntimes(r->ds);
    select_times(r, cfg);
    r->nstate = ts_era5_nstate(r->ds);
    r->nchan = r->nstate + ts_era5_nforcing(r->ds);
    r->npix = r->grid->nlat * r->grid->nlon;
    if (r->last - r->first < 2)
        ts_usage_error("the data holds %zu time(s) in [stats.start, stats.end); statistics need at least 2",
                       r->last - r->first);

    r->nres = parse_hours(ts_config_str(cfg, "stats.residual_hours"), r->res_hours, MAX_RES, err, sizeof err);
    if (r->nres < 0) ts_usage_error("%s", err);

    /* The data's time step sets the climatology's hours of the day. */
    const int64_t *times = ts_era5_times(r->ds);
    int64_t step = 0;
    for (size_t i = 1; i < r->nt; i++)
        if (step == 0 || times[i] - times[i - 1] < step) step = times[i] - times[i - 1];
    if (step % 3600 || 86400 % step)
        ts_fatal("the data's time step of %lld s is not a whole number of hours dividing 24", (long long)step);
    r->step_hours = (int)(step / 3600), r->nhour = 24 / r->step_hours;
    for (size_t i = 0; i < r->nt; i++)
        if ((times[i] % 86400) % step) {
            char when[32];
            ts_format_datetime(times[i], when, sizeof when);
            ts_fatal("valid time %s is off the data's %d-hourly grid of hours", when, r->step_hours);
        }

    r->wrow = ts_calloc(r->grid->nlat, sizeof(double));
    if (ts_lat_area_weights(r->grid->lat, r->grid->nlat_data, r->wrow))
        ts_fatal("the data's latitudes cannot be area-weighted (a repeated latitude or fewer than 2 rows)");
    r->shift = ts_calloc(r->nchan, sizeof(double));
    r->acc = ts_calloc(r->nchan * 3, sizeof(double));
    r->racc = ts_calloc((size_t)r->nres * r->nstate * 3, sizeof(double));
    r->buf = ts_malloc(sizeof(float) * r->nchan * r->npix);
    r->buf2 = ts_malloc(sizeof(float) * r->nchan * r->npix);
    r->ccount = ts_calloc((size_t)TS_STATS_DAYS * r->nhour, sizeof(double));
    double clim_bytes = 8.0 * r->nstate * TS_STATS_DAYS * r->nhour * r->npix;
    if (clim_bytes > 8.0 * 1024 * 1024 * 1024)
        ts_usage_error("the climatology sums would take %.1f GiB per rank: coarsen with data.grid=5.625 or 1.40625",
                       clim_bytes / (1 << 30));
    r->clim = ts_calloc(r->nstate * TS_STATS_DAYS * r->nhour * r->npix, sizeof(double));

    /* The common shift: channel means of the first time (plain means). */
    read_or_die(r, r->first, r->buf, r->buf + r->nstate * r->npix);
    for (size_t c = 0; c < r->nchan; c++) {
        double s = 0;
        for (size_t k = 0; k < r->npix; k++) s += r->buf[c * r->npix + k];
        r->shift[c] = s / (double)r->npix;
    }
}

static void process_time(stats_run *r, size_t i) {
    const int64_t *times = ts_era5_times(r->ds);
    const size_t nlat = r->grid->nlat_data, nlon = r->grid->nlon, np = r->npix;
    read_or_die(r, i, r->buf, r->buf + r->nstate * np);
    for (size_t c = 0; c < r->nchan; c++) accumulate(r->acc + 3 * c, r->buf + c * np, r->wrow, nlat, nlon, r->shift[c]);

    int doy = ts_day_of_year(times[i]);
    int hour = (int)((times[i] % 86400 + 86400) % 86400 / 3600) / r->step_hours;
    size_t slot = (size_t)(doy - 1) * r->nhour + (size_t)hour;
    r->ccount[slot] += 1;
    for (size_t c = 0; c < r->nstate; c++) {
        double *dst = r->clim + (c * TS_STATS_DAYS * r->nhour + slot) * np;
        const float *src = r->buf + c * np;
        for (size_t k = 0; k < np; k++) dst[k] += src[k];
    }

    for (int d = 0; d < r->nres; d++) {
        size_t j;
        if (ts_era5_find_time(r->ds, times[i] + 3600LL * r->res_hours[d], &j) || j >= r->last) continue;
        read_or_die(r, j, r->buf2, NULL);
        for (size_t c = 0; c < r->nstate; c++) {
            float *diff = r->buf2 + c * np; /* x(t + step) - x(t), in place */
            for (size_t k = 0; k < np; k++) diff[k] -= r->buf[c * np + k];
            accumulate(r->racc + ((size_t)d * r->nstate + c) * 3, diff, r->wrow, nlat, nlon, 0.0);
        }
    }
}

/* Circular smoothing over `days` days of year, per hour slot and grid point:
 * sums and counts of the window, so days with several years weigh more. */
static void smooth_climatology(const stats_run *r, int days, float *out) {
    const size_t np = r->npix, nh = (size_t)r->nhour;
    const int half = days / 2;
    double *win = ts_malloc(sizeof(double) * np);
    for (size_t c = 0; c < r->nstate; c++)
        for (size_t h = 0; h < nh; h++) {
            const double *sums = r->clim + c * TS_STATS_DAYS * nh * np;
            for (size_t k = 0; k < np; k++) win[k] = 0;
            double count = 0;
            for (int d = -half; d <= half; d++) {
                size_t s = (size_t)((d % TS_STATS_DAYS + TS_STATS_DAYS) % TS_STATS_DAYS) * nh + h;
                count += r->ccount[s];
                for (size_t k = 0; k < np; k++) win[k] += sums[s * np + k];
            }
            for (int doy = 0; doy < TS_STATS_DAYS; doy++) {
                float *dst = out + ((c * TS_STATS_DAYS + (size_t)doy) * nh + h) * np;
                for (size_t k = 0; k < np; k++) dst[k] = count > 0 ? (float)(win[k] / count) : NAN;
                /* slide: add day doy + half + 1, drop day doy - half */
                size_t in = (size_t)((doy + half + 1) % TS_STATS_DAYS) * nh + h;
                size_t outs = (size_t)((doy - half + TS_STATS_DAYS) % TS_STATS_DAYS) * nh + h;
                count += r->ccount[in] - r->ccount[outs];
                for (size_t k = 0; k < np; k++) win[k] += sums[in * np + k] - sums[outs * np + k];
            }
        }
    free(win);
}

static void finish(stats_run *r, const ts_command_ctx *ctx) {
    const ts_config *cfg = ctx->cfg;
    char err[1024];
    ts_stats s;
    ts_stats_alloc(&s, r->nchan, r->nstate, (size_t)r->nres, r->grid->nlat, r->grid->nlon, (size_t)r->nhour, 1);
    for (size_t c = 0; c < r->nchan; c++) {
        const ts_era5_channel *ch = c < r->nstate ? ts_era5_state_channel(r->ds, c)
                                                  : ts_era5_forcing_channel(r->ds, c - r->nstate);
        snprintf(s.name[c], TS_STATS_NAME_MAX, "%s", ch->spec);
        snprintf(s.units[c], TS_STATS_NAME_MAX, "%s", ch->units);
        double m = r->acc[3 * c + 1] / r->acc[3 * c], var = r->acc[3 * c + 2] / r->acc[3 * c] - m * m;
        s.mean[c] = r->shift[c] + m;
        s.std[c] = sqrt(var > 0 ? var : 0);
        if (!(s.std[c] > 0)) {
            ts_warn("channel %s is constant (%g): its std is set to 1 so it normalises to 0", ch->spec, s.mean[c]);
            s.std[c] = 1.0;
        }
    }
    for (int d = 0; d < r->nres; d++) {
        s.res_hours[d] = r->res_hours[d];
        for (size_t c = 0; c < r->nstate; c++) {
            const double *a = r->racc + ((size_t)d * r->nstate + c) * 3;
            if (a[0] == 0)
                ts_fatal("no pairs of times %d h apart in the data: drop %d from stats.residual_hours",
                         r->res_hours[d], r->res_hours[d]);
            double m = a[1] / a[0], var = a[2] / a[0] - m * m;
            s.res_mean[(size_t)d * r->nstate + c] = m;
            s.res_std[(size_t)d * r->nstate + c] = sqrt(var > 0 ? var : 0);
            if (!(s.res_std[(size_t)d * r->nstate + c] > 0)) {
                ts_warn("channel %s never changes over %d h: its residual std is set to 1", s.name[c], r->res_hours[d]);
                s.res_std[(size_t)d * r->nstate + c] = 1.0;
            }
        }
    }
    memcpy(s.lat, r->grid->lat, sizeof(double) * r->grid->nlat);
    memcpy(s.lon, r->grid->lon, sizeof(double) * r->grid->nlon);
    for (int h = 0; h < r->nhour; h++) s.hours[h] = h * r->step_hours;
    s.smooth_days = (int)ts_config_int(cfg, "stats.smooth_days");
    smooth_climatology(r, s.smooth_days, s.clim);
    const int64_t *times = ts_era5_times(r->ds);
    s.time_first = times[r->first], s.time_last = times[r->last - 1], s.ntimes = r->last - r->first;

    char path[4096];
    stats_path(ctx, path, sizeof path);
    int need = ts_config_to_json(cfg, NULL, 0);
    char *history = ts_malloc((size_t)need + 1);
    ts_config_to_json(cfg, history, (size_t)need + 1);
    if (ts_stats_write(&s, path, history, err, sizeof err)) ts_fatal("%s", err);
    free(history);

    printf("\n%-12s %-14s %14s %14s", "channel", "units", "mean", "std");
    for (int d = 0; d < r->nres; d++) printf("   resid std %2dh", r->res_hours[d]);
    printf("\n");
    for (size_t c = 0; c < r->nchan; c++) {
        printf("%-12s %-14s %14.6g %14.6g", s.name[c], s.units[c], s.mean[c], s.std[c]);
        for (int d = 0; d < r->nres; d++)
            if (c < r->nstate) printf(" %15.6g", s.res_std[(size_t)d * r->nstate + c]);
        printf("\n");
    }
    ts_info("statistics of %zu times (%zu channels) written to %s", r->last - r->first, r->nchan, path);
    char fields[4200];
    snprintf(fields, sizeof fields, "\"path\":\"%s\",\"ntimes\":%zu,\"channels\":%zu", path, r->last - r->first,
             r->nchan);
    ts_log_event("stats_written", fields);
    ts_stats_free(&s);
}

int cmd_stats(const ts_command_ctx *ctx) {
    stats_run r;
    memset(&r, 0, sizeof r);
    setup(&r, ctx);
    int rank = ctx->layout->rank, size = ctx->layout->world;
    const size_t n = r.last - r.first;
    size_t lo = r.first + n * (size_t)rank / (size_t)size, hi = r.first + n * (size_t)(rank + 1) / (size_t)size;
    double t0 = ts_now(), last = t0;
    for (size_t i = lo; i < hi; i++) {
        process_time(&r, i);
        double now = ts_now();
        if (rank == 0 && (now - last > 5.0 || i + 1 == hi)) {
            double rate = (double)(i + 1 - lo) / (now - t0);
            ts_info("stats: %zu/%zu times on rank 0 (%zu ranks), %.1f times/s, ETA %.0f s", i + 1 - lo, hi - lo,
                    (size_t)size, rate, (double)(hi - i - 1) / rate);
            last = now;
        }
    }
    /* Sum every accumulator onto rank 0. */
    double *bufs[4] = {r.acc, r.racc, r.ccount, r.clim};
    size_t lens[4] = {r.nchan * 3, (size_t)r.nres * r.nstate * 3, (size_t)TS_STATS_DAYS * r.nhour,
                      r.nstate * TS_STATS_DAYS * r.nhour * r.npix};
    for (int k = 0; k < 4; k++) ts_par_reduce_doubles(ctx->layout, bufs[k], lens[k]);
    if (rank == 0) finish(&r, ctx);
    free(r.wrow), free(r.shift), free(r.acc), free(r.racc), free(r.clim), free(r.ccount), free(r.buf), free(r.buf2);
    ts_era5_dataset_close(r.ds);
    return 0;
}
