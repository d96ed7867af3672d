/* tessera forecast: autoregressive ensemble rollouts of the Swin diffusion
 * model, written lead by lead as CF NetCDF (io/forecast_write.h).
 *
 * Members run on DP replicas (replica r takes members [r M/dp, (r+1) M/dp)
 * of every initial time, as one batch), windows on WP ranks (each holds
 * its block of whole windows of those members, as in training), bands of
 * grid rows on SP ranks (Ulysses attention) and blocks on PP stages (each
 * network call passes through every stage, which all hold the state; the
 * first stage writes). Each lead samples the normalised
 * residual with the TrigFlow sampler (models/sampler.h) conditioned on the
 * current state and the forcings at the target time (tisr from the solar
 * function the simulator uses, lsm and z_surface from the data), then adds
 * the de-normalised residual to the state. Rank 0 gathers the members'
 * blocks and writes, or, in builds with parallel NetCDF-4, every rank
 * writes its own block of members, rows and columns collectively and no
 * rank holds the whole ensemble. The leads are taken by the rollout driver
 * (forecast/rollout.h): a killed rollout resumes from the file's last
 * complete lead, and SIGUSR1/SIGTERM stop it politely after the lead in
 * progress.
 *
 * Noise is keyed by (seed, SAMPLER_NOISE, stream, index) with
 *   stream = init hours (24 bits) << 40 | member (16) << 24 | lead (12) << 12 | sampler step (12)
 *   index  = channel * H * W + grid index,
 * sampler step 0 being the starting noise and s > 0 the churn of step s, so
 * no draw depends on the rank layout.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/caltime.h"
#include "core/log.h"
#include "core/rng.h"
#include "core/solar.h"
#include "forecast/commands.h"
#include "forecast/data.h"
#include "forecast/rollout.h"
#include "forecast/trainer.h"
#include "io/checkpoint.h"
#include "io/era5_read.h"
#include "io/forecast_members.h"
#include "io/forecast_write.h"
#include "io/stats_file.h"
#include "models/sampler.h"
#include "models/swin.h"
#include "models/swin_input.h"
#include "parallel/collective.h"

enum { MAX_INITS = 1024, MAX_VARS = 64 };

#ifdef TESSERA_HAVE_PARALLEL_NETCDF
#define PARALLEL_WRITE 1
#else
#define PARALLEL_WRITE 0
#endif

typedef struct {
    ts_config *cfg;
    const ts_layout *layout;
    const ts_backend *be;
    ts_era5_dataset *ds;
    const ts_era5_grid *grid;
    size_t ns, nf, HW, cin;      /* state channels, forcings, grid points, input channels */
    size_t HWl;                  /* grid points of this rank's block (HW without WP) */
    int *coords;                 /* rank 0: (world, 3) DP replica, first grid row and column of every rank */
    int64_t step;                /* seconds per lead */
    int nmembers, nlocal, first_member, nleads;
    int chunks; /* forecast.micro_batches: the members of a replica in this many micro-batches */
    size_t ninits;
    int64_t inits[MAX_INITS];
    size_t init_index[MAX_INITS];
    uint64_t seed;
    double *mean, *std, *res_mean, *res_std; /* (ns + nf) and (ns) */
    double bounds;
    ts_swin model;
    ts_sampler_config sampler;
    int regress;                 /* model.objective = regress: x = -F(0, pi/2), no sampling */
    /* per sampler call */
    float *state;                /* (ninits, nlocal, ns, HWl) physical units, the current lead */
    float *in, *in_dev, *out_dev; /* (nlocal*HWl, cin) host and device, its condition packed; (nlocal*HWl, ns) device */
    float *x;                    /* (nlocal*HWl, ns) sampler state */
    float *t_batch;              /* (nlocal) */
    size_t cur_init;
    int cur_lead;
} forecaster;

/* ---- set-up ------------------------------------------------------------------------ */

static void path_or_default(const ts_config *cfg, const char *key, const char *out, const char *name, char *buf,
                            size_t cap) {
    const char *v = ts_config_str(cfg, key);
    if (*v) snprintf(buf, cap, "%s", v);
    else snprintf(buf, cap, "%s/%s", out, name);
}

/* The model and data keys a checkpoint knows better than the defaults. */
static void adopt_checkpoint_config(ts_config *cfg, ts_ckpt *ck, const char *path) {
    static const char *const KEYS[] = {"model.", "data.variables", "data.forcings", "data.grid", "data.row_rule",
                                       "train.step_hours"};
    char err[1024];
    if (ts_config_apply_json(cfg, ts_ckpt_get_meta(ck)->config_json, KEYS, sizeof KEYS / sizeof KEYS[0], path, err,
                             sizeof err))
        ts_fatal("%s", err);
}

static void parse_inits(forecaster *f) {
    const char *text = ts_config_str(f->cfg, "forecast.inits");
    if (!*text) ts_usage_error("forecast.inits is empty: give the initial times, e.g. forecast.inits=2021-01-01,2021-01-15");
    char buf[8192];
    snprintf(buf, sizeof buf, "%s", text);
    f->ninits = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        if (f->ninits == MAX_INITS) ts_usage_error("forecast.inits: at most %d initial times", MAX_INITS);
        int64_t t;
        if (ts_parse_datetime(tok, &t)) ts_usage_error("forecast.inits: '%s' is not a date (YYYY-MM-DD[THH])", tok);
        if (ts_era5_find_time(f->ds, t, &f->init_index[f->ninits]))
            ts_usage_error("forecast.inits: %s is not a valid time of data.files", tok);
        f->inits[f->ninits++] = t;
    }
}

static void bind_stats(forecaster *f, const ts_stats *st, const char *path) {
    size_t nchan = f->ns + f->nf;
    int hours = (int)(f->step / 3600), r = -1;
    f->mean = ts_malloc(sizeof(double) * nchan), f->std = ts_malloc(sizeof(double) * nchan);
    f->res_mean = ts_malloc(sizeof(double) * f->ns), f->res_std = ts_malloc(sizeof(double) * f->ns);
    for (size_t d = 0; d < st->nres; d++)
        if (st->res_hours[d] == hours) r = (int)d;
    if (r < 0) ts_fatal("%s: the checkpoint's statistics have no %d h residuals", path, hours);
    for (size_t c = 0; c < nchan; c++) {
        const ts_era5_channel *ch = c < f->ns ? ts_era5_state_channel(f->ds, c) : ts_era5_forcing_channel(f->ds, c - f->ns);
        int k = ts_stats_channel(st, ch->spec);
        if (k < 0) ts_fatal("%s: the checkpoint's statistics have no channel '%s'", path, ch->spec);
        f->mean[c] = st->mean[k], f->std[c] = st->std[k];
        if (c < f->ns) {
            f->res_mean[c] = st->res_mean[(size_t)r * st->nstate + (size_t)k];
            f->res_std[c] = st->res_std[(size_t)r * st->nstate + (size_t)k];
        }
    }
}

static void load_weights(forecaster *f, ts_ckpt *ck, const char *path) {
    char err[1024];
    const char *group = strcmp(ts_config_str(f->cfg, "forecast.weights"), "ema") == 0 ? TS_CKPT_EMA : TS_CKPT_PARAMS;
    if (!ts_ckpt_has(ck, group)) ts_fatal("%s has no '%s' weights (forecast.weights)", path, group);
    ts_params *p = &f->model.params;
    float *h = f->be->kind == TS_BACKEND_CPU ? p->data : ts_malloc(sizeof(float) * p->total);
    if (ts_ckpt_read_params(ck, group, p, h, err, sizeof err)) ts_fatal("%s", err);
    ts_check_finite_block(p, h, path, group); /* not as a member leaving its bounds a lead later */
    if (h != p->data) {
        f->be->upload(p->data, h, sizeof(float) * p->total);
        free(h);
    }
}

/* The model runs on the grid it learned: the checkpoint's latitudes and
 * longitudes (written by training since format 1 checkpoints carried them)
 * must be data.files'. */
static void check_grid(const forecaster *f, ts_ckpt *ck, const char *path) {
    if (!ts_ckpt_has(ck, "normalizers")) {
        ts_warn("%s records no training grid (an older checkpoint): the grid of data.files is not checked", path);
        return;
    }
    const size_t nlat = f->grid->nlat_data, nlon = f->grid->nlon;
    double *lat = ts_malloc(sizeof(double) * nlat), *lon = ts_malloc(sizeof(double) * nlon);
    ts_ckpt_named g[2] = {{.name = "grid.latitude", .ndim = 1, .shape = {(int64_t)nlat}, .data = lat},
                          {.name = "grid.longitude", .ndim = 1, .shape = {(int64_t)nlon}, .data = lon}};
    char err[1024];
    if (ts_ckpt_read_named(ck, g, 2, err, sizeof err))
        ts_fatal("%s: the model was trained on another grid than the %zu x %zu grid of data.files (data.grid = %s): %s",
                 path, nlat, nlon, ts_config_str(f->cfg, "data.grid"), err);
    for (size_t i = 0; i < nlat; i++)
        if (fabs(lat[i] - f->grid->lat[i]) > 1e-6)
            ts_fatal("%s: the model was trained on latitudes %g..%g, data.files has %g..%g", path, lat[0], lat[nlat - 1],
                     f->grid->lat[0], f->grid->lat[nlat - 1]);
    for (size_t j = 0; j < nlon; j++)
        if (fabs(lon[j] - f->grid->lon[j]) > 1e-6)
            ts_fatal("%s: the model was trained on longitudes %g..%g, data.files has %g..%g", path, lon[0], lon[nlon - 1],
                     f->grid->lon[0], f->grid->lon[nlon - 1]);
    free(lat), free(lon);
}

static void setup(forecaster *f, const ts_command_ctx *ctx) {
    ts_config *cfg = ctx->cfg;
    const ts_layout *lay = ctx->layout;
    char err[1024], ckpath[4096];
    memset(f, 0, sizeof *f);
    f->cfg = cfg, f->layout = lay;
    const char *why = NULL;
    f->be = ts_backend_get(ts_config_str(cfg, "device"), &why);
    if (!f->be) ts_usage_error("device=%s is not available: %s", ts_config_str(cfg, "device"), why);

    path_or_default(cfg, "forecast.checkpoint", ctx->out, "checkpoint.h5", ckpath, sizeof ckpath);
    ts_ckpt *ck = ts_ckpt_open(ckpath, "swin", err, sizeof err);
    if (!ck) ts_fatal("%s", err);
    adopt_checkpoint_config(cfg, ck, ckpath);

    f->ds = ts_open_data(cfg, (size_t)ts_config_int(cfg, "model.window"), lay);
    f->grid = ts_era5_grid_info(f->ds);
    f->ns = ts_era5_nstate(f->ds), f->nf = ts_era5_nforcing(f->ds);
    f->HW = f->grid->nlat * f->grid->nlon, f->cin = 2 * f->ns + f->nf;
    f->step = 3600 * ts_config_int(cfg, "train.step_hours");
    for (size_t k = 0; k < f->nf; k++) {
        const char *spec = ts_era5_forcing_channel(f->ds, k)->spec;
        if (strcmp(spec, "tisr") && !ts_era5_forcing_channel(f->ds, k)->is_static)
            ts_usage_error("data.forcings: '%s' is neither tisr nor static; a forecast cannot know it at future times", spec);
    }

    ts_stats st;
    if (ts_ckpt_read_stats(ck, &st, err, sizeof err)) ts_fatal("%s", err);
    bind_stats(f, &st, ckpath);
    ts_stats_free(&st);
    f->seed = (uint64_t)ts_config_int(cfg, "seed");
    f->bounds = ts_config_float(cfg, "forecast.bounds_std");
    parse_inits(f);

    f->nmembers = (int)ts_config_int(cfg, "forecast.members");
    f->nleads = (int)ts_config_int(cfg, "forecast.leads");
    int dp = lay->size[TS_AXIS_DP], r = lay->coord[TS_AXIS_DP];
    if (f->nmembers % dp)
        ts_usage_error("forecast.members = %d does not divide over parallel.dp = %d replicas", f->nmembers, dp);
    f->nlocal = f->nmembers / dp, f->first_member = r * f->nlocal;
    f->chunks = (int)ts_config_int(cfg, "forecast.micro_batches");
    if (f->nlocal % f->chunks)
        ts_usage_error("forecast.micro_batches = %d does not divide the %d members of a DP replica (forecast.members = "
                       "%d over parallel.dp = %d)",
                       f->chunks, f->nlocal, f->nmembers, dp);

    ts_swin_config mc;
    ts_swin_config_from(cfg, (int)f->grid->nlat, (int)f->grid->nlon, (int)f->cin, (int)f->ns, &mc);
    ts_swin_wp wp = ts_swin_wp_of(lay);
    /* the model holds one micro-batch of members; ts_swin_forward_batches runs them all */
    if (ts_swin_create(&f->model, f->be, &mc, f->nlocal / f->chunks, &wp, err, sizeof err)) ts_usage_error("%s", err);
    load_weights(f, ck, ckpath);
    check_grid(f, ck, ckpath);
    ts_ckpt_close(ck);
    f->HWl = (size_t)f->model.h * (size_t)f->model.w;
    /* rank 0 places every rank's block (WP) or band (SP) when it gathers
     * and scatters states */
    int mine[3] = {r, f->model.row0, f->model.col0};
    if (lay->rank == 0) f->coords = ts_malloc(sizeof(int) * 3 * (size_t)lay->world);
    ts_par_gather_ints(lay, mine, f->coords, 3);

    f->sampler = (ts_sampler_config){(int)ts_config_int(cfg, "forecast.levels"), ts_config_float(cfg, "forecast.rho"),
                                     ts_config_float(cfg, "forecast.sigma_min"), ts_config_float(cfg, "forecast.sigma_max"),
                                     1.0, ts_config_float(cfg, "forecast.churn"), ts_config_float(cfg, "forecast.s_noise")};
    f->regress = strcmp(ts_config_str(cfg, "model.objective"), "regress") == 0;
    size_t T = (size_t)f->nlocal * f->HWl;
    f->state = ts_malloc(sizeof(float) * f->ninits * (size_t)f->nlocal * f->ns * f->HWl);
    f->in = ts_malloc(sizeof(float) * T * f->cin);
    f->x = ts_malloc(sizeof(float) * T * f->ns);
    f->t_batch = ts_malloc(sizeof(float) * (size_t)f->nlocal);
    f->in_dev = f->be->alloc(sizeof(float) * T * f->cin);
    f->out_dev = f->be->alloc(sizeof(float) * T * f->ns);
}

/* ---- sampling ------------------------------------------------------------------------ */

static uint64_t noise_stream(const forecaster *f, int member, int lead, int sampler_step) {
    uint64_t hours = (uint64_t)((f->inits[f->cur_init] / 3600) & 0xFFFFFF);
    return hours << 40 | (uint64_t)(member & 0xFFFF) << 24 | (uint64_t)(lead & 0xFFF) << 12 | (uint64_t)(sampler_step & 0xFFF);
}

/* Global grid index of point k of this rank's block. */
static size_t global_index(const forecaster *f, size_t k) {
    const ts_swin *m = &f->model;
    return ((size_t)m->row0 + k / (size_t)m->w) * (size_t)f->grid->nlon + (size_t)m->col0 + k % (size_t)m->w;
}

/* eps (nlocal*HWl, ns) token-major, keyed by global member and global grid
 * index, so every layout draws the same numbers for the same point. */
static void fill_noise(forecaster *f, int sampler_step, float *eps) {
    ts_rng_key key = ts_rng_key_make(f->seed, TS_RNG_SAMPLER_NOISE);
    for (int b = 0; b < f->nlocal; b++) {
        uint64_t stream = noise_stream(f, f->first_member + b, f->cur_lead, sampler_step);
        for (size_t c = 0; c < f->ns; c++)
            for (size_t k = 0; k < f->HWl; k++)
                eps[((size_t)b * f->HWl + k) * f->ns + c] = ts_rng_normal1(key, stream, c * f->HW + global_index(f, k));
    }
}

static void churn_noise(void *ctx, int step, float *eps) { fill_noise(ctx, step, eps); }

/* The network at x / sigma_d and time t, on the condition in f->in. */
static void denoise(void *ctx, float *F, const float *x_scaled, double t) {
    forecaster *f = ctx;
    ts_swin_eval e = {&f->model, f->in, f->in_dev, f->out_dev, f->t_batch, f->chunks};
    ts_swin_denoise(&e, F, x_scaled, t);
}

/* The conditioning of init i at lead `lead`: normalised state and forcings
 * at the target valid time, token-major, over this rank's block. */
static void build_condition(forecaster *f, size_t i, int lead, const float *statics) {
    const size_t HW = f->HWl;
    int64_t valid = f->inits[i] + (int64_t)lead * f->step;
    float *forcing = ts_malloc(sizeof(float) * (f->nf ? f->nf : 1) * HW);
    const ts_swin *m = &f->model;
    for (size_t c = 0; c < f->nf; c++) {
        float *plane = forcing + c * HW;
        if (strcmp(ts_era5_forcing_channel(f->ds, c)->spec, "tisr") == 0)
            ts_solar_tisr_field((double)valid, f->grid->lat + m->row0, (size_t)m->h, f->grid->lon + m->col0,
                                (size_t)m->w, plane);
        else
            memcpy(plane, statics + c * HW, sizeof(float) * HW);
    }
    const ts_swin_norm norm = {f->ns, f->nf, f->mean, f->std};
    for (int b = 0; b < f->nlocal; b++)
        ts_swin_pack_condition(&norm, f->state + ((i * (size_t)f->nlocal + (size_t)b) * f->ns) * HW,
                               f->nf ? forcing : NULL, HW, f->in + (size_t)b * HW * f->cin, f->cin);
    free(forcing);
}

/* One lead of init i: sample the residual, add it to the state, check it. */
static void advance(forecaster *f, size_t i, int lead, const float *statics) {
    const size_t HW = f->HWl, ns = f->ns;
    f->cur_init = i, f->cur_lead = lead;
    build_condition(f, i, lead, statics);
    if (f->regress) { /* the deterministic regressor: every member is the same forecast */
        ts_sampler_regress(denoise, f, f->x, (size_t)f->nlocal * HW * ns);
    } else {
        fill_noise(f, 0, f->x); /* sigma_d z, sigma_d = 1 */
        ts_sampler_run(&f->sampler, denoise, churn_noise, f, f->x, (size_t)f->nlocal * HW * ns);
    }
    for (int b = 0; b < f->nlocal; b++) {
        float *st = f->state + ((i * (size_t)f->nlocal + (size_t)b) * ns) * HW;
        for (size_t c = 0; c < ns; c++)
            for (size_t k = 0; k < HW; k++) {
                double v = st[c * HW + k] + f->x[((size_t)b * HW + k) * ns + c] * f->res_std[c] + f->res_mean[c];
                if (!isfinite(v) || fabs(v - f->mean[c]) > f->bounds * f->std[c]) {
                    char when[32];
                    ts_format_datetime(f->inits[i], when, sizeof when);
                    ts_fatal("member %d of the forecast from %s left physical bounds at lead %d (%lld h): %s = %g, "
                             "outside %g +- %g x %g; leads before it are written",
                             f->first_member + b, when, lead, (long long)(lead * f->step / 3600),
                             ts_era5_state_channel(f->ds, c)->spec, v, f->mean[c], f->bounds, f->std[c]);
                }
                st[c * HW + k] = (float)v;
            }
    }
}

/* ---- output ------------------------------------------------------------------------ */

typedef struct {
    ts_forecast_var vars[MAX_VARS];
    size_t nvars, nlev;
    double levels[MAX_VARS];
    int chan_var[MAX_VARS], chan_lev[MAX_VARS]; /* per state channel: its variable and level index (-1 surface) */
} out_layout;

static int grib_id(const char *name, int on_levels) {
    static const struct {
        const char *name;
        int levels, id;
    } IDS[] = {{"z", 1, 129}, {"t", 1, 130}, {"u", 1, 131}, {"v", 1, 132}, {"q", 1, 133}, {"t2m", 0, 167},
               {"u10", 0, 165}, {"v10", 0, 166}, {"msl", 0, 151}, {"sp", 0, 134}};
    for (size_t i = 0; i < sizeof IDS / sizeof IDS[0]; i++)
        if (strcmp(IDS[i].name, name) == 0 && IDS[i].levels == on_levels) return IDS[i].id;
    return 0;
}

/* Variables of the file from the state channels: z500 and z850 are levels of z. */
static void plan_output(const forecaster *f, out_layout *o) {
    memset(o, 0, sizeof *o);
    for (size_t c = 0; c < f->ns; c++) {
        const ts_era5_channel *ch = ts_era5_state_channel(f->ds, c);
        int on_levels = ch->level_hpa > 0;
        size_t v = 0;
        while (v < o->nvars && !(strcmp(o->vars[v].name, ch->var) == 0 && o->vars[v].on_levels == on_levels)) v++;
        if (v == o->nvars) {
            if (o->nvars == MAX_VARS) ts_fatal("too many forecast variables");
            o->vars[v] = (ts_forecast_var){ch->var, ch->units, ch->long_name,
                                           ch->standard_name && *ch->standard_name ? ch->standard_name : NULL,
                                           grib_id(ch->var, on_levels), on_levels};
            o->nvars++;
        }
        o->chan_var[c] = (int)v, o->chan_lev[c] = -1;
        if (on_levels) {
            size_t l = 0;
            while (l < o->nlev && o->levels[l] != ch->level_hpa) l++;
            if (l == o->nlev) o->levels[o->nlev++] = ch->level_hpa;
            o->chan_lev[c] = (int)l;
        }
    }
    /* pressure levels decreasing, as the CDS orders them */
    for (size_t a = 0; a < o->nlev; a++)
        for (size_t b = a + 1; b < o->nlev; b++)
            if (o->levels[b] > o->levels[a]) {
                double t = o->levels[a];
                o->levels[a] = o->levels[b], o->levels[b] = t;
                for (size_t c = 0; c < f->ns; c++)
                    if (o->chan_lev[c] == (int)a) o->chan_lev[c] = (int)b;
                    else if (o->chan_lev[c] == (int)b) o->chan_lev[c] = (int)a;
            }
}

/* Rank 0: write lead `lead` (1-based) of every member of init i from the
 * gathered states all (M, ns, HW). Level slots a variable lacks are NaN. */
static void write_init(const forecaster *f, ts_forecast_writer *w, const out_layout *o, size_t i, int lead,
                       const float *all) {
    char err[1024];
    const size_t HW = f->HW, nrows = f->grid->nlat_data, rowsz = nrows * f->grid->nlon;
    size_t nlev = o->nlev ? o->nlev : 1;
    float *field = ts_malloc(sizeof(float) * nlev * rowsz);
    for (int m = 0; m < f->nmembers; m++)
        for (size_t v = 0; v < o->nvars; v++) {
            size_t n = o->vars[v].on_levels ? o->nlev * rowsz : rowsz;
            for (size_t k = 0; k < n; k++) field[k] = NAN;
            for (size_t c = 0; c < f->ns; c++)
                if (o->chan_var[c] == (int)v) {
                    size_t l = o->chan_lev[c] < 0 ? 0 : (size_t)o->chan_lev[c];
                    memcpy(field + l * rowsz, all + ((size_t)m * f->ns + c) * HW, sizeof(float) * rowsz);
                }
            if (ts_forecast_write(w, v, (size_t)m, i, (size_t)lead - 1, field, err, sizeof err)) ts_fatal("%s", err);
        }
    free(field);
}

/* Rank 0: the states of a complete lead back from the file (resume). */
static void read_init(const forecaster *f, ts_forecast_writer *w, const out_layout *o, size_t i, int lead, float *all) {
    char err[1024];
    const size_t HW = f->HW, rowsz = f->grid->nlat_data * f->grid->nlon;
    size_t nlev = o->nlev ? o->nlev : 1;
    float *field = ts_malloc(sizeof(float) * nlev * rowsz);
    memset(all, 0, sizeof(float) * (size_t)f->nmembers * f->ns * HW); /* padded rows stay 0 */
    for (int m = 0; m < f->nmembers; m++)
        for (size_t v = 0; v < o->nvars; v++) {
            if (ts_forecast_read(w, v, (size_t)m, i, (size_t)lead - 1, field, err, sizeof err)) ts_fatal("%s", err);
            for (size_t c = 0; c < f->ns; c++)
                if (o->chan_var[c] == (int)v) {
                    size_t l = o->chan_lev[c] < 0 ? 0 : (size_t)o->chan_lev[c];
                    memcpy(all + ((size_t)m * f->ns + c) * HW, field + l * rowsz, sizeof(float) * rowsz);
                }
        }
    free(field);
}

/* Rows of this rank's block that hold data (the grid's padding rows below
 * the data's last are not written). */
static size_t data_rows(const forecaster *f) {
    const size_t row0 = (size_t)f->model.row0, h = (size_t)f->model.h, n = f->grid->nlat_data;
    return row0 >= n ? 0 : row0 + h > n ? n - row0 : h;
}

/* Every rank, collectively (parallel NetCDF-4): write (to_file = 1) or read
 * back (0) its block of every member it holds, lead `lead` (1-based) of init
 * i, to or from its states mine (nlocal, ns, h*w). Level slots a variable
 * lacks are NaN in the file; padding rows read back as 0. */
static void block_io(const forecaster *f, ts_forecast_writer *w, const out_layout *o, size_t i, int lead, float *mine,
                     int to_file) {
    char err[1024];
    const ts_swin *m = &f->model;
    const size_t rows = data_rows(f), plane = rows * (size_t)m->w, nb = (size_t)f->nlocal;
    const size_t nlev = o->nlev ? o->nlev : 1;
    float *blk = ts_malloc(sizeof(float) * nb * nlev * (plane ? plane : 1)); /* (nlocal, [nlev,] rows, w) */
    if (!to_file) memset(mine, 0, sizeof(float) * nb * f->ns * f->HWl);
    for (size_t v = 0; v < o->nvars; v++) {
        const size_t nl = o->vars[v].on_levels ? o->nlev : 1;
        /* pipeline stages hold the same block: the first writes it, the others take part with none */
        ts_forecast_block b = {.var = v,
                               .member0 = (size_t)f->first_member,
                               .nmembers = to_file && f->model.stage > 0 ? 0 : nb,
                               .init = i,
                               .lead = (size_t)lead - 1,
                               .row0 = (size_t)m->row0,
                               .nrows = rows,
                               .col0 = (size_t)m->col0,
                               .ncols = (size_t)m->w};
        if (to_file)
            for (size_t k = 0; k < nb * nl * plane; k++) blk[k] = NAN;
        else if (ts_forecast_read_block(w, &b, blk, err, sizeof err))
            ts_fatal("%s", err);
        for (size_t mb = 0; mb < nb; mb++)
            for (size_t c = 0; c < f->ns; c++)
                if (o->chan_var[c] == (int)v) {
                    float *file = blk + (mb * nl + (o->chan_lev[c] < 0 ? 0 : (size_t)o->chan_lev[c])) * plane;
                    float *state = mine + (mb * f->ns + c) * f->HWl;
                    memcpy(to_file ? file : state, to_file ? state : file, sizeof(float) * plane);
                }
        if (to_file && ts_forecast_write_block(w, &b, blk, err, sizeof err)) ts_fatal("%s", err);
    }
    free(blk);
}

static ts_forecast_writer *open_writer(const forecaster *f, const out_layout *o, const char *path, char *history) {
    char err[1024];
    double *steps = ts_malloc(sizeof(double) * (size_t)f->nleads);
    for (int l = 0; l < f->nleads; l++) steps[l] = (double)(l + 1) * (double)f->step / 3600.0;
    ts_forecast_spec spec = {.path = path, .nmembers = (size_t)f->nmembers, .ninits = f->ninits, .init_times = f->inits,
                             .nsteps = (size_t)f->nleads, .step_hours = steps, .nlev = o->nlev, .levels = o->levels,
                             .nlat = f->grid->nlat_data, .nlon = f->grid->nlon, .lat = f->grid->lat,
                             .lon = f->grid->lon, .nvars = o->nvars, .vars = o->vars, .history = history};
#ifdef TESSERA_HAVE_PARALLEL_NETCDF
    ts_forecast_writer *w = ts_forecast_open_par(&spec, f->layout->cart, err, sizeof err);
#else
    ts_forecast_writer *w = ts_forecast_open(&spec, err, sizeof err);
#endif
    free(steps);
    if (!w) ts_fatal("%s", err);
    return w;
}

/* ---- whole fields from blocks and back ------------------------------------------------------------ */

/* Copy between rank r's packed block (nlocal, ns, h*w) in gbuf and the whole
 * ensemble all (M, ns, HW): to_all = 1 gathers, 0 scatters. */
static void place_blocks(const forecaster *f, float *gbuf, float *all, int world, int to_all) {
    const ts_swin *m = &f->model;
    const size_t per_rank = (size_t)f->nlocal * f->ns * f->HWl, W = f->grid->nlon;
    for (int r = 0; r < world; r++) {
        const int *c = f->coords + 3 * r;
        size_t row0 = (size_t)c[1], col0 = (size_t)c[2];
        for (int b = 0; b < f->nlocal; b++)
            for (size_t ch = 0; ch < f->ns; ch++) {
                float *blk = gbuf + (size_t)r * per_rank + ((size_t)b * f->ns + ch) * f->HWl;
                float *whole = all + (((size_t)c[0] * (size_t)f->nlocal + (size_t)b) * f->ns + ch) * f->HW;
                for (int y = 0; y < m->h; y++) {
                    float *a = whole + (row0 + (size_t)y) * W + col0, *k = blk + (size_t)y * (size_t)m->w;
                    memcpy(to_all ? a : k, to_all ? k : a, sizeof(float) * (size_t)m->w);
                }
            }
    }
}

/* All ranks' blocks of init i's members to rank 0's all (M, ns, HW). */
static void gather_states(const forecaster *f, const float *local, float *gbuf, float *all, int world) {
    const size_t per_rank = (size_t)f->nlocal * f->ns * f->HWl;
    ts_par_gather_floats(f->layout, local, gbuf, per_rank);
    if (all) place_blocks(f, gbuf, all, world, 1);
}

/* Rank 0's all (M, ns, HW) to every rank's block. */
static void scatter_states(const forecaster *f, float *all, float *gbuf, float *local, int world) {
    const size_t per_rank = (size_t)f->nlocal * f->ns * f->HWl;
    if (all) place_blocks(f, gbuf, all, world, 0);
    ts_par_scatter_floats(f->layout, gbuf, local, per_rank);
}

/* ---- the command ------------------------------------------------------------------------ */

/* ---- the rollout ------------------------------------------------------------------------ */

typedef struct {
    forecaster *f;
    const out_layout *o;
    ts_forecast_writer *w; /* rank 0, or every rank when parallel */
    const float *statics;
    float *gbuf, *all; /* rank 0 */
    int world;
} lead_ctx;

/* One lead of every initial time, written and marked complete. */
static void forecast_lead(void *self, int64_t s) {
    lead_ctx *c = self;
    forecaster *f = c->f;
    const int lead = (int)s;
    const size_t local = (size_t)f->nlocal * f->ns * f->HWl;
    for (size_t i = 0; i < f->ninits; i++) {
        advance(f, i, lead, c->statics);
        if (PARALLEL_WRITE) {
            block_io(f, c->w, c->o, i, lead, f->state + i * local, 1);
            continue;
        }
        gather_states(f, f->state + i * local, c->gbuf, c->all, c->world);
        if (c->w) write_init(f, c->w, c->o, i, lead, c->all);
    }
    char err[1024];
    if (c->w && ts_forecast_lead_complete(c->w, (size_t)lead - 1, err, sizeof err)) ts_fatal("%s", err);
}

static void forecaster_free(forecaster *f) {
    free(f->coords);
    free(f->state), free(f->in), free(f->x), free(f->t_batch);
    free(f->mean), free(f->std), free(f->res_mean), free(f->res_std);
    f->be->free(f->in_dev), f->be->free(f->out_dev);
    ts_swin_free(&f->model);
    ts_era5_dataset_close(f->ds);
}

/* forecast.files=per_member, on rank 0: 2 when every member file of this
 * configuration is complete (nothing to do), 1 when the ensemble file is
 * (only the split remains), 0 otherwise. */
static int member_files_state(const forecaster *f, const char *path, const char *history) {
    int all = 1;
    for (size_t i = 0; i < f->ninits && all; i++)
        for (int m = 0; m < f->nmembers && all; m++) {
            char name[4096];
            ts_forecast_member_path(path, f->inits[i], (size_t)m, (size_t)f->nmembers, name, sizeof name);
            all = ts_forecast_file_is_ours(name, history);
        }
    if (all) return 2;
    return ts_forecast_file_is_ours(path, history);
}

/* The member files from the complete ensemble file, every rank a share of
 * the (init, member) pairs; then the ensemble file is removed. */
static void split_members(const ts_command_ctx *ctx, const char *path, const char *history) {
    const ts_layout *lay = ctx->layout;
    size_t written, kept;
    char err[1024];
    ts_par_barrier(lay); /* the ensemble file is complete and renamed */
    if (ts_forecast_write_members(path, path, history, (size_t)lay->rank, (size_t)lay->world, &written, &kept, err,
                                  sizeof err))
        ts_fatal("%s", err);
    double counts[2] = {(double)written, (double)kept};
    ts_par_sum_doubles(lay, counts, 2);
    if (lay->rank == 0) {
        char glob[4096 + 64];
        ts_forecast_member_glob(path, glob, sizeof glob);
        if (remove(path) != 0) ts_fatal("%s: cannot remove after the split: %s", path, strerror(errno));
        ts_info("forecast: %.0f member files written, %.0f already complete (%s); the ensemble file %s is removed",
                counts[0], counts[1], glob, path);
    }
}

int cmd_forecast(const ts_command_ctx *ctx) {
    forecaster f;
    setup(&f, ctx);
    const int rank = ctx->layout->rank, world = ctx->layout->world;
    const ts_swin *m = &f.model;
    const size_t HWl = f.HWl, per_member = f.ns * HWl, local = (size_t)f.nlocal * per_member;
    char path[4096], err[1024];
    path_or_default(f.cfg, "forecast.output", ctx->out, "forecast.nc", path, sizeof path);
    out_layout o;
    plan_output(&f, &o);

    /* The history text decides whether a partial file is ours to resume:
     * the resolved configuration, so the same command resumes it. */
    int need = ts_config_to_json(f.cfg, NULL, 0);
    char *history = ts_malloc((size_t)need + 1);
    ts_config_to_json(f.cfg, history, (size_t)need + 1);
    const int member_files = strcmp(ts_config_str(f.cfg, "forecast.files"), "per_member") == 0;
    int files_state = member_files && rank == 0 ? member_files_state(&f, path, history) : 0;
    ts_par_bcast_ints(ctx->layout, &files_state, 1);
    if (files_state) { /* per_member: the rollout is done (and maybe the split) */
        if (files_state == 1)
            split_members(ctx, path, history);
        else if (rank == 0)
            ts_info("forecast: every member file of %s is already complete", path);
        free(history);
        forecaster_free(&f);
        return 0;
    }
    ts_forecast_writer *w = rank == 0 || PARALLEL_WRITE ? open_writer(&f, &o, path, history) : NULL;
    int done = w ? (int)ts_forecast_leads_done(w) : 0;
    ts_par_bcast_ints(ctx->layout, &done, 1);
    if (PARALLEL_WRITE)
        ts_info("forecast: %s written collectively (parallel NetCDF-4), each rank its block of members, rows and "
                "columns",
                path);

    /* static forcings (lsm, z_surface) from the first initial time; each
     * rank reads its own block only */
    float *statics = ts_malloc(sizeof(float) * (f.nf ? f.nf : 1) * HWl), *scratch = ts_malloc(sizeof(float) * per_member);
    const int gathers = rank == 0 && !PARALLEL_WRITE;
    float *all = gathers ? ts_malloc(sizeof(float) * (size_t)f.nmembers * f.ns * f.HW) : NULL;
    float *gbuf = gathers ? ts_malloc(sizeof(float) * (size_t)world * local) : NULL;
    if (ts_era5_read_block(f.ds, f.init_index[0], (size_t)m->row0, (size_t)m->h, (size_t)m->col0, (size_t)m->w, scratch,
                           f.nf ? statics : NULL, err, sizeof err))
        ts_fatal("%s", err);
    for (size_t i = 0; i < f.ninits; i++) {
        float *mine = f.state + i * local;
        if (done == 0) { /* every member starts from the analysis */
            if (ts_era5_read_block(f.ds, f.init_index[i], (size_t)m->row0, (size_t)m->h, (size_t)m->col0, (size_t)m->w,
                                   scratch, NULL, err, sizeof err))
                ts_fatal("%s", err);
            for (int b = 0; b < f.nlocal; b++) memcpy(mine + (size_t)b * per_member, scratch, sizeof(float) * per_member);
        } else if (PARALLEL_WRITE) { /* resume: the last complete lead, each rank its block */
            block_io(&f, w, &o, i, done, mine, 0);
        } else { /* resume: the last complete lead, from the file */
            if (rank == 0) read_init(&f, w, &o, i, done, all);
            scatter_states(&f, all, gbuf, mine, world);
        }
    }
    if (f.regress)
        ts_info("forecast: %zu initial time%s x %d members x %d leads of %lld h, the deterministic regressor (one "
                "network call a lead; the members are identical)",
                f.ninits, f.ninits > 1 ? "s" : "", f.nmembers, f.nleads, (long long)(f.step / 3600));
    else
        ts_info("forecast: %zu initial time%s x %d members x %d leads of %lld h, %d sampler levels (%d network calls a "
                "lead)",
                f.ninits, f.ninits > 1 ? "s" : "", f.nmembers, f.nleads, (long long)(f.step / 3600), f.sampler.levels,
                2 * f.sampler.levels - 1);

    lead_ctx lc = {&f, &o, w, statics, gbuf, all, world};
    ts_rollout r = {.self = &lc,
                    .step = forecast_lead,
                    .total = f.nleads,
                    .done = done,
                    .unit = "lead",
                    .step_seconds = f.step,
                    .work_per_step = (double)f.nmembers * (double)f.ninits,
                    .rate_unit = "member-leads/s",
                    .rate_key = "member_leads_per_s",
                    .event = "forecast_lead",
                    .report_every = 1,
                    .path = path};
    int stopped = ts_rollout_run(ctx->layout, &r);
    if (w && ts_forecast_close(w, err, sizeof err)) ts_fatal("%s", err);
    if (rank == 0 && !stopped) ts_info("forecast written to %s", path);
    if (member_files && !stopped) split_members(ctx, path, history);
    free(history), free(statics), free(scratch), free(all), free(gbuf);
    forecaster_free(&f);
    return 0;
}
