/* The perfect-model ensemble of the reference simulator (perfect_model.h).
 *
 * For every initial time of the tessera forecast the simulator's restart
 * file of that time is loaded once per member and perturbed; then all
 * (initial time, member) models advance lead by lead together, because the
 * forecast writer takes the leads in order, each complete before the next.
 * The models are small (a few hundred kB each at 5.625 deg), so holding
 * M x inits of them costs less than reloading and rerunning per lead.
 *
 * Perturbation (docs/score.md): ts_qg_perturb adds to each layer and
 * hemisphere a PV anomaly that is white noise over the retained spectral
 * modes, scaled to `amplitude` times that layer's PV-anomaly rms; each
 * member gets an analysis error shared by all members of its initial time
 * plus one of its own, both of that size (pm_load_members says why). White
 * noise is mostly small scales, where errors grow fastest (docs/sim.md,
 * "Chaos"), so it turns into synoptic-scale spread within a day or two,
 * as the initial uncertainty of a real ensemble does.
 */
#include "eval/perfect_model.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/caltime.h"
#include "core/log.h"
#include "io/forecast_read.h"
#include "io/forecast_write.h"
#include "sim/qg.h"
#include "sim/synth_era5.h"

/* The variables the simulator diagnoses, with the CDS metadata of ERA5. */
typedef struct {
    ts_forecast_var meta;
    size_t offset; /* of the field pointer in ts_qg_fields */
} pm_var;

static const pm_var PM_VARS[] = {
    {{"z", "m**2 s**-2", "Geopotential", "geopotential", 129, 1}, offsetof(ts_qg_fields, z)},
    {{"t", "K", "Temperature", "air_temperature", 130, 1}, offsetof(ts_qg_fields, t)},
    {{"u", "m s**-1", "U component of wind", "eastward_wind", 131, 1}, offsetof(ts_qg_fields, u)},
    {{"v", "m s**-1", "V component of wind", "northward_wind", 132, 1}, offsetof(ts_qg_fields, v)},
    {{"q", "kg kg**-1", "Specific humidity", "specific_humidity", 133, 1}, offsetof(ts_qg_fields, q)},
    {{"t2m", "K", "2 metre temperature", NULL, 167, 0}, offsetof(ts_qg_fields, t2m)},
    {{"u10", "m s**-1", "10 metre U wind component", NULL, 165, 0}, offsetof(ts_qg_fields, u10)},
    {{"v10", "m s**-1", "10 metre V wind component", NULL, 166, 0}, offsetof(ts_qg_fields, v10)},
    {{"msl", "Pa", "Mean sea level pressure", "air_pressure_at_mean_sea_level", 151, 0},
     offsetof(ts_qg_fields, msl)},
    {{"tisr", "J m**-2", "TOA incident short-wave (solar) radiation", NULL, 212, 0}, offsetof(ts_qg_fields, tisr)},
};
/* The key of the analysis error shared by an initial time's members. */
enum { PM_ANALYSIS = 0xFFFF };
enum { PM_NVARS = sizeof PM_VARS / sizeof PM_VARS[0] };

typedef struct {
    const ts_perfect_model_opts *o;
    ts_forecast_file *src;
    const ts_forecast_info *info;
    size_t nslot;            /* level slots per variable: nlev, at least 1 */
    size_t npix;             /* nlat * nlon */
    const pm_var **var;      /* (nvars) the simulator's variable of each file variable */
    ts_forecast_var *meta;   /* (nvars) */
    unsigned char *nan_slot; /* (nvars, nslot) 1: the tessera file has no values there */
    ts_qg **model;           /* (ninits, nmembers) */
    ts_qg_fields fields;
    float *out;              /* (nslot, npix) one field being written */
    ts_forecast_writer *w;
} pm_run;

static int pm_fail(char *err, size_t errcap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int pm_fail(char *err, size_t errcap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errcap, fmt, ap);
    va_end(ap);
    return -1;
}

/* "YYYY-MM-DDTHH", the spelling of synth.restart_times. */
static const char *pm_hour_text(int64_t t, char *buf, size_t cap) {
    char full[32];
    ts_format_datetime(t, full, sizeof full);
    snprintf(buf, cap, "%.13s", full);
    return buf;
}

uint64_t ts_perfect_model_member_key(int64_t init_time, size_t member) {
    /* hours since 1970 in 22 bits (to the year 2448) above a 16-bit member:
     * below 2^38, so the 4 streams per key (docs/sim.md) stay under the
     * 2^40 streams of the simulator's initial anomaly */
    uint64_t hours = (uint64_t)(init_time / 3600) & 0x3FFFFFu;
    return hours << 16 | (uint64_t)member;
}

/* ---- the tessera file's structure --------------------------------------------------------- */

static int pm_map_vars(pm_run *r, char *err, size_t errcap) {
    const ts_forecast_info *f = r->info;
    r->var = calloc(f->nvars, sizeof *r->var);
    r->meta = calloc(f->nvars, sizeof *r->meta);
    if (!r->var || !r->meta) return pm_fail(err, errcap, "perfect model: out of memory");
    for (size_t v = 0; v < f->nvars; v++) {
        for (size_t k = 0; k < PM_NVARS && !r->var[v]; k++)
            if (strcmp(PM_VARS[k].meta.name, f->vars[v].name) == 0 && PM_VARS[k].meta.on_levels == f->vars[v].on_levels)
                r->var[v] = &PM_VARS[k];
        if (!r->var[v])
            return pm_fail(err, errcap,
                           "%s: variable '%s'%s is not one the simulator diagnoses (z t u v q on levels; t2m u10 "
                           "v10 msl tisr), so no perfect-model forecast of it can be made",
                           f->path, f->vars[v].name, f->vars[v].on_levels ? " on levels" : "");
        r->meta[v] = r->var[v]->meta;
    }
    return 0;
}

/* Which level slots tessera left NaN: a slot it never forecast is NaN in
 * every member, init and lead, so the first one tells. */
static int pm_find_nan_slots(pm_run *r, char *err, size_t errcap) {
    const ts_forecast_info *f = r->info;
    r->nan_slot = calloc(f->nvars * r->nslot, 1);
    if (!r->nan_slot) return pm_fail(err, errcap, "perfect model: out of memory");
    for (size_t v = 0; v < f->nvars; v++) {
        size_t nl = f->vars[v].on_levels ? f->nlev : 1;
        for (size_t l = 0; l < nl; l++) {
            if (ts_forecast_file_read(r->src, v, 0, 0, 0, l, r->out, err, errcap)) return -1;
            size_t k = 0;
            while (k < r->npix && isnan(r->out[k])) k++;
            r->nan_slot[v * r->nslot + l] = k == r->npix;
        }
    }
    return 0;
}

/* Steps must land on model steps, after the initial time. */
static int pm_check_steps(const pm_run *r, const ts_qg_params *p, char *err, size_t errcap) {
    const ts_forecast_info *f = r->info;
    for (size_t s = 0; s < f->nsteps; s++) {
        double sec = f->step_hours[s] * 3600.0;
        if (!(sec > 0) || fabs(sec - nearbyint(sec)) > 1e-6 || llround(sec) % p->dt)
            return pm_fail(err, errcap, "%s: step %g h is not a positive multiple of the simulator's %d s time step",
                           f->path, f->step_hours[s], p->dt);
    }
    return 0;
}

/* The simulator's output grid must be the forecast's. */
static int pm_check_grid(const pm_run *r, const ts_qg *m, const char *path, char *err, size_t errcap) {
    const ts_forecast_info *f = r->info;
    const ts_qg_params *p = ts_qg_get_params(m);
    int same = p->nlat == f->nlat && p->nlon == f->nlon;
    for (size_t i = 0; same && i < f->nlat; i++) same = fabs(ts_qg_lat(m)[i] - f->lat[i]) < 1e-6;
    for (size_t j = 0; same && j < f->nlon; j++) same = fabs(ts_qg_lon(m)[j] - f->lon[j]) < 1e-6;
    if (!same)
        return pm_fail(err, errcap, "%s: the simulator's %zu x %zu grid differs from the %zu x %zu grid of %s", path,
                       p->nlat, p->nlon, f->nlat, f->nlon, f->path);
    return pm_check_steps(r, p, err, errcap);
}

/* ---- the members ------------------------------------------------------------------------------ */

/* The M perturbed models of initial time i, each loaded from its file. */
static int pm_load_members(pm_run *r, size_t i, char *err, size_t errcap) {
    const ts_forecast_info *f = r->info;
    int64_t t = f->init_times[i];
    char path[4096], when[16];
    ts_synth_era5_restart_path(r->o->restart_dir, t, path, sizeof path);
    if (access(path, R_OK) != 0)
        return pm_fail(err, errcap,
                       "perfect model: no simulator state for the initial time %s: %s (%s); add %s to "
                       "synth.restart_times of the synth-era5 run that wrote the truth",
                       pm_hour_text(t, when, sizeof when), path, strerror(errno), when);
    for (size_t k = 0; k < f->nmembers; k++) {
        ts_qg *m = ts_qg_load(path, err, errcap);
        if (!m) return -1;
        r->model[i * f->nmembers + k] = m;
        if (ts_qg_time(m) != t)
            return pm_fail(err, errcap, "%s: holds the state of %lld, not of the initial time %s", path,
                           (long long)ts_qg_time(m), when);
        if (k == 0 && pm_check_grid(r, m, path, err, errcap)) return -1;
        /* perturbing by 0 would add exact zeros; skipping it says "the truth" plainly */
        if (r->o->amplitude == 0.0) continue;
        /* An analysis error shared by the members, then each member's own
         * perturbation of the same size: the truth is then statistically
         * one more member (calibrated, spread-skill sqrt(M/(M+1))), where
         * members scattered around the truth itself would have an ensemble
         * mean closer to the truth than any member could be. (The second
         * draw is scaled to the already perturbed rms, larger by
         * sqrt(1 + amplitude^2): negligible.) */
        ts_qg_perturb(m, r->o->seed, ts_perfect_model_member_key(t, PM_ANALYSIS), r->o->amplitude);
        ts_qg_perturb(m, r->o->seed, ts_perfect_model_member_key(t, k), r->o->amplitude);
    }
    return 0;
}

/* One member's variable v into r->out: the tessera file's NaN slots stay NaN. */
static void pm_fill_field(pm_run *r, size_t v) {
    const float *src = *(float *const *)((const char *)&r->fields + r->var[v]->offset);
    size_t nl = r->info->vars[v].on_levels ? r->info->nlev : 1;
    for (size_t l = 0; l < nl; l++) {
        float *dst = r->out + l * r->npix;
        if (r->nan_slot[v * r->nslot + l])
            for (size_t k = 0; k < r->npix; k++) dst[k] = NAN;
        else
            memcpy(dst, src + l * r->npix, r->npix * sizeof *dst);
    }
}

/* Advance every model to lead s and, unless a resumed file has it, write it. */
static int pm_run_lead(pm_run *r, size_t s, char *err, size_t errcap) {
    const ts_forecast_info *f = r->info;
    int write = s >= ts_forecast_leads_done(r->w);
    for (size_t i = 0; i < f->ninits; i++)
        for (size_t k = 0; k < f->nmembers; k++) {
            ts_qg *m = r->model[i * f->nmembers + k];
            ts_qg_run_until(m, f->init_times[i] + llround(f->step_hours[s] * 3600.0));
            if (ts_qg_check_finite(m)) {
                char when[16];
                return pm_fail(err, errcap, "perfect model: member %zu from %s became non-finite by lead %g h", k,
                               pm_hour_text(f->init_times[i], when, sizeof when), f->step_hours[s]);
            }
            if (!write) continue;
            ts_qg_diagnose(m, &r->fields);
            for (size_t v = 0; v < f->nvars; v++) {
                pm_fill_field(r, v);
                if (ts_forecast_write(r->w, v, k, i, s, r->out, err, errcap)) return -1;
            }
        }
    return write ? ts_forecast_lead_complete(r->w, s, err, errcap) : 0;
}

/* ---- the run ------------------------------------------------------------------------------------ */

static int pm_open_writer(pm_run *r, char *err, size_t errcap) {
    const ts_forecast_info *f = r->info;
    /* the history decides whether a partial file is ours to resume: every input that changes the numbers */
    char history[8192];
    snprintf(history, sizeof history,
             "tessera perfect_model: the reference simulator from %s/restart_*.nc, PV perturbation %.17g of the "
             "rms (ts_qg_perturb), seed %llu; structure of %s",
             r->o->restart_dir, r->o->amplitude, (unsigned long long)r->o->seed, f->path);
    ts_forecast_spec spec = {.path = r->o->out_path, .nmembers = f->nmembers, .ninits = f->ninits,
                             .init_times = f->init_times, .nsteps = f->nsteps, .step_hours = f->step_hours,
                             .nlev = f->nlev, .levels = f->levels, .nlat = f->nlat, .nlon = f->nlon, .lat = f->lat,
                             .lon = f->lon, .nvars = f->nvars, .vars = r->meta, .history = history};
    r->w = ts_forecast_open(&spec, err, errcap);
    return r->w ? 0 : -1;
}

static int pm_setup(pm_run *r, char *err, size_t errcap) {
    if (!(r->src = ts_forecast_file_open(r->o->forecast_path, err, errcap))) return -1;
    r->info = ts_forecast_file_info(r->src);
    const ts_forecast_info *f = r->info;
    if (f->nmembers >= PM_ANALYSIS)
        return pm_fail(err, errcap, "%s: %zu members; the perfect model keys at most %d", f->path, f->nmembers,
                       PM_ANALYSIS - 1);
    r->nslot = f->nlev ? f->nlev : 1, r->npix = f->nlat * f->nlon;
    r->out = malloc(r->nslot * r->npix * sizeof *r->out);
    r->model = calloc(f->ninits * f->nmembers, sizeof *r->model);
    if (!r->out || !r->model) return pm_fail(err, errcap, "perfect model: out of memory");
    if (pm_map_vars(r, err, errcap) || pm_find_nan_slots(r, err, errcap)) return -1;
    for (size_t i = 0; i < f->ninits; i++)
        if (pm_load_members(r, i, err, errcap)) return -1;
    ts_qg_fields_alloc(&r->fields, f->nlat, f->nlon, f->levels, f->nlev);
    return pm_open_writer(r, err, errcap);
}

static void pm_cleanup(pm_run *r) {
    if (r->model)
        for (size_t k = 0; k < r->info->ninits * r->info->nmembers; k++) ts_qg_free(r->model[k]);
    if (r->fields.z) ts_qg_fields_free(&r->fields);
    free(r->model), free(r->var), free(r->meta), free(r->nan_slot), free(r->out);
    if (r->src) ts_forecast_file_close(r->src);
}

int ts_perfect_model_forecast(const ts_perfect_model_opts *o, char *err, size_t errcap) {
    if (!(o->amplitude >= 0.0) || !isfinite(o->amplitude))
        return pm_fail(err, errcap, "perfect model: perturbation amplitude %g must be finite and >= 0", o->amplitude);
    pm_run r;
    memset(&r, 0, sizeof r);
    r.o = o;
    double t0 = ts_now();
    int rc = pm_setup(&r, err, errcap);
    for (size_t s = 0; rc == 0 && s < r.info->nsteps; s++) rc = pm_run_lead(&r, s, err, errcap);
    if (r.w) {
        char cerr[1024];
        /* a close after a failure must not hide the failure */
        if (ts_forecast_close(r.w, rc ? cerr : err, rc ? sizeof cerr : errcap)) rc = -1;
    }
    if (rc == 0)
        ts_info("perfect model: %zu members x %zu initial times x %zu leads written to %s in %.1f s",
                r.info->nmembers, r.info->ninits, r.info->nsteps, o->out_path, ts_now() - t0);
    pm_cleanup(&r);
    return rc;
}
