/* ERA5-format NetCDF writer: the two layouts the Copernicus CDS has
 * delivered (REFERENCE.md, "ERA5 NetCDF as the CDS delivers it"), written one
 * valid time at a time along an unlimited time dimension, into path.part,
 * renamed to path only when the caller says the file is complete. */
#include "io/era5_write.h"

#include <errno.h>
#include <math.h>
#include <netcdf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "io/io_error.h"

/* Packed layout (ERA5's int16 packing). -32767 is both _FillValue and
 * missing_value, so real data uses [-32766, 32767]. */
enum { PACK_FILL = -32767, PACK_MIN_VALID = -32766, PACK_MAX_VALID = 32767 };
#define PACK_STEPS 65534.0 /* 2^16 - 2: ERA5's scale_factor divisor */

/* Seconds from 1900-01-01 to 1970-01-01 (70 years, 17 of them leap). */
#define SECONDS_1900_TO_1970 2208988800LL

#define DEFAULT_SOURCE                                                                     \
    "synthetic data from tessera's reference simulator, written in the layout of ERA5 " \
    "as the Copernicus CDS delivers it; not ECMWF data (tessera " TESSERA_VERSION ")"

typedef struct {
    char *name;
    int on_levels;
    int varid;
    double scale, offset;     /* packed layout: value = stored * scale + offset */
    double pack_min, pack_max;
} wvar;

struct ts_era5_writer {
    char *path, *tmp_path;
    ts_era5_layout layout;
    int ncid;                 /* -1 once closed */
    size_t nlat, nlon, nlev, nvars;
    wvar *vars;               /* (nvars) */
    int time_varid, expver_varid;
    size_t ntime;             /* records written so far */
    int64_t last_time;        /* unix seconds of the last record */
    int16_t *packed;          /* (max(nlev,1), nlat, nlon) scratch for the packed layout */
    char *err;                /* the current call's error buffer */
    size_t errcap;
};

static int put_text(ts_era5_writer *w, int varid, const char *what, const char *name, const char *text) {
    TS_NC_CHECK(nc_put_att_text(w->ncid, varid, name, strlen(text), text), w->err, w->errcap, "%s: %s", w->tmp_path,
                what);
    return 0;
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = ts_malloc(n);
    memcpy(d, s, n);
    return d;
}

/* ---- validation ----------------------------------------------------------------- */

static int check_var(ts_era5_writer *w, const ts_era5_file_spec *s, size_t v) {
    const ts_era5_var *var = &s->vars[v];
    if (!var->name || !var->name[0] || !var->units || !var->long_name)
        return TS_FAIL(w->err, w->errcap, "%s: variable %zu: name, units and long_name are required", s->path, v);
    for (size_t u = 0; u < v; u++)
        if (strcmp(s->vars[u].name, var->name) == 0)
            return TS_FAIL(w->err, w->errcap, "%s: variable %s listed twice", s->path, var->name);
    if (var->on_levels && s->nlev == 0)
        return TS_FAIL(w->err, w->errcap, "%s: variable %s is on pressure levels but the file has none", s->path,
                       var->name);
    if (s->layout == TS_ERA5_LAYOUT_PACKED &&
        !(isfinite(var->pack_min) && isfinite(var->pack_max) && var->pack_max > var->pack_min))
        return TS_FAIL(w->err, w->errcap, "%s: variable %s: packing range [%g, %g] is empty (set pack_min < pack_max)",
                       s->path, var->name, var->pack_min, var->pack_max);
    return 0;
}

static int check_spec(ts_era5_writer *w, const ts_era5_file_spec *s) {
    if (!s->path || !s->path[0]) return TS_FAIL(w->err, w->errcap, "era5 writer: no path given");
    if (s->layout != TS_ERA5_LAYOUT_CDS && s->layout != TS_ERA5_LAYOUT_PACKED)
        return TS_FAIL(w->err, w->errcap, "%s: unknown layout %d", s->path, (int)s->layout);
    if (!s->nlat || !s->nlon || !s->lat || !s->lon)
        return TS_FAIL(w->err, w->errcap, "%s: latitude and longitude are required", s->path);
    if (s->nlev && !s->levels)
        return TS_FAIL(w->err, w->errcap, "%s: %zu levels but no level values", s->path, s->nlev);
    if (!s->nvars || !s->vars) return TS_FAIL(w->err, w->errcap, "%s: no variables to write", s->path);
    for (size_t k = 0; k < s->nlev; k++) /* the packed layout stores levels as int32 millibars */
        if (s->layout == TS_ERA5_LAYOUT_PACKED && (s->levels[k] != floor(s->levels[k]) || s->levels[k] <= 0))
            return TS_FAIL(w->err, w->errcap,
                           "%s: level %g hPa is not a positive whole number (packed layout stores int)", s->path,
                           s->levels[k]);
    for (size_t v = 0; v < s->nvars; v++)
        if (check_var(w, s, v)) return -1;
    return 0;
}

/* ---- definitions -------------------------------------------------------------- */

/* "decreasing" or "increasing", as the CDS's stored_direction attribute. */
static const char *direction(const double *x, size_t n) { return n > 1 && x[1] > x[0] ? "increasing" : "decreasing"; }

static int def_coord(ts_era5_writer *w, const char *name, nc_type type, int dimid, const char *units,
                     const char *long_name, const char *standard_name, int *varid) {
    TS_NC_CHECK(nc_def_var(w->ncid, name, type, 1, &dimid, varid), w->err, w->errcap, "%s: %s", w->tmp_path, name);
    if (units && put_text(w, *varid, name, "units", units)) return -1;
    if (long_name && put_text(w, *varid, name, "long_name", long_name)) return -1;
    if (standard_name && put_text(w, *varid, name, "standard_name", standard_name)) return -1;
    return 0;
}

typedef struct {
    int time, lev, lat, lon;   /* dimension ids; lev -1 without levels */
    int lat_var, lon_var, lev_var, number_var;
} file_ids;

static int def_dims(ts_era5_writer *w, const ts_era5_file_spec *s, file_ids *id) {
    int cds = s->layout == TS_ERA5_LAYOUT_CDS;
    id->lev = -1;
    if (cds) { /* the CDS's order: valid_time, pressure_level, latitude, longitude */
        TS_NC_CHECK(nc_def_dim(w->ncid, "valid_time", NC_UNLIMITED, &id->time), w->err, w->errcap, "%s: %s",
                    w->tmp_path, "valid_time");
        if (s->nlev)
            TS_NC_CHECK(nc_def_dim(w->ncid, "pressure_level", s->nlev, &id->lev), w->err, w->errcap, "%s: %s",
                        w->tmp_path, "pressure_level");
        TS_NC_CHECK(nc_def_dim(w->ncid, "latitude", s->nlat, &id->lat), w->err, w->errcap, "%s: %s", w->tmp_path,
                    "latitude");
        TS_NC_CHECK(nc_def_dim(w->ncid, "longitude", s->nlon, &id->lon), w->err, w->errcap, "%s: %s", w->tmp_path,
                    "longitude");
    } else { /* the old files define longitude, latitude, level, time */
        TS_NC_CHECK(nc_def_dim(w->ncid, "longitude", s->nlon, &id->lon), w->err, w->errcap, "%s: %s", w->tmp_path,
                    "longitude");
        TS_NC_CHECK(nc_def_dim(w->ncid, "latitude", s->nlat, &id->lat), w->err, w->errcap, "%s: %s", w->tmp_path,
                    "latitude");
        if (s->nlev)
            TS_NC_CHECK(nc_def_dim(w->ncid, "level", s->nlev, &id->lev), w->err, w->errcap, "%s: %s", w->tmp_path,
                        "level");
        TS_NC_CHECK(nc_def_dim(w->ncid, "time", NC_UNLIMITED, &id->time), w->err, w->errcap, "%s: %s", w->tmp_path,
                    "time");
    }
    return 0;
}

static int def_cds_coords(ts_era5_writer *w, const ts_era5_file_spec *s, file_ids *id) {
    TS_NC_CHECK(nc_def_var(w->ncid, "number", NC_INT64, 0, NULL, &id->number_var), w->err, w->errcap, "%s: %s",
                w->tmp_path, "number");
    if (put_text(w, id->number_var, "number", "long_name", "ensemble member numerical id") ||
        put_text(w, id->number_var, "number", "units", "1") ||
        put_text(w, id->number_var, "number", "standard_name", "realization"))
        return -1;
    if (def_coord(w, "valid_time", NC_INT64, id->time, "seconds since 1970-01-01", "time", "time", &w->time_varid) ||
        put_text(w, w->time_varid, "valid_time", "calendar", "proleptic_gregorian"))
        return -1;
    if (s->nlev && (def_coord(w, "pressure_level", NC_DOUBLE, id->lev, "hPa", "pressure", "air_pressure", &id->lev_var) ||
                    put_text(w, id->lev_var, "pressure_level", "positive", "down") ||
                    put_text(w, id->lev_var, "pressure_level", "stored_direction", direction(s->levels, s->nlev))))
        return -1;
    if (def_coord(w, "latitude", NC_DOUBLE, id->lat, "degrees_north", "latitude", "latitude", &id->lat_var) ||
        put_text(w, id->lat_var, "latitude", "stored_direction", direction(s->lat, s->nlat)) ||
        def_coord(w, "longitude", NC_DOUBLE, id->lon, "degrees_east", "longitude", "longitude", &id->lon_var))
        return -1;
    TS_NC_CHECK(nc_def_var(w->ncid, "expver", NC_STRING, 1, &id->time, &w->expver_varid), w->err, w->errcap, "%s: %s",
                w->tmp_path, "expver");
    return put_text(w, w->expver_varid, "expver", "long_name", "experiment version");
}

static int def_packed_coords(ts_era5_writer *w, const ts_era5_file_spec *s, file_ids *id) {
    id->number_var = -1;
    w->expver_varid = -1;
    if (def_coord(w, "longitude", NC_FLOAT, id->lon, "degrees_east", "longitude", NULL, &id->lon_var) ||
        def_coord(w, "latitude", NC_FLOAT, id->lat, "degrees_north", "latitude", NULL, &id->lat_var))
        return -1;
    if (s->nlev && def_coord(w, "level", NC_INT, id->lev, "millibars", "pressure_level", NULL, &id->lev_var))
        return -1;
    if (def_coord(w, "time", NC_INT, id->time, "hours since 1900-01-01 00:00:00.0", "time", NULL, &w->time_varid))
        return -1;
    return put_text(w, w->time_varid, "time", "calendar", "gregorian");
}

static int def_var_attrs(ts_era5_writer *w, const ts_era5_var *var, int varid) {
    if (put_text(w, varid, var->name, "units", var->units) ||
        put_text(w, varid, var->name, "long_name", var->long_name))
        return -1;
    if (var->standard_name && put_text(w, varid, var->name, "standard_name", var->standard_name)) return -1;
    return 0;
}

/* float32, NaN fill, one chunk per time and level (a full field), zlib 1 +
 * shuffle: a reader of one level of one time inflates one chunk. */
static int def_cds_var(ts_era5_writer *w, const ts_era5_var *var, const file_ids *id, wvar *out) {
    int dims[4], nd = 0;
    size_t chunk[4];
    dims[nd] = id->time, chunk[nd++] = 1;
    if (var->on_levels) dims[nd] = id->lev, chunk[nd++] = 1;
    dims[nd] = id->lat, chunk[nd++] = w->nlat;
    dims[nd] = id->lon, chunk[nd++] = w->nlon;
    TS_NC_CHECK(nc_def_var(w->ncid, var->name, NC_FLOAT, nd, dims, &out->varid), w->err, w->errcap, "%s: %s",
                w->tmp_path, var->name);
    TS_NC_CHECK(nc_def_var_chunking(w->ncid, out->varid, NC_CHUNKED, chunk), w->err, w->errcap, "%s: %s", w->tmp_path,
                var->name);
    TS_NC_CHECK(nc_def_var_deflate(w->ncid, out->varid, 1, 1, 1), w->err, w->errcap, "%s: %s", w->tmp_path, var->name);
    const float nan_fill = NAN;
    TS_NC_CHECK(nc_put_att_float(w->ncid, out->varid, "_FillValue", NC_FLOAT, 1, &nan_fill), w->err, w->errcap,
                "%s: %s", w->tmp_path, var->name);
    if (def_var_attrs(w, var, out->varid)) return -1;
    if (var->grib_param_id) {
        long long id64 = var->grib_param_id;
        TS_NC_CHECK(nc_put_att_longlong(w->ncid, out->varid, "GRIB_paramId", NC_INT64, 1, &id64), w->err, w->errcap,
                    "%s: %s", w->tmp_path, var->name);
    }
    return put_text(w, out->varid, var->name, "coordinates", "number expver");
}

/* int16 with ERA5's packing: scale = (max - min) / (2^16 - 2), offset =
 * (max + min) / 2, so [min, max] maps onto [-32767, 32767]. */
static int def_packed_var(ts_era5_writer *w, const ts_era5_var *var, const file_ids *id, wvar *out) {
    int dims[4], nd = 0;
    dims[nd++] = id->time;
    if (var->on_levels) dims[nd++] = id->lev;
    dims[nd++] = id->lat;
    dims[nd++] = id->lon;
    TS_NC_CHECK(nc_def_var(w->ncid, var->name, NC_SHORT, nd, dims, &out->varid), w->err, w->errcap, "%s: %s",
                w->tmp_path, var->name);
    out->scale = (var->pack_max - var->pack_min) / PACK_STEPS;
    out->offset = 0.5 * (var->pack_max + var->pack_min);
    const short fill = PACK_FILL;
    TS_NC_CHECK(nc_put_att_double(w->ncid, out->varid, "scale_factor", NC_DOUBLE, 1, &out->scale), w->err, w->errcap,
                "%s: %s", w->tmp_path, var->name);
    TS_NC_CHECK(nc_put_att_double(w->ncid, out->varid, "add_offset", NC_DOUBLE, 1, &out->offset), w->err, w->errcap,
                "%s: %s", w->tmp_path, var->name);
    TS_NC_CHECK(nc_put_att_short(w->ncid, out->varid, "_FillValue", NC_SHORT, 1, &fill), w->err, w->errcap, "%s: %s",
                w->tmp_path, var->name);
    TS_NC_CHECK(nc_put_att_short(w->ncid, out->varid, "missing_value", NC_SHORT, 1, &fill), w->err, w->errcap, "%s: %s",
                w->tmp_path, var->name);
    return def_var_attrs(w, var, out->varid);
}

static int def_globals(ts_era5_writer *w, const ts_era5_file_spec *s) {
    const char *conventions = s->layout == TS_ERA5_LAYOUT_CDS ? "CF-1.7" : "CF-1.6";
    if (put_text(w, NC_GLOBAL, "global attributes", "Conventions", conventions) ||
        put_text(w, NC_GLOBAL, "global attributes", "source", s->source ? s->source : DEFAULT_SOURCE))
        return -1;
    if (s->history && put_text(w, NC_GLOBAL, "global attributes", "history", s->history)) return -1;
    return 0;
}

static int put_coords(ts_era5_writer *w, const ts_era5_file_spec *s, const file_ids *id) {
    TS_NC_CHECK(nc_put_var_double(w->ncid, id->lat_var, s->lat), w->err, w->errcap, "%s: %s", w->tmp_path,
                "latitude"); /* converts for float coords */
    TS_NC_CHECK(nc_put_var_double(w->ncid, id->lon_var, s->lon), w->err, w->errcap, "%s: %s", w->tmp_path, "longitude");
    if (s->nlev)
        TS_NC_CHECK(nc_put_var_double(w->ncid, id->lev_var, s->levels), w->err, w->errcap, "%s: %s", w->tmp_path,
                    "level");
    if (id->number_var >= 0) {
        const long long zero = 0; /* the CDS's deterministic reanalysis is member 0 */
        TS_NC_CHECK(nc_put_var_longlong(w->ncid, id->number_var, &zero), w->err, w->errcap, "%s: %s", w->tmp_path,
                    "number");
    }
    return 0;
}

static int define_file(ts_era5_writer *w, const ts_era5_file_spec *s) {
    file_ids id;
    int cds = s->layout == TS_ERA5_LAYOUT_CDS;
    if (def_dims(w, s, &id)) return -1;
    if (cds ? def_cds_coords(w, s, &id) : def_packed_coords(w, s, &id)) return -1;
    for (size_t v = 0; v < s->nvars; v++)
        if (cds ? def_cds_var(w, &s->vars[v], &id, &w->vars[v]) : def_packed_var(w, &s->vars[v], &id, &w->vars[v]))
            return -1;
    if (def_globals(w, s)) return -1;
    if (!cds) { /* every value of every record is written, so prefilling is wasted I/O */
        int old;
        TS_NC_CHECK(nc_set_fill(w->ncid, NC_NOFILL, &old), w->err, w->errcap, "%s: %s", w->tmp_path, "file");
    }
    TS_NC_CHECK(nc_enddef(w->ncid), w->err, w->errcap, "%s: %s", w->tmp_path, "file");
    return put_coords(w, s, &id);
}

/* ---- public ----------------------------------------------------------------------- */

static void free_writer(ts_era5_writer *w) {
    for (size_t v = 0; w->vars && v < w->nvars; v++) free(w->vars[v].name);
    free(w->vars);
    free(w->packed);
    free(w->path);
    free(w->tmp_path);
    free(w);
}

static ts_era5_writer *new_writer(const ts_era5_file_spec *s) {
    ts_era5_writer *w = ts_calloc(1, sizeof *w);
    w->ncid = -1;
    w->layout = s->layout;
    w->nlat = s->nlat, w->nlon = s->nlon, w->nlev = s->nlev, w->nvars = s->nvars;
    w->path = dup_str(s->path);
    w->tmp_path = ts_malloc(strlen(s->path) + sizeof ".part");
    sprintf(w->tmp_path, "%s.part", s->path);
    w->vars = ts_calloc(s->nvars, sizeof *w->vars);
    for (size_t v = 0; v < s->nvars; v++) {
        w->vars[v].name = dup_str(s->vars[v].name);
        w->vars[v].on_levels = s->vars[v].on_levels;
        w->vars[v].pack_min = s->vars[v].pack_min;
        w->vars[v].pack_max = s->vars[v].pack_max;
    }
    if (s->layout == TS_ERA5_LAYOUT_PACKED)
        w->packed = ts_malloc((s->nlev ? s->nlev : 1) * s->nlat * s->nlon * sizeof *w->packed);
    return w;
}

ts_era5_writer *ts_era5_create(const ts_era5_file_spec *spec, char *err, size_t errcap) {
    ts_era5_writer probe = {.err = err, .errcap = errcap, .tmp_path = "era5 writer"};
    if (!spec) {
        TS_FAIL(err, errcap, "era5 writer: no file spec given");
        return NULL;
    }
    if (check_spec(&probe, spec)) return NULL;
    ts_era5_writer *w = new_writer(spec);
    w->err = err, w->errcap = errcap;
    /* A stale .part from a killed writer is ours to replace. */
    int mode = spec->layout == TS_ERA5_LAYOUT_CDS ? NC_NETCDF4 | NC_CLOBBER : NC_64BIT_OFFSET | NC_CLOBBER;
    int rc = nc_create(w->tmp_path, mode, &w->ncid);
    if (rc != NC_NOERR) {
        ts_nc_fail_at(w->err, w->errcap, rc, "nc_create", __FILE__, __LINE__, "%s: file", w->tmp_path);
        free_writer(w);
        return NULL;
    }
    if (define_file(w, spec)) {
        nc_close(w->ncid); /* already failing: the first error is the one to report */
        unlink(w->tmp_path);
        free_writer(w);
        return NULL;
    }
    return w;
}

static size_t field_size(const ts_era5_writer *w, const wvar *v) {
    return (v->on_levels ? w->nlev : 1) * w->nlat * w->nlon;
}

/* A value outside the declared packing range is an error rather than a
 * silent clip; checked for every variable before anything of the record
 * is written, so a refused record leaves the file as it was. */
static int check_pack_range(ts_era5_writer *w, const wvar *v, const float *x, int64_t t) {
    const double half = 0.5 * v->scale;
    for (size_t i = 0, n = field_size(w, v); i < n; i++)
        if (!isnan(x[i]) && !(x[i] >= v->pack_min - half && x[i] <= v->pack_max + half))
            return TS_FAIL(w->err, w->errcap,
                           "%s: variable %s at valid time %lld: value %g is outside its packing range [%g, %g]",
                           w->tmp_path, v->name, (long long)t, x[i], v->pack_min, v->pack_max);
    return 0;
}

/* ERA5's int16 packing of one field; NaN becomes the fill value. */
static void pack_field(ts_era5_writer *w, const wvar *v, const float *x) {
    for (size_t i = 0, n = field_size(w, v); i < n; i++) {
        if (isnan(x[i])) {
            w->packed[i] = PACK_FILL;
            continue;
        }
        long q = lround((x[i] - v->offset) / v->scale);
        if (q < PACK_MIN_VALID) q = PACK_MIN_VALID; /* pack_min itself: one step up, never "missing" */
        if (q > PACK_MAX_VALID) q = PACK_MAX_VALID;
        w->packed[i] = (int16_t)q;
    }
}

/* The packed layout's int32 hours since 1900; -1 when t is not one. */
static int hours_since_1900(int64_t t, int *hours) {
    long long s = (long long)t + SECONDS_1900_TO_1970;
    if (s < 0 || s % 3600 != 0 || s / 3600 > 2147483647LL) return -1;
    *hours = (int)(s / 3600);
    return 0;
}

static int put_time(ts_era5_writer *w, int64_t t) {
    size_t start = w->ntime, one = 1;
    if (w->layout == TS_ERA5_LAYOUT_CDS) {
        long long t64 = t;
        static const char expver[] = "0001"; /* ERA5 final, as the CDS labels it */
        const char *ev = expver;
        TS_NC_CHECK(nc_put_vara_longlong(w->ncid, w->time_varid, &start, &one, &t64), w->err, w->errcap, "%s: %s",
                    w->tmp_path, "valid_time");
        TS_NC_CHECK(nc_put_vara_string(w->ncid, w->expver_varid, &start, &one, &ev), w->err, w->errcap, "%s: %s",
                    w->tmp_path, "expver");
        return 0;
    }
    int hours;
    hours_since_1900(t, &hours); /* checked by ts_era5_append */
    TS_NC_CHECK(nc_put_vara_int(w->ncid, w->time_varid, &start, &one, &hours), w->err, w->errcap, "%s: %s", w->tmp_path,
                "time");
    return 0;
}

static int put_var(ts_era5_writer *w, const wvar *v, const float *field) {
    size_t start[4] = {w->ntime, 0, 0, 0}, count[4] = {1, 0, 0, 0}, nd = 1;
    if (v->on_levels) count[nd++] = w->nlev;
    count[nd++] = w->nlat;
    count[nd++] = w->nlon;
    if (w->layout == TS_ERA5_LAYOUT_CDS) {
        TS_NC_CHECK(nc_put_vara_float(w->ncid, v->varid, start, count, field), w->err, w->errcap, "%s: %s", w->tmp_path,
                    v->name);
        return 0;
    }
    pack_field(w, v, field);
    TS_NC_CHECK(nc_put_vara_short(w->ncid, v->varid, start, count, w->packed), w->err, w->errcap, "%s: %s", w->tmp_path,
                v->name);
    return 0;
}

int ts_era5_append(ts_era5_writer *w, int64_t valid_time_unix, const float *const *fields, char *err,
                   size_t errcap) {
    w->err = err, w->errcap = errcap;
    if (w->ncid < 0) return TS_FAIL(w->err, w->errcap, "%s: append after close", w->tmp_path);
    if (w->ntime > 0 && valid_time_unix <= w->last_time)
        return TS_FAIL(w->err, w->errcap,
                       "%s: valid time %lld does not follow the previous one (%lld); times must increase", w->tmp_path,
                       (long long)valid_time_unix, (long long)w->last_time);
    for (size_t v = 0; v < w->nvars; v++)
        if (!fields || !fields[v])
            return TS_FAIL(w->err, w->errcap, "%s: variable %s: no data given", w->tmp_path, w->vars[v].name);
    if (w->layout == TS_ERA5_LAYOUT_PACKED) {
        int hours;
        if (hours_since_1900(valid_time_unix, &hours))
            return TS_FAIL(w->err, w->errcap,
                           "%s: time: valid time %lld is not a whole hour after 1900 that int32 hours can hold",
                           w->tmp_path, (long long)valid_time_unix);
        for (size_t v = 0; v < w->nvars; v++)
            if (check_pack_range(w, &w->vars[v], fields[v], valid_time_unix)) return -1;
    }
    if (put_time(w, valid_time_unix)) return -1;
    for (size_t v = 0; v < w->nvars; v++)
        if (put_var(w, &w->vars[v], fields[v])) return -1;
    w->ntime++;
    w->last_time = valid_time_unix;
    return 0;
}

int ts_era5_close(ts_era5_writer *w, int finalize, char *err, size_t errcap) {
    if (!w) return 0;
    w->err = err, w->errcap = errcap;
    int rc = w->ncid >= 0 ? nc_close(w->ncid) : NC_NOERR, status = 0;
    w->ncid = -1;
    if (rc != NC_NOERR) {
        status = ts_nc_fail_at(w->err, w->errcap, rc, "nc_close", __FILE__, __LINE__, "%s: file", w->tmp_path);
        finalize = 0; /* a file that did not close cleanly is not complete */
    }
    if (finalize && rename(w->tmp_path, w->path) != 0) {
        status = TS_FAIL(w->err, w->errcap, "%s: rename to %s: %s", w->tmp_path, w->path, strerror(errno));
        finalize = 0;
    }
    if (!finalize && unlink(w->tmp_path) != 0 && errno != ENOENT && status == 0)
        status = TS_FAIL(w->err, w->errcap, "%s: unlink: %s", w->tmp_path, strerror(errno));
    free_writer(w);
    return status;
}
