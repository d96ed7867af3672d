/* The CF-1.8 ensemble forecast writer: layout, lead-by-lead writing,
 * resume after a kill and finalize-by-rename. See forecast_write.h and
 * docs/forecast-format.md. */
#include "io/forecast_write.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netcdf.h>
#ifdef TESSERA_HAVE_PARALLEL_NETCDF
#include <netcdf_par.h>
#endif
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "io/io_error.h"

#ifndef TESSERA_VERSION
#define TESSERA_VERSION "unknown"
#endif

/* Bumped when the layout changes, so an old ".part" is never resumed. */
#define FORMAT_VERSION 1
#define FORMAT_ATT "tessera_forecast_format"
#define COMPLETE_ATT "tessera_complete_leads"
#define TIME_UNITS "seconds since 1970-01-01 00:00:00"
#define MAX_DIMS 6

struct ts_forecast_writer {
    char *path;             /* final name */
    char *part;             /* path + ".part": the name while incomplete */
    int ncid;               /* -1 once closed */
    size_t nmem, ninit, nstep, nlev, nlat, nlon, nvars;
    int *varid;             /* (nvars) */
    int *on_levels;         /* (nvars) */
    char (*names)[NC_MAX_NAME + 1]; /* (nvars) for messages */
    unsigned char *written; /* (nvars, nmem, ninit): fields of the current lead written */
    size_t leads_done;
    int complete;           /* renamed to path; nothing more to write */
    int par, rank;          /* opened collectively (ts_forecast_open_par), this rank's place in comm */
#ifdef TESSERA_HAVE_PARALLEL_NETCDF
    MPI_Comm comm;
#endif
};

/* Whether this rank renames and syncs the file to disk: the only one, or
 * the first of comm. */
static int is_root(const ts_forecast_writer *w) { return !w->par || w->rank == 0; }

/* The root's verdict (and error text) on every rank of a collective
 * writer; the rank's own otherwise. */
static int root_verdict(const ts_forecast_writer *w, int bad, char *err, size_t errcap) {
#ifdef TESSERA_HAVE_PARALLEL_NETCDF
    if (w->par) {
        MPI_Bcast(&bad, 1, MPI_INT, 0, w->comm);
        if (bad && errcap) MPI_Bcast(err, (int)(errcap < INT_MAX ? errcap : INT_MAX), MPI_CHAR, 0, w->comm);
    }
#else
    (void)w, (void)err, (void)errcap;
#endif
    return bad ? -1 : 0;
}

/* Data variables are read and written collectively in a collective writer
 * (needed for compressed variables). */
static int set_collective(ts_forecast_writer *w, const char *file, char *err, size_t errcap) {
#ifdef TESSERA_HAVE_PARALLEL_NETCDF
    for (size_t v = 0; w->par && v < w->nvars; v++)
        TS_NC_CHECK(nc_var_par_access(w->ncid, w->varid[v], NC_COLLECTIVE), err, errcap, "%s", file);
#else
    (void)w, (void)file, (void)err, (void)errcap;
#endif
    return 0;
}

/* nc_create or nc_open, on one rank or collectively on the writer's comm. */
static int nc_create_for(const ts_forecast_writer *w, const char *file, int *ncid) {
#ifdef TESSERA_HAVE_PARALLEL_NETCDF
    if (w->par) return nc_create_par(file, NC_NETCDF4 | NC_CLOBBER, w->comm, MPI_INFO_NULL, ncid);
#endif
    (void)w;
    return nc_create(file, NC_NETCDF4 | NC_CLOBBER, ncid);
}

static int nc_open_for(const ts_forecast_writer *w, const char *file, int *ncid) {
#ifdef TESSERA_HAVE_PARALLEL_NETCDF
    if (w->par) return nc_open_par(file, NC_WRITE, w->comm, MPI_INFO_NULL, ncid);
#endif
    (void)w;
    return nc_open(file, NC_WRITE, ncid);
}

/* ---- the spec ----------------------------------------------------------------------- */

static int strictly_monotonic(const double *x, size_t n, int sign) {
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) return 0;
        if (i > 0 && sign * (x[i] - x[i - 1]) <= 0) return 0;
    }
    return 1;
}

static int validate_sizes(const ts_forecast_spec *s, char *err, size_t errcap) {
    if (!s->path || !*s->path) return TS_FAIL(err, errcap, "forecast file: no path given");
    if (!s->nmembers || !s->ninits || !s->nsteps || !s->nlat || !s->nlon || !s->nvars)
        return TS_FAIL(err, errcap, "%s: members, inits, steps, latitudes, longitudes and variables must all be > 0",
                       s->path);
    if (s->nmembers > INT_MAX || s->nsteps > INT_MAX)
        return TS_FAIL(err, errcap, "%s: %zu members or %zu leads do not fit int32", s->path, s->nmembers, s->nsteps);
    if (!s->init_times || !s->step_hours || !s->lat || !s->lon || !s->vars || !s->history ||
        (s->nlev && !s->levels))
        return TS_FAIL(err, errcap, "%s: a coordinate array, the variables or the history text is missing", s->path);
    return 0;
}

static int validate_coords(const ts_forecast_spec *s, char *err, size_t errcap) {
    for (size_t i = 1; i < s->ninits; i++)
        if (s->init_times[i] <= s->init_times[i - 1])
            return TS_FAIL(err, errcap, "%s: initial times must increase", s->path);
    if (!strictly_monotonic(s->step_hours, s->nsteps, +1))
        return TS_FAIL(err, errcap, "%s: lead hours must be finite and increase", s->path);
    if (!strictly_monotonic(s->lat, s->nlat, -1))
        return TS_FAIL(err, errcap, "%s: latitudes must be finite and decrease (90 -> -90, as ERA5 stores them)",
                       s->path);
    if (!strictly_monotonic(s->lon, s->nlon, +1))
        return TS_FAIL(err, errcap, "%s: longitudes must be finite and increase", s->path);
    if (s->nlev && !strictly_monotonic(s->levels, s->nlev, +1) &&
        !strictly_monotonic(s->levels, s->nlev, -1))
        return TS_FAIL(err, errcap, "%s: pressure levels must be finite and monotonic", s->path);
    return 0;
}

static int is_coordinate_name(const char *name) {
    static const char *const coords[] = {"number",   "time",      "step",      "pressure_level",
                                         "latitude", "longitude", "valid_time"};
    for (size_t i = 0; i < sizeof coords / sizeof coords[0]; i++)
        if (!strcmp(name, coords[i])) return 1;
    return 0;
}

static int validate_vars(const ts_forecast_spec *s, char *err, size_t errcap) {
    for (size_t v = 0; v < s->nvars; v++) {
        const ts_forecast_var *var = &s->vars[v];
        if (!var->name || !*var->name || strlen(var->name) > NC_MAX_NAME || !var->units || !var->long_name)
            return TS_FAIL(err, errcap, "%s: variable %zu needs a name (at most %d characters), units and long_name",
                           s->path, v, NC_MAX_NAME);
        if (is_coordinate_name(var->name))
            return TS_FAIL(err, errcap, "%s: variable name '%s' is taken by a coordinate", s->path, var->name);
        if (var->on_levels && !s->nlev)
            return TS_FAIL(err, errcap, "%s: variable '%s' is on levels but no pressure levels are given", s->path,
                           var->name);
        for (size_t u = 0; u < v; u++)
            if (!strcmp(s->vars[u].name, var->name))
                return TS_FAIL(err, errcap, "%s: variable '%s' is listed twice", s->path, var->name);
    }
    return 0;
}

/* ---- the writer object ---------------------------------------------------------------- */

static char *dup_cat(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    char *s = ts_malloc(na + nb + 1);
    memcpy(s, a, na);
    memcpy(s + na, b, nb + 1);
    return s;
}

static ts_forecast_writer *writer_new(const ts_forecast_spec *s) {
    ts_forecast_writer *w = ts_calloc(1, sizeof *w);
    w->path = dup_cat(s->path, "");
    w->part = dup_cat(s->path, ".part");
    w->ncid = -1;
    w->nmem = s->nmembers;
    w->ninit = s->ninits;
    w->nstep = s->nsteps;
    w->nlev = s->nlev;
    w->nlat = s->nlat;
    w->nlon = s->nlon;
    w->nvars = s->nvars;
    w->varid = ts_calloc(s->nvars, sizeof *w->varid);
    w->on_levels = ts_calloc(s->nvars, sizeof *w->on_levels);
    w->names = ts_calloc(s->nvars, sizeof *w->names);
    for (size_t v = 0; v < s->nvars; v++) {
        w->on_levels[v] = s->vars[v].on_levels != 0;
        snprintf(w->names[v], sizeof w->names[v], "%s", s->vars[v].name);
    }
    w->written = ts_calloc(s->nvars * s->nmembers * s->ninits, 1);
    return w;
}

static void writer_free(ts_forecast_writer *w) {
    free(w->path);
    free(w->part);
    free(w->varid);
    free(w->on_levels);
    free(w->names);
    free(w->written);
    free(w);
}

/* The dims of each kind of variable, in file order. */
typedef struct {
    int number, time, step, level, lat, lon;
} dim_ids;

/* Dims of a data variable: (number, time, step, [pressure_level,] latitude, longitude). */
static int data_dims(const dim_ids *d, int on_levels, int *out) {
    int n = 0;
    out[n++] = d->number;
    out[n++] = d->time;
    out[n++] = d->step;
    if (on_levels) out[n++] = d->level;
    out[n++] = d->lat;
    out[n++] = d->lon;
    return n;
}

/* ---- creating the file ------------------------------------------------------------------ */

typedef struct {
    const char *key, *value;
} text_att;

static int put_text_atts(const char *file, int ncid, int varid, const text_att *atts, size_t n, char *err,
                         size_t errcap) {
    for (size_t i = 0; i < n; i++)
        if (atts[i].value)
            TS_NC_CHECK(nc_put_att_text(ncid, varid, atts[i].key, strlen(atts[i].value), atts[i].value), err, errcap,
                        "%s", file);
    return 0;
}

static int def_dims(const char *file, int ncid, const ts_forecast_spec *s, dim_ids *d, char *err, size_t errcap) {
    TS_NC_CHECK(nc_def_dim(ncid, "number", s->nmembers, &d->number), err, errcap, "%s", file);
    TS_NC_CHECK(nc_def_dim(ncid, "time", s->ninits, &d->time), err, errcap, "%s", file);
    TS_NC_CHECK(nc_def_dim(ncid, "step", s->nsteps, &d->step), err, errcap, "%s", file);
    d->level = -1;
    if (s->nlev) TS_NC_CHECK(nc_def_dim(ncid, "pressure_level", s->nlev, &d->level), err, errcap, "%s", file);
    TS_NC_CHECK(nc_def_dim(ncid, "latitude", s->nlat, &d->lat), err, errcap, "%s", file);
    TS_NC_CHECK(nc_def_dim(ncid, "longitude", s->nlon, &d->lon), err, errcap, "%s", file);
    return 0;
}

/* One coordinate variable with its text attributes. */
static int def_coord(const char *file, int ncid, const char *name, nc_type type, int ndims, const int *dims,
                     const text_att *atts, size_t natts, char *err, size_t errcap) {
    int varid;
    TS_NC_CHECK(nc_def_var(ncid, name, type, ndims, dims, &varid), err, errcap, "%s", file);
    return put_text_atts(file, ncid, varid, atts, natts, err, errcap);
}

/* Attribute texts as cfgrib writes them for ECMWF ensemble forecasts. */
static int def_coords(const char *file, int ncid, const ts_forecast_spec *s, const dim_ids *d, char *err,
                      size_t errcap) {
    const text_att number[] = {{"long_name", "ensemble member numerical id"}, {"units", "1"},
                               {"standard_name", "realization"}};
    const text_att time[] = {{"long_name", "initial time of forecast"}, {"standard_name", "forecast_reference_time"},
                             {"units", TIME_UNITS}, {"calendar", "proleptic_gregorian"}};
    const text_att step[] = {{"long_name", "time since forecast_reference_time"},
                             {"standard_name", "forecast_period"}, {"units", "hours"}};
    const char *lev_dir = (s->nlev > 1 && s->levels[1] < s->levels[0]) ? "decreasing" : "increasing";
    const text_att level[] = {{"long_name", "pressure"}, {"units", "hPa"}, {"positive", "down"},
                              {"stored_direction", lev_dir}, {"standard_name", "air_pressure"}};
    const text_att lat[] = {{"units", "degrees_north"}, {"standard_name", "latitude"}, {"long_name", "latitude"},
                            {"stored_direction", "decreasing"}};
    const text_att lon[] = {{"units", "degrees_east"}, {"standard_name", "longitude"}, {"long_name", "longitude"}};
    const text_att valid[] = {{"long_name", "time"}, {"standard_name", "time"}, {"units", TIME_UNITS},
                              {"calendar", "proleptic_gregorian"}};
    const int time_step[2] = {d->time, d->step};
#define N(a) (sizeof a / sizeof a[0])
    if (def_coord(file, ncid, "number", NC_INT, 1, &d->number, number, N(number), err, errcap) ||
        def_coord(file, ncid, "time", NC_INT64, 1, &d->time, time, N(time), err, errcap) ||
        def_coord(file, ncid, "step", NC_DOUBLE, 1, &d->step, step, N(step), err, errcap) ||
        (s->nlev && def_coord(file, ncid, "pressure_level", NC_DOUBLE, 1, &d->level, level, N(level), err, errcap)) ||
        def_coord(file, ncid, "latitude", NC_DOUBLE, 1, &d->lat, lat, N(lat), err, errcap) ||
        def_coord(file, ncid, "longitude", NC_DOUBLE, 1, &d->lon, lon, N(lon), err, errcap) ||
        def_coord(file, ncid, "valid_time", NC_INT64, 2, time_step, valid, N(valid), err, errcap))
        return -1;
#undef N
    return 0;
}

/* A data variable: float32, NaN fill, zlib 1 + shuffle, one chunk per
 * (member, init, lead, level) field. One level per chunk rather than all
 * levels: a reader of Z500 decompresses only that level, and a 0.25 degree
 * chunk stays at 4 MB (the netCDF chunk cache holds it) where all 13 levels
 * would be 54 MB. */
static int def_data_var(const char *file, int ncid, const ts_forecast_var *v, const dim_ids *d,
                        const ts_forecast_spec *s, int par, int *varid, char *err, size_t errcap) {
    int dims[MAX_DIMS];
    size_t chunk[MAX_DIMS];
    int nd = data_dims(d, v->on_levels, dims);
    for (int i = 0; i < nd; i++) chunk[i] = 1;
    chunk[nd - 2] = s->nlat;
    chunk[nd - 1] = s->nlon;
    const float fill = NAN;
    TS_NC_CHECK(nc_def_var(ncid, v->name, NC_FLOAT, nd, dims, varid), err, errcap, "%s", file);
    TS_NC_CHECK(nc_def_var_chunking(ncid, *varid, NC_CHUNKED, chunk), err, errcap, "%s", file);
    /* A collective writer stores the data uncompressed: with HDF5 1.10's
     * parallel compression, ranks of two DP replicas writing blocks of
     * compressed fields left chunks the library could not read back
     * (tests/cmd/test_forecast.sh, DP x WP and DP x SP), with or without
     * chunks shared between ranks. `nccopy -d 1 -s` compresses afterwards. */
    if (!par) TS_NC_CHECK(nc_def_var_deflate(ncid, *varid, 1, 1, 1), err, errcap, "%s", file);
    TS_NC_CHECK(nc_def_var_fill(ncid, *varid, 0, &fill), err, errcap, "%s", file);
    /* A serial writer's writes and reads cover whole chunks, and a collective
     * writer's blocks of uncompressed chunks need no assembling, so a chunk
     * cache would only hold memory and delay the data reaching the file. */
    TS_NC_CHECK(nc_set_var_chunk_cache(ncid, *varid, 0, 0, 0.75f), err, errcap, "%s", file);
    const text_att atts[] = {{"units", v->units}, {"long_name", v->long_name},
                             {"standard_name", v->standard_name}, {"coordinates", "valid_time"}};
    if (put_text_atts(file, ncid, *varid, atts, sizeof atts / sizeof atts[0], err, errcap)) return -1;
    if (v->grib_param_id) {
        const long long id = v->grib_param_id;
        TS_NC_CHECK(nc_put_att_longlong(ncid, *varid, "GRIB_paramId", NC_INT64, 1, &id), err, errcap, "%s", file);
    }
    return 0;
}

static int def_globals(const char *file, int ncid, const char *history, char *err, size_t errcap) {
    const text_att atts[] = {
        {"Conventions", "CF-1.8"},
        {"title", "tessera ensemble forecast"},
        {"source", "tessera " TESSERA_VERSION},
        {"history", history},
        {"comment", "Machine-learned ensemble forecast written by tessera; not an ECMWF product. The layout "
                    "follows the one cfgrib gives ECMWF ensemble forecasts so that the same tools read it. "
                    "tessera_complete_leads counts the leads fully written; a file named *.part is incomplete."},
    };
    if (put_text_atts(file, ncid, NC_GLOBAL, atts, sizeof atts / sizeof atts[0], err, errcap)) return -1;
    const int version = FORMAT_VERSION, none = 0;
    TS_NC_CHECK(nc_put_att_int(ncid, NC_GLOBAL, FORMAT_ATT, NC_INT, 1, &version), err, errcap, "%s", file);
    TS_NC_CHECK(nc_put_att_int(ncid, NC_GLOBAL, COMPLETE_ATT, NC_INT, 1, &none), err, errcap, "%s", file);
    return 0;
}

/* valid_time(time, step) = init + lead, in whole seconds. */
static long long *valid_times(const ts_forecast_spec *s) {
    long long *vt = ts_malloc(s->ninits * s->nsteps * sizeof *vt); /* (ninits, nsteps) */
    for (size_t n = 0; n < s->ninits; n++)
        for (size_t l = 0; l < s->nsteps; l++)
            vt[n * s->nsteps + l] = (long long)s->init_times[n] + llround(s->step_hours[l] * 3600.0);
    return vt;
}

static int put_coord_double(const char *file, int ncid, const char *name, const double *x, char *err,
                            size_t errcap) {
    int varid;
    TS_NC_CHECK(nc_inq_varid(ncid, name, &varid), err, errcap, "%s", file);
    TS_NC_CHECK(nc_put_var_double(ncid, varid, x), err, errcap, "%s", file);
    return 0;
}

static int put_coord_int(const char *file, int ncid, const char *name, const int *x, char *err, size_t errcap) {
    int varid;
    TS_NC_CHECK(nc_inq_varid(ncid, name, &varid), err, errcap, "%s", file);
    TS_NC_CHECK(nc_put_var_int(ncid, varid, x), err, errcap, "%s", file);
    return 0;
}

static int put_coord_int64(const char *file, int ncid, const char *name, const long long *x, char *err,
                           size_t errcap) {
    int varid;
    TS_NC_CHECK(nc_inq_varid(ncid, name, &varid), err, errcap, "%s", file);
    TS_NC_CHECK(nc_put_var_longlong(ncid, varid, x), err, errcap, "%s", file);
    return 0;
}

static int put_coords(const char *file, int ncid, const ts_forecast_spec *s, char *err, size_t errcap) {
    int *number = ts_malloc(s->nmembers * sizeof *number);  /* (nmembers) */
    long long *init = ts_malloc(s->ninits * sizeof *init); /* (ninits) */
    long long *vt = valid_times(s);                        /* (ninits, nsteps) */
    for (size_t m = 0; m < s->nmembers; m++) number[m] = (int)m;
    for (size_t n = 0; n < s->ninits; n++) init[n] = s->init_times[n];
    int bad = put_coord_int(file, ncid, "number", number, err, errcap) ||
              put_coord_int64(file, ncid, "time", init, err, errcap) ||
              put_coord_double(file, ncid, "step", s->step_hours, err, errcap) ||
              (s->nlev && put_coord_double(file, ncid, "pressure_level", s->levels, err, errcap)) ||
              put_coord_double(file, ncid, "latitude", s->lat, err, errcap) ||
              put_coord_double(file, ncid, "longitude", s->lon, err, errcap) ||
              put_coord_int64(file, ncid, "valid_time", vt, err, errcap);
    free(number);
    free(init);
    free(vt);
    return bad ? -1 : 0;
}

/* nc_create through HDF5 words a missing folder, a file in the way or a
 * full disk as "Permission denied"; the folder's own state, or the system's
 * error of the failed write (sys_errno, when it is one a disk gives), says
 * what is wrong. */
static int create_error(const char *f, int rc, int sys_errno, char *err, size_t errcap) {
    char dir[PATH_MAX];
    const char *slash = strrchr(f, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - f) : 1, slash ? f : ".");
    if (!dir[0]) snprintf(dir, sizeof dir, "/");
    struct stat st;
    if (stat(dir, &st) != 0) return TS_FAIL(err, errcap, "%s: cannot create: folder %s: %s", f, dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return TS_FAIL(err, errcap, "%s: cannot create: %s is not a folder", f, dir);
    if (sys_errno == ENOSPC || sys_errno == EDQUOT || sys_errno == EIO || sys_errno == EROFS || sys_errno == EFBIG)
        return TS_FAIL(err, errcap, "%s: cannot create: %s", f, strerror(sys_errno));
    return TS_FAIL(err, errcap, "%s: cannot create: %s", f, nc_strerror(rc));
}

static int define_part(ts_forecast_writer *w, const ts_forecast_spec *s, const char *f, char *err,
                       size_t errcap) {
    dim_ids d;
    errno = 0;
    int rc = nc_create_for(w, f, &w->ncid);
    if (rc != NC_NOERR) return create_error(f, rc, errno, err, errcap);
    if (def_dims(f, w->ncid, s, &d, err, errcap) || def_coords(f, w->ncid, s, &d, err, errcap)) return -1;
    for (size_t v = 0; v < s->nvars; v++)
        if (def_data_var(f, w->ncid, &s->vars[v], &d, s, w->par, &w->varid[v], err, errcap)) return -1;
    if (def_globals(f, w->ncid, s->history, err, errcap)) return -1;
    TS_NC_CHECK(nc_enddef(w->ncid), err, errcap, "%s", f);
    if (set_collective(w, f, err, errcap)) return -1;
    /* the coordinates are written independently, by the root alone */
    if (is_root(w) && put_coords(f, w->ncid, s, err, errcap)) return -1;
    TS_NC_CHECK(nc_sync(w->ncid), err, errcap, "%s", f);
    return 0;
}

/* Define everything, write the coordinates and sync under path.part.new,
 * then rename it to path.part: a kill during creation leaves only a .new
 * (overwritten by the next attempt), so a .part is always a valid file
 * with a count of complete leads. */
static int create_part(ts_forecast_writer *w, const ts_forecast_spec *s, char *err, size_t errcap) {
    char *f = dup_cat(w->part, ".new");
    int bad = define_part(w, s, f, err, errcap);
    if (!bad && is_root(w) && rename(f, w->part) != 0)
        bad = TS_FAIL(err, errcap, "%s: cannot rename to %s: %s", f, w->part, strerror(errno));
    bad = root_verdict(w, bad, err, errcap);
    if (bad) {
        /* Already failing: the first error is the one to report. */
        if (w->ncid >= 0) (void)nc_close(w->ncid);
        w->ncid = -1;
        if (is_root(w)) (void)unlink(f);
    }
    free(f);
    return bad;
}

/* ---- resuming: does the .part on disk hold this forecast? --------------------------------------- */

/* "<file>: exists but was written for a different forecast (<reason>)". */
static int mismatch_at(const ts_forecast_writer *w, char *err, size_t errcap, const char *src, int line,
                       const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int mismatch_at(const ts_forecast_writer *w, char *err, size_t errcap, const char *src, int line,
                       const char *fmt, ...) {
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    return ts_fail_at(err, errcap, src, line,
                   "%s: exists but was written for a different forecast (%s); delete it to start again, "
                   "or rerun with the configuration that wrote it",
                   w->part, reason);
}
#define MISMATCH(...) mismatch_at(w, err, errcap, __FILE__, __LINE__, __VA_ARGS__)

static int check_dim(ts_forecast_writer *w, const char *name, size_t want, int *dimid, char *err, size_t errcap) {
    size_t len;
    int rc = nc_inq_dimid(w->ncid, name, dimid);
    if (rc == NC_EBADDIM) return MISMATCH("it has no dimension '%s'", name);
    TS_NC_CHECK(rc, err, errcap, "%s", w->part);
    TS_NC_CHECK(nc_inq_dimlen(w->ncid, *dimid, &len), err, errcap, "%s", w->part);
    if (len != want) return MISMATCH("dimension '%s' has %zu entries, this forecast %zu", name, len, want);
    return 0;
}

static int check_dims(ts_forecast_writer *w, dim_ids *d, char *err, size_t errcap) {
    int ndims, expect = w->nlev ? 6 : 5;
    d->level = -1;
    if (check_dim(w, "number", w->nmem, &d->number, err, errcap) ||
        check_dim(w, "time", w->ninit, &d->time, err, errcap) ||
        check_dim(w, "step", w->nstep, &d->step, err, errcap) ||
        (w->nlev && check_dim(w, "pressure_level", w->nlev, &d->level, err, errcap)) ||
        check_dim(w, "latitude", w->nlat, &d->lat, err, errcap) ||
        check_dim(w, "longitude", w->nlon, &d->lon, err, errcap))
        return -1;
    TS_NC_CHECK(nc_inq_ndims(w->ncid, &ndims), err, errcap, "%s", w->part);
    if (ndims != expect) return MISMATCH("it has %d dimensions, this forecast %d", ndims, expect);
    return 0;
}

/* Coordinate values must match exactly: they were written from the same doubles. */
static int check_coord(ts_forecast_writer *w, const char *name, const double *want, size_t n, char *err,
                       size_t errcap) {
    int varid;
    double *have = ts_malloc(n * sizeof *have); /* (n) */
    int rc = nc_inq_varid(w->ncid, name, &varid);
    if (rc == NC_NOERR) rc = nc_get_var_double(w->ncid, varid, have);
    int same = rc == NC_NOERR && memcmp(have, want, n * sizeof *have) == 0;
    free(have);
    if (rc == NC_ENOTVAR) return MISMATCH("it has no coordinate '%s'", name);
    TS_NC_CHECK(rc, err, errcap, "%s", w->part);
    return same ? 0 : MISMATCH("the '%s' values differ", name);
}

static int check_coords(ts_forecast_writer *w, const ts_forecast_spec *s, char *err, size_t errcap) {
    size_t n = s->nmembers > s->ninits ? s->nmembers : s->ninits;
    double *x = ts_malloc(n * sizeof *x); /* (max(nmembers, ninits)): members, then init times */
    for (size_t m = 0; m < s->nmembers; m++) x[m] = (double)m;
    int bad = check_coord(w, "number", x, s->nmembers, err, errcap);
    for (size_t i = 0; i < s->ninits; i++) x[i] = (double)s->init_times[i]; /* exact below 2^53 s */
    bad = bad || check_coord(w, "time", x, s->ninits, err, errcap) ||
          check_coord(w, "step", s->step_hours, s->nsteps, err, errcap) ||
          (s->nlev && check_coord(w, "pressure_level", s->levels, s->nlev, err, errcap)) ||
          check_coord(w, "latitude", s->lat, s->nlat, err, errcap) ||
          check_coord(w, "longitude", s->lon, s->nlon, err, errcap);
    free(x);
    return bad ? -1 : 0;
}

static int check_var(ts_forecast_writer *w, size_t v, const dim_ids *d, char *err, size_t errcap) {
    int want[MAX_DIMS], have[MAX_DIMS], ndims;
    nc_type type;
    int nwant = data_dims(d, w->on_levels[v], want);
    int rc = nc_inq_varid(w->ncid, w->names[v], &w->varid[v]);
    if (rc == NC_ENOTVAR) return MISMATCH("it has no variable '%s'", w->names[v]);
    TS_NC_CHECK(rc, err, errcap, "%s", w->part);
    TS_NC_CHECK(nc_inq_varndims(w->ncid, w->varid[v], &ndims), err, errcap, "%s", w->part);
    if (ndims != nwant) return MISMATCH("variable '%s' has %d dimensions, this forecast %d", w->names[v], ndims, nwant);
    TS_NC_CHECK(nc_inq_var(w->ncid, w->varid[v], NULL, &type, NULL, have, NULL), err, errcap, "%s", w->part);
    if (type != NC_FLOAT || memcmp(have, want, (size_t)nwant * sizeof *have))
        return MISMATCH("variable '%s' has another type or dimension order", w->names[v]);
    return 0;
}

static int check_vars(ts_forecast_writer *w, const dim_ids *d, char *err, size_t errcap) {
    int nvars, ncoords = w->nlev ? 7 : 6;
    for (size_t v = 0; v < w->nvars; v++)
        if (check_var(w, v, d, err, errcap)) return -1;
    TS_NC_CHECK(nc_inq_nvars(w->ncid, &nvars), err, errcap, "%s", w->part);
    if ((size_t)nvars != (size_t)ncoords + w->nvars)
        return MISMATCH("it holds %d variables with coordinates, this forecast %zu", nvars, ncoords + w->nvars);
    return 0;
}

static int check_history(ts_forecast_writer *w, const char *history, char *err, size_t errcap) {
    size_t len;
    int rc = nc_inq_attlen(w->ncid, NC_GLOBAL, "history", &len);
    if (rc == NC_ENOTATT) return MISMATCH("it has no history attribute");
    TS_NC_CHECK(rc, err, errcap, "%s", w->part);
    if (len != strlen(history)) return MISMATCH("the resolved configuration in its history attribute differs");
    char *have = ts_malloc(len + 1);
    rc = nc_get_att_text(w->ncid, NC_GLOBAL, "history", have);
    int same = rc == NC_NOERR && memcmp(have, history, len) == 0;
    free(have);
    TS_NC_CHECK(rc, err, errcap, "%s", w->part);
    return same ? 0 : MISMATCH("history (the resolved configuration) differs");
}

static int read_int_att(ts_forecast_writer *w, const char *name, int *value, char *err, size_t errcap) {
    int rc = nc_get_att_int(w->ncid, NC_GLOBAL, name, value);
    if (rc == NC_ENOTATT) return MISMATCH("no %s attribute: not a tessera forecast file", name);
    TS_NC_CHECK(rc, err, errcap, "%s", w->part);
    return 0;
}

static int resume_part(ts_forecast_writer *w, const ts_forecast_spec *s, char *err, size_t errcap) {
    int version, done;
    dim_ids d;
    int rc = nc_open_for(w, w->part, &w->ncid);
    if (rc != NC_NOERR)
        return TS_FAIL(err, errcap,
                       "%s: cannot resume this partial forecast: %s (is another job writing it? if not, it is "
                       "damaged: delete it to start again)",
                       w->part, nc_strerror(rc));
    if (read_int_att(w, FORMAT_ATT, &version, err, errcap)) return -1;
    if (version != FORMAT_VERSION) return MISMATCH("format version %d, this writer %d", version, FORMAT_VERSION);
    if (check_dims(w, &d, err, errcap) || check_coords(w, s, err, errcap) || check_vars(w, &d, err, errcap) ||
        check_history(w, s->history, err, errcap) || read_int_att(w, COMPLETE_ATT, &done, err, errcap))
        return -1;
    if (done < 0 || (size_t)done > w->nstep) return MISMATCH("%s = %d is out of range", COMPLETE_ATT, done);
    for (size_t v = 0; v < w->nvars; v++)
        TS_NC_CHECK(nc_set_var_chunk_cache(w->ncid, w->varid[v], 0, 0, 0.75f), err, errcap, "%s", w->part);
    if (set_collective(w, w->part, err, errcap)) return -1;
    w->leads_done = (size_t)done;
    return 0;
}

/* ---- finishing ------------------------------------------------------------------------------ */

int ts_forecast_sync_rename(const char *part, const char *path, char *err, size_t errcap) {
    int fd = open(part, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0) close(fd);
        return TS_FAIL(err, errcap, "%s: cannot flush to disk: %s", part, strerror(e));
    }
    close(fd);
    if (rename(part, path) != 0)
        return TS_FAIL(err, errcap, "%s: cannot rename to %s: %s", part, path, strerror(errno));
    return 0;
}

/* Close, flush to disk, and give the file its final name. */
static int sync_and_rename(ts_forecast_writer *w, char *err, size_t errcap) {
    return ts_forecast_sync_rename(w->part, w->path, err, errcap);
}

static int finish_file(ts_forecast_writer *w, char *err, size_t errcap) {
    int ncid = w->ncid;
    w->ncid = -1;
    TS_NC_CHECK(nc_close(ncid), err, errcap, "%s", w->part);
    if (root_verdict(w, is_root(w) ? sync_and_rename(w, err, errcap) : 0, err, errcap)) return -1;
    w->complete = 1;
    return 0;
}

/* ---- the API -------------------------------------------------------------------------------- */

/* ts_forecast_open on a new writer w (one rank or collective). */
static ts_forecast_writer *open_writer(ts_forecast_writer *w, const ts_forecast_spec *s, char *err, size_t errcap) {
    int resuming = is_root(w) && access(w->part, F_OK) == 0;
#ifdef TESSERA_HAVE_PARALLEL_NETCDF
    if (w->par) MPI_Bcast(&resuming, 1, MPI_INT, 0, w->comm);
#endif
    int bad = resuming ? resume_part(w, s, err, errcap) : create_part(w, s, err, errcap);
    if (!bad && w->leads_done == w->nstep) bad = finish_file(w, err, errcap);
    if (bad) {
        /* Already failing: the first error is the one to report. A .part
         * that exists is never deleted: it may be someone's partial forecast. */
        if (w->ncid >= 0) (void)nc_close(w->ncid);
        writer_free(w);
        return NULL;
    }
    return w;
}

ts_forecast_writer *ts_forecast_open(const ts_forecast_spec *s, char *err, size_t errcap) {
    if (!s || validate_sizes(s, err, errcap) || validate_coords(s, err, errcap) || validate_vars(s, err, errcap))
        return NULL;
    return open_writer(writer_new(s), s, err, errcap);
}

#ifdef TESSERA_HAVE_PARALLEL_NETCDF
ts_forecast_writer *ts_forecast_open_par(const ts_forecast_spec *s, MPI_Comm comm, char *err, size_t errcap) {
    if (!s || validate_sizes(s, err, errcap) || validate_coords(s, err, errcap) || validate_vars(s, err, errcap))
        return NULL;
    ts_forecast_writer *w = writer_new(s);
    w->par = 1;
    w->comm = comm;
    MPI_Comm_rank(comm, &w->rank);
    return open_writer(w, s, err, errcap);
}
#endif

size_t ts_forecast_leads_done(const ts_forecast_writer *w) { return w->leads_done; }

int ts_forecast_is_complete(const ts_forecast_writer *w) { return w->complete; }

/* Common checks of write and read: the field exists and the file is open. */
static int check_field(const ts_forecast_writer *w, size_t var, size_t member, size_t init, size_t lead,
                       const void *field, char *err, size_t errcap) {
    if (w->complete) return TS_FAIL(err, errcap, "%s: the forecast is complete and closed", w->path);
    if (var >= w->nvars || member >= w->nmem || init >= w->ninit || lead >= w->nstep || !field)
        return TS_FAIL(err, errcap,
                       "%s: no field (variable %zu, member %zu, init %zu, lead %zu) in a file of %zu x %zu x %zu x %zu",
                       w->part, var, member, init, lead, w->nvars, w->nmem, w->ninit, w->nstep);
    return 0;
}

/* The hyperslab of one field: (1, 1, 1, [nlev,] nlat, nlon) at (member, init, lead). */
static void field_region(const ts_forecast_writer *w, size_t var, size_t member, size_t init, size_t lead,
                         size_t *start, size_t *count) {
    size_t n = 0;
    start[n] = member, count[n++] = 1;
    start[n] = init, count[n++] = 1;
    start[n] = lead, count[n++] = 1;
    if (w->on_levels[var]) start[n] = 0, count[n++] = w->nlev;
    start[n] = 0, count[n++] = w->nlat;
    start[n] = 0, count[n++] = w->nlon;
}

int ts_forecast_write(ts_forecast_writer *w, size_t var, size_t member, size_t init, size_t lead,
                      const float *field, char *err, size_t errcap) {
    size_t start[MAX_DIMS], count[MAX_DIMS];
    if (check_field(w, var, member, init, lead, field, err, errcap)) return -1;
    if (lead != w->leads_done)
        return TS_FAIL(err, errcap, "%s: writing lead %zu, but lead %zu is the next to complete", w->part, lead,
                       w->leads_done);
    field_region(w, var, member, init, lead, start, count);
    TS_NC_CHECK(nc_put_vara_float(w->ncid, w->varid[var], start, count, field), err, errcap, "%s", w->part);
    w->written[(var * w->nmem + member) * w->ninit + init] = 1;
    return 0;
}

/* The hyperslab of a block: (nmembers, 1, 1, [nlev,] nrows, ncols). */
static int block_region(const ts_forecast_writer *w, const ts_forecast_block *b, const void *data, size_t *start,
                        size_t *count, char *err, size_t errcap) {
    if (w->complete) return TS_FAIL(err, errcap, "%s: the forecast is complete and closed", w->path);
    if (b->var >= w->nvars || b->init >= w->ninit || b->lead >= w->nstep || b->member0 + b->nmembers > w->nmem ||
        b->row0 + b->nrows > w->nlat || b->col0 + b->ncols > w->nlon || (!data && b->nmembers && b->nrows && b->ncols))
        return TS_FAIL(err, errcap,
                       "%s: no block (variable %zu, members %zu+%zu, init %zu, lead %zu, rows %zu+%zu, columns "
                       "%zu+%zu) in a file of %zu variables x %zu members x %zu inits x %zu leads x %zu x %zu",
                       w->part, b->var, b->member0, b->nmembers, b->init, b->lead, b->row0, b->nrows, b->col0, b->ncols,
                       w->nvars, w->nmem, w->ninit, w->nstep, w->nlat, w->nlon);
    size_t n = 0;
    start[n] = b->member0, count[n++] = b->nmembers;
    start[n] = b->init, count[n++] = 1;
    start[n] = b->lead, count[n++] = 1;
    if (w->on_levels[b->var]) start[n] = 0, count[n++] = w->nlev;
    start[n] = b->row0, count[n++] = b->nrows;
    start[n] = b->col0, count[n++] = b->ncols;
    if (!b->nmembers || !b->nrows || !b->ncols) /* an empty share of a collective call */
        for (size_t i = 0; i < n; i++) start[i] = 0, count[i] = 0;
    return 0;
}

int ts_forecast_write_block(ts_forecast_writer *w, const ts_forecast_block *b, const float *data, char *err,
                            size_t errcap) {
    size_t start[MAX_DIMS], count[MAX_DIMS];
    if (block_region(w, b, data, start, count, err, errcap)) return -1;
    if (b->lead != w->leads_done)
        return TS_FAIL(err, errcap, "%s: writing lead %zu, but lead %zu is the next to complete", w->part, b->lead,
                       w->leads_done);
    TS_NC_CHECK(nc_put_vara_float(w->ncid, w->varid[b->var], start, count, data), err, errcap, "%s", w->part);
    if (b->nrows && b->ncols)
        for (size_t m = b->member0; m < b->member0 + b->nmembers; m++)
            w->written[(b->var * w->nmem + m) * w->ninit + b->init] = 1;
    return 0;
}

int ts_forecast_read_block(ts_forecast_writer *w, const ts_forecast_block *b, float *data, char *err, size_t errcap) {
    size_t start[MAX_DIMS], count[MAX_DIMS];
    if (block_region(w, b, data, start, count, err, errcap)) return -1;
    if (b->lead >= w->leads_done)
        return TS_FAIL(err, errcap, "%s: lead %zu is not complete (%zu leads are)", w->part, b->lead, w->leads_done);
    TS_NC_CHECK(nc_get_vara_float(w->ncid, w->varid[b->var], start, count, data), err, errcap, "%s", w->part);
    return 0;
}

int ts_forecast_lead_complete(ts_forecast_writer *w, size_t lead, char *err, size_t errcap) {
    if (w->complete) return TS_FAIL(err, errcap, "%s: the forecast is already complete", w->path);
    if (lead != w->leads_done)
        return TS_FAIL(err, errcap, "%s: lead %zu declared complete, but lead %zu is the next to complete", w->part,
                       lead, w->leads_done);
#ifdef TESSERA_HAVE_PARALLEL_NETCDF
    /* a field is written when any rank wrote a block of it */
    if (w->par)
        MPI_Allreduce(MPI_IN_PLACE, w->written, (int)(w->nvars * w->nmem * w->ninit), MPI_UNSIGNED_CHAR, MPI_MAX,
                      w->comm);
#endif
    for (size_t v = 0; v < w->nvars; v++)
        for (size_t m = 0; m < w->nmem; m++)
            for (size_t n = 0; n < w->ninit; n++)
                if (!w->written[(v * w->nmem + m) * w->ninit + n])
                    return TS_FAIL(err, errcap,
                                   "%s: lead %zu is not complete: '%s' of member %zu, init %zu is not written", w->part,
                                   lead, w->names[v], m, n);
    /* Data first, then the count: a kill between the two syncs leaves a
     * count that undercounts, never one that overcounts. */
    const int done = (int)lead + 1;
    TS_NC_CHECK(nc_sync(w->ncid), err, errcap, "%s", w->part);
    TS_NC_CHECK(nc_put_att_int(w->ncid, NC_GLOBAL, COMPLETE_ATT, NC_INT, 1, &done), err, errcap, "%s", w->part);
    TS_NC_CHECK(nc_sync(w->ncid), err, errcap, "%s", w->part);
    memset(w->written, 0, w->nvars * w->nmem * w->ninit);
    w->leads_done = lead + 1;
    return w->leads_done == w->nstep ? finish_file(w, err, errcap) : 0;
}

int ts_forecast_read(ts_forecast_writer *w, size_t var, size_t member, size_t init, size_t lead, float *field,
                     char *err, size_t errcap) {
    size_t start[MAX_DIMS], count[MAX_DIMS];
    if (check_field(w, var, member, init, lead, field, err, errcap)) return -1;
    if (lead >= w->leads_done)
        return TS_FAIL(err, errcap, "%s: lead %zu is not complete (%zu leads are)", w->part, lead, w->leads_done);
    field_region(w, var, member, init, lead, start, count);
    TS_NC_CHECK(nc_get_vara_float(w->ncid, w->varid[var], start, count, field), err, errcap, "%s", w->part);
    return 0;
}

int ts_forecast_close(ts_forecast_writer *w, char *err, size_t errcap) {
    if (!w) return 0;
    int ncid = w->ncid, rc = NC_NOERR;
    char part[4096];
    snprintf(part, sizeof part, "%s", w->part);
    if (ncid >= 0) rc = nc_close(ncid);
    writer_free(w);
    TS_NC_CHECK(rc, err, errcap, "%s", part);
    return 0;
}
