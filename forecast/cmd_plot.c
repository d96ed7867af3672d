/* tessera plot: PNG maps of one forecast against its truth, and
 * score-vs-lead charts of a scorecard (docs/plot.md shows every file).
 *
 * Maps, for each variable of plot.variables and lead of plot.leads, at the
 * initial time plot.init, into OUT/plots:
 *   map_<var>_lead<HHH>_truth.png        truth (data.files) at the valid time
 *   map_<var>_lead<HHH>_mean.png         ensemble mean
 *   map_<var>_lead<HHH>_member<NN>.png   member plot.member
 *   map_<var>_lead<HHH>_error.png        ensemble mean - truth
 *   map_<var>_lead<HHH>_spread.png       ensemble standard deviation (ddof 1)
 * Charts: score_<metric>_<var>.png for each metric and variable of the
 * scorecard CSV, one line per system, with the interval ci_low..ci_high.
 * Learning curves (plot.logs): curve_<field>.png for each validation field
 * of the training logs against wall-clock minutes (eval/plot_curves.h);
 * with plot.logs, maps and charts are drawn only when named.
 *
 * Every request is checked against the files before the first PNG is
 * written, so a missing variable, level, lead, member or truth time stops
 * the command with one line and no new file; a failure while drawing
 * removes the PNGs this run wrote. Runs on rank 0; other ranks return.
 */
#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <math.h>
#include <netcdf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/caltime.h"
#include "core/config.h"
#include "core/geo.h"
#include "core/log.h"
#include "eval/plot.h"
#include "eval/plot_curves.h"
#include "eval/scorecard_csv.h"
#include "forecast/commands.h"
#include "io/era5_read.h"
#include "io/forecast_read.h"

enum { PATH_CAP = 4096, SPEC_CAP = NC_MAX_NAME + 16, MAX_VARS = 256, MAX_LEADS = 1024 };

/* ---- small helpers ------------------------------------------------------------------------ */

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

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Names that go into file names keep letters, digits, '-' and '_'. */
static void file_safe(const char *in, char *out, size_t cap) {
    size_t k = 0;
    for (; *in && k + 1 < cap; in++) out[k++] = (isalnum((unsigned char)*in) || *in == '-' || *in == '_') ? *in : '_';
    out[k] = '\0';
}

/* PNGs this run wrote: removed again if a later one fails. */
static struct {
    char **path;
    size_t n, cap;
} written;

static void remember_written(const char *path) {
    if (written.n == written.cap) {
        written.cap = written.cap ? 2 * written.cap : 64;
        char **p = realloc(written.path, written.cap * sizeof *p);
        if (!p) ts_fatal("out of memory");
        written.path = p;
    }
    written.path[written.n] = ts_malloc(strlen(path) + 1);
    strcpy(written.path[written.n++], path);
}

static void forget_written(int remove_files) {
    for (size_t i = 0; i < written.n; i++) {
        if (remove_files) unlink(written.path[i]);
        free(written.path[i]);
    }
    free(written.path);
    written.path = NULL, written.n = written.cap = 0;
}

/* A failure once PNGs exist: take back this run's PNGs, then one line. */
static _Noreturn void fail_drawing(const char *err) {
    forget_written(1);
    ts_fatal("%s (no PNG of this run was kept)", err);
}

static void write_map(const char *path, const ts_map_spec *spec) {
    char err[1024];
    if (ts_plot_map(path, spec, err, sizeof err)) fail_drawing(err);
    remember_written(path);
    ts_info("wrote %s", path);
}

/* ---- the forecast file (io/forecast_read.h) ------------------------------------------------------ */

/* One variable of the forecast at one level. */
typedef struct {
    char spec[SPEC_CAP];  /* as asked: "t850", "t2m" */
    size_t var, lev;      /* indices in the file; lev 0 for a surface variable */
    int on_levels;
    char units[64], long_name[128];
} fc_var;

static void text_att(int ncid, int id, const char *att, char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = '\0';
    if (nc_inq_attlen(ncid, id, att, &n) || n >= cap) return;
    if (nc_get_att_text(ncid, id, att, buf) == NC_NOERR) buf[n] = '\0';
}

/* units and long_name of each variable, for titles and the colour bar: the
 * reader does not carry attributes, so they are read here by name. A file
 * without them gets maps without units. */
static void read_attributes(const ts_forecast_file *f, fc_var *vars, size_t n) {
    const ts_forecast_info *in = ts_forecast_file_info(f);
    int ncid, id;
    if (nc_open(ts_forecast_file_attr_path(f), NC_NOWRITE, &ncid) != NC_NOERR) return;
    for (size_t i = 0; i < n; i++)
        if (nc_inq_varid(ncid, in->vars[vars[i].var].name, &id) == NC_NOERR) {
            text_att(ncid, id, "units", vars[i].units, sizeof vars[i].units);
            text_att(ncid, id, "long_name", vars[i].long_name, sizeof vars[i].long_name);
        }
    nc_close(ncid);
}

/* "z on levels, t2m, ..." and "850, 500" for messages. */
static void list_variables(const ts_forecast_info *in, char *buf, size_t cap) {
    size_t k = 0;
    buf[0] = '\0';
    for (size_t v = 0; v < in->nvars && k + 1 < cap; v++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%s%s", v ? ", " : "", in->vars[v].name,
                              in->vars[v].on_levels ? " on levels" : "");
}

static void list_numbers(const double *x, size_t n, char *buf, size_t cap) {
    size_t k = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && k + 16 < cap; i++) k += (size_t)snprintf(buf + k, cap - k, "%s%g", i ? ", " : "", x[i]);
}

/* The variable a spec names, by the ERA5 reader's rule (io/era5_read.h): a
 * surface variable of that exact name wins; else trailing digits are the
 * level in hPa ("t850" is t at 850 hPa). Returns 0, or -1 with err set. */
static int fc_find_var(const ts_forecast_file *f, const char *spec, fc_var *v, char *err, size_t cap) {
    const ts_forecast_info *in = ts_forecast_file_info(f);
    char name[SPEC_CAP], have[2048];
    memset(v, 0, sizeof *v);
    snprintf(v->spec, sizeof v->spec, "%s", spec);
    int whole = ts_forecast_file_find_var(f, spec);
    if (whole >= 0 && !in->vars[whole].on_levels) return v->var = (size_t)whole, 0;
    size_t len = strlen(spec), k = len;
    while (k > 0 && isdigit((unsigned char)spec[k - 1])) k--;
    snprintf(name, sizeof name, "%.*s", (int)k, spec);
    int id = k > 0 && k < len ? ts_forecast_file_find_var(f, name) : -1;
    if (id < 0 || !in->vars[id].on_levels) {
        list_variables(in, have, sizeof have);
        if (whole >= 0)
            snprintf(err, cap, "%s: variable %s is on pressure levels: name a level, e.g. %s500 (plot.variables)", in->path,
                     spec, spec);
        else
            snprintf(err, cap, "%s: no variable %s (plot.variables); the file has: %s", in->path, spec, have);
        return -1;
    }
    double hpa = atof(spec + k);
    int lev = ts_forecast_file_find_level(f, hpa);
    if (lev < 0) {
        list_numbers(in->levels, in->nlev, have, sizeof have);
        snprintf(err, cap, "%s: variable %s has no level %g hPa (plot.variables: %s); its levels: %s hPa", in->path, name,
                 hpa, spec, have);
        return -1;
    }
    v->var = (size_t)id, v->lev = (size_t)lev, v->on_levels = 1;
    return 0;
}

/* Every variable of the file, each level of the level ones: plot.variables
 * left empty. */
static size_t fc_all_specs(const ts_forecast_info *in, char (*specs)[SPEC_CAP], size_t max) {
    size_t n = 0;
    for (size_t v = 0; v < in->nvars; v++) {
        if (!in->vars[v].on_levels && n < max) snprintf(specs[n++], SPEC_CAP, "%s", in->vars[v].name);
        for (size_t l = 0; in->vars[v].on_levels && l < in->nlev && n < max; l++)
            snprintf(specs[n++], SPEC_CAP, "%s%g", in->vars[v].name, in->levels[l]);
    }
    return n;
}

/* (nmembers, nlat, nlon) of one variable, initial time and lead. */
static void fc_read_members(ts_forecast_file *f, const fc_var *v, size_t init, size_t lead, float *out) {
    const ts_forecast_info *in = ts_forecast_file_info(f);
    char err[2048];
    for (size_t k = 0; k < in->nmembers; k++)
        if (ts_forecast_file_read(f, v->var, k, init, lead, v->lev, out + k * in->nlat * in->nlon, err, sizeof err))
            fail_drawing(err);
}

/* ---- what to draw ---------------------------------------------------------------------------------- */

typedef struct {
    ts_forecast_file *fc;
    const ts_forecast_info *in;
    size_t nvars, nleads;
    fc_var *vars;                 /* (nvars) */
    size_t lead[MAX_LEADS];       /* indices into step */
    size_t init, member;
    ts_era5_dataset *truth;
    size_t truth_row0;            /* truth row of the forecast's first latitude */
    size_t truth_chan[MAX_VARS];  /* truth state channel of each variable */
    size_t truth_time[MAX_LEADS]; /* truth time index of each lead's valid time */
} map_job;

static void resolve_variables(map_job *job, const char *list) {
    static char specs[MAX_VARS][SPEC_CAP];
    size_t n = 0;
    char item[SPEC_CAP], err[4096];
    if (!*list) n = fc_all_specs(job->in, specs, MAX_VARS);
    for (const char *s = list; next_item(&s, item, sizeof item);) {
        if (n == MAX_VARS) ts_usage_error("plot.variables: more than %d variables", MAX_VARS);
        snprintf(specs[n++], SPEC_CAP, "%s", item);
    }
    job->vars = ts_calloc(n, sizeof(fc_var));
    for (size_t i = 0; i < n; i++)
        if (fc_find_var(job->fc, specs[i], &job->vars[i], err, sizeof err)) ts_usage_error("%s", err);
    job->nvars = n;
    read_attributes(job->fc, job->vars, n);
}

static void resolve_leads(map_job *job, const char *list) {
    const ts_forecast_info *in = job->in;
    char item[64], have[2048];
    job->nleads = 0;
    if (!*list) job->lead[job->nleads++] = 0; /* the first lead */
    for (const char *s = list; next_item(&s, item, sizeof item);) {
        char *end;
        double h = strtod(item, &end);
        if (end == item || *end) ts_usage_error("plot.leads: '%s' is not a lead in hours (e.g. 24,72,120)", item);
        size_t l = 0;
        while (l < in->nsteps && fabs(in->step_hours[l] - h) > 1e-6) l++;
        if (l == in->nsteps) {
            list_numbers(in->step_hours, in->nsteps, have, sizeof have);
            ts_usage_error("%s: no lead %s h (plot.leads); the file's leads: %s h", in->path, item, have);
        }
        if (job->nleads == MAX_LEADS) ts_usage_error("plot.leads: more than %d leads", MAX_LEADS);
        job->lead[job->nleads++] = l;
    }
}

static void resolve_member_and_init(map_job *job, const ts_config *cfg) {
    const ts_forecast_info *in = job->in;
    int64_t m = ts_config_int(cfg, "plot.member"), i = ts_config_int(cfg, "plot.init");
    if ((size_t)m >= in->nmembers)
        ts_usage_error("%s: no member %lld (plot.member); the ensemble has %zu members, numbered 0..%zu", in->path,
                       (long long)m, in->nmembers, in->nmembers - 1);
    if ((size_t)i >= in->ninits)
        ts_usage_error("%s: no initial time %lld (plot.init); the file has %zu, numbered 0..%zu", in->path, (long long)i,
                       in->ninits, in->ninits - 1);
    job->member = (size_t)m, job->init = (size_t)i;
}

/* The truth's grid must hold the forecast's: same longitudes, and the
 * forecast's latitudes as consecutive rows (a forecast may lack the
 * south-pole row the truth files keep). */
static void match_truth_grid(map_job *job, const char *files) {
    const ts_era5_grid *g = ts_era5_grid_info(job->truth);
    const ts_forecast_info *in = job->in;
    int ok = g->nlon == in->nlon && g->nlat >= in->nlat;
    for (size_t j = 0; ok && j < in->nlon; j++) ok = fabs(g->lon[j] - in->lon[j]) < 1e-6;
    size_t r = 0;
    while (ok && r + in->nlat <= g->nlat && fabs(g->lat[r] - in->lat[0]) > 1e-6) r++;
    ok = ok && r + in->nlat <= g->nlat;
    for (size_t i = 0; ok && i < in->nlat; i++) ok = fabs(g->lat[r + i] - in->lat[i]) < 1e-6;
    if (!ok)
        ts_usage_error("%s: the truth (data.files = %s) is on a %zu x %zu grid that does not hold the forecast's "
                       "%zu x %zu: set data.grid to the grid the forecast was made on",
                       in->path, files, g->nlat, g->nlon, in->nlat, in->nlon);
    job->truth_row0 = r;
}

/* The truth channels are the plotted specs themselves ("t850", "t2m"):
 * the forecast keeps the input's variable names. */
static void open_truth(map_job *job, const ts_config *cfg) {
    const char *files = ts_config_str(cfg, "data.files");
    if (!*files) ts_usage_error("data.files is empty: name the truth files (ERA5 NetCDF) the maps compare with");
    char **paths, err[4096];
    size_t npaths, cap = 1;
    if (ts_era5_expand_files(files, &paths, &npaths, err, sizeof err)) ts_usage_error("%s", err);
    for (size_t i = 0; i < job->nvars; i++) cap += strlen(job->vars[i].spec) + 1;
    char *list = ts_calloc(cap, 1);
    for (size_t i = 0; i < job->nvars; i++) strcat(strcat(list, i ? "," : ""), job->vars[i].spec);
    ts_era5_open_opts opts;
    ts_era5_opts_from_config(cfg, &opts);
    opts.variables = list, opts.forcings = "";
    job->truth = ts_era5_open((const char *const *)paths, npaths, &opts, err, sizeof err);
    ts_era5_free_paths(paths, npaths);
    free(list);
    if (!job->truth) ts_fatal("%s", err); /* the files', not the configuration's */
    match_truth_grid(job, files);
    for (size_t i = 0; i < job->nvars; i++) {
        size_t c = 0;
        while (c + 1 < ts_era5_nstate(job->truth) && strcmp(ts_era5_state_channel(job->truth, c)->spec, job->vars[i].spec))
            c++;
        job->truth_chan[i] = c;
    }
}

static int64_t valid_time(const map_job *job, size_t l) {
    return job->in->init_times[job->init] + (int64_t)llround(job->in->step_hours[job->lead[l]] * 3600.0);
}

static void find_truth_times(map_job *job, const ts_config *cfg) {
    size_t nt = ts_era5_ntimes(job->truth);
    const int64_t *t = ts_era5_times(job->truth);
    for (size_t l = 0; l < job->nleads; l++) {
        int64_t v = valid_time(job, l);
        if (ts_era5_find_time(job->truth, v, &job->truth_time[l]) == 0) continue;
        char when[32], init[32], first[32], last[32];
        ts_format_datetime(v, when, sizeof when), ts_format_datetime(job->in->init_times[job->init], init, sizeof init);
        ts_format_datetime(t[0], first, sizeof first), ts_format_datetime(t[nt - 1], last, sizeof last);
        ts_usage_error("data.files = %s: no truth at %s (init %s + %g h); the files hold %s .. %s",
                       ts_config_str(cfg, "data.files"), when, init, job->in->step_hours[job->lead[l]], first, last);
    }
}

/* Open and check everything the maps need; nothing is written here. */
static void prepare_maps(map_job *job, const char *path, const ts_config *cfg) {
    char err[4096];
    job->fc = ts_forecast_file_open(path, err, sizeof err);
    if (!job->fc) ts_fatal("%s", err); /* missing, cut short or not a forecast: the file's */
    job->in = ts_forecast_file_info(job->fc);
    if (job->in->nlat < 2 || job->in->nlon < 2)
        ts_usage_error("%s: the grid is %zu x %zu; maps need at least 2 x 2", path, job->in->nlat, job->in->nlon);
    resolve_variables(job, ts_config_str(cfg, "plot.variables"));
    resolve_leads(job, ts_config_str(cfg, "plot.leads"));
    resolve_member_and_init(job, cfg);
    open_truth(job, cfg);
    find_truth_times(job, cfg);
}

/* ---- the maps of one variable and lead ---------------------------------------------------------------- */

typedef struct {
    size_t npix, nmem;
    float *members;               /* (nmem, npix) */
    float *truth;                 /* (npix) */
    float *mean, *spread, *error; /* (npix) each */
    double *wrow;                 /* (nlat) area weights, mean 1 */
} map_fields;

/* Ensemble mean, standard deviation (ddof 1, as the spread-skill ratio
 * uses) and error, in double; a NaN in any input leaves NaN. */
static void derive_fields(map_fields *m) {
    for (size_t p = 0; p < m->npix; p++) {
        double s = 0, ss = 0;
        for (size_t k = 0; k < m->nmem; k++) s += m->members[k * m->npix + p];
        double mean = s / (double)m->nmem;
        for (size_t k = 0; k < m->nmem; k++) {
            double d = m->members[k * m->npix + p] - mean;
            ss += d * d;
        }
        m->mean[p] = (float)mean;
        m->spread[p] = m->nmem > 1 ? (float)sqrt(ss / (double)(m->nmem - 1)) : NAN;
        m->error[p] = (float)(mean - m->truth[p]);
    }
}

/* Latitude-weighted mean of x^2, NaN cells skipped. */
static double weighted_mean_square(const float *x, const double *wrow, size_t nlat, size_t nlon) {
    double sw = 0, s = 0;
    for (size_t i = 0; i < nlat; i++)
        for (size_t j = 0; j < nlon; j++) {
            double v = x[i * nlon + j];
            if (isnan(v)) continue;
            sw += wrow[i], s += wrow[i] * v * v;
        }
    return sw > 0 ? s / sw : NAN;
}

static void finite_range(const float *x, size_t n, double *lo, double *hi) {
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i])) *lo = fmin(*lo, x[i]), *hi = fmax(*hi, x[i]);
}

/* Every truth channel at lead l's valid time, on the forecast's rows:
 * state (nstate, nlat, nlon). */
static void read_truth(const map_job *job, size_t l, float *state) {
    char err[4096];
    if (ts_era5_read_block(job->truth, job->truth_time[l], job->truth_row0, job->in->nlat, 0, job->in->nlon, state,
                           NULL, err, sizeof err))
        fail_drawing(err);
}

static void read_fields(const map_job *job, size_t v, size_t l, map_fields *m, const float *state) {
    fc_read_members(job->fc, &job->vars[v], job->init, job->lead[l], m->members);
    memcpy(m->truth, state + job->truth_chan[v] * m->npix, sizeof(float) * m->npix);
    derive_fields(m);
}

/* "Temperature at 850 hPa (t850)" or "2 metre temperature (t2m)". */
static void describe(const ts_forecast_info *in, const fc_var *v, char *buf, size_t cap) {
    const char *what = v->long_name[0] ? v->long_name : in->vars[v->var].name;
    if (v->on_levels)
        snprintf(buf, cap, "%s at %g hPa (%s)", what, in->levels[v->lev], v->spec);
    else
        snprintf(buf, cap, "%s (%s)", what, v->spec);
}

/* Truth, mean and member share one colour range, so they compare by eye. */
static void draw_fields(const map_job *job, const map_fields *m, ts_map_spec *s, const char *base, const char *what) {
    char path[PATH_CAP + 3 * SPEC_CAP], title[1536];
    double lo = INFINITY, hi = -INFINITY;
    const float *member = m->members + job->member * m->npix;
    finite_range(m->truth, m->npix, &lo, &hi);
    finite_range(m->mean, m->npix, &lo, &hi);
    finite_range(member, m->npix, &lo, &hi);
    ts_plot_nice_range(lo, hi, 0, &s->vmin, &s->vmax);
    s->cmap = TS_CMAP_VIRIDIS, s->title = title;
    s->field = m->truth;
    snprintf(title, sizeof title, "%s: truth", what);
    snprintf(path, sizeof path, "%s_truth.png", base);
    write_map(path, s);
    s->field = m->mean;
    snprintf(title, sizeof title, "%s: ensemble mean of %zu members", what, m->nmem);
    snprintf(path, sizeof path, "%s_mean.png", base);
    write_map(path, s);
    s->field = member;
    snprintf(title, sizeof title, "%s: member %zu of %zu", what, job->member, m->nmem);
    snprintf(path, sizeof path, "%s_member%02zu.png", base, job->member);
    write_map(path, s);
}

/* The error on a range symmetric about 0; the spread from 0. Subtitles
 * give the latitude-weighted RMSE and spread, the scorecard's quantities
 * for this one case. */
static void draw_error_spread(const map_job *job, const map_fields *m, ts_map_spec *s, const char *base,
                              const char *what, const char *when) {
    char path[PATH_CAP + 3 * SPEC_CAP], title[1536], sub[1536];
    const char *units = s->units ? s->units : "";
    double lo = INFINITY, hi = -INFINITY;
    finite_range(m->error, m->npix, &lo, &hi);
    ts_plot_nice_range(lo, hi, 1, &s->vmin, &s->vmax);
    s->field = m->error, s->cmap = TS_CMAP_DIVERGING, s->title = title, s->subtitle = sub;
    snprintf(title, sizeof title, "%s: ensemble mean \xe2\x88\x92 truth", what);
    snprintf(sub, sizeof sub, "%s; latitude-weighted RMSE %.4g %s", when,
             sqrt(weighted_mean_square(m->error, m->wrow, job->in->nlat, job->in->nlon)), units);
    snprintf(path, sizeof path, "%s_error.png", base);
    write_map(path, s);
    if (m->nmem < 2) {
        ts_info("one member: no spread map for %s", base);
        return;
    }
    lo = 0, hi = -INFINITY;
    finite_range(m->spread, m->npix, &lo, &hi);
    ts_plot_nice_range(0, hi, 0, &s->vmin, &s->vmax);
    s->field = m->spread, s->cmap = TS_CMAP_SEQUENTIAL;
    snprintf(title, sizeof title, "%s: ensemble spread (std over %zu members)", what, m->nmem);
    snprintf(sub, sizeof sub, "%s; spread (root of the latitude-weighted mean variance) %.4g %s", when,
             sqrt(weighted_mean_square(m->spread, m->wrow, job->in->nlat, job->in->nlon)), units);
    snprintf(path, sizeof path, "%s_spread.png", base);
    write_map(path, s);
}

static void draw_variable_lead(const map_job *job, size_t v, size_t l, const map_fields *m, const char *dir) {
    const ts_forecast_info *in = job->in;
    const fc_var *var = &job->vars[v];
    char base[PATH_CAP + 2 * SPEC_CAP], safe[SPEC_CAP], what[1024], when[256], valid[32], init[32];
    file_safe(var->spec, safe, sizeof safe);
    snprintf(base, sizeof base, "%s/map_%s_lead%03lld", dir, safe, (long long)llround(in->step_hours[job->lead[l]]));
    describe(in, var, what, sizeof what);
    ts_format_datetime(valid_time(job, l), valid, sizeof valid);
    ts_format_datetime(in->init_times[job->init], init, sizeof init);
    snprintf(when, sizeof when, "valid %s, init %s + %g h", valid, init, in->step_hours[job->lead[l]]);
    ts_map_spec s = {NULL, in->nlat, in->nlon, in->lat, in->lon, TS_CMAP_VIRIDIS, 0, 1, NULL, when, var->units};
    draw_fields(job, m, &s, base, what);
    draw_error_spread(job, m, &s, base, what, when);
}

static void draw_maps(const map_job *job, const char *dir) {
    const ts_forecast_info *in = job->in;
    map_fields m = {.npix = in->nlat * in->nlon, .nmem = in->nmembers};
    m.members = ts_malloc(sizeof(float) * m.nmem * m.npix);
    m.truth = ts_malloc(sizeof(float) * m.npix), m.mean = ts_malloc(sizeof(float) * m.npix);
    m.spread = ts_malloc(sizeof(float) * m.npix), m.error = ts_malloc(sizeof(float) * m.npix);
    m.wrow = ts_malloc(sizeof(double) * in->nlat);
    float *state = ts_malloc(sizeof(float) * ts_era5_nstate(job->truth) * m.npix); /* (nstate, nlat, nlon) */
    if (ts_lat_area_weights(in->lat, in->nlat, m.wrow))
        for (size_t i = 0; i < in->nlat; i++) m.wrow[i] = 1; /* odd latitudes: plain means in the subtitles */
    for (size_t l = 0; l < job->nleads; l++) {
        read_truth(job, l, state);
        for (size_t v = 0; v < job->nvars; v++) {
            read_fields(job, v, l, &m, state);
            draw_variable_lead(job, v, l, &m, dir);
        }
    }
    free(m.members), free(m.truth), free(m.mean), free(m.spread), free(m.error), free(m.wrow), free(state);
}

typedef struct {
    const char *label, *ylabel; /* NULL: the metric's own name */
    int from_zero, with_units;
    double ref;                 /* reference line, NaN for none */
    const char *ref_label;
} metric_style;

static metric_style style_of(const char *metric) {
    switch (ts_score_metric_rank(metric)) {
    case 0: return (metric_style){"RMSE of the ensemble mean", "RMSE", 1, 1, NAN, NULL};
    case 1: return (metric_style){"anomaly correlation (ACC)", "ACC", 0, 0, 0.6, "0.6: useful skill"};
    case 2: return (metric_style){"fair CRPS", "CRPS", 1, 1, NAN, NULL};
    case 3: return (metric_style){"spread-skill ratio", "spread / RMSE", 1, 0, 1.0, "1: spread = error"};
    default: return (metric_style){NULL, NULL, 0, 0, NAN, NULL};
    }
}

/* Units of a scorecard variable, from the forecast file when it has it. */
static void units_of(const ts_forecast_file *fc, const char *var, char *buf, size_t cap) {
    fc_var v;
    char err[4096];
    buf[0] = '\0';
    if (!fc || fc_find_var(fc, var, &v, err, sizeof err)) return;
    read_attributes(fc, &v, 1);
    snprintf(buf, cap, "%s", v.units);
}

/* One chart from rows[a, b): one variable and metric, series by system. */
static void draw_chart(const ts_scorecard_csv *sc, size_t a, size_t b, const ts_forecast_file *fc, const char *dir) {
    const ts_score_row *r0 = &sc->rows[a];
    size_t n = b - a, ns = 0;
    double *x = ts_malloc(sizeof(double) * 4 * n), *y = x + n, *lo = y + n, *hi = lo + n; /* (n) each */
    ts_chart_series *series = ts_calloc(n, sizeof *series);
    for (size_t i = 0; i < n; i++) {
        const ts_score_row *r = &sc->rows[a + i];
        x[i] = r->lead, y[i] = r->value, lo[i] = r->lo, hi[i] = r->hi;
        if (i == 0 || strcmp(r->system, sc->rows[a + i - 1].system)) {
            int k = ts_score_system_rank(r->system);
            int slot = k < TS_SCORE_SYSTEMS ? k : TS_SCORE_SYSTEMS + (int)ns; /* others: the next colours */
            series[ns++] = (ts_chart_series){r->system, ts_plot_series_colour((size_t)slot), slot % 4, 0, x + i, y + i, lo + i, hi + i};
        }
        series[ns - 1].n++;
    }
    metric_style st = style_of(r0->metric);
    char title[512], ylabel[256], units[64], safe_v[SPEC_CAP + 32], safe_m[64], path[PATH_CAP + 512];
    snprintf(title, sizeof title, "%s: %s", r0->var, st.label ? st.label : r0->metric);
    units_of(fc, r0->var, units, sizeof units);
    snprintf(ylabel, sizeof ylabel, st.with_units && units[0] ? "%s (%s)" : "%s", st.ylabel ? st.ylabel : r0->metric, units);
    ts_chart_spec spec = {title, "lead time (hours)", ylabel, ns, series, st.from_zero, st.ref, st.ref_label,
                          "bars: bootstrap interval over\ninitial times (ci_low..ci_high)"};
    file_safe(r0->var, safe_v, sizeof safe_v), file_safe(r0->metric, safe_m, sizeof safe_m);
    snprintf(path, sizeof path, "%s/score_%s_%s.png", dir, safe_m, safe_v);
    char err[1024];
    if (ts_plot_chart(path, &spec, err, sizeof err)) fail_drawing(err);
    remember_written(path);
    ts_info("wrote %s", path);
    free(x), free(series);
}

static void draw_charts(const ts_scorecard_csv *sc, const ts_forecast_file *fc, const char *dir) {
    size_t a = 0;
    for (size_t i = 1; i <= sc->n; i++)
        if (i == sc->n || strcmp(sc->rows[i].var, sc->rows[a].var) || strcmp(sc->rows[i].metric, sc->rows[a].metric)) {
            draw_chart(sc, a, i, fc, dir);
            a = i;
        }
}

/* ---- the command ------------------------------------------------------------------------------------------ */

/* The key's path; or, when the key is empty, OUT/<fallback> if it (or an
 * unfinished <fallback>.part, which the reader then reports) exists, else
 * "": nothing of that kind to plot. */
static void input_path(const ts_command_ctx *ctx, const char *key, const char *fallback, char *buf, size_t cap) {
    const char *given = ts_config_str(ctx->cfg, key);
    char part[PATH_CAP + 8];
    if (*given) {
        snprintf(buf, cap, "%s", given);
        return;
    }
    snprintf(buf, cap, "%s/%s", ctx->out, fallback);
    snprintf(part, sizeof part, "%s.part", buf);
    if (file_exists(buf) || file_exists(part)) return;
    /* forecast.files=per_member: the reader takes the set of member files for the path */
    char pattern[PATH_CAP + 64];
    glob_t g;
    ts_forecast_member_glob(buf, pattern, sizeof pattern);
    int members = strcmp(fallback, "forecast.nc") == 0 && glob(pattern, 0, NULL, &g) == 0;
    if (members) globfree(&g);
    if (!members) buf[0] = '\0';
}

/* Learning curves of plot.logs with the names of plot.labels. */
static void draw_curves(const ts_config *cfg, const char *dir) {
    enum { MAX_CURVE_LOGS = 16 };
    char paths[MAX_CURVE_LOGS][PATH_CAP], names[MAX_CURVE_LOGS][128], item[PATH_CAP], err[1024];
    const char *path_of[MAX_CURVE_LOGS], *name_of[MAX_CURVE_LOGS] = {NULL};
    size_t n = 0, k = 0;
    for (const char *s = ts_config_str(cfg, "plot.logs"); next_item(&s, item, sizeof item); n++) {
        if (n == MAX_CURVE_LOGS) ts_usage_error("plot.logs names more than %d logs", MAX_CURVE_LOGS);
        snprintf(paths[n], PATH_CAP, "%s", item), path_of[n] = paths[n];
    }
    for (const char *s = ts_config_str(cfg, "plot.labels"); k < n && next_item(&s, item, sizeof item); k++)
        snprintf(names[k], sizeof names[k], "%.127s", item), name_of[k] = names[k];
    if (ts_plot_learning_curves(path_of, name_of, n, dir, remember_written, err, sizeof err)) fail_drawing(err);
}

int cmd_plot(const ts_command_ctx *ctx) {
    if (ctx->layout->rank != 0) return 0; /* drawing is serial; the other ranks have nothing to do */
    char fc_path[PATH_CAP], sc_path[PATH_CAP], dir[PATH_CAP];
    input_path(ctx, "plot.forecast", "forecast.nc", fc_path, sizeof fc_path);
    input_path(ctx, "plot.scorecard", "scorecard.csv", sc_path, sizeof sc_path);
    const char *logs = ts_config_str(ctx->cfg, "plot.logs");
    if (*logs) { /* learning curves; maps and charts only where named */
        if (!*ts_config_str(ctx->cfg, "plot.forecast")) fc_path[0] = '\0';
        if (!*ts_config_str(ctx->cfg, "plot.scorecard")) sc_path[0] = '\0';
    }
    if (!fc_path[0] && !sc_path[0] && !*logs)
        ts_usage_error("nothing to plot: no %s/forecast.nc or %s/scorecard.csv; name them with plot.forecast and "
                       "plot.scorecard",
                       ctx->out, ctx->out);

    /* check every request before the first PNG */
    map_job job;
    memset(&job, 0, sizeof job);
    ts_scorecard_csv sc = {0};
    char err[1024];
    if (fc_path[0]) prepare_maps(&job, fc_path, ctx->cfg);
    if (sc_path[0] && ts_scorecard_csv_read(sc_path, &sc, err, sizeof err)) ts_usage_error("%s", err);

    snprintf(dir, sizeof dir, "%s/plots", ctx->out);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) ts_fatal("cannot create %s: %s", dir, strerror(errno));
    if (*logs) draw_curves(ctx->cfg, dir);
    if (fc_path[0]) draw_maps(&job, dir);
    if (sc_path[0]) draw_charts(&sc, job.fc, dir);
    ts_info("plot: %zu PNG%s in %s", written.n, written.n == 1 ? "" : "s", dir);

    forget_written(0);
    ts_scorecard_csv_free(&sc);
    if (job.truth) ts_era5_dataset_close(job.truth);
    free(job.vars);
    ts_forecast_file_close(job.fc);
    return 0;
}
