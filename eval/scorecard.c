/* The scorecard driver of tessera score (ts_score_run, eval/score.h):
 * WeatherBench-2 scores of ensemble forecasts against ERA5-format truth,
 * with baselines on the same cases (docs/score.md).
 *
 * Systems scored: the forecast of score.forecast ("tessera"), any further
 * ensembles in the same layout (score.baselines, name=path: the
 * perfect-model ensemble of the reference simulator is one), and two
 * deterministic baselines built here:
 *   persistence  the truth at the initial time, for every lead;
 *   climatology  the tessera stats climatology at the valid time's day of
 *                year and hour.
 * A case is one (initial time, lead) of the tessera file; every other
 * system is scored on exactly those cases.
 *
 * For every case the driver reads the truth at the initial and valid
 * times, each system's members of one target (a channel, or u and v for
 * ws10 and wv<level>) at a time, and keeps per-initial-time values (MSE,
 * ACC, CRPS, ensemble variance); the scorecard aggregates them over initial
 * times and bootstraps the intervals (eval/score.c). Memory holds one
 * target's members, never a whole forecast. Scoring is serial: under MPI
 * rank 0 scores and the other ranks wait.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/caltime.h"
#include "core/geo.h"
#include "core/log.h"
#include "eval/score.h"
#include "io/era5_read.h"
#include "io/forecast_read.h"
#include "io/stats_file.h"

/* A variable name of at most VAR_MAX characters plus a level fits a spec. */
enum { SPEC_MAX = 64, VAR_MAX = 48, NCOMP = 4 };
enum { COMP_MSE = 0, COMP_ACC, COMP_CRPS, COMP_VAR }; /* per-init values kept for each case */

/* One channel of the tessera file: a variable at one level, or a surface variable. */
typedef struct {
    char spec[SPEC_MAX];            /* "z500", "t2m": the truth's and the stats file's name */
    char var[TS_FORECAST_NAME_MAX]; /* "z" */
    double level;                   /* hPa, NaN for surface */
    int clim;                       /* stats state channel, -1 when the stats file lacks it */
} channel;

typedef enum { TARGET_PLAIN, TARGET_SPEED, TARGET_VECTOR } target_kind;

/* What a scorecard variable is made of. */
typedef struct {
    target_kind kind;
    char label[SPEC_MAX], variable[SPEC_MAX];
    double level; /* NaN for surface */
    size_t ch[2]; /* PLAIN: ch[0]; SPEED and VECTOR: u, v */
    int clim;     /* PLAIN, SPEED: stats channel of the field itself (-1: none); VECTOR: 1 when u and v have one */
} target;

/* An ensemble system and where the tessera cases are in its file. */
typedef struct {
    const char *name;
    ts_forecast_file *file;
    const ts_forecast_info *info;
    size_t *init_of; /* (ninit) */
    size_t *step_of; /* (nstep) */
    int *var_of;     /* (nchan) variable index in this file, -1 when absent */
    int *lev_of;     /* (nchan) level index in this file */
} ens_system;

typedef struct {
    const ts_score_opts *o;
    ens_system *ens;   /* (nens) */
    size_t nens, nsys; /* nsys = nens + 2: then persistence, climatology */
    size_t ninit, nstep, nlat, nlon, npix, nchan, ntarget;
    const int64_t *inits; /* (ninit) of the tessera file */
    const double *steps;  /* (nstep) */
    channel *ch;          /* (nchan) */
    target *tg;           /* (ntarget) */
    double *w;            /* (nlat) latitude weights */
    ts_era5_dataset *truth;
    ts_stats stats;
    int have_stats;
    float *t0, *tv; /* (nchan, npix) truth at the init and at the valid time */
    float *clim;    /* (nchan, npix) climatology at the valid time (NaN rows for channels without) */
    float *buf;     /* (2, max members, npix) one target's members */
    float *spd;     /* (max members, npix) wind speed, and the speed of truth / climatology */
    double *comp;   /* (ntarget, nstep, nsys, NCOMP, ninit) per-init values, NaN: not applicable */
} run;

#define SYS_PERSISTENCE(r) ((r)->nens)
#define SYS_CLIMATOLOGY(r) ((r)->nens + 1)

static double *comp_at(const run *r, size_t t, size_t l, size_t s, int k) {
    return r->comp + (((t * r->nstep + l) * r->nsys + s) * NCOMP + (size_t)k) * r->ninit;
}

static const char *when(int64_t t, char *buf) {
    ts_format_datetime(t, buf, 24);
    return buf;
}

/* ---- channels and targets ---------------------------------------------------------------------- */

static int build_channels(run *r, char *err, size_t errcap) {
    const ts_forecast_info *f = r->ens[0].info;
    size_t n = 0;
    for (size_t v = 0; v < f->nvars; v++) {
        n += f->vars[v].on_levels ? f->nlev : 1;
        if (strlen(f->vars[v].name) > VAR_MAX)
            return TS_FAIL(err, errcap, "%s: variable name '%.60s...' is longer than %d characters", f->path, f->vars[v].name, VAR_MAX);
    }
    r->ch = ts_calloc(n, sizeof *r->ch);
    r->nchan = 0;
    float *probe = ts_malloc(sizeof(float) * f->nlat * f->nlon);
    for (size_t v = 0; v < f->nvars; v++)
        for (size_t k = 0; k < (f->vars[v].on_levels ? f->nlev : 1); k++) {
            /* A level slot the system never forecast (tessera forecast writes
             * z500 and t850 into one pressure_level axis) is all fill: it is
             * no channel. Its first field tells; a partly missing one still
             * fails later, when it is read for scoring. */
            if (f->vars[v].on_levels) {
                if (ts_forecast_file_read(r->ens[0].file, v, 0, 0, 0, k, probe, err, errcap)) {
                    free(probe);
                    return -1;
                }
                size_t finite = 0;
                for (size_t p = 0; p < f->nlat * f->nlon; p++) finite += isfinite(probe[p]) != 0;
                if (finite == 0) continue;
            }
            channel *c = &r->ch[r->nchan++];
            snprintf(c->var, sizeof c->var, "%s", f->vars[v].name);
            c->level = f->vars[v].on_levels ? f->levels[k] : NAN;
            if (f->vars[v].on_levels)
                snprintf(c->spec, sizeof c->spec, "%.48s%g", c->var, c->level);
            else
                snprintf(c->spec, sizeof c->spec, "%.48s", c->var);
            c->clim = -1;
        }
    free(probe);
    return 0;
}

static int find_channel(const run *r, const char *var, double level) {
    for (size_t c = 0; c < r->nchan; c++)
        if (strcmp(r->ch[c].var, var) == 0 &&
            ((isnan(level) && isnan(r->ch[c].level)) || fabs(r->ch[c].level - level) < 1e-6))
            return (int)c;
    return -1;
}

static target *add_target(run *r, target_kind kind, const char *label, const char *variable, double level) {
    target *t = &r->tg[r->ntarget++];
    memset(t, 0, sizeof *t);
    t->kind = kind, t->level = level;
    snprintf(t->label, sizeof t->label, "%.63s", label);
    snprintf(t->variable, sizeof t->variable, "%.63s", variable);
    return t;
}

/* Every channel as itself; ws10 from u10 and v10; wv<level> from u and v at each level having both. */
static void build_targets(run *r) {
    r->tg = ts_calloc(2 * r->nchan + 1, sizeof *r->tg);
    for (size_t c = 0; c < r->nchan; c++) {
        target *t = add_target(r, TARGET_PLAIN, r->ch[c].spec, r->ch[c].var, r->ch[c].level);
        t->ch[0] = c, t->clim = r->ch[c].clim;
    }
    int u = find_channel(r, "u10", NAN), v = find_channel(r, "v10", NAN);
    if (u >= 0 && v >= 0) {
        target *t = add_target(r, TARGET_SPEED, "ws10", "ws10", NAN);
        t->ch[0] = (size_t)u, t->ch[1] = (size_t)v;
        /* The mean speed is not the speed of the mean wind, so ACC and the
         * climatology baseline need a climatology of ws10 itself. */
        t->clim = r->have_stats ? ts_stats_channel(&r->stats, "ws10") : -1;
        if (t->clim >= (int)r->stats.nstate) t->clim = -1;
    }
    for (size_t c = 0; c < r->nchan; c++) {
        if (strcmp(r->ch[c].var, "u") != 0) continue;
        int vc = find_channel(r, "v", r->ch[c].level);
        if (vc < 0) continue;
        char label[SPEC_MAX];
        snprintf(label, sizeof label, "wv%g", r->ch[c].level);
        target *t = add_target(r, TARGET_VECTOR, label, label, r->ch[c].level);
        t->ch[0] = c, t->ch[1] = (size_t)vc;
        t->clim = r->ch[c].clim >= 0 && r->ch[vc].clim >= 0;
    }
}

/* ---- opening the systems ------------------------------------------------------------------------- */

static int same_grid(const ts_forecast_info *a, const double *lat, const double *lon, size_t nlat, size_t nlon) {
    if (a->nlat != nlat || a->nlon != nlon) return 0;
    for (size_t i = 0; i < nlat; i++)
        if (fabs(a->lat[i] - lat[i]) > 1e-6) return 0;
    for (size_t j = 0; j < nlon; j++)
        if (fabs(a->lon[j] - lon[j]) > 1e-6) return 0;
    return 1;
}

/* Where each tessera case (init, lead) and channel is in system e's file. */
static int map_system(run *r, ens_system *e, char *err, size_t errcap) {
    const ts_forecast_info *f = e->info, *ref = r->ens[0].info;
    char a[24];
    if (!same_grid(f, ref->lat, ref->lon, ref->nlat, ref->nlon))
        return TS_FAIL(err, errcap, "%s (system %s): its latitude-longitude grid differs from %s's (%s)", f->path, e->name, r->ens[0].name, ref->path);
    e->init_of = ts_calloc(r->ninit, sizeof *e->init_of);
    e->step_of = ts_calloc(r->nstep, sizeof *e->step_of);
    for (size_t i = 0; i < r->ninit; i++) {
        size_t k = 0;
        while (k < f->ninits && f->init_times[k] != r->inits[i]) k++;
        if (k == f->ninits)
            return TS_FAIL(err, errcap, "%s (system %s): no forecast from %s, an initial time of %s", f->path, e->name, when(r->inits[i], a), ref->path);
        e->init_of[i] = k;
    }
    for (size_t l = 0; l < r->nstep; l++) {
        size_t k = 0;
        while (k < f->nsteps && fabs(f->step_hours[k] - r->steps[l]) > 1e-9) k++;
        if (k == f->nsteps)
            return TS_FAIL(err, errcap, "%s (system %s): no lead of %g hours, a lead of %s", f->path, e->name, r->steps[l], ref->path);
        e->step_of[l] = k;
    }
    e->var_of = ts_calloc(r->nchan, sizeof *e->var_of);
    e->lev_of = ts_calloc(r->nchan, sizeof *e->lev_of);
    for (size_t c = 0; c < r->nchan; c++) {
        const channel *ch = &r->ch[c];
        int v = ts_forecast_file_find_var(e->file, ch->var), k = 0;
        if (v >= 0 && f->vars[v].on_levels != !isnan(ch->level)) v = -1;
        if (v >= 0 && !isnan(ch->level) && (k = ts_forecast_file_find_level(e->file, ch->level)) < 0) v = -1;
        if (v < 0 && e != r->ens)
            ts_warn("%s (system %s) has no %s: that channel is not scored for it", f->path, e->name, ch->spec);
        e->var_of[c] = v, e->lev_of[c] = k;
    }
    return 0;
}

static int open_systems(run *r, char *err, size_t errcap) {
    const ts_score_opts *o = r->o;
    r->nens = o->nsystems;
    r->nsys = r->nens + 2;
    r->ens = ts_calloc(r->nens, sizeof *r->ens);
    for (size_t s = 0; s < r->nens; s++) {
        ens_system *e = &r->ens[s];
        e->name = o->systems[s].name;
        if (!(e->file = ts_forecast_file_open(o->systems[s].path, err, errcap))) return -1;
        e->info = ts_forecast_file_info(e->file);
    }
    const ts_forecast_info *f = r->ens[0].info;
    r->ninit = f->ninits, r->nstep = f->nsteps, r->inits = f->init_times, r->steps = f->step_hours;
    r->nlat = f->nlat, r->nlon = f->nlon, r->npix = f->nlat * f->nlon;
    if (build_channels(r, err, errcap)) return -1;
    for (size_t s = 0; s < r->nens; s++)
        if (map_system(r, &r->ens[s], err, errcap)) return -1;
    return 0;
}

/* ---- truth and climatology ---------------------------------------------------------------------- */

static int open_truth(run *r, char *err, size_t errcap) {
    const ts_score_opts *o = r->o;
    size_t cap = r->nchan * SPEC_MAX + 1;
    char *list = ts_calloc(cap, 1);
    for (size_t c = 0; c < r->nchan; c++) {
        if (c) strcat(list, ",");
        strcat(list, r->ch[c].spec);
    }
    /* the forecast's rows: a grid the windows did not divide (ERA5's 721
     * rows) lost its south-pole row to drop_south, and so does the truth */
    ts_era5_open_opts opts = {list, "", o->fill, o->grid, o->row_rule, r->ens[0].info->nlat};
    r->truth = ts_era5_open(o->truth_paths, o->ntruth, &opts, err, errcap);
    free(list);
    if (!r->truth) { /* the reader names data.variables; here the channel list is the forecast's */
        char why[2048];
        snprintf(why, sizeof why, "%s", err);
        return TS_FAIL(err, errcap, "the truth (data.files) must hold every channel of %s: %s", r->ens[0].info->path, why);
    }
    const ts_era5_grid *g = ts_era5_grid_info(r->truth);
    const ts_forecast_info *f = r->ens[0].info;
    if (!same_grid(f, g->lat, g->lon, g->nlat_data, g->nlon))
        return TS_FAIL(err, errcap, "%s: the forecast's %zu x %zu grid differs from the truth's %zu x %zu (data.files, data.grid, "
                        "data.row_rule must give the grid the forecast was made on)", f->path, f->nlat, f->nlon, g->nlat_data, g->nlon);
    return 0;
}

/* Both the init and the valid time of every case must be in the truth. */
static int check_truth_times(run *r, char *err, size_t errcap) {
    size_t idx;
    char a[24], b[24], c[24], d[24];
    size_t nt = ts_era5_ntimes(r->truth);
    const int64_t *tt = ts_era5_times(r->truth);
    for (size_t i = 0; i < r->ninit; i++)
        for (size_t l = 0; l <= r->nstep; l++) {
            int64_t t = r->inits[i] + (l ? llround(r->steps[l - 1] * 3600.0) : 0);
            if (ts_era5_find_time(r->truth, t, &idx) == 0) continue;
            return TS_FAIL(err, errcap, "valid time %s (initial time %s + %g h) is not in the truth (data.files holds %zu times, "
                            "%s to %s): give truth files that cover every initial and valid time of %s", when(t, a), when(r->inits[i], b), l ? r->steps[l - 1] : 0.0, nt, when(tt[0], c), when(tt[nt - 1], d), r->ens[0].info->path);
        }
    return 0;
}

static int open_stats(run *r, char *err, size_t errcap) {
    const char *path = r->o->stats_path;
    if (ts_stats_read(&r->stats, path, err, errcap)) {
        char why[2048];
        snprintf(why, sizeof why, "%s", err);
        return TS_FAIL(err, errcap, "%s (the climatology for ACC and the climatology baseline: run tessera stats, "
                        "or set data.stats)", why);
    }
    r->have_stats = 1;
    if (!r->stats.clim || r->stats.nstate == 0)
        return TS_FAIL(err, errcap, "%s: holds no climatology; rerun tessera stats (it computes one by default)", path);
    const ts_forecast_info *f = r->ens[0].info;
    int ok = r->stats.nlat >= r->nlat && r->stats.nlon == r->nlon;
    for (size_t i = 0; ok && i < r->nlat; i++) ok = fabs(r->stats.lat[i] - f->lat[i]) < 1e-6;
    for (size_t j = 0; ok && j < r->nlon; j++) ok = fabs(r->stats.lon[j] - f->lon[j]) < 1e-6;
    if (!ok)
        return TS_FAIL(err, errcap, "%s: the climatology's %zu x %zu grid differs from the forecast's %zu x %zu (%s)", path, r->stats.nlat, r->stats.nlon, r->nlat, r->nlon, f->path);
    for (size_t c = 0; c < r->nchan; c++) {
        int k = ts_stats_channel(&r->stats, r->ch[c].spec);
        r->ch[c].clim = k >= 0 && (size_t)k < r->stats.nstate ? k : -1;
        if (r->ch[c].clim < 0)
            ts_warn("%s has no climatology of %s: its ACC and climatology baseline are not scored", path,
                    r->ch[c].spec);
    }
    return 0;
}

/* The climatology field of stats channel k at valid time t into out (npix). */
static int clim_field(run *r, int k, int64_t t, float *out, char *err, size_t errcap) {
    const ts_stats *s = &r->stats;
    char a[24];
    int doy = ts_day_of_year(t);
    int64_t sec = ((t % 86400) + 86400) % 86400;
    size_t h = 0;
    while (h < s->nhour && (int64_t)s->hours[h] * 3600 != sec) h++;
    if (h == s->nhour)
        return TS_FAIL(err, errcap, "%s: valid time %s is at no hour of the climatology (every %zu-th of the day)", r->o->stats_path, when(t, a), s->nhour);
    const float *src = s->clim + (((size_t)k * TS_STATS_DAYS + (size_t)(doy - 1)) * s->nhour + h) * s->nlat * s->nlon;
    memcpy(out, src, r->npix * sizeof *out); /* the first nlat rows: the padded band, if any, comes after */
    for (size_t p = 0; p < r->npix; p++)
        if (!isfinite(out[p]))
            return TS_FAIL(err, errcap, "%s: the climatology of %s has no value for day %d, hour %d (no data within its "
                            "smoothing window): compute the statistics from data covering that day", r->o->stats_path, s->name[k], doy, s->hours[h]);
    return 0;
}

/* The truth at time t, every channel, into out (nchan, npix). */
static int read_truth(run *r, int64_t t, float *out, char *err, size_t errcap) {
    size_t idx;
    if (ts_era5_find_time(r->truth, t, &idx))
        return TS_FAIL(err, errcap, "time %lld vanished from the truth", (long long)t);
    return ts_era5_read_block(r->truth, idx, 0, r->nlat, 0, r->nlon, out, NULL, err, errcap);
}

/* ---- one case --------------------------------------------------------------------------------------- */

/* Channel c of system e for case (i, l): every member into out (m, npix). */
static int read_members(run *r, const ens_system *e, size_t c, size_t i, size_t l, float *out, char *err,
                        size_t errcap) {
    size_t m = e->info->nmembers;
    for (size_t k = 0; k < m; k++) {
        float *x = out + k * r->npix;
        if (ts_forecast_file_read(e->file, (size_t)e->var_of[c], k, e->init_of[i], e->step_of[l], (size_t)e->lev_of[c],
                                  x, err, errcap))
            return -1;
        for (size_t p = 0; p < r->npix; p++)
            if (!isfinite(x[p]))
                return TS_FAIL(err, errcap, "%s: variable %s: member %zu, initial time %zu, lead %g h holds a missing or "
                                "non-finite value at grid point %zu", e->info->path, r->ch[c].spec, k, e->init_of[i], r->steps[l], p);
    }
    return 0;
}

/* The per-init values of one target for one system, from its fields:
 * ens (m, npix) [and ens_v for VECTOR], truth and climatology (npix each; v parts after for VECTOR). */
static void score_fields(run *r, const target *t, int is_clim_system, size_t m, const float *ens, const float *ens_v,
                         const float *truth, const float *truth_v, const float *clim, double *out[NCOMP]) {
    size_t nlat = r->nlat, nlon = r->nlon;
    if (t->kind == TARGET_VECTOR) {
        out[COMP_MSE][0] = ts_score_vector_mse(ens, ens_v, m, truth, truth_v, r->w, nlat, nlon);
        return;
    }
    out[COMP_MSE][0] = ts_score_mse(ens, m, truth, r->w, nlat, nlon);
    out[COMP_CRPS][0] = ts_score_crps(ens, m, truth, r->w, nlat, nlon);
    if (clim && !is_clim_system) out[COMP_ACC][0] = ts_score_acc(ens, m, truth, clim, r->w, nlat, nlon);
    if (m >= 2) out[COMP_VAR][0] = ts_score_ens_var(ens, m, r->w, nlat, nlon);
}

static void comp_ptrs(run *r, size_t t, size_t l, size_t s, size_t i, double *out[NCOMP]) {
    for (int k = 0; k < NCOMP; k++) out[k] = comp_at(r, t, l, s, k) + i;
}

static int score_ensemble(run *r, size_t t, size_t s, size_t i, size_t l, const float *clim, char *err, size_t errcap) {
    const target *tg = &r->tg[t];
    const ens_system *e = &r->ens[s];
    size_t m = e->info->nmembers, two = tg->kind != TARGET_PLAIN;
    if (e->var_of[tg->ch[0]] < 0 || (two && e->var_of[tg->ch[1]] < 0)) return 0;
    float *u = r->buf, *v = r->buf + m * r->npix;
    if (read_members(r, e, tg->ch[0], i, l, u, err, errcap)) return -1;
    if (two && read_members(r, e, tg->ch[1], i, l, v, err, errcap)) return -1;
    const float *tu = r->tv + tg->ch[0] * r->npix, *tv = two ? r->tv + tg->ch[1] * r->npix : NULL;
    double *out[NCOMP];
    comp_ptrs(r, t, l, s, i, out);
    if (tg->kind == TARGET_SPEED) {
        float *truth_spd = r->spd + m * r->npix;
        ts_wind_speed(tu, tv, r->npix, truth_spd);
        ts_wind_speed(u, v, m * r->npix, r->spd);
        score_fields(r, tg, 0, m, r->spd, NULL, truth_spd, NULL, clim, out);
    } else {
        score_fields(r, tg, 0, m, u, v, tu, tv, clim, out);
    }
    return 0;
}

/* A deterministic baseline (persistence or climatology): one member, the
 * fields src (nchan, npix). */
static void score_baseline(run *r, size_t t, size_t s, size_t i, size_t l, const float *src, const float *clim) {
    const target *tg = &r->tg[t];
    const float *u = src + tg->ch[0] * r->npix, *tu = r->tv + tg->ch[0] * r->npix;
    const float *v = tg->kind != TARGET_PLAIN ? src + tg->ch[1] * r->npix : NULL;
    const float *tv = tg->kind != TARGET_PLAIN ? r->tv + tg->ch[1] * r->npix : NULL;
    int is_clim = s == SYS_CLIMATOLOGY(r);
    double *out[NCOMP];
    comp_ptrs(r, t, l, s, i, out);
    if (tg->kind == TARGET_SPEED) {
        float *f = r->spd, *y = r->spd + r->npix;
        ts_wind_speed(u, v, r->npix, f);
        ts_wind_speed(tu, tv, r->npix, y);
        score_fields(r, tg, is_clim, 1, f, NULL, y, NULL, clim, out);
    } else {
        score_fields(r, tg, is_clim, 1, u, v, tu, tv, clim, out);
    }
}

/* The climatology of target t at this case (NULL when it has none): a
 * channel's own row of r->clim, or the ws10 field into `out`. */
static int target_clim(run *r, const target *t, int64_t valid, float *out, const float **clim, char *err,
                       size_t errcap) {
    *clim = NULL;
    if (t->kind == TARGET_PLAIN && t->clim >= 0) *clim = r->clim + t->ch[0] * r->npix;
    if (t->kind == TARGET_SPEED && t->clim >= 0) {
        if (clim_field(r, t->clim, valid, out, err, errcap)) return -1;
        *clim = out;
    }
    return 0;
}

/* The climatology forecast of target t: a channel's climatology, the
 * ws10 climatology itself (`clim`), or the u and v climatologies of a
 * vector wind. Nothing when the stats file lacks it. */
static void score_climatology(run *r, size_t t, size_t i, size_t l, const float *clim) {
    const target *tg = &r->tg[t];
    if (tg->kind == TARGET_SPEED) {
        if (!clim) return;
        double *out[NCOMP];
        comp_ptrs(r, t, l, SYS_CLIMATOLOGY(r), i, out);
        float *y = r->spd;
        ts_wind_speed(r->tv + tg->ch[0] * r->npix, r->tv + tg->ch[1] * r->npix, r->npix, y);
        score_fields(r, tg, 1, 1, clim, NULL, y, NULL, clim, out);
        return;
    }
    int have = tg->kind == TARGET_VECTOR ? tg->clim == 1 : tg->clim >= 0;
    if (have) score_baseline(r, t, SYS_CLIMATOLOGY(r), i, l, r->clim, clim);
}

static int score_case(run *r, size_t i, size_t l, char *err, size_t errcap) {
    int64_t valid = r->inits[i] + llround(r->steps[l] * 3600.0);
    if (read_truth(r, valid, r->tv, err, errcap)) return -1;
    for (size_t c = 0; c < r->nchan; c++)
        if (r->ch[c].clim >= 0 && clim_field(r, r->ch[c].clim, valid, r->clim + c * r->npix, err, errcap)) return -1;
    float *ws_clim = r->clim + r->nchan * r->npix; /* (npix) spare row for the ws10 climatology */
    for (size_t t = 0; t < r->ntarget; t++) {
        const float *clim;
        if (target_clim(r, &r->tg[t], valid, ws_clim, &clim, err, errcap)) return -1;
        for (size_t s = 0; s < r->nens; s++)
            if (score_ensemble(r, t, s, i, l, clim, err, errcap)) return -1;
        score_baseline(r, t, SYS_PERSISTENCE(r), i, l, r->t0, clim);
        score_climatology(r, t, i, l, clim);
    }
    return 0;
}

/* ---- the scorecard ---------------------------------------------------------------------------------- */

static const char *system_name(const run *r, size_t s) {
    if (s < r->nens) return r->ens[s].name;
    return s == SYS_PERSISTENCE(r) ? "persistence" : "climatology";
}

/* Which metrics a (target, system) has: the rest are not applicable. */
static int applies(const run *r, const target *t, size_t s, ts_metric m) {
    if (t->kind == TARGET_VECTOR) return m == TS_METRIC_RMSE;
    int ensemble = s < r->nens && r->ens[s].info->nmembers >= 2;
    if (m == TS_METRIC_SPREAD_SKILL) return ensemble;
    if (m == TS_METRIC_ACC) return t->clim >= 0 && s != SYS_CLIMATOLOGY(r);
    return 1;
}

/* 1 when system s has values for target t (it has the channels; the climatology has a climatology). */
static int scored(const run *r, size_t t, size_t s) { return !isnan(comp_at(r, t, 0, s, COMP_MSE)[0]); }

static ts_score_row *make_rows(run *r, size_t *nrows) {
    size_t *idx = ts_malloc((r->o->nboot ? r->o->nboot : 1) * r->ninit * sizeof *idx); /* (nboot, ninit) */
    ts_bootstrap_indices(r->o->seed, r->o->nboot, r->ninit, idx);
    ts_score_row *rows = ts_calloc(r->ntarget * r->nstep * r->nsys * TS_METRIC_COUNT, sizeof *rows);
    static const int COMP_OF[TS_METRIC_COUNT] = {COMP_MSE, COMP_ACC, COMP_CRPS, COMP_MSE};
    size_t n = 0;
    for (size_t t = 0; t < r->ntarget; t++)
        for (size_t l = 0; l < r->nstep; l++)
            for (int m = 0; m < TS_METRIC_COUNT; m++)
                for (size_t s = 0; s < r->nsys; s++) {
                    const target *tg = &r->tg[t];
                    if (!scored(r, t, s) || !applies(r, tg, s, (ts_metric)m)) continue;
                    ts_score_row *row = &rows[n++];
                    snprintf(row->label, sizeof row->label, "%s", tg->label);
                    snprintf(row->variable, sizeof row->variable, "%s", tg->variable);
                    snprintf(row->system, sizeof row->system, "%s", system_name(r, s));
                    row->level = tg->level, row->lead_hours = r->steps[l], row->metric = (ts_metric)m;
                    const double *a = comp_at(r, t, l, s, COMP_OF[m]), *b = comp_at(r, t, l, s, COMP_VAR);
                    row->value = ts_score_aggregate((ts_metric)m, a, b, NULL, r->ninit);
                    ts_bootstrap_interval((ts_metric)m, a, b, r->ninit, idx, r->o->nboot, &row->ci_low, &row->ci_high);
                }
    free(idx);
    *nrows = n;
    return rows;
}

static int write_scorecard(run *r, const ts_score_row *rows, size_t n, char *err, size_t errcap) {
    char path[4096];
    snprintf(path, sizeof path, "%s/scorecard.csv", r->o->out_dir);
    if (ts_scorecard_write_csv(path, rows, n, err, errcap)) return -1;
    snprintf(path, sizeof path, "%s/scorecard.jsonl", r->o->out_dir);
    if (ts_scorecard_write_jsonl(path, rows, n, err, errcap)) return -1;
    if (r->o->table) {
        const char *base[64];
        size_t nb = 0;
        base[nb++] = "persistence", base[nb++] = "climatology";
        for (size_t s = 1; s < r->nens && nb < 64; s++) base[nb++] = r->ens[s].name;
        ts_scorecard_print(r->o->table, rows, n, r->ens[0].name, base, nb);
    }
    return 0;
}

/* ---- the run ----------------------------------------------------------------------------------------- */

static int setup(run *r, char *err, size_t errcap) {
    if (open_systems(r, err, errcap) || open_truth(r, err, errcap) || check_truth_times(r, err, errcap) ||
        open_stats(r, err, errcap))
        return -1;
    build_targets(r);
    r->w = ts_malloc(r->nlat * sizeof *r->w);
    if (ts_lat_area_weights(r->ens[0].info->lat, r->nlat, r->w))
        return TS_FAIL(err, errcap, "%s: its latitudes cannot be area-weighted (fewer than 2 rows?)", r->ens[0].info->path);
    size_t mmax = 1;
    for (size_t s = 0; s < r->nens; s++)
        if (r->ens[s].info->nmembers > mmax) mmax = r->ens[s].info->nmembers;
    r->t0 = ts_malloc(r->nchan * r->npix * sizeof(float));
    r->tv = ts_malloc(r->nchan * r->npix * sizeof(float));
    r->clim = ts_malloc((r->nchan + 1) * r->npix * sizeof(float));
    r->buf = ts_malloc(2 * mmax * r->npix * sizeof(float));
    r->spd = ts_malloc((mmax + 1) * r->npix * sizeof(float));
    size_t ncomp = r->ntarget * r->nstep * r->nsys * NCOMP * r->ninit;
    r->comp = ts_malloc(ncomp * sizeof *r->comp);
    for (size_t k = 0; k < ncomp; k++) r->comp[k] = NAN;
    return 0;
}

static void cleanup(run *r) {
    for (size_t s = 0; s < r->nens; s++) {
        ts_forecast_file_close(r->ens[s].file);
        free(r->ens[s].init_of), free(r->ens[s].step_of), free(r->ens[s].var_of), free(r->ens[s].lev_of);
    }
    free(r->ens), free(r->ch), free(r->tg), free(r->w);
    if (r->truth) ts_era5_dataset_close(r->truth);
    if (r->have_stats) ts_stats_free(&r->stats);
    free(r->t0), free(r->tv), free(r->clim), free(r->buf), free(r->spd), free(r->comp);
}

static int score_all(run *r, char *err, size_t errcap) {
    double t0 = ts_now();
    for (size_t i = 0; i < r->ninit; i++) {
        if (read_truth(r, r->inits[i], r->t0, err, errcap)) return -1;
        for (size_t l = 0; l < r->nstep; l++)
            if (score_case(r, i, l, err, errcap)) return -1;
        char a[24];
        double dt = ts_now() - t0;
        ts_info("scored initial time %zu/%zu (%s), %zu leads; %.1f s, ETA %.0f s", i + 1, r->ninit,
                when(r->inits[i], a), r->nstep, dt, dt / (double)(i + 1) * (double)(r->ninit - i - 1));
    }
    return 0;
}

/* System names become scorecard values: unique, not a built-in baseline's,
 * short, and free of CSV and JSON separators. */
int ts_score_check_systems(const ts_score_system *sys, size_t n, char *err, size_t errcap) {
    for (size_t s = 0; s < n; s++) {
        const char *name = sys[s].name;
        if (!name || !*name || !sys[s].path || !*sys[s].path)
            return TS_FAIL(err, errcap, "score: system %zu needs a name and a forecast file", s);
        if (strcmp(name, "persistence") == 0 || strcmp(name, "climatology") == 0)
            return TS_FAIL(err, errcap, "score: '%s' is the name of a built-in baseline; choose another", name);
        for (size_t q = 0; q < s; q++)
            if (strcmp(name, sys[q].name) == 0)
                return TS_FAIL(err, errcap, "score: the system name '%s' is given twice", name);
        if (strlen(name) > 63 || strpbrk(name, ",\"\\\n"))
            return TS_FAIL(err, errcap, "score: system name '%s': at most 63 characters, no commas, quotes, "
                            "backslashes or newlines", name);
    }
    return 0;
}

int ts_score_run(const ts_score_opts *o, ts_score_row **rows_out, size_t *nrows_out, char *err, size_t errcap) {
    if (o->nsystems == 0) return TS_FAIL(err, errcap, "score: no forecast to score");
    if (ts_score_check_systems(o->systems, o->nsystems, err, errcap)) return -1;
    run r;
    memset(&r, 0, sizeof r);
    r.o = o;
    int rc = setup(&r, err, errcap);
    if (rc == 0) rc = score_all(&r, err, errcap);
    ts_score_row *rows = NULL;
    size_t n = 0;
    if (rc == 0) {
        rows = make_rows(&r, &n);
        rc = write_scorecard(&r, rows, n, err, errcap);
    }
    cleanup(&r);
    if (rc == 0 && rows_out)
        *rows_out = rows, *nrows_out = n;
    else
        free(rows);
    return rc;
}

/* ---- the command ------------------------------------------------------------------------------------- */

