/* Per-member CF files from a complete ensemble file; see forecast_members.h
 * and docs/forecast-format.md. */
#include "io/forecast_members.h"

#include <errno.h>
#include <math.h>
#include <netcdf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/caltime.h"
#include "core/log.h"
#include "io/forecast_read.h"
#include "io/forecast_write.h"
#include "io/io_error.h"

int ts_forecast_file_is_ours(const char *path, const char *history) {
    int ncid, ours = 0;
    if (access(path, F_OK) != 0 || nc_open(path, NC_NOWRITE, &ncid) != NC_NOERR) return 0;
    size_t len;
    if (nc_inq_attlen(ncid, NC_GLOBAL, "history", &len) == NC_NOERR && len == strlen(history)) {
        char *text = ts_malloc(len + 1);
        ours = nc_get_att_text(ncid, NC_GLOBAL, "history", text) == NC_NOERR && memcmp(text, history, len) == 0;
        free(text);
    }
    nc_close(ncid);
    return ours;
}

typedef struct {
    const char *path;    /* the ensemble file */
    ts_forecast_file *f; /* its fields */
    const ts_forecast_info *in;
    int ncid;   /* its attributes */
    int *varid; /* (nvars) ids in ncid */
} ensemble;

typedef struct {
    int time, level, lat, lon;
} member_dims;

static int put_text(const char *file, int ncid, int varid, const char *key, const char *value, char *err,
                    size_t errcap) {
    TS_NC_CHECK(nc_put_att_text(ncid, varid, key, strlen(value), value), err, errcap, "%s", file);
    return 0;
}

/* A coordinate with (key, value) text attributes, NULL-terminated. */
static int def_coord(const char *file, int ncid, const char *name, nc_type type, int ndims, const int *dims,
                     const char *const *atts, int *varid, char *err, size_t errcap) {
    TS_NC_CHECK(nc_def_var(ncid, name, type, ndims, dims, varid), err, errcap, "%s", file);
    for (; atts[0]; atts += 2)
        if (put_text(file, ncid, *varid, atts[0], atts[1], err, errcap)) return -1;
    return 0;
}

static int def_member_file(const ensemble *E, const char *file, int ncid, int64_t init, const char *history,
                           member_dims *d, int *coord, int *data, char *err, size_t errcap) {
    const ts_forecast_info *in = E->in;
    TS_NC_CHECK(nc_def_dim(ncid, "time", in->nsteps, &d->time), err, errcap, "%s", file);
    d->level = -1;
    if (in->nlev) TS_NC_CHECK(nc_def_dim(ncid, "pressure_level", in->nlev, &d->level), err, errcap, "%s", file);
    TS_NC_CHECK(nc_def_dim(ncid, "latitude", in->nlat, &d->lat), err, errcap, "%s", file);
    TS_NC_CHECK(nc_def_dim(ncid, "longitude", in->nlon, &d->lon), err, errcap, "%s", file);

    char when[32], since[64];
    ts_format_datetime(init, when, sizeof when);
    when[10] = ' ';
    snprintf(since, sizeof since, "hours since %s", when);
    const char *time[] = {"standard_name",       "time", "long_name", "valid time", "units", since, "calendar",
                          "proleptic_gregorian", "axis", "T",         NULL};
    const char *period[] = {"standard_name", "forecast_period", "long_name", "time since forecast_reference_time",
                            "units",         "hours",           NULL};
    const char *ref[] = {"standard_name",
                         "forecast_reference_time",
                         "long_name",
                         "initial time of forecast",
                         "units",
                         "seconds since 1970-01-01 00:00:00",
                         "calendar",
                         "proleptic_gregorian",
                         NULL};
    const char *real[] = {"standard_name", "realization", "long_name", "ensemble member numerical id",
                          "units",         "1",           NULL};
    const char *lev[] = {"standard_name", "air_pressure", "long_name", "pressure", "units", "hPa",
                         "positive",      "down",         "axis",      "Z",        NULL};
    const char *lat[] = {"standard_name", "latitude", "long_name", "latitude", "units",
                         "degrees_north", "axis",     "Y",         NULL};
    const char *lon[] = {"standard_name", "longitude", "long_name", "longitude", "units",
                         "degrees_east",  "axis",      "X",         NULL};
    if (def_coord(file, ncid, "time", NC_DOUBLE, 1, &d->time, time, &coord[0], err, errcap) ||
        def_coord(file, ncid, "forecast_period", NC_DOUBLE, 1, &d->time, period, &coord[1], err, errcap) ||
        def_coord(file, ncid, "forecast_reference_time", NC_DOUBLE, 0, NULL, ref, &coord[2], err, errcap) ||
        def_coord(file, ncid, "realization", NC_INT, 0, NULL, real, &coord[3], err, errcap) ||
        (in->nlev && def_coord(file, ncid, "pressure_level", NC_DOUBLE, 1, &d->level, lev, &coord[4], err, errcap)) ||
        def_coord(file, ncid, "latitude", NC_DOUBLE, 1, &d->lat, lat, &coord[5], err, errcap) ||
        def_coord(file, ncid, "longitude", NC_DOUBLE, 1, &d->lon, lon, &coord[6], err, errcap))
        return -1;

    for (size_t v = 0; v < in->nvars; v++) {
        int dims[4], nd = 0;
        size_t chunk[4];
        dims[nd] = d->time, chunk[nd++] = 1;
        if (in->vars[v].on_levels) dims[nd] = d->level, chunk[nd++] = 1;
        dims[nd] = d->lat, chunk[nd++] = in->nlat;
        dims[nd] = d->lon, chunk[nd++] = in->nlon;
        const float fill = NAN;
        TS_NC_CHECK(nc_def_var(ncid, in->vars[v].name, NC_FLOAT, nd, dims, &data[v]), err, errcap, "%s", file);
        TS_NC_CHECK(nc_def_var_chunking(ncid, data[v], NC_CHUNKED, chunk), err, errcap, "%s", file);
        TS_NC_CHECK(nc_def_var_deflate(ncid, data[v], 1, 1, 1), err, errcap, "%s", file);
        TS_NC_CHECK(nc_def_var_fill(ncid, data[v], 0, &fill), err, errcap, "%s", file);
        /* units, long_name, standard_name, GRIB_paramId as the ensemble file has them */
        int natts;
        TS_NC_CHECK(nc_inq_varnatts(E->ncid, E->varid[v], &natts), err, errcap, "%s", E->path);
        for (int a = 0; a < natts; a++) {
            char name[NC_MAX_NAME + 1];
            TS_NC_CHECK(nc_inq_attname(E->ncid, E->varid[v], a, name), err, errcap, "%s", E->path);
            /* no `coordinates`: cdo 2.1 cannot attach the scalar coordinates and warns on every read */
            if (strcmp(name, "_FillValue") == 0 || strcmp(name, "coordinates") == 0) continue;
            TS_NC_CHECK(nc_copy_att(E->ncid, E->varid[v], name, ncid, data[v]), err, errcap, "%s", file);
        }
    }
    if (put_text(file, ncid, NC_GLOBAL, "Conventions", "CF-1.8", err, errcap) ||
        put_text(file, ncid, NC_GLOBAL, "title", "tessera forecast, one member of one initial time", err, errcap) ||
        put_text(file, ncid, NC_GLOBAL, "source", "tessera " TESSERA_VERSION, err, errcap) ||
        put_text(file, ncid, NC_GLOBAL, "history", history, err, errcap))
        return -1;
    TS_NC_CHECK(nc_enddef(ncid), err, errcap, "%s", file);
    return 0;
}

static int put_coords(const ensemble *E, const char *file, int ncid, size_t init, size_t member, const int *coord,
                      char *err, size_t errcap) {
    const ts_forecast_info *in = E->in;
    const double ref = (double)in->init_times[init];
    const int real = (int)member;
    TS_NC_CHECK(nc_put_var_double(ncid, coord[0], in->step_hours), err, errcap, "%s", file);
    TS_NC_CHECK(nc_put_var_double(ncid, coord[1], in->step_hours), err, errcap, "%s", file);
    TS_NC_CHECK(nc_put_var_double(ncid, coord[2], &ref), err, errcap, "%s", file);
    TS_NC_CHECK(nc_put_var_int(ncid, coord[3], &real), err, errcap, "%s", file);
    if (in->nlev) TS_NC_CHECK(nc_put_var_double(ncid, coord[4], in->levels), err, errcap, "%s", file);
    TS_NC_CHECK(nc_put_var_double(ncid, coord[5], in->lat), err, errcap, "%s", file);
    TS_NC_CHECK(nc_put_var_double(ncid, coord[6], in->lon), err, errcap, "%s", file);
    return 0;
}

/* Every field of (init, member), one at a time. */
static int copy_fields(const ensemble *E, const char *file, int ncid, size_t init, size_t member, const int *data,
                       float *field, char *err, size_t errcap) {
    const ts_forecast_info *in = E->in;
    for (size_t s = 0; s < in->nsteps; s++)
        for (size_t v = 0; v < in->nvars; v++) {
            size_t nl = in->vars[v].on_levels ? in->nlev : 1;
            for (size_t l = 0; l < nl; l++) {
                if (ts_forecast_file_read(E->f, v, member, init, s, l, field, err, errcap)) return -1;
                size_t start[4] = {s, 0, 0, 0}, count[4] = {1, 1, 1, 1};
                int k = 1;
                if (in->vars[v].on_levels) start[k++] = l;
                count[k] = in->nlat, count[k + 1] = in->nlon;
                TS_NC_CHECK(nc_put_vara_float(ncid, data[v], start, count, field), err, errcap, "%s: %s", file,
                            in->vars[v].name);
            }
        }
    return 0;
}

static int write_one(const ensemble *E, const char *name, size_t init, size_t member, const char *history, float *field,
                     char *err, size_t errcap) {
    char part[4096 + 8];
    snprintf(part, sizeof part, "%s.part", name);
    int ncid = -1, coord[7] = {0}, *data = ts_calloc(E->in->nvars, sizeof *data);
    member_dims d;
    int rc = nc_create(part, NC_NETCDF4 | NC_CLOBBER, &ncid);
    if (rc != NC_NOERR) {
        free(data);
        return ts_nc_fail_at(err, errcap, rc, "nc_create", __FILE__, __LINE__, "%s: cannot create (errno: %s)", part,
                             strerror(errno));
    }
    int bad = def_member_file(E, part, ncid, E->in->init_times[init], history, &d, coord, data, err, errcap) ||
              put_coords(E, part, ncid, init, member, coord, err, errcap) ||
              copy_fields(E, part, ncid, init, member, data, field, err, errcap);
    free(data);
    rc = nc_close(ncid);
    if (bad) return -1; /* the first error is the one to report; the .part stays, never complete-looking */
    if (rc != NC_NOERR) return ts_nc_fail_at(err, errcap, rc, "nc_close", __FILE__, __LINE__, "%s", part);
    return ts_forecast_sync_rename(part, name, err, errcap);
}

int ts_forecast_write_members(const char *ensemble_path, const char *path, const char *history, size_t first,
                              size_t stride, size_t *written, size_t *kept, char *err, size_t errcap) {
    *written = *kept = 0;
    ensemble E = {.path = ensemble_path, .ncid = -1};
    if (!(E.f = ts_forecast_file_open(ensemble_path, err, errcap))) return -1;
    E.in = ts_forecast_file_info(E.f);
    int rc = nc_open(ensemble_path, NC_NOWRITE, &E.ncid);
    if (rc != NC_NOERR) {
        ts_forecast_file_close(E.f);
        return ts_nc_fail_at(err, errcap, rc, "nc_open", __FILE__, __LINE__, "%s", ensemble_path);
    }
    E.varid = ts_calloc(E.in->nvars, sizeof *E.varid);
    int bad = 0;
    for (size_t v = 0; v < E.in->nvars && !bad; v++)
        if ((rc = nc_inq_varid(E.ncid, E.in->vars[v].name, &E.varid[v])) != NC_NOERR)
            bad = ts_nc_fail_at(err, errcap, rc, "nc_inq_varid", __FILE__, __LINE__, "%s: %s", ensemble_path,
                                E.in->vars[v].name);
    float *field = ts_malloc(E.in->nlat * E.in->nlon * sizeof *field); /* (nlat, nlon) */
    const size_t pairs = E.in->ninits * E.in->nmembers;
    for (size_t k = first; k < pairs && !bad; k += stride ? stride : 1) {
        size_t init = k / E.in->nmembers, member = k % E.in->nmembers;
        char name[4096];
        ts_forecast_member_path(path, E.in->init_times[init], member, E.in->nmembers, name, sizeof name);
        if (ts_forecast_file_is_ours(name, history)) {
            ++*kept;
            continue;
        }
        if (write_one(&E, name, init, member, history, field, err, errcap))
            bad = 1;
        else
            ++*written;
    }
    free(field);
    free(E.varid);
    nc_close(E.ncid);
    ts_forecast_file_close(E.f);
    return bad ? -1 : 0;
}
