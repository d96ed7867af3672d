/* ERA5 NetCDF reader: CDS files of either layout, opened together as one
 * dataset of state and forcing channels on one grid, read block by block.
 *
 * Three coordinate systems meet here:
 *   stored   - a file's own order (latitude either way, longitude in any
 *              order and origin: -180..180, 0..360, decreasing, or 0..180
 *              then -180..0 as xarray's roll leaves it);
 *   source   - the files' grid oriented north to south, longitudes sorted
 *              increasing (when global, wrapped to 0..360, so starting at
 *              the first at or east of 0; every file must agree on it);
 *   exposed  - what read_block serves: the source grid, or its conservative
 *              coarsening onto a WeatherBench grid, after the row rule.
 */
#include "io/era5_internal.h"

#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <math.h>
#include <netcdf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "core/log.h"

/* ---- small helpers --------------------------------------------------------------- */

void era5_iso_time(int64_t t, char *buf, size_t cap) {
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || !strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm))
        snprintf(buf, cap, "%lld s", (long long)t);
}

char *era5_dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = ts_malloc(n);
    memcpy(d, s, n);
    return d;
}

size_t era5_min_sz(size_t a, size_t b) { return a < b ? a : b; }

long era5_mod_l(long a, long n) {
    long m = a % n;
    return m < 0 ? m + n : m;
}

/* ---- attributes --------------------------------------------------------------------- */

/* A text attribute (NC_CHAR or NC_STRING) as a malloc'd string; *out NULL
 * when absent. */
int era5_get_text_att(ts_era5_dataset *ds, const src_file *f, int varid, const char *what, const char *name,
                      char **out) {
    nc_type type;
    size_t len;
    *out = NULL;
    int rc = nc_inq_att(f->ncid, varid, name, &type, &len);
    if (rc == NC_ENOTATT) return 0;
    if (rc != NC_NOERR)
        return ts_nc_fail_at(ds->err, ds->errcap, rc, "nc_inq_att", __FILE__, __LINE__, "%s: %s", f->path, what);
    if (type == NC_STRING && len >= 1) {
        char **s = ts_calloc(len, sizeof *s);
        rc = nc_get_att_string(f->ncid, varid, name, s);
        if (rc == NC_NOERR) *out = era5_dup_str(s[0] ? s[0] : "");
        if (rc == NC_NOERR) nc_free_string(len, s);
        free(s);
        if (rc != NC_NOERR)
            return ts_nc_fail_at(ds->err, ds->errcap, rc, "nc_get_att_string", __FILE__, __LINE__, "%s: %s", f->path,
                                 what);
        return 0;
    }
    if (type != NC_CHAR) return TS_FAIL(ds->err, ds->errcap, "%s: %s: attribute %s is not text", f->path, what, name);
    *out = ts_malloc(len + 1);
    rc = nc_get_att_text(f->ncid, varid, name, *out);
    if (rc != NC_NOERR) {
        free(*out);
        *out = NULL;
        return ts_nc_fail_at(ds->err, ds->errcap, rc, "nc_get_att_text", __FILE__, __LINE__, "%s: %s", f->path, what);
    }
    (*out)[len] = '\0';
    return 0;
}

/* A numeric attribute's first value; *found 0 when absent. */
int era5_get_num_att(ts_era5_dataset *ds, const src_file *f, int varid, const char *what, const char *name,
                     double *value, int *found) {
    nc_type type;
    size_t len;
    *found = 0;
    int rc = nc_inq_att(f->ncid, varid, name, &type, &len);
    if (rc == NC_ENOTATT) return 0;
    if (rc != NC_NOERR)
        return ts_nc_fail_at(ds->err, ds->errcap, rc, "nc_inq_att", __FILE__, __LINE__, "%s: %s", f->path, what);
    if (type == NC_CHAR || type == NC_STRING || len < 1)
        return TS_FAIL(ds->err, ds->errcap, "%s: %s: attribute %s is not a number", f->path, what, name);
    double *v = ts_malloc(len * sizeof *v);
    rc = nc_get_att_double(f->ncid, varid, name, v);
    *value = v[0];
    free(v);
    if (rc != NC_NOERR)
        return ts_nc_fail_at(ds->err, ds->errcap, rc, "nc_get_att_double", __FILE__, __LINE__, "%s: %s", f->path, what);
    *found = 1;
    return 0;
}

/* ---- time ------------------------------------------------------------------------------ */

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static double unit_seconds(const char *unit) {
    static const struct {
        const char *name;
        double s;
    } units[] = {
        {"seconds", 1}, {"second", 1}, {"secs", 1},     {"sec", 1},      {"s", 1},       {"minutes", 60},
        {"minute", 60}, {"mins", 60},  {"min", 60},     {"hours", 3600}, {"hour", 3600}, {"hrs", 3600},
        {"hr", 3600},   {"h", 3600},   {"days", 86400}, {"day", 86400},  {"d", 86400},
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcasecmp(unit, units[i].name) == 0) return units[i].s;
    return 0;
}

/* "hours since 1900-01-01 00:00:00.0", "seconds since 1970-01-01",
 * "days since 2000-1-1T00:00:00Z": seconds per unit and the reference as
 * unix seconds. Returns 0, or -1 when the text is not of that form. */
static int parse_time_units(const char *units, double *per_unit, double *ref, int *ref_year_month_day) {
    char unit[32];
    int n = -1, y, mo, d, h = 0, mi = 0;
    double s = 0;
    if (sscanf(units, " %31s since %n", unit, &n) != 1 || n < 0) return -1;
    if ((*per_unit = unit_seconds(unit)) == 0) return -1;
    const char *p = units + n;
    int m = -1;
    if (sscanf(p, "%d-%d-%d%n", &y, &mo, &d, &m) != 3 || m < 0) return -1;
    p += m;
    if (*p == 'T' || *p == ' ') {
        int k = -1;
        if (sscanf(p + 1, "%d:%d%n", &h, &mi, &k) == 2 && k > 0) {
            p += 1 + k;
            if (*p == ':') {
                k = -1;
                if (sscanf(p + 1, "%lf%n", &s, &k) != 1 || k < 0) return -1;
                p += 1 + k;
            }
        }
    }
    while (*p == ' ') p++;
    if (*p && strcmp(p, "Z") != 0 && strcasecmp(p, "UTC") != 0 && strcmp(p, "+00:00") != 0 && strcmp(p, "+0000") != 0 &&
        strcmp(p, "0:00") != 0 && strcmp(p, "00:00") != 0)
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 24 || mi < 0 || mi > 59 || s < 0 || s >= 61) return -1;
    *ref = (double)days_from_civil(y, mo, d) * 86400.0 + h * 3600.0 + mi * 60.0 + s;
    *ref_year_month_day = y * 10000 + mo * 100 + d;
    return 0;
}

static int check_calendar(ts_era5_dataset *ds, const src_file *f, const char *name, int varid, int ref_ymd) {
    char *cal;
    if (era5_get_text_att(ds, f, varid, name, "calendar", &cal)) return -1;
    int ok = !cal || strcasecmp(cal, "proleptic_gregorian") == 0 || strcasecmp(cal, "gregorian") == 0 ||
             strcasecmp(cal, "standard") == 0;
    int proleptic = cal && strcasecmp(cal, "proleptic_gregorian") == 0;
    int rc = 0;
    if (!ok)
        rc = TS_FAIL(ds->err, ds->errcap,
                     "%s: %s: calendar \"%s\" is not supported (gregorian, standard or proleptic_gregorian)", f->path,
                     name, cal);
    else if (!proleptic && ref_ymd < 15821015) /* mixed Julian/Gregorian before the reform */
        rc = TS_FAIL(ds->err, ds->errcap, "%s: %s: a gregorian reference date before 1582-10-15 is not supported",
                     f->path, name);
    free(cal);
    return rc;
}

static int read_times(ts_era5_dataset *ds, src_file *f, const char *name, int varid) {
    char *units;
    double per_unit, ref;
    int ymd;
    if (era5_get_text_att(ds, f, varid, name, "units", &units)) return -1;
    int bad = !units || parse_time_units(units, &per_unit, &ref, &ymd) != 0;
    if (bad) {
        TS_FAIL(ds->err, ds->errcap, "%s: %s: units \"%s\" are not \"seconds|hours|days since DATE\"", f->path, name,
                units ? units : "");
        free(units);
        return -1;
    }
    free(units);
    if (check_calendar(ds, f, name, varid, ymd)) return -1;
    double *raw = ts_malloc((f->ntime ? f->ntime : 1) * sizeof *raw); /* (ntime) */
    f->time = ts_malloc((f->ntime ? f->ntime : 1) * sizeof *f->time);
    int rc = f->ntime ? nc_get_var_double(f->ncid, varid, raw) : NC_NOERR;
    for (size_t i = 0; rc == NC_NOERR && i < f->ntime; i++) f->time[i] = llround(ref + raw[i] * per_unit);
    free(raw);
    if (rc != NC_NOERR)
        return ts_nc_fail_at(ds->err, ds->errcap, rc, "nc_get_var_double", __FILE__, __LINE__, "%s: %s", f->path, name);
    for (size_t i = 1; i < f->ntime; i++)
        if (f->time[i] <= f->time[i - 1]) {
            char a[32];
            era5_iso_time(f->time[i], a, sizeof a);
            return TS_FAIL(ds->err, ds->errcap, "%s: %s: times do not increase at record %zu (%s)", f->path, name, i,
                           a);
        }
    return 0;
}

/* ---- the open-file cache ------------------------------------------------------------- */

static int close_lru(ts_era5_dataset *ds) {
    src_file *old = NULL;
    for (size_t i = 0; i < ds->nfiles; i++)
        if (ds->file[i].ncid >= 0 && (!old || ds->file[i].last_use < old->last_use)) old = &ds->file[i];
    if (!old) return 0;
    int rc = nc_close(old->ncid);
    old->ncid = -1;
    ds->nopen--;
    if (rc != NC_NOERR)
        return ts_nc_fail_at(ds->err, ds->errcap, rc, "nc_close", __FILE__, __LINE__, "%s: %s", old->path, "file");
    return 0;
}

int era5_ensure_open(ts_era5_dataset *ds, src_file *f) {
    f->last_use = ++ds->clock;
    if (f->ncid >= 0) return 0;
    if (ds->nopen >= MAX_OPEN_FILES && close_lru(ds)) return -1;
    int rc = nc_open(f->path, NC_NOWRITE, &f->ncid);
    if (rc != NC_NOERR) {
        f->ncid = -1;
        struct stat st;
        if (stat(f->path, &st) == 0 && S_ISDIR(st.st_mode))
            return TS_FAIL(ds->err, ds->errcap,
                           "%s: a folder, not a NetCDF file (data.files names files or globs of files)", f->path);
        return TS_FAIL(ds->err, ds->errcap, "%s: cannot open as NetCDF (not a NetCDF file, or cut short): nc_open: %s",
                       f->path, nc_strerror(rc));
    }
    ds->nopen++;
    return 0;
}

/* ---- a file's axes and orientation -------------------------------------------------------- */

/* The first of `names` that is a dimension with a coordinate variable. */
static int find_axis(ts_era5_dataset *ds, src_file *f, const char *const *names, size_t nnames, int *dimid, int *varid,
                     size_t *len, const char **name) {
    *dimid = -1;
    for (size_t i = 0; i < nnames; i++) {
        int rc = nc_inq_dimid(f->ncid, names[i], dimid);
        if (rc == NC_EBADDIM) continue;
        if (rc != NC_NOERR)
            return ts_nc_fail_at(ds->err, ds->errcap, rc, "nc_inq_dimid", __FILE__, __LINE__, "%s: %s", f->path,
                                 names[i]);
        *name = names[i];
        TS_NC_CHECK(nc_inq_dimlen(f->ncid, *dimid, len), ds->err, ds->errcap, "%s: %s", f->path, names[i]);
        if (ts_io_check_fits(f->path, names[i], (double)*len * sizeof(double), ds->err, ds->errcap)) return -1;
        rc = nc_inq_varid(f->ncid, names[i], varid);
        if (rc == NC_ENOTVAR)
            return TS_FAIL(ds->err, ds->errcap, "%s: %s: dimension without a coordinate variable", f->path, names[i]);
        if (rc != NC_NOERR)
            return ts_nc_fail_at(ds->err, ds->errcap, rc, "nc_inq_varid", __FILE__, __LINE__, "%s: %s", f->path,
                                 names[i]);
        return 0;
    }
    *dimid = -1;
    return 0;
}

static int read_coord(ts_era5_dataset *ds, src_file *f, const char *name, int varid, size_t n, double **out) {
    *out = ts_malloc((n ? n : 1) * sizeof **out);
    TS_NC_CHECK(nc_get_var_double(f->ncid, varid, *out), ds->err, ds->errcap, "%s: %s", f->path, name);
    return 0;
}

static int strictly_monotonic(const double *x, size_t n, int increasing) {
    for (size_t i = 1; i < n; i++)
        if (increasing ? !(x[i] > x[i - 1]) : !(x[i] < x[i - 1])) return 0;
    return 1;
}

/* Source order is north to south: a file stored south to north is flipped. */
static int orient_lat(ts_era5_dataset *ds, src_file *f, const char *name, double *stored) {
    size_t n = f->nlat;
    f->flip = n > 1 && stored[1] > stored[0];
    if (!strictly_monotonic(stored, n, f->flip))
        return TS_FAIL(ds->err, ds->errcap, "%s: %s: values are not strictly monotonic", f->path, name);
    for (size_t i = 0; i < n; i++)
        if (!(fabs(stored[i]) <= 90.0 + COORD_TOL))
            return TS_FAIL(ds->err, ds->errcap, "%s: %s: %g is not a latitude", f->path, name, stored[i]);
    f->lat = ts_malloc(n * sizeof *f->lat);
    for (size_t r = 0; r < n; r++) f->lat[r] = stored[f->flip ? n - 1 - r : r];
    return 0;
}

static double wrap360(double x) {
    double y = fmod(x, 360.0);
    return y < 0 ? y + 360.0 : y;
}

/* Sorting the stored columns by longitude (qsort's comparison sees the
 * keys through this table; the reader is single-threaded at open). */
static const double *g_lon_key;
static int by_lon(const void *a, const void *b) {
    double x = g_lon_key[*(const size_t *)a], y = g_lon_key[*(const size_t *)b];
    return (x > y) - (x < y);
}

/* Longitudes in any order: the stored columns sorted once into source
 * order, the permutation kept in f->col. A global regular grid (its
 * longitudes wrapped to 0..360 are n evenly spaced values) is sorted by the
 * wrapped values, so it starts at the first longitude at or east of 0; any
 * other grid by its stored values. Repeated longitudes are an error. */
static int orient_lon(ts_era5_dataset *ds, src_file *f, const char *name, double *stored) {
    size_t n = f->nlon;
    double *key = ts_malloc(n * sizeof *key); /* (n) the sort key of each stored column */
    f->col = ts_malloc(n * sizeof *f->col);
    f->lon = ts_malloc(n * sizeof *f->lon);
    for (size_t j = 0; j < n; j++) key[j] = wrap360(stored[j]), f->col[j] = j;
    g_lon_key = key;
    qsort(f->col, n, sizeof *f->col, by_lon);
    double step = n > 1 ? (key[f->col[n - 1]] - key[f->col[0]]) / (double)(n - 1) : 360.0;
    int global = n > 1 && fabs(step * (double)n - 360.0) < COORD_TOL * (double)n;
    if (!global) { /* regional: the stored values themselves, in order */
        for (size_t j = 0; j < n; j++) key[j] = stored[j], f->col[j] = j;
        qsort(f->col, n, sizeof *f->col, by_lon);
    }
    for (size_t j = 0; j < n; j++) f->lon[j] = key[f->col[j]];
    free(key);
    for (size_t j = 0; j < n; j++)
        if (!isfinite(f->lon[j]) || (j > 0 && !(f->lon[j] > f->lon[j - 1])))
            return TS_FAIL(ds->err, ds->errcap, "%s: %s: %s", f->path, name,
                           isfinite(f->lon[j]) ? "a longitude appears twice" : "a value is not finite");
    return 0;
}

/* Levels in hPa, whatever the file calls them. */
static int read_levels(ts_era5_dataset *ds, src_file *f, const char *name, int varid) {
    if (read_coord(ds, f, name, varid, f->nlev, &f->lev)) return -1;
    char *units;
    if (era5_get_text_att(ds, f, varid, name, "units", &units)) return -1;
    double to_hpa = 1;
    if (units && strcmp(units, "Pa") == 0)
        to_hpa = 0.01;
    else if (units && strcasecmp(units, "hPa") != 0 && strncasecmp(units, "millibar", 8) != 0 &&
             strcasecmp(units, "mbar") != 0 && strcasecmp(units, "mb") != 0 &&
             strncasecmp(units, "hectopascal", 11) != 0) {
        TS_FAIL(ds->err, ds->errcap, "%s: %s: units \"%s\" are not a pressure unit (hPa, millibars, Pa)", f->path, name,
                units);
        free(units);
        return -1;
    }
    free(units);
    for (size_t k = 0; k < f->nlev; k++) f->lev[k] *= to_hpa;
    return 0;
}

static int read_horizontal(ts_era5_dataset *ds, src_file *f) {
    static const char *const lat_names[] = {"latitude", "lat"}, *const lon_names[] = {"longitude", "lon"};
    int varid;
    const char *name = NULL;
    double *stored;
    if (find_axis(ds, f, lat_names, 2, &f->lat_dim, &varid, &f->nlat, &name)) return -1;
    if (f->lat_dim < 0)
        return TS_FAIL(ds->err, ds->errcap, "%s: latitude: no latitude dimension (looked for latitude, lat)", f->path);
    if (read_coord(ds, f, name, varid, f->nlat, &stored)) return -1;
    int rc = orient_lat(ds, f, name, stored);
    free(stored);
    if (rc) return -1;
    if (find_axis(ds, f, lon_names, 2, &f->lon_dim, &varid, &f->nlon, &name)) return -1;
    if (f->lon_dim < 0)
        return TS_FAIL(ds->err, ds->errcap, "%s: longitude: no longitude dimension (looked for longitude, lon)",
                       f->path);
    /* one field of the grid is what every read holds at least */
    if (ts_io_check_fits(f->path, "a latitude x longitude field", (double)f->nlat * (double)f->nlon * sizeof(double),
                         ds->err, ds->errcap))
        return -1;
    if (read_coord(ds, f, name, varid, f->nlon, &stored)) return -1;
    rc = orient_lon(ds, f, name, stored);
    free(stored);
    return rc;
}

/* Every variable's name, and whether it runs along the level dimension. */
static int list_vars(ts_era5_dataset *ds, src_file *f) {
    int nvars, nd, dims[NC_MAX_VAR_DIMS];
    TS_NC_CHECK(nc_inq_nvars(f->ncid, &nvars), ds->err, ds->errcap, "%s: %s", f->path, "file");
    f->nvars = (size_t)nvars;
    f->vname = ts_calloc(f->nvars, sizeof *f->vname);
    f->vlev = ts_calloc(f->nvars, 1);
    for (int v = 0; v < nvars; v++) {
        char name[NC_MAX_NAME + 1];
        TS_NC_CHECK(nc_inq_varname(f->ncid, v, name), ds->err, ds->errcap, "%s: %s", f->path, "file");
        TS_NC_CHECK(nc_inq_varndims(f->ncid, v, &nd), ds->err, ds->errcap, "%s: %s", f->path, name);
        TS_NC_CHECK(nc_inq_vardimid(f->ncid, v, dims), ds->err, ds->errcap, "%s: %s", f->path, name);
        for (int i = 0; i < nd; i++) f->vlev[v] |= f->lev_dim >= 0 && dims[i] == f->lev_dim;
        f->vname[v] = era5_dup_str(name);
    }
    return 0;
}

static int read_axes(ts_era5_dataset *ds, src_file *f) {
    static const char *const time_names[] = {"valid_time", "time"};
    static const char *const lev_names[] = {"pressure_level", "level", "isobaricInhPa", "plev"};
    int varid;
    const char *name = NULL;
    if (read_horizontal(ds, f)) return -1;
    if (find_axis(ds, f, time_names, 2, &f->time_dim, &varid, &f->ntime, &name)) return -1;
    if (f->time_dim >= 0 && read_times(ds, f, name, varid)) return -1;
    if (f->time_dim < 0) f->ntime = 0;
    if (find_axis(ds, f, lev_names, 4, &f->lev_dim, &varid, &f->nlev, &name)) return -1;
    if (f->lev_dim >= 0 && read_levels(ds, f, name, varid)) return -1;
    return list_vars(ds, f);
}

int era5_same_coords(const double *a, const double *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!(fabs(a[i] - b[i]) <= COORD_TOL)) return 0;
    return 1;
}

/* Every file must hold the same grid once oriented. */
static int check_grid(ts_era5_dataset *ds, const src_file *f) {
    const src_file *g = &ds->file[0];
    if (f->nlat != g->nlat || !era5_same_coords(f->lat, g->lat, f->nlat))
        return TS_FAIL(ds->err, ds->errcap,
                       "%s: latitude: %zu rows from %g to %g do not match %s's %zu rows from %g to %g (all files must "
                       "share one grid)",
                       f->path, f->nlat, f->lat[0], f->lat[f->nlat - 1], g->path, g->nlat, g->lat[0],
                       g->lat[g->nlat - 1]);
    if (f->nlon != g->nlon || !era5_same_coords(f->lon, g->lon, f->nlon))
        return TS_FAIL(ds->err, ds->errcap,
                       "%s: longitude: %zu columns from %g to %g do not match %s's %zu columns from %g to %g (all "
                       "files must share one grid)",
                       f->path, f->nlon, f->lon[0], f->lon[f->nlon - 1], g->path, g->nlon, g->lon[0],
                       g->lon[g->nlon - 1]);
    return 0;
}

/* ---- truncated classic files ---------------------------------------------------------------
 *
 * NetCDF-4 (HDF5) refuses a file cut short at open. The classic formats do
 * not: netCDF-C reads past the end of the file as zeros, so a download cut
 * inside the record section would silently give zero fields. The header
 * says where each variable's data begins; every variable must end inside
 * the file. (Format: NetCDF Users Guide, "Classic file format spec".) */

typedef struct {
    const unsigned char *p;
    size_t n, at;
    int wide; /* CDF-5: 8-byte counts */
    int ok;   /* 0 once a read ran past the bytes we have */
} hdr_reader;

static uint64_t rd_be(hdr_reader *r, size_t bytes) {
    uint64_t v = 0;
    if (r->at + bytes > r->n) {
        r->ok = 0;
        r->at = r->n;
        return 0;
    }
    for (size_t i = 0; i < bytes; i++) v = v << 8 | r->p[r->at + i];
    r->at += bytes;
    return v;
}

static uint64_t rd_count(hdr_reader *r) { return rd_be(r, r->wide ? 8 : 4); }

static void rd_skip(hdr_reader *r, uint64_t bytes) {
    if (bytes > r->n - r->at)
        r->ok = 0, r->at = r->n;
    else
        r->at += bytes;
}

static uint64_t pad4(uint64_t n) { return (n + 3) & ~(uint64_t)3; }

static size_t classic_type_size(uint64_t type) {
    switch (type) {
    case NC_BYTE:
    case NC_CHAR:
    case NC_UBYTE: return 1;
    case NC_SHORT:
    case NC_USHORT: return 2;
    case NC_INT:
    case NC_UINT:
    case NC_FLOAT: return 4;
    default: return 8; /* double, int64, uint64 */
    }
}

static void skip_atts(hdr_reader *r) {
    rd_be(r, 4); /* NC_ATTRIBUTE or ABSENT */
    for (uint64_t a = 0, n = rd_count(r); a < n && r->ok; a++) {
        rd_skip(r, pad4(rd_count(r))); /* name */
        uint64_t type = rd_be(r, 4), nelems = rd_count(r);
        rd_skip(r, pad4(nelems * classic_type_size(type)));
    }
}

typedef struct {
    uint64_t begin, bytes; /* bytes: one record's worth for record variables */
    int record;
    char name[NC_MAX_NAME + 1];
} classic_var;

/* Variables' offsets from the header; returns the count, or -1 when the
 * bytes given do not hold the whole header. */
static long parse_classic(hdr_reader *r, int version, uint64_t *numrecs, classic_var **out) {
    uint64_t dimlen[1024];
    rd_skip(r, 4); /* magic */
    *numrecs = rd_count(r);
    rd_be(r, 4); /* NC_DIMENSION or ABSENT */
    uint64_t ndims = rd_count(r);
    for (uint64_t d = 0; d < ndims && r->ok; d++) {
        rd_skip(r, pad4(rd_count(r)));
        uint64_t len = rd_count(r);
        if (d < 1024) dimlen[d] = len;
    }
    skip_atts(r);
    rd_be(r, 4); /* NC_VARIABLE or ABSENT */
    uint64_t nvars = rd_count(r);
    if (!r->ok || ndims > 1024 || nvars > r->n) return -1;
    classic_var *v = ts_calloc(nvars ? nvars : 1, sizeof *v);
    for (uint64_t k = 0; k < nvars && r->ok; k++) {
        uint64_t len = rd_count(r), count = 1;
        if (r->ok && len <= NC_MAX_NAME && r->at + len <= r->n) memcpy(v[k].name, r->p + r->at, len);
        rd_skip(r, pad4(len));
        uint64_t nd = rd_count(r);
        for (uint64_t d = 0; d < nd && r->ok; d++) {
            uint64_t id = rd_count(r);
            uint64_t dl = id < ndims && id < 1024 ? dimlen[id] : 1;
            if (d == 0 && dl == 0)
                v[k].record = 1; /* the unlimited dimension has length 0 in the header */
            else
                count *= dl;
        }
        skip_atts(r);
        uint64_t type = rd_be(r, 4);
        rd_count(r); /* vsize */
        v[k].begin = rd_be(r, version == 1 ? 4 : 8);
        v[k].bytes = count * classic_type_size(type);
    }
    if (!r->ok) {
        free(v);
        return -1;
    }
    *out = v;
    return (long)nvars;
}

/* Bytes of one record: the record variables' sizes padded to 4, except a
 * lone record variable, which is not padded. */
static uint64_t record_size(const classic_var *v, long n) {
    uint64_t size = 0;
    long nrec = 0;
    for (long k = 0; k < n; k++) nrec += v[k].record;
    for (long k = 0; k < n; k++)
        if (v[k].record) size += nrec == 1 ? v[k].bytes : pad4(v[k].bytes);
    return size;
}

static int check_extents(ts_era5_dataset *ds, const src_file *f, const classic_var *v, long n, uint64_t numrecs,
                         uint64_t file_bytes) {
    uint64_t recsize = record_size(v, n);
    for (long k = 0; k < n; k++) {
        if (v[k].record && numrecs == 0) continue;
        uint64_t end = v[k].begin + v[k].bytes + (v[k].record ? (numrecs - 1) * recsize : 0);
        if (end > file_bytes)
            return TS_FAIL(ds->err, ds->errcap,
                           "%s: variable %s: data runs to byte %llu but the file has %llu bytes (truncated download?)",
                           f->path, v[k].name, (unsigned long long)end, (unsigned long long)file_bytes);
    }
    return 0;
}

static int check_classic_extent(ts_era5_dataset *ds, const src_file *f) {
    int format;
    TS_NC_CHECK(nc_inq_format(f->ncid, &format), ds->err, ds->errcap, "%s: %s", f->path, "file");
    if (format != NC_FORMAT_CLASSIC && format != NC_FORMAT_64BIT_OFFSET && format != NC_FORMAT_CDF5) return 0;
    FILE *fp = fopen(f->path, "rb");
    if (!fp) return TS_FAIL(ds->err, ds->errcap, "%s: cannot read: %s", f->path, strerror(errno));
    int rc = 0;
    if (fseek(fp, 0, SEEK_END) != 0) rc = TS_FAIL(ds->err, ds->errcap, "%s: cannot seek: %s", f->path, strerror(errno));
    long size = rc ? -1 : ftell(fp);
    /* the header is usually a few kB: read a little, more if it is longer */
    for (size_t want = 65536; rc == 0 && size > 0; want *= 4) {
        size_t n = era5_min_sz(want, (size_t)size);
        unsigned char *buf = ts_malloc(n);
        rewind(fp);
        if (fread(buf, 1, n, fp) != n)
            rc = TS_FAIL(ds->err, ds->errcap, "%s: cannot read: %s", f->path, strerror(errno));
        hdr_reader r = {.p = buf, .n = n, .wide = format == NC_FORMAT_CDF5, .ok = 1};
        uint64_t numrecs;
        classic_var *v = NULL;
        long nv = rc ? -1 : parse_classic(&r, format == NC_FORMAT_CLASSIC ? 1 : 2, &numrecs, &v);
        free(buf);
        if (nv >= 0) { /* numrecs all ones: a file still being written in streaming mode */
            if (numrecs != (format == NC_FORMAT_CDF5 ? UINT64_MAX : 0xFFFFFFFFu))
                rc = check_extents(ds, f, v, nv, numrecs, (uint64_t)size);
            free(v);
            break;
        }
        if (n == (size_t)size) break; /* netCDF-C opened it, so this cannot happen; nothing to check */
    }
    fclose(fp);
    return rc;
}

int era5_open_files(ts_era5_dataset *ds, const char *const *paths, size_t npaths) {
    ds->file = ts_calloc(npaths, sizeof *ds->file);
    ds->nfiles = npaths;
    for (size_t i = 0; i < npaths; i++) {
        ds->file[i].ncid = -1;
        ds->file[i].path = era5_dup_str(paths[i]);
    }
    for (size_t i = 0; i < npaths; i++) {
        if (era5_ensure_open(ds, &ds->file[i]) || check_classic_extent(ds, &ds->file[i]) || read_axes(ds, &ds->file[i]))
            return -1;
        if (i > 0 && check_grid(ds, &ds->file[i])) return -1;
    }
    return 0;
}
