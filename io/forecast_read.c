/* Reading ensemble forecasts in the cfgrib ensemble layout; see
 * forecast_read.h and docs/forecast-format.md. */
#include "io/forecast_read.h"

#include <errno.h>
#include <glob.h>
#include <math.h>
#include <netcdf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/caltime.h"
#include "core/log.h"
#include "io/io_error.h"

_Static_assert(TS_FORECAST_NAME_MAX == NC_MAX_NAME + 1, "variable names are NC_MAX_NAME long");

struct ts_forecast_file {
    ts_forecast_info info;
    char *path;
    int ncid;
    int *varid;                 /* (nvars) */
    int64_t *init_times;        /* (ninits) */
    double *step_hours;         /* (nsteps) */
    double *levels;             /* (nlev) */
    double *lat, *lon;          /* (nlat), (nlon) */
    ts_forecast_file_var *vars; /* (nvars) */
    /* a set of per-member files (forecast_members.h) instead of one file */
    char **member_path; /* (ninits * nmembers), [init * nmembers + member]; NULL for one file */
    size_t open_k;      /* which of them ncid holds, (size_t)-1 for none */
};

/* Dimension ids of the layout; lev is -1 when the file has no levels. */
typedef struct {
    int number, time, step, lev, lat, lon;
} layout_dims;

/* ---- attributes and units ----------------------------------------------------------------- */

/* A text attribute into buf ("" when absent or too long). */
static void get_text_att(int ncid, int varid, const char *name, char *buf, size_t cap) {
    size_t len = 0;
    buf[0] = '\0';
    if (nc_inq_attlen(ncid, varid, name, &len) != NC_NOERR || len >= cap) return;
    if (nc_get_att_text(ncid, varid, name, buf) != NC_NOERR) len = 0;
    buf[len] = '\0';
}

/* "seconds since 1970-01-01[ 00:00[:00[.0]]][Z| UTC]": the epoch and no other. */
static int is_unix_seconds(const char *u) {
    static const char pre[] = "seconds since 1970-01-01";
    if (strncmp(u, pre, sizeof pre - 1) != 0) return 0;
    const char *p = u + sizeof pre - 1;
    int h = 0, m = 0, n = 0;
    double s = 0;
    if (*p == ' ' || *p == 'T') p++;
    if (*p >= '0' && *p <= '9') {
        if (sscanf(p, "%d:%d%n", &h, &m, &n) < 2) return 0;
        p += n;
        if (*p == ':') {
            if (sscanf(p + 1, "%lf%n", &s, &n) < 1) return 0;
            p += 1 + n;
        }
    }
    while (*p == ' ') p++;
    if (*p == 'Z')
        p++;
    else if (strcmp(p, "UTC") == 0)
        p += 3;
    return *p == '\0' && h == 0 && m == 0 && s == 0;
}

/* ---- coordinates ------------------------------------------------------------------------ */

static int dim_len(ts_forecast_file *f, const char *name, int *id, size_t *len, char *err, size_t errcap) {
    if (nc_inq_dimid(f->ncid, name, id) != NC_NOERR)
        return TS_FAIL(err, errcap, "%s: no dimension '%s': not a forecast in the layout of docs/forecast-format.md",
                       f->path, name);
    TS_NC_CHECK(nc_inq_dimlen(f->ncid, *id, len), err, errcap, "%s: %s", f->path, name);
    if (*len == 0) return TS_FAIL(err, errcap, "%s: dimension '%s' is empty", f->path, name);
    return 0;
}

static int find_dims(ts_forecast_file *f, layout_dims *d, char *err, size_t errcap) {
    ts_forecast_info *in = &f->info;
    if (dim_len(f, "number", &d->number, &in->nmembers, err, errcap) ||
        dim_len(f, "time", &d->time, &in->ninits, err, errcap) ||
        dim_len(f, "step", &d->step, &in->nsteps, err, errcap) ||
        dim_len(f, "latitude", &d->lat, &in->nlat, err, errcap) ||
        dim_len(f, "longitude", &d->lon, &in->nlon, err, errcap))
        return -1;
    d->lev = -1;
    in->nlev = 0;
    if (nc_inq_dimid(f->ncid, "pressure_level", &d->lev) == NC_NOERR) {
        if (dim_len(f, "pressure_level", &d->lev, &in->nlev, err, errcap)) return -1;
    } else {
        d->lev = -1;
    }
    return 0;
}

/* The 1-D coordinate `name` on its own dimension, as doubles. */
static int read_coord(ts_forecast_file *f, const char *name, int dimid, double *out, char *err, size_t errcap) {
    int id, nd, dims[NC_MAX_VAR_DIMS];
    if (nc_inq_varid(f->ncid, name, &id) != NC_NOERR)
        return TS_FAIL(err, errcap, "%s: no coordinate variable '%s'", f->path, name);
    TS_NC_CHECK(nc_inq_varndims(f->ncid, id, &nd), err, errcap, "%s: %s", f->path, name);
    TS_NC_CHECK(nc_inq_vardimid(f->ncid, id, dims), err, errcap, "%s: %s", f->path, name);
    if (nd != 1 || dims[0] != dimid)
        return TS_FAIL(err, errcap, "%s: coordinate '%s' is not on its own dimension", f->path, name);
    TS_NC_CHECK(nc_get_var_double(f->ncid, id, out), err, errcap, "%s: %s", f->path, name);
    return 0;
}

static int read_times(ts_forecast_file *f, const layout_dims *d, char *err, size_t errcap) {
    ts_forecast_info *in = &f->info;
    char units[128];
    int id;
    if (nc_inq_varid(f->ncid, "time", &id) != NC_NOERR)
        return TS_FAIL(err, errcap, "%s: no coordinate variable 'time'", f->path);
    get_text_att(f->ncid, id, "units", units, sizeof units);
    if (!is_unix_seconds(units))
        return TS_FAIL(err, errcap, "%s: variable time: units '%s', expected 'seconds since 1970-01-01 00:00:00'",
                       f->path, units);
    long long *t = ts_malloc(in->ninits * sizeof *t); /* (ninits) */
    int rc = nc_get_var_longlong(f->ncid, id, t);
    for (size_t i = 0; i < in->ninits; i++) f->init_times[i] = t[i];
    free(t);
    if (rc != NC_NOERR) return TS_FAIL(err, errcap, "%s: variable time: %s", f->path, nc_strerror(rc));
    if (nc_inq_varid(f->ncid, "step", &id) != NC_NOERR)
        return TS_FAIL(err, errcap, "%s: no coordinate variable 'step'", f->path);
    get_text_att(f->ncid, id, "units", units, sizeof units);
    if (strcmp(units, "hours") != 0 && strcmp(units, "hour") != 0 && strcmp(units, "h") != 0)
        return TS_FAIL(err, errcap, "%s: variable step: units '%s', expected 'hours'", f->path, units);
    if (read_coord(f, "step", d->step, f->step_hours, err, errcap)) return -1;
    for (size_t s = 0; s < in->nsteps; s++)
        if (!isfinite(f->step_hours[s]) || f->step_hours[s] < 0)
            return TS_FAIL(err, errcap, "%s: variable step: lead %zu is %g hours", f->path, s, f->step_hours[s]);
    return 0;
}

/* valid_time(time, step), when the file has it, must equal time + step. */
static int check_valid_time(ts_forecast_file *f, char *err, size_t errcap) {
    ts_forecast_info *in = &f->info;
    int id;
    if (nc_inq_varid(f->ncid, "valid_time", &id) != NC_NOERR) return 0;
    size_t n = in->ninits * in->nsteps;
    long long *vt = ts_malloc(n * sizeof *vt); /* (ninits, nsteps) */
    int rc = nc_get_var_longlong(f->ncid, id, vt);
    if (rc != NC_NOERR) {
        free(vt);
        return TS_FAIL(err, errcap, "%s: variable valid_time: %s", f->path, nc_strerror(rc));
    }
    for (size_t i = 0; i < in->ninits; i++)
        for (size_t s = 0; s < in->nsteps; s++) {
            long long want = (long long)f->init_times[i] + llround(f->step_hours[s] * 3600.0);
            if (vt[i * in->nsteps + s] != want) {
                long long got = vt[i * in->nsteps + s];
                free(vt);
                return TS_FAIL(err, errcap, "%s: variable valid_time[%zu, %zu] = %lld, but time + step = %lld", f->path,
                               i, s, got, want);
            }
        }
    free(vt);
    return 0;
}

static int read_grid(ts_forecast_file *f, const layout_dims *d, char *err, size_t errcap) {
    ts_forecast_info *in = &f->info;
    if (read_coord(f, "latitude", d->lat, f->lat, err, errcap) ||
        read_coord(f, "longitude", d->lon, f->lon, err, errcap))
        return -1;
    for (size_t i = 1; i < in->nlat; i++)
        if (!(f->lat[i] < f->lat[i - 1]))
            return TS_FAIL(err, errcap,
                           "%s: variable latitude must decrease (90 -> -90, as ERA5 and the forecast writer store it)",
                           f->path);
    if (in->nlev) {
        if (read_coord(f, "pressure_level", d->lev, f->levels, err, errcap)) return -1;
        int id;
        char units[64];
        nc_inq_varid(f->ncid, "pressure_level", &id);
        get_text_att(f->ncid, id, "units", units, sizeof units);
        if (*units && strcmp(units, "hPa") != 0 && strcmp(units, "millibars") != 0 && strcmp(units, "mbar") != 0)
            return TS_FAIL(err, errcap, "%s: variable pressure_level: units '%s', expected 'hPa'", f->path, units);
    }
    return 0;
}

/* A file from the forecast writer counts its complete leads; one that does
 * not carry the attribute was written some other way and is taken whole. */
static int check_complete(ts_forecast_file *f, char *err, size_t errcap) {
    long long done;
    if (nc_get_att_longlong(f->ncid, NC_GLOBAL, "tessera_complete_leads", &done) != NC_NOERR) return 0;
    if (done < (long long)f->info.nsteps)
        return TS_FAIL(err, errcap,
                       "%s: only %lld of %zu leads are complete (an interrupted forecast: rerun it to finish)", f->path,
                       done, f->info.nsteps);
    return 0;
}

/* ---- data variables ------------------------------------------------------------------------ */

/* 1 when `var` is a data variable of the layout, 0 when it is something
 * else (a coordinate), -1 with err set when it is on the ensemble dims but
 * not in the layout's shape or type. */
static int classify_var(ts_forecast_file *f, const layout_dims *d, int id, int *on_levels, char *err, size_t errcap) {
    char name[NC_MAX_NAME + 1];
    int nd, dims[NC_MAX_VAR_DIMS];
    nc_type type;
    TS_NC_CHECK(nc_inq_var(f->ncid, id, name, &type, &nd, dims, NULL), err, errcap, "%s: %s", f->path,
                "inquiring a variable");
    if (nd < 5 || dims[0] != d->number || dims[1] != d->time || dims[2] != d->step) return 0;
    int surface = nd == 5 && dims[3] == d->lat && dims[4] == d->lon;
    int levels = nd == 6 && d->lev >= 0 && dims[3] == d->lev && dims[4] == d->lat && dims[5] == d->lon;
    if (!surface && !levels)
        return TS_FAIL(err, errcap,
                       "%s: variable %s: dims must be (number, time, step, [pressure_level,] latitude, longitude)",
                       f->path, name);
    if (type != NC_FLOAT && type != NC_DOUBLE)
        return TS_FAIL(err, errcap, "%s: variable %s: type must be float or double", f->path, name);
    size_t len;
    if (nc_inq_attlen(f->ncid, id, "scale_factor", &len) == NC_NOERR ||
        nc_inq_attlen(f->ncid, id, "add_offset", &len) == NC_NOERR)
        return TS_FAIL(err, errcap,
                       "%s: variable %s: packed values (scale_factor/add_offset) are not read; store float32", f->path,
                       name);
    *on_levels = levels;
    return 1;
}

static int find_vars(ts_forecast_file *f, const layout_dims *d, char *err, size_t errcap) {
    int nvars;
    TS_NC_CHECK(nc_inq_nvars(f->ncid, &nvars), err, errcap, "%s: %s", f->path, "counting variables");
    f->vars = ts_calloc((size_t)nvars + 1, sizeof *f->vars);
    f->varid = ts_calloc((size_t)nvars + 1, sizeof *f->varid);
    size_t n = 0;
    for (int id = 0; id < nvars; id++) {
        int on_levels = 0, kind = classify_var(f, d, id, &on_levels, err, errcap);
        if (kind < 0) return -1;
        if (!kind) continue;
        TS_NC_CHECK(nc_inq_varname(f->ncid, id, f->vars[n].name), err, errcap, "%s: %s", f->path, "naming a variable");
        f->vars[n].on_levels = on_levels;
        f->varid[n++] = id;
    }
    if (n == 0)
        return TS_FAIL(err, errcap,
                       "%s: no data variable on (number, time, step, [pressure_level,] latitude, longitude)", f->path);
    f->info.nvars = n;
    return 0;
}

/* ---- open, read, close ------------------------------------------------------------------------ */

static void alloc_coords(ts_forecast_file *f) {
    ts_forecast_info *in = &f->info;
    f->init_times = ts_calloc(in->ninits, sizeof *f->init_times);
    f->step_hours = ts_calloc(in->nsteps, sizeof *f->step_hours);
    f->levels = in->nlev ? ts_calloc(in->nlev, sizeof *f->levels) : NULL;
    f->lat = ts_calloc(in->nlat, sizeof *f->lat);
    f->lon = ts_calloc(in->nlon, sizeof *f->lon);
}

static void publish(ts_forecast_file *f) {
    ts_forecast_info *in = &f->info;
    in->path = f->path;
    in->init_times = f->init_times, in->step_hours = f->step_hours, in->levels = f->levels;
    in->lat = f->lat, in->lon = f->lon, in->vars = f->vars;
}

static int open_error(const char *path, int rc, char *err, size_t errcap) {
    char part[4096];
    struct stat st;
    snprintf(part, sizeof part, "%s.part", path);
    if (rc == ENOENT && stat(part, &st) == 0)
        return TS_FAIL(err, errcap,
                       "%s: no such file, but %s exists: the forecast has not finished (rerun it to complete it)", path,
                       part);
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return TS_FAIL(err, errcap, "%s: a folder, not a forecast file", path);
    if (rc == NC_EHDFERR || rc == NC_ENOTNC)
        return TS_FAIL(err, errcap, "%s: cannot open the forecast (not a NetCDF file, or cut short): %s", path,
                       nc_strerror(rc));
    return TS_FAIL(err, errcap, "%s: cannot open the forecast: %s", path, nc_strerror(rc));
}

/* ---- a set of per-member files (forecast_members.h) ----------------------------------------- */

typedef struct {
    int64_t init;
    int member;
} member_key;

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The scalar forecast_reference_time (s since 1970) and realization of one member file. */
static int member_key_of(int ncid, const char *file, member_key *key, char *err, size_t errcap) {
    int id;
    double ref;
    char units[128];
    if (nc_inq_varid(ncid, "forecast_reference_time", &id) != NC_NOERR)
        return TS_FAIL(err, errcap, "%s: no variable forecast_reference_time: not a tessera member file", file);
    get_text_att(ncid, id, "units", units, sizeof units);
    if (!is_unix_seconds(units))
        return TS_FAIL(err, errcap, "%s: forecast_reference_time: units '%s', expected seconds since 1970-01-01", file,
                       units);
    TS_NC_CHECK(nc_get_var_double(ncid, id, &ref), err, errcap, "%s: forecast_reference_time", file);
    if (nc_inq_varid(ncid, "realization", &id) != NC_NOERR)
        return TS_FAIL(err, errcap, "%s: no variable realization: not a tessera member file", file);
    TS_NC_CHECK(nc_get_var_int(ncid, id, &key->member), err, errcap, "%s: realization", file);
    if (!(fabs(ref) < 9.0e15) || ref != floor(ref) || key->member < 0)
        return TS_FAIL(err, errcap, "%s: forecast_reference_time %g or realization %d is not valid", file, ref,
                       key->member);
    key->init = (int64_t)ref;
    return 0;
}

/* Dims, coordinates and variables of the first member file: what every
 * other file of the set must repeat. */
static int member_layout(ts_forecast_file *f, const char *file, char *err, size_t errcap) {
    ts_forecast_info *in = &f->info;
    int t, lat, lon, lev = -1;
    if (dim_len(f, "time", &t, &in->nsteps, err, errcap) || dim_len(f, "latitude", &lat, &in->nlat, err, errcap) ||
        dim_len(f, "longitude", &lon, &in->nlon, err, errcap))
        return -1;
    in->nlev = 0;
    if (nc_inq_dimid(f->ncid, "pressure_level", &lev) == NC_NOERR) {
        if (dim_len(f, "pressure_level", &lev, &in->nlev, err, errcap)) return -1;
    } else {
        lev = -1;
    }
    f->step_hours = ts_calloc(in->nsteps, sizeof *f->step_hours);
    f->levels = in->nlev ? ts_calloc(in->nlev, sizeof *f->levels) : NULL;
    f->lat = ts_calloc(in->nlat, sizeof *f->lat);
    f->lon = ts_calloc(in->nlon, sizeof *f->lon);
    char units[64];
    int id;
    if (nc_inq_varid(f->ncid, "forecast_period", &id) != NC_NOERR)
        return TS_FAIL(err, errcap, "%s: no variable forecast_period: not a tessera member file", file);
    get_text_att(f->ncid, id, "units", units, sizeof units);
    if (strcmp(units, "hours") != 0)
        return TS_FAIL(err, errcap, "%s: variable forecast_period: units '%s', expected 'hours'", file, units);
    if (read_coord(f, "forecast_period", t, f->step_hours, err, errcap)) return -1;
    layout_dims d = {.number = -1, .time = -1, .step = t, .lev = lev, .lat = lat, .lon = lon};
    if (read_grid(f, &d, err, errcap)) return -1;
    int nvars;
    TS_NC_CHECK(nc_inq_nvars(f->ncid, &nvars), err, errcap, "%s: %s", file, "counting variables");
    f->vars = ts_calloc((size_t)nvars + 1, sizeof *f->vars);
    f->varid = ts_calloc((size_t)nvars + 1, sizeof *f->varid);
    size_t n = 0;
    for (id = 0; id < nvars; id++) {
        int nd, dims[NC_MAX_VAR_DIMS];
        nc_type type;
        TS_NC_CHECK(nc_inq_var(f->ncid, id, f->vars[n].name, &type, &nd, dims, NULL), err, errcap, "%s", file);
        int surface = nd == 3 && dims[0] == t && dims[1] == lat && dims[2] == lon;
        int levels = nd == 4 && lev >= 0 && dims[0] == t && dims[1] == lev && dims[2] == lat && dims[3] == lon;
        if (!(surface || levels) || (type != NC_FLOAT && type != NC_DOUBLE)) continue;
        f->vars[n].on_levels = levels;
        f->varid[n++] = id;
    }
    if (n == 0)
        return TS_FAIL(err, errcap, "%s: no data variable on (time, [pressure_level,] latitude, longitude)", file);
    in->nvars = n;
    return 0;
}

/* The same dims as the first file, and every variable of it. */
static int same_layout(const ts_forecast_file *f, int ncid, const char *file, char *err, size_t errcap) {
    const ts_forecast_info *in = &f->info;
    const char *names[] = {"time", "pressure_level", "latitude", "longitude"};
    const size_t want[] = {in->nsteps, in->nlev, in->nlat, in->nlon};
    for (int i = 0; i < 4; i++) {
        int id;
        size_t len = 0;
        if (nc_inq_dimid(ncid, names[i], &id) == NC_NOERR) nc_inq_dimlen(ncid, id, &len);
        if (len != want[i])
            return TS_FAIL(err, errcap, "%s: dimension %s has %zu, the set's first file %zu", file, names[i], len,
                           want[i]);
    }
    for (size_t v = 0; v < in->nvars; v++) {
        int id;
        if (nc_inq_varid(ncid, f->vars[v].name, &id) != NC_NOERR)
            return TS_FAIL(err, errcap, "%s: no variable %s, which the set's first file has", file, f->vars[v].name);
    }
    return 0;
}

/* Every file the glob matched: initial times and members from their
 * contents, each (init, member) exactly once, members 0..M-1. */
static int open_member_set(ts_forecast_file *f, const glob_t *g, char *err, size_t errcap) {
    ts_forecast_info *in = &f->info;
    size_t nfiles = g->gl_pathc;
    member_key *keys = ts_calloc(nfiles, sizeof *keys);
    int64_t *inits = ts_calloc(nfiles, sizeof *inits);
    int bad = 0, maxm = -1;
    for (size_t i = 0; i < nfiles && !bad; i++) {
        const char *file = g->gl_pathv[i];
        int ncid, rc = nc_open(file, NC_NOWRITE, &ncid);
        if (rc != NC_NOERR) {
            bad = open_error(file, rc, err, errcap);
            break;
        }
        if (i == 0) { /* errors of the layout name this file */
            char *path = f->path;
            f->ncid = ncid, f->path = (char *)file;
            bad = member_layout(f, file, err, errcap);
            f->ncid = -1, f->path = path;
        }
        if (!bad) bad = member_key_of(ncid, file, &keys[i], err, errcap) || same_layout(f, ncid, file, err, errcap);
        nc_close(ncid);
        inits[i] = keys[i].init;
        if (keys[i].member > maxm) maxm = keys[i].member;
    }
    if (!bad) {
        qsort(inits, nfiles, sizeof *inits, cmp_i64);
        size_t ni = 0;
        for (size_t i = 0; i < nfiles; i++)
            if (i == 0 || inits[i] != inits[i - 1]) inits[ni++] = inits[i];
        in->ninits = ni;
        in->nmembers = (size_t)maxm + 1;
        if (ni * in->nmembers != nfiles)
            bad = TS_FAIL(err, errcap,
                          "%s: %zu member files for %zu initial times x %zu members: the set is incomplete (or holds "
                          "two forecasts)",
                          g->gl_pathv[0], nfiles, ni, in->nmembers);
    }
    if (!bad) {
        f->init_times = ts_calloc(in->ninits ? in->ninits : 1, sizeof *f->init_times);
        memcpy(f->init_times, inits, in->ninits * sizeof *inits);
        f->member_path = ts_calloc(nfiles, sizeof *f->member_path);
        for (size_t i = 0; i < nfiles && !bad; i++) {
            const int64_t *at = bsearch(&keys[i].init, f->init_times, in->ninits, sizeof *f->init_times, cmp_i64);
            size_t k = (size_t)(at - f->init_times) * in->nmembers + (size_t)keys[i].member;
            if (f->member_path[k])
                bad = TS_FAIL(err, errcap, "%s and %s hold the same initial time and member", f->member_path[k],
                              g->gl_pathv[i]);
            else
                f->member_path[k] = strcpy(ts_malloc(strlen(g->gl_pathv[i]) + 1), g->gl_pathv[i]);
        }
    }
    f->open_k = (size_t)-1;
    free(keys), free(inits);
    return bad ? -1 : 0;
}

static int read_member_field(ts_forecast_file *f, size_t var, size_t member, size_t init, size_t step, size_t level,
                             float *field, char *err, size_t errcap) {
    const ts_forecast_info *in = &f->info;
    size_t k = init * in->nmembers + member;
    const char *file = f->member_path[k];
    if (f->open_k != k) {
        if (f->ncid >= 0) nc_close(f->ncid);
        f->ncid = -1, f->open_k = (size_t)-1;
        TS_NC_CHECK(nc_open(file, NC_NOWRITE, &f->ncid), err, errcap, "%s", file);
        f->open_k = k;
    }
    int id;
    TS_NC_CHECK(nc_inq_varid(f->ncid, f->vars[var].name, &id), err, errcap, "%s: %s", file, f->vars[var].name);
    size_t start[4] = {step, 0, 0, 0}, count[4] = {1, 1, 1, 1};
    int d = 1;
    if (f->vars[var].on_levels) start[d++] = level;
    count[d] = in->nlat, count[d + 1] = in->nlon;
    int rc = nc_get_vara_float(f->ncid, id, start, count, field);
    if (rc != NC_NOERR)
        return TS_FAIL(err, errcap, "%s: variable %s: reading step %zu: %s", file, f->vars[var].name, step,
                       nc_strerror(rc));
    return 0;
}

ts_forecast_file *ts_forecast_file_open(const char *path, char *err, size_t errcap) {
    ts_forecast_file *f = ts_calloc(1, sizeof *f);
    f->path = ts_malloc(strlen(path) + 1);
    memcpy(f->path, path, strlen(path) + 1);
    int rc = nc_open(path, NC_NOWRITE, &f->ncid);
    if (rc == ENOENT) {
        char pattern[4096 + 64], part[4096 + 8];
        struct stat st;
        snprintf(part, sizeof part, "%s.part", path);
        ts_forecast_member_glob(path, pattern, sizeof pattern);
        glob_t g;
        if (stat(part, &st) != 0) {
            int found = glob(pattern, 0, NULL, &g) == 0;
            int bad = found ? (f->ncid = -1, open_member_set(f, &g, err, errcap)) : 0;
            globfree(&g);
            if (bad) goto fail;
            if (found) {
                publish(f);
                return f;
            }
        }
    }
    if (rc != NC_NOERR) {
        open_error(path, rc, err, errcap);
        f->ncid = -1;
        ts_forecast_file_close(f);
        return NULL;
    }
    layout_dims d;
    if (find_dims(f, &d, err, errcap)) goto fail;
    alloc_coords(f);
    if (read_times(f, &d, err, errcap) || check_valid_time(f, err, errcap) || read_grid(f, &d, err, errcap) ||
        check_complete(f, err, errcap) || find_vars(f, &d, err, errcap))
        goto fail;
    publish(f);
    return f;
fail:
    ts_forecast_file_close(f);
    return NULL;
}

const ts_forecast_info *ts_forecast_file_info(const ts_forecast_file *f) { return &f->info; }

int ts_forecast_file_find_var(const ts_forecast_file *f, const char *name) {
    for (size_t v = 0; v < f->info.nvars; v++)
        if (strcmp(f->vars[v].name, name) == 0) return (int)v;
    return -1;
}

int ts_forecast_file_find_level(const ts_forecast_file *f, double hpa) {
    for (size_t k = 0; k < f->info.nlev; k++)
        if (fabs(f->levels[k] - hpa) < 1e-6) return (int)k;
    return -1;
}

int ts_forecast_file_read(ts_forecast_file *f, size_t var, size_t member, size_t init, size_t step, size_t level,
                          float *field, char *err, size_t errcap) {
    const ts_forecast_info *in = &f->info;
    if (var >= in->nvars || member >= in->nmembers || init >= in->ninits || step >= in->nsteps ||
        (f->vars[var].on_levels ? level >= in->nlev : level != 0))
        return TS_FAIL(err, errcap,
                       "%s: no field (variable %zu, member %zu, init %zu, step %zu, level %zu) in this file", f->path,
                       var, member, init, step, level);
    if (f->member_path) return read_member_field(f, var, member, init, step, level, field, err, errcap);
    size_t start[6] = {member, init, step, 0, 0, 0}, count[6] = {1, 1, 1, 1, 1, 1};
    int k = 3;
    if (f->vars[var].on_levels) start[k++] = level;
    count[k] = in->nlat, count[k + 1] = in->nlon;
    int rc = nc_get_vara_float(f->ncid, f->varid[var], start, count, field);
    if (rc != NC_NOERR)
        return TS_FAIL(err, errcap, "%s: variable %s: reading member %zu, init %zu, step %zu: %s", f->path,
                       f->vars[var].name, member, init, step, nc_strerror(rc));
    return 0;
}

const char *ts_forecast_file_attr_path(const ts_forecast_file *f) {
    return f->member_path ? f->member_path[0] : f->path;
}

void ts_forecast_file_close(ts_forecast_file *f) {
    if (!f) return;
    if (f->ncid >= 0) nc_close(f->ncid);
    if (f->member_path)
        for (size_t k = 0; k < f->info.ninits * f->info.nmembers; k++) free(f->member_path[k]);
    free(f->member_path);
    free(f->path), free(f->varid), free(f->init_times), free(f->step_hours), free(f->levels);
    free(f->lat), free(f->lon), free(f->vars);
    free(f);
}

void ts_forecast_member_path(const char *path, int64_t init, size_t member, size_t nmembers, char *buf, size_t cap) {
    size_t n = strlen(path);
    if (n >= 3 && strcmp(path + n - 3, ".nc") == 0) n -= 3;
    int digits = 2;
    for (size_t m = nmembers > 0 ? nmembers - 1 : 0; m >= 100; m /= 10) digits++;
    char when[32];
    ts_format_datetime(init, when, sizeof when); /* YYYY-MM-DDTHH:MM:SS */
    char number[32];
    snprintf(number, sizeof number, "%0*zu", digits < 20 ? digits : 20, member);
    snprintf(buf, cap, "%.*s-%.4s%.2s%.2sT%.2s-m%s.nc", (int)n, path, when, when + 5, when + 8, when + 11, number);
}

void ts_forecast_member_glob(const char *path, char *buf, size_t cap) {
    size_t n = strlen(path);
    if (n >= 3 && strcmp(path + n - 3, ".nc") == 0) n -= 3;
    snprintf(buf, cap, "%.*s-[0-9]*T[0-9]*-m[0-9]*.nc", (int)n, path);
}
