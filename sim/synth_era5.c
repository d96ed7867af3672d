/* The synth-era5 time loop: spin-up, diagnostics every step_hours, one
 * set of ERA5-format files per calendar year, restart files, progress. */
#include "sim/synth_era5.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/caltime.h"
#include "core/log.h"
#include "sim/qg.h"

/* ---- variables as the CDS writes them ----------------------------------------------- */

/* Packing ranges (packed layout) are wide enough for anything the model
 * produces (docs/sim.md). Fields that are exactly 0 somewhere (night tisr,
 * lsm and surface z over the sea, q where clipped) get a range symmetric
 * about 0, so that 0 packs exactly: ERA5's packing maps the range's lower
 * end onto the fill value, which the writer avoids by one step up. */
enum { NPRESSURE_VARS = 5, NSINGLE_VARS = 7, TISR_INDEX = 6 };
static const ts_era5_var PRESSURE_VARS[NPRESSURE_VARS] = {
    {"z", "m**2 s**-2", "Geopotential", "geopotential", 129, 1, -30000, 200000},
    {"t", "K", "Temperature", "air_temperature", 130, 1, 150, 350},
    {"u", "m s**-1", "U component of wind", "eastward_wind", 131, 1, -200, 200},
    {"v", "m s**-1", "V component of wind", "northward_wind", 132, 1, -200, 200},
    {"q", "kg kg**-1", "Specific humidity", "specific_humidity", 133, 1, -0.05, 0.05},
};
/* The instant variables, then tisr (the one accumulation). */
static const ts_era5_var SINGLE_VARS[NSINGLE_VARS] = {
    {"u10", "m s**-1", "10 metre U wind component", "unknown", 165, 0, -100, 100},
    {"v10", "m s**-1", "10 metre V wind component", "unknown", 166, 0, -100, 100},
    {"t2m", "K", "2 metre temperature", "unknown", 167, 0, 150, 350},
    {"msl", "Pa", "Mean sea level pressure", "air_pressure_at_mean_sea_level", 151, 0, 85000, 115000},
    {"lsm", "(0 - 1)", "Land-sea mask", "land_binary_mask", 172, 0, -1, 1},
    {"z", "m**2 s**-2", "Geopotential", "geopotential", 129, 0, -60000, 60000},
    {"tisr", "J m**-2", "TOA incident solar radiation", "unknown", 212, 0, -5.5e6, 5.5e6},
};

/* ---- file names ------------------------------------------------------------------------- */

static int year_of(int64_t t) { return ts_datetime_from_unix(t).year; }

void ts_synth_era5_paths(const ts_synth_era5_opts *o, int64_t t, char *pressure, char *single, char *accum,
                         size_t cap) {
    int y = year_of(t);
    snprintf(pressure, cap, "%s/era5_pressure_levels_%04d.nc", o->out_dir, y);
    if (o->split_accum) {
        snprintf(single, cap, "%s/era5_single_levels_%04d/data_stream-oper_stepType-instant.nc", o->out_dir, y);
        snprintf(accum, cap, "%s/era5_single_levels_%04d/data_stream-oper_stepType-accum.nc", o->out_dir, y);
    } else {
        snprintf(single, cap, "%s/era5_single_levels_%04d.nc", o->out_dir, y);
        accum[0] = '\0';
    }
}

/* YYYY-MM-DDTHH */
static void format_time(int64_t t, char *buf, size_t cap) {
    ts_datetime d = ts_datetime_from_unix(t);
    snprintf(buf, cap, "%04d-%02d-%02dT%02d", d.year, d.month, d.day, d.hour);
}

void ts_synth_era5_restart_path(const char *out_dir, int64_t t, char *buf, size_t cap) {
    char when[32];
    format_time(t, when, sizeof when);
    snprintf(buf, cap, "%s/restart_%s.nc", out_dir, when);
}

/* ---- the writers of one year --------------------------------------------------------- */

enum { W_PRESSURE, W_SINGLE, W_ACCUM, NWRITERS };

typedef struct {
    const ts_synth_era5_opts *o;
    const ts_qg *m;
    int year;                     /* of the open files; 0 when none */
    ts_era5_writer *w[NWRITERS];
} year_files;

static ts_era5_writer *open_one(year_files *yf, const char *path, const ts_era5_var *vars, size_t nvars,
                                int levels, char *err, size_t errcap) {
    const ts_synth_era5_opts *o = yf->o;
    ts_era5_file_spec spec = {
        .path = path,
        .layout = o->layout,
        .nlat = o->nlat,
        .nlon = o->nlon,
        .lat = ts_qg_lat(yf->m),
        .lon = ts_qg_lon(yf->m),
        .nlev = levels ? o->nlev : 0,
        .levels = levels ? o->levels : NULL,
        .nvars = nvars,
        .vars = vars,
        .history = o->history,
    };
    ts_era5_writer *w = ts_era5_create(&spec, err, errcap);
    if (w) ts_info("synth-era5: writing %s", path);
    return w;
}

static int close_year(year_files *yf, int finalize, char *err, size_t errcap) {
    int status = 0;
    char why[1024];
    for (int i = 0; i < NWRITERS; i++) {
        if (!yf->w[i]) continue;
        if (ts_era5_close(yf->w[i], finalize, why, sizeof why) && status == 0) {
            snprintf(err, errcap, "%s", why);
            status = -1;
            finalize = 0; /* one broken file: the year is not complete */
        }
        yf->w[i] = NULL;
    }
    yf->year = 0;
    return status;
}

static int open_year(year_files *yf, int64_t t, char *err, size_t errcap) {
    const ts_synth_era5_opts *o = yf->o;
    char pressure[4096], single[4096], accum[4096];
    ts_synth_era5_paths(o, t, pressure, single, accum, sizeof pressure);
    if (o->split_accum) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/era5_single_levels_%04d", o->out_dir, year_of(t));
        if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
            return TS_FAIL(err, errcap, "%s: cannot create the folder: %s", dir, strerror(errno));
        }
    }
    size_t nsingle = o->split_accum ? TISR_INDEX : NSINGLE_VARS;
    yf->year = year_of(t);
    if (!(yf->w[W_PRESSURE] = open_one(yf, pressure, PRESSURE_VARS, NPRESSURE_VARS, 1, err, errcap))) return -1;
    if (!(yf->w[W_SINGLE] = open_one(yf, single, SINGLE_VARS, nsingle, 0, err, errcap))) return -1;
    if (o->split_accum && !(yf->w[W_ACCUM] = open_one(yf, accum, &SINGLE_VARS[TISR_INDEX], 1, 0, err, errcap)))
        return -1;
    return 0;
}

static int append_time(year_files *yf, int64_t t, const ts_qg_fields *f, char *err, size_t errcap) {
    if (yf->year != year_of(t)) {
        if (yf->year && close_year(yf, 1, err, errcap)) return -1;
        if (open_year(yf, t, err, errcap)) return -1;
    }
    const float *pl[NPRESSURE_VARS] = {f->z, f->t, f->u, f->v, f->q};
    const float *sl[NSINGLE_VARS] = {f->u10, f->v10, f->t2m, f->msl, f->lsm, f->zsfc, f->tisr};
    const float *ac[1] = {f->tisr};
    if (ts_era5_append(yf->w[W_PRESSURE], t, pl, err, errcap) || ts_era5_append(yf->w[W_SINGLE], t, sl, err, errcap))
        return -1;
    if (yf->w[W_ACCUM] && ts_era5_append(yf->w[W_ACCUM], t, ac, err, errcap)) return -1;
    return 0;
}

/* ---- time loop ---------------------------------------------------------------------------- */

typedef struct {
    const ts_synth_era5_opts *o;
    ts_qg *m;
    size_t next_restart;   /* index into o->restart_times */
    double wall0, last_log;
    int64_t t_first, t_last; /* model start and the last valid time */
} run_state;

static int save_restart_if_due(run_state *r, char *err, size_t errcap) {
    const ts_synth_era5_opts *o = r->o;
    int64_t t = ts_qg_time(r->m);
    while (r->next_restart < o->nrestart && o->restart_times[r->next_restart] <= t) {
        if (o->restart_times[r->next_restart] == t) {
            char path[4096];
            ts_synth_era5_restart_path(o->out_dir, t, path, sizeof path);
            if (ts_qg_save(r->m, path, o->history, err, errcap)) return -1;
            ts_info("synth-era5: saved the model state to %s", path);
        }
        r->next_restart++;
    }
    return 0;
}

static void log_progress(run_state *r, int force) {
    double now = ts_now();
    if (!force && (r->o->progress_seconds <= 0 || now - r->last_log < r->o->progress_seconds)) return;
    r->last_log = now;
    int64_t t = ts_qg_time(r->m);
    double done = (double)(t - r->t_first) / 86400.0, total = (double)(r->t_last - r->t_first) / 86400.0;
    double rate = done / fmax(now - r->wall0, 1e-9);
    char when[32];
    format_time(t, when, sizeof when);
    ts_info("synth-era5: %s, simulated day %.1f of %.1f (%s), %.1f days/s, ETA %.0f s", when, done, total,
            t < r->o->start ? "spin-up" : "writing", rate, rate > 0 ? (total - done) / rate : 0.0);
}

static int advance(run_state *r, int64_t t, char *err, size_t errcap) {
    while (ts_qg_time(r->m) < t) {
        ts_qg_step(r->m);
        if (save_restart_if_due(r, err, errcap)) return -1;
        log_progress(r, 0);
    }
    if (ts_qg_check_finite(r->m)) {
        char when[32];
        format_time(t, when, sizeof when);
        return TS_FAIL(err, errcap, "synth-era5: the model state became NaN or infinite by %s (numerical instability)", when);
    }
    return 0;
}

static int check_opts(const ts_synth_era5_opts *o, char *err, size_t errcap) {
    if (o->step_hours <= 0 || 24 % o->step_hours || o->days <= 0 || o->spinup_days < 0 || o->start % 3600) {
        return TS_FAIL(err, errcap, "synth-era5: need step_hours dividing 24, days > 0, spinup_days >= 0, start on the hour");
    }
    for (size_t i = 0; i < o->nrestart; i++)
        if (o->restart_times[i] % 3600 || (i && o->restart_times[i] <= o->restart_times[i - 1])) {
            return TS_FAIL(err, errcap, "synth-era5: restart times must be whole hours in increasing order");
        }
    return 0;
}

int ts_synth_era5_run(const ts_synth_era5_opts *o, char *err, size_t errcap) {
    if (check_opts(o, err, errcap)) return -1;
    ts_qg_params p;
    if (ts_qg_params_default(&p, o->nlat, o->nlon)) {
        return TS_FAIL(err, errcap, "synth-era5: no model resolution for a %zu x %zu grid", o->nlat, o->nlon);
    }
    char why[1024];
    ts_qg *m = ts_qg_create(&p, why, sizeof why);
    if (!m) {
        return TS_FAIL(err, errcap, "synth-era5: %s", why);
    }
    int64_t step = (int64_t)o->step_hours * 3600, ntimes = (int64_t)o->days * 24 / o->step_hours;
    run_state r = {o, m, 0, ts_now(), ts_now(), o->start - (int64_t)o->spinup_days * 86400,
                   o->start + (ntimes - 1) * step};
    char from[32];
    format_time(r.t_first, from, sizeof from);
    ts_info("synth-era5: two-layer QG model, %zu x %zu points per hemisphere, dt %d s; %d spin-up days from %s, "
            "then %lld times every %d h",
            p.nx, p.ny, p.dt, o->spinup_days, from, (long long)ntimes, o->step_hours);
    ts_qg_init(m, r.t_first, o->seed);
    ts_qg_fields f;
    ts_qg_fields_alloc(&f, o->nlat, o->nlon, o->levels, o->nlev);
    year_files yf = {o, m, 0, {NULL}};
    int rc = save_restart_if_due(&r, err, errcap);
    for (int64_t n = 0; rc == 0 && n < ntimes; n++) {
        int64_t t = o->start + n * step;
        rc = advance(&r, t, err, errcap);
        if (rc == 0) {
            ts_qg_diagnose(m, &f);
            rc = append_time(&yf, t, &f, err, errcap);
        }
    }
    if (rc == 0) {
        rc = close_year(&yf, 1, err, errcap);
        log_progress(&r, 1);
    } else {
        close_year(&yf, 0, why, sizeof why); /* the first error is the one reported */
    }
    ts_qg_fields_free(&f);
    ts_qg_free(m);
    return rc;
}
