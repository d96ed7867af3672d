/* ERA5 NetCDF reader: CDS files of either layout, opened together as one
 * dataset of state and forcing channels on one grid, read block by block.
 *
 * Three coordinate systems meet here:
 *   stored   - a file's own order (latitude either way, longitude -180.. or 0..);
 *   source   - the files' grid oriented north to south and, when global,
 *              rolled to start at longitude 0 (every file must agree on it);
 *   exposed  - what read_block serves: the source grid, or its conservative
 *              coarsening onto a WeatherBench grid, after the row rule.
 */
#include "io/era5_read.h"

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

/* Files kept open at once; older ones are closed and reopened on demand,
 * so thousands of daily files stay under the descriptor limit. */
enum { MAX_OPEN_FILES = 64, NAME_CAP = 64 };

#define DEG2RAD (3.14159265358979323846 / 180.0)
#define COORD_TOL 1e-4 /* degrees: float-stored coordinates of the same grid agree to this */
#define LEVEL_TOL 1e-3 /* hPa */

typedef struct {
    char *path;
    int ncid;                  /* -1 while the open-file cache has it closed */
    unsigned long last_use;
    size_t nlat, nlon;         /* stored grid */
    int flip;                  /* stored south to north: source row r is stored row nlat-1-r */
    size_t roll;               /* source column j is stored column (j + roll) % nlon */
    int time_dim, lev_dim, lat_dim, lon_dim; /* -1 when absent */
    size_t ntime;
    int64_t *time;             /* (ntime) unix seconds, increasing */
    size_t nlev;
    double *lev;               /* (nlev) hPa */
    double *lat, *lon;         /* (nlat), (nlon) in source order */
    size_t nvars;
    char **vname;              /* (nvars) the file's variables, listed once at open so that */
    unsigned char *vlev;       /* (nvars) channel lookups need no netCDF call; 1: on levels */
} src_file;

typedef struct {               /* one channel's variable in one file */
    int varid;                 /* -1: this file does not hold the channel */
    int has_time;
    size_t lev;                /* index of the channel's level in the file */
    double scale, offset;      /* value = raw * scale + offset */
    size_t nmiss;
    double miss[3];            /* raw values that mean missing: _FillValue, missing_value, netCDF's default */
} chan_file;

typedef struct {               /* dataset times [t0, t0+n) are the file's records rec0.. */
    size_t t0, n, file, rec0;
    int64_t first;             /* the file's first time, the sort key */
} segment;

typedef struct {
    ts_era5_channel pub;
    char spec[NAME_CAP], var[NAME_CAP];
    char *units, *long_name, *standard_name;
    int on_levels;
    chan_file *in;             /* (nfiles) */
    segment *seg;              /* (nseg) time-varying channels, in time order */
    size_t nseg;
    size_t static_file;        /* static channels: the file whose first record serves every time */
} channel;

typedef struct {               /* source cells overlapping one target cell along one axis */
    long first;                /* first source index; columns are taken modulo the source width */
    size_t n;
    double *w;                 /* (n) overlap: sin-latitude band for rows, degrees for columns */
    double wsum;
} overlap;

typedef struct {
    size_t nrow, ncol;
    overlap *row;              /* (nrow) one per target row */
    overlap *col;              /* (ncol) one per target column */
} regrid;

struct ts_era5_dataset {
    src_file *file;            /* (nfiles) */
    size_t nfiles;
    channel *ch;               /* (nstate + nforcing) state first */
    size_t nstate, nforcing;
    size_t ntime;
    int64_t *time;             /* (ntime) */
    ts_era5_fill fill;
    double *src_area;          /* (source rows) sin-latitude band of each source row, for fill=mean */
    regrid *rg;                /* NULL on the native grid */
    ts_era5_grid grid;
    double *lat, *lon;         /* (grid.nlat), (grid.nlon) */
    unsigned char *mask;       /* (grid.nlat) */
    size_t nopen;
    unsigned long clock;
    char *err;
    size_t errcap;
};

/* ---- errors ----------------------------------------------------------------------- */

static const char *src_name(const char *file) {
    const char *last = strrchr(file, '/');
    if (!last) return file;
    const char *p = last;
    while (p > file && p[-1] != '/') p--;
    return p;
}

__attribute__((format(printf, 2, 3))) static int fail(ts_era5_dataset *ds, const char *fmt, ...) {
    if (ds->err && ds->errcap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ds->err, ds->errcap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int nc_fail(ts_era5_dataset *ds, int rc, const char *path, const char *what, const char *call, int line) {
    int n = (int)strcspn(call, "( ");
    return fail(ds, "%s: %s: %.*s: %s (%s:%d)", path, what, n, call, nc_strerror(rc), src_name(__FILE__), line);
}

/* One line naming the file, the variable (or coordinate), the call and
 * netCDF's own message. */
#define NC_CHECK(ds, path, what, call)                                                  \
    do {                                                                                \
        int rc_ = (call);                                                               \
        if (rc_ != NC_NOERR) return nc_fail((ds), rc_, (path), (what), #call, __LINE__); \
    } while (0)

static void iso_time(int64_t t, char *buf, size_t cap) {
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || !strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm)) snprintf(buf, cap, "%lld s", (long long)t);
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = ts_malloc(n);
    memcpy(d, s, n);
    return d;
}

static size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }

static long mod_l(long a, long n) {
    long m = a % n;
    return m < 0 ? m + n : m;
}

/* ---- attributes --------------------------------------------------------------------- */

/* A text attribute (NC_CHAR or NC_STRING) as a malloc'd string; *out NULL
 * when absent. */
static int get_text_att(ts_era5_dataset *ds, const src_file *f, int varid, const char *what, const char *name,
                        char **out) {
    nc_type type;
    size_t len;
    *out = NULL;
    int rc = nc_inq_att(f->ncid, varid, name, &type, &len);
    if (rc == NC_ENOTATT) return 0;
    if (rc != NC_NOERR) return nc_fail(ds, rc, f->path, what, "nc_inq_att", __LINE__);
    if (type == NC_STRING && len >= 1) {
        char **s = ts_calloc(len, sizeof *s);
        rc = nc_get_att_string(f->ncid, varid, name, s);
        if (rc == NC_NOERR) *out = dup_str(s[0] ? s[0] : "");
        if (rc == NC_NOERR) nc_free_string(len, s);
        free(s);
        if (rc != NC_NOERR) return nc_fail(ds, rc, f->path, what, "nc_get_att_string", __LINE__);
        return 0;
    }
    if (type != NC_CHAR) return fail(ds, "%s: %s: attribute %s is not text", f->path, what, name);
    *out = ts_malloc(len + 1);
    rc = nc_get_att_text(f->ncid, varid, name, *out);
    if (rc != NC_NOERR) {
        free(*out);
        *out = NULL;
        return nc_fail(ds, rc, f->path, what, "nc_get_att_text", __LINE__);
    }
    (*out)[len] = '\0';
    return 0;
}

/* A numeric attribute's first value; *found 0 when absent. */
static int get_num_att(ts_era5_dataset *ds, const src_file *f, int varid, const char *what, const char *name,
                       double *value, int *found) {
    nc_type type;
    size_t len;
    *found = 0;
    int rc = nc_inq_att(f->ncid, varid, name, &type, &len);
    if (rc == NC_ENOTATT) return 0;
    if (rc != NC_NOERR) return nc_fail(ds, rc, f->path, what, "nc_inq_att", __LINE__);
    if (type == NC_CHAR || type == NC_STRING || len < 1)
        return fail(ds, "%s: %s: attribute %s is not a number", f->path, what, name);
    double *v = ts_malloc(len * sizeof *v);
    rc = nc_get_att_double(f->ncid, varid, name, v);
    *value = v[0];
    free(v);
    if (rc != NC_NOERR) return nc_fail(ds, rc, f->path, what, "nc_get_att_double", __LINE__);
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
    static const struct { const char *name; double s; } units[] = {
        {"seconds", 1}, {"second", 1}, {"secs", 1}, {"sec", 1}, {"s", 1},
        {"minutes", 60}, {"minute", 60}, {"mins", 60}, {"min", 60},
        {"hours", 3600}, {"hour", 3600}, {"hrs", 3600}, {"hr", 3600}, {"h", 3600},
        {"days", 86400}, {"day", 86400}, {"d", 86400},
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
    if (get_text_att(ds, f, varid, name, "calendar", &cal)) return -1;
    int ok = !cal || strcasecmp(cal, "proleptic_gregorian") == 0 || strcasecmp(cal, "gregorian") == 0 ||
             strcasecmp(cal, "standard") == 0;
    int proleptic = cal && strcasecmp(cal, "proleptic_gregorian") == 0;
    int rc = 0;
    if (!ok)
        rc = fail(ds, "%s: %s: calendar \"%s\" is not supported (gregorian, standard or proleptic_gregorian)",
                  f->path, name, cal);
    else if (!proleptic && ref_ymd < 15821015) /* mixed Julian/Gregorian before the reform */
        rc = fail(ds, "%s: %s: a gregorian reference date before 1582-10-15 is not supported", f->path, name);
    free(cal);
    return rc;
}

static int read_times(ts_era5_dataset *ds, src_file *f, const char *name, int varid) {
    char *units;
    double per_unit, ref;
    int ymd;
    if (get_text_att(ds, f, varid, name, "units", &units)) return -1;
    int bad = !units || parse_time_units(units, &per_unit, &ref, &ymd) != 0;
    if (bad) {
        fail(ds, "%s: %s: units \"%s\" are not \"seconds|hours|days since DATE\"", f->path, name, units ? units : "");
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
    if (rc != NC_NOERR) return nc_fail(ds, rc, f->path, name, "nc_get_var_double", __LINE__);
    for (size_t i = 1; i < f->ntime; i++)
        if (f->time[i] <= f->time[i - 1]) {
            char a[32];
            iso_time(f->time[i], a, sizeof a);
            return fail(ds, "%s: %s: times do not increase at record %zu (%s)", f->path, name, i, a);
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
    if (rc != NC_NOERR) return nc_fail(ds, rc, old->path, "file", "nc_close", __LINE__);
    return 0;
}

static int ensure_open(ts_era5_dataset *ds, src_file *f) {
    f->last_use = ++ds->clock;
    if (f->ncid >= 0) return 0;
    if (ds->nopen >= MAX_OPEN_FILES && close_lru(ds)) return -1;
    int rc = nc_open(f->path, NC_NOWRITE, &f->ncid);
    if (rc != NC_NOERR) {
        f->ncid = -1;
        struct stat st;
        if (stat(f->path, &st) == 0 && S_ISDIR(st.st_mode))
            return fail(ds, "%s: a folder, not a NetCDF file (data.files names files or globs of files)", f->path);
        return fail(ds, "%s: cannot open as NetCDF (not a NetCDF file, or cut short): nc_open: %s (%s:%d)", f->path,
                    nc_strerror(rc), src_name(__FILE__), __LINE__);
    }
    ds->nopen++;
    return 0;
}

/* ---- a file's axes and orientation -------------------------------------------------------- */

/* The first of `names` that is a dimension with a coordinate variable. */
static int find_axis(ts_era5_dataset *ds, src_file *f, const char *const *names, size_t nnames, int *dimid,
                     int *varid, size_t *len, const char **name) {
    *dimid = -1;
    for (size_t i = 0; i < nnames; i++) {
        int rc = nc_inq_dimid(f->ncid, names[i], dimid);
        if (rc == NC_EBADDIM) continue;
        if (rc != NC_NOERR) return nc_fail(ds, rc, f->path, names[i], "nc_inq_dimid", __LINE__);
        *name = names[i];
        NC_CHECK(ds, f->path, names[i], nc_inq_dimlen(f->ncid, *dimid, len));
        rc = nc_inq_varid(f->ncid, names[i], varid);
        if (rc == NC_ENOTVAR) return fail(ds, "%s: %s: dimension without a coordinate variable", f->path, names[i]);
        if (rc != NC_NOERR) return nc_fail(ds, rc, f->path, names[i], "nc_inq_varid", __LINE__);
        return 0;
    }
    *dimid = -1;
    return 0;
}

static int read_coord(ts_era5_dataset *ds, src_file *f, const char *name, int varid, size_t n, double **out) {
    *out = ts_malloc((n ? n : 1) * sizeof **out);
    NC_CHECK(ds, f->path, name, nc_get_var_double(f->ncid, varid, *out));
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
        return fail(ds, "%s: %s: values are not strictly monotonic", f->path, name);
    for (size_t i = 0; i < n; i++)
        if (!(fabs(stored[i]) <= 90.0 + COORD_TOL)) return fail(ds, "%s: %s: %g is not a latitude", f->path, name, stored[i]);
    f->lat = ts_malloc(n * sizeof *f->lat);
    for (size_t r = 0; r < n; r++) f->lat[r] = stored[f->flip ? n - 1 - r : r];
    return 0;
}

static double wrap360(double x) {
    double y = fmod(x, 360.0);
    return y < 0 ? y + 360.0 : y;
}

/* A global regular grid (-180..180 or 0..360) is rolled to start at the
 * first longitude >= 0; a regional one is kept as stored. */
static int orient_lon(ts_era5_dataset *ds, src_file *f, const char *name, double *stored) {
    size_t n = f->nlon;
    if (!strictly_monotonic(stored, n, 1)) return fail(ds, "%s: %s: values do not increase", f->path, name);
    double step = n > 1 ? (stored[n - 1] - stored[0]) / (double)(n - 1) : 360.0;
    int global = n > 1 && fabs(step * (double)n - 360.0) < COORD_TOL * (double)n;
    f->roll = 0;
    f->lon = ts_malloc(n * sizeof *f->lon);
    if (global)
        for (size_t j = 1; j < n; j++)
            if (wrap360(stored[j]) < wrap360(stored[f->roll])) f->roll = j;
    for (size_t j = 0; j < n; j++) f->lon[j] = global ? wrap360(stored[(j + f->roll) % n]) : stored[j];
    if (global && !strictly_monotonic(f->lon, n, 1))
        return fail(ds, "%s: %s: values do not increase once rolled to start at 0", f->path, name);
    return 0;
}

/* Levels in hPa, whatever the file calls them. */
static int read_levels(ts_era5_dataset *ds, src_file *f, const char *name, int varid) {
    if (read_coord(ds, f, name, varid, f->nlev, &f->lev)) return -1;
    char *units;
    if (get_text_att(ds, f, varid, name, "units", &units)) return -1;
    double to_hpa = 1;
    if (units && strcmp(units, "Pa") == 0) to_hpa = 0.01;
    else if (units && strcasecmp(units, "hPa") != 0 && strncasecmp(units, "millibar", 8) != 0 &&
             strcasecmp(units, "mbar") != 0 && strcasecmp(units, "mb") != 0 && strncasecmp(units, "hectopascal", 11) != 0) {
        fail(ds, "%s: %s: units \"%s\" are not a pressure unit (hPa, millibars, Pa)", f->path, name, units);
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
    if (f->lat_dim < 0) return fail(ds, "%s: latitude: no latitude dimension (looked for latitude, lat)", f->path);
    if (read_coord(ds, f, name, varid, f->nlat, &stored)) return -1;
    int rc = orient_lat(ds, f, name, stored);
    free(stored);
    if (rc) return -1;
    if (find_axis(ds, f, lon_names, 2, &f->lon_dim, &varid, &f->nlon, &name)) return -1;
    if (f->lon_dim < 0) return fail(ds, "%s: longitude: no longitude dimension (looked for longitude, lon)", f->path);
    if (read_coord(ds, f, name, varid, f->nlon, &stored)) return -1;
    rc = orient_lon(ds, f, name, stored);
    free(stored);
    return rc;
}

/* Every variable's name, and whether it runs along the level dimension. */
static int list_vars(ts_era5_dataset *ds, src_file *f) {
    int nvars, nd, dims[NC_MAX_VAR_DIMS];
    NC_CHECK(ds, f->path, "file", nc_inq_nvars(f->ncid, &nvars));
    f->nvars = (size_t)nvars;
    f->vname = ts_calloc(f->nvars, sizeof *f->vname);
    f->vlev = ts_calloc(f->nvars, 1);
    for (int v = 0; v < nvars; v++) {
        char name[NC_MAX_NAME + 1];
        NC_CHECK(ds, f->path, "file", nc_inq_varname(f->ncid, v, name));
        NC_CHECK(ds, f->path, name, nc_inq_varndims(f->ncid, v, &nd));
        NC_CHECK(ds, f->path, name, nc_inq_vardimid(f->ncid, v, dims));
        for (int i = 0; i < nd; i++) f->vlev[v] |= f->lev_dim >= 0 && dims[i] == f->lev_dim;
        f->vname[v] = dup_str(name);
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

static int same_coords(const double *a, const double *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!(fabs(a[i] - b[i]) <= COORD_TOL)) return 0;
    return 1;
}

/* Every file must hold the same grid once oriented. */
static int check_grid(ts_era5_dataset *ds, const src_file *f) {
    const src_file *g = &ds->file[0];
    if (f->nlat != g->nlat || !same_coords(f->lat, g->lat, f->nlat))
        return fail(ds, "%s: latitude: %zu rows from %g to %g do not match %s's %zu rows from %g to %g (all files must share one grid)",
                    f->path, f->nlat, f->lat[0], f->lat[f->nlat - 1], g->path, g->nlat, g->lat[0], g->lat[g->nlat - 1]);
    if (f->nlon != g->nlon || !same_coords(f->lon, g->lon, f->nlon))
        return fail(ds, "%s: longitude: %zu columns from %g to %g do not match %s's %zu columns from %g to %g (all files must share one grid)",
                    f->path, f->nlon, f->lon[0], f->lon[f->nlon - 1], g->path, g->nlon, g->lon[0], g->lon[g->nlon - 1]);
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
    int wide;                  /* CDF-5: 8-byte counts */
    int ok;                    /* 0 once a read ran past the bytes we have */
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
    if (bytes > r->n - r->at) r->ok = 0, r->at = r->n;
    else r->at += bytes;
}

static uint64_t pad4(uint64_t n) { return (n + 3) & ~(uint64_t)3; }

static size_t classic_type_size(uint64_t type) {
    switch (type) {
    case NC_BYTE: case NC_CHAR: case NC_UBYTE: return 1;
    case NC_SHORT: case NC_USHORT: return 2;
    case NC_INT: case NC_UINT: case NC_FLOAT: return 4;
    default: return 8; /* double, int64, uint64 */
    }
}

static void skip_atts(hdr_reader *r) {
    rd_be(r, 4); /* NC_ATTRIBUTE or ABSENT */
    for (uint64_t a = 0, n = rd_count(r); a < n && r->ok; a++) {
        rd_skip(r, pad4(rd_count(r)));      /* name */
        uint64_t type = rd_be(r, 4), nelems = rd_count(r);
        rd_skip(r, pad4(nelems * classic_type_size(type)));
    }
}

typedef struct {
    uint64_t begin, bytes;     /* bytes: one record's worth for record variables */
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
            if (d == 0 && dl == 0) v[k].record = 1; /* the unlimited dimension has length 0 in the header */
            else count *= dl;
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
            return fail(ds, "%s: variable %s: data runs to byte %llu but the file has %llu bytes (truncated download?)",
                        f->path, v[k].name, (unsigned long long)end, (unsigned long long)file_bytes);
    }
    return 0;
}

static int check_classic_extent(ts_era5_dataset *ds, const src_file *f) {
    int format;
    NC_CHECK(ds, f->path, "file", nc_inq_format(f->ncid, &format));
    if (format != NC_FORMAT_CLASSIC && format != NC_FORMAT_64BIT_OFFSET && format != NC_FORMAT_CDF5) return 0;
    FILE *fp = fopen(f->path, "rb");
    if (!fp) return fail(ds, "%s: cannot read: %s", f->path, strerror(errno));
    int rc = 0;
    if (fseek(fp, 0, SEEK_END) != 0) rc = fail(ds, "%s: cannot seek: %s", f->path, strerror(errno));
    long size = rc ? -1 : ftell(fp);
    /* the header is usually a few kB: read a little, more if it is longer */
    for (size_t want = 65536; rc == 0 && size > 0; want *= 4) {
        size_t n = min_sz(want, (size_t)size);
        unsigned char *buf = ts_malloc(n);
        rewind(fp);
        if (fread(buf, 1, n, fp) != n) rc = fail(ds, "%s: cannot read: %s", f->path, strerror(errno));
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

static int open_files(ts_era5_dataset *ds, const char *const *paths, size_t npaths) {
    ds->file = ts_calloc(npaths, sizeof *ds->file);
    ds->nfiles = npaths;
    for (size_t i = 0; i < npaths; i++) {
        ds->file[i].ncid = -1;
        ds->file[i].path = dup_str(paths[i]);
    }
    for (size_t i = 0; i < npaths; i++) {
        if (ensure_open(ds, &ds->file[i]) || check_classic_extent(ds, &ds->file[i]) || read_axes(ds, &ds->file[i]))
            return -1;
        if (i > 0 && check_grid(ds, &ds->file[i])) return -1;
    }
    return 0;
}

/* ---- channels -------------------------------------------------------------------------- */

static void dim_list(const src_file *f, const int *dims, int nd, char *buf, size_t cap) {
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < nd && used < cap; i++) {
        char name[NC_MAX_NAME + 1] = "?";
        nc_inq_dimname(f->ncid, dims[i], name); /* a name for a message only: "?" if it fails */
        int n = snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", name);
        if (n < 0) break;
        used += (size_t)n;
    }
}

/* The variable must be (time, [level,] latitude, longitude); a static
 * channel may also come without time. */
static int check_dims(ts_era5_dataset *ds, const channel *c, const src_file *f, const int *dims, int nd, int *has_time) {
    int want[4], nw = 0;
    *has_time = nd > 0 && dims[0] == f->time_dim && f->time_dim >= 0;
    if (*has_time || !c->pub.is_static) want[nw++] = f->time_dim;
    if (c->on_levels) want[nw++] = f->lev_dim;
    want[nw++] = f->lat_dim;
    want[nw++] = f->lon_dim;
    int ok = nd == nw;
    for (int i = 0; ok && i < nw; i++) ok = dims[i] == want[i] && want[i] >= 0;
    if (ok) return 0;
    char have[256], expect[256];
    dim_list(f, dims, nd, have, sizeof have);
    if (want[0] < 0) /* no time dimension in the file at all */
        return fail(ds, "%s: variable %s has dimensions (%s) and the file has no time dimension", f->path, c->var, have);
    dim_list(f, want, nw, expect, sizeof expect);
    return fail(ds, "%s: variable %s has dimensions (%s); expected (%s)%s", f->path, c->var, have, expect,
                strstr(have, "expver") ? " (ERA5/ERA5T mixed along expver: select one expver first)" : "");
}

static int find_level(ts_era5_dataset *ds, const channel *c, const src_file *f, size_t *index) {
    for (size_t k = 0; k < f->nlev; k++)
        if (fabs(f->lev[k] - c->pub.level_hpa) < LEVEL_TOL) {
            *index = k;
            return 0;
        }
    char have[256] = "";
    size_t used = 0;
    for (size_t k = 0; k < f->nlev && used < sizeof have; k++) {
        int n = snprintf(have + used, sizeof have - used, "%s%g", k ? ", " : "", f->lev[k]);
        if (n < 0) break;
        used += (size_t)n;
    }
    return fail(ds, "%s: variable %s: no level %g hPa for channel %s (levels: %s)", f->path, c->var, c->pub.level_hpa,
                c->spec, have);
}

/* Which raw values mean "missing": _FillValue and missing_value, or
 * netCDF's default fill of the type when the file declares no _FillValue. */
static int read_missing(ts_era5_dataset *ds, const src_file *f, int varid, const char *var, chan_file *cf) {
    double v;
    int found;
    nc_type type;
    NC_CHECK(ds, f->path, var, nc_inq_vartype(f->ncid, varid, &type));
    if (type == NC_CHAR || type == NC_STRING)
        return fail(ds, "%s: variable %s holds text, not numbers", f->path, var);
    cf->nmiss = 0;
    if (get_num_att(ds, f, varid, var, "_FillValue", &v, &found)) return -1;
    if (found) cf->miss[cf->nmiss++] = v;
    else if (type == NC_FLOAT) cf->miss[cf->nmiss++] = NC_FILL_FLOAT;
    else if (type == NC_DOUBLE) cf->miss[cf->nmiss++] = NC_FILL_DOUBLE;
    else if (type == NC_SHORT) cf->miss[cf->nmiss++] = NC_FILL_SHORT;
    else if (type == NC_INT) cf->miss[cf->nmiss++] = NC_FILL_INT;
    if (get_num_att(ds, f, varid, var, "missing_value", &v, &found)) return -1;
    if (found) cf->miss[cf->nmiss++] = v;
    if (get_num_att(ds, f, varid, var, "scale_factor", &cf->scale, &found)) return -1;
    if (!found) cf->scale = 1;
    if (get_num_att(ds, f, varid, var, "add_offset", &cf->offset, &found)) return -1;
    if (!found) cf->offset = 0;
    return 0;
}

/* Does file f hold `name` on levels (on_levels 1) or not (0)? */
static int has_var(const src_file *f, const char *name, int on_levels) {
    for (size_t v = 0; v < f->nvars; v++)
        if (strcmp(f->vname[v], name) == 0) return f->vlev[v] == on_levels;
    return 0;
}

static int bind_file(ts_era5_dataset *ds, channel *c, size_t fi) {
    src_file *f = &ds->file[fi];
    chan_file *cf = &c->in[fi];
    int varid, nd, dims[NC_MAX_VAR_DIMS];
    cf->varid = -1;
    if (!has_var(f, c->var, c->on_levels)) return 0;
    NC_CHECK(ds, f->path, c->var, nc_inq_varid(f->ncid, c->var, &varid));
    NC_CHECK(ds, f->path, c->var, nc_inq_varndims(f->ncid, varid, &nd));
    NC_CHECK(ds, f->path, c->var, nc_inq_vardimid(f->ncid, varid, dims));
    if (check_dims(ds, c, f, dims, nd, &cf->has_time)) return -1;
    if (c->on_levels && find_level(ds, c, f, &cf->lev)) return -1;
    if (read_missing(ds, f, varid, c->var, cf)) return -1;
    if (!c->units && (get_text_att(ds, f, varid, c->var, "units", &c->units) ||
                      get_text_att(ds, f, varid, c->var, "long_name", &c->long_name) ||
                      get_text_att(ds, f, varid, c->var, "standard_name", &c->standard_name)))
        return -1;
    if (!c->units) c->units = dup_str("");
    cf->varid = varid;
    return 0;
}

static void file_list(const ts_era5_dataset *ds, char *buf, size_t cap) {
    size_t used = 0, shown = ds->nfiles < 4 ? ds->nfiles : 3;
    buf[0] = '\0';
    for (size_t i = 0; i < shown && used < cap; i++) {
        int n = snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", ds->file[i].path);
        if (n < 0) return;
        used += (size_t)n;
    }
    if (shown < ds->nfiles && used < cap) snprintf(buf + used, cap - used, " and %zu more", ds->nfiles - shown);
}

static int any_file_has(const ts_era5_dataset *ds, const char *name, int on_levels) {
    for (size_t i = 0; i < ds->nfiles; i++)
        if (has_var(&ds->file[i], name, on_levels)) return 1;
    return 0;
}

/* "t2m" (a single-level name in the files), "z500" (name + level in hPa),
 * "z_surface" (the single-level file's z). A full single-level name wins
 * over a split, so u10 is the 10 m wind, never u at 10 hPa. */
static void parse_channel(const ts_era5_dataset *ds, channel *c, const char *tok /* < NAME_CAP */, int forcing) {
    memcpy(c->spec, tok, strlen(tok) + 1);
    if (forcing && strcmp(tok, "z_surface") == 0) {
        snprintf(c->var, sizeof c->var, "z");
        c->pub.is_static = 1;
        return;
    }
    int sl = any_file_has(ds, tok, 0);
    size_t len = strlen(tok), k = len;
    while (k > 0 && isdigit((unsigned char)tok[k - 1])) k--;
    if (sl || k == 0 || k == len) {
        memcpy(c->var, tok, len + 1);
        c->pub.is_static = forcing && strcmp(tok, "lsm") == 0;
        return;
    }
    memcpy(c->var, tok, k);
    c->var[k] = '\0';
    c->on_levels = 1;
    c->pub.level_hpa = atof(tok + k);
}

static int unbound_error(ts_era5_dataset *ds, const channel *c, int forcing) {
    char files[512];
    const char *list = forcing ? "forcings" : "variables";
    file_list(ds, files, sizeof files);
    if (!c->on_levels && any_file_has(ds, c->var, 1))
        return fail(ds, "%s: variable %s is on pressure levels: name a level, e.g. %s500 (channel %s of data.%s)", files,
                    c->var, c->var, c->spec, list);
    if (c->on_levels)
        return fail(ds, "%s: variable %s not found: neither a single-level %s nor %s on pressure levels (channel %s of data.%s)",
                    files, c->spec, c->spec, c->var, c->spec, list);
    return fail(ds, "%s: variable %s not found (channel %s of data.%s)", files, c->var, c->spec, list);
}

/* Files outer, channels inner: each file is opened once even when the
 * open-file cache holds fewer files than the dataset. */
static int bind_channels(ts_era5_dataset *ds) {
    size_t nch = ds->nstate + ds->nforcing;
    for (size_t i = 0; i < ds->nfiles; i++) {
        if (ensure_open(ds, &ds->file[i])) return -1;
        for (size_t k = 0; k < nch; k++)
            if (bind_file(ds, &ds->ch[k], i)) return -1;
    }
    for (size_t k = 0; k < nch; k++) {
        int bound = 0;
        for (size_t i = 0; i < ds->nfiles; i++) bound |= ds->ch[k].in[i].varid >= 0;
        if (!bound) return unbound_error(ds, &ds->ch[k], k >= ds->nstate);
    }
    return 0;
}

static size_t count_tokens(const char *list) {
    size_t n = 0;
    const char *p = list;
    while (p && *p) {
        size_t len = strcspn(p, ",");
        size_t a = 0, b = len;
        while (a < b && isspace((unsigned char)p[a])) a++;
        n += a < b;
        p += len + (p[len] == ',');
    }
    return n;
}

/* Channels from a comma list into ds->ch starting at *next. */
static int add_channels(ts_era5_dataset *ds, const char *list, int forcing, size_t *next) {
    const char *p = list;
    while (p && *p) {
        size_t len = strcspn(p, ","), a = 0, b = len;
        while (a < b && isspace((unsigned char)p[a])) a++;
        while (b > a && isspace((unsigned char)p[b - 1])) b--;
        if (b - a >= NAME_CAP) return fail(ds, "channel name \"%.*s\" is too long", (int)(b - a), p + a);
        if (a < b) {
            char tok[NAME_CAP];
            memcpy(tok, p + a, b - a);
            tok[b - a] = '\0';
            for (size_t i = 0; i < *next; i++)
                if (strcmp(ds->ch[i].spec, tok) == 0)
                    return fail(ds, "data.%s: channel %s is listed twice", forcing ? "forcings" : "variables", tok);
            channel *c = &ds->ch[(*next)++];
            c->in = ts_calloc(ds->nfiles, sizeof *c->in);
            parse_channel(ds, c, tok, forcing);
        }
        p += len + (p[len] == ',');
    }
    return 0;
}

/* ---- the time axis ---------------------------------------------------------------------- */

static int by_first_time(const void *a, const void *b) {
    const segment *x = a, *y = b;
    return (x->first > y->first) - (x->first < y->first);
}

/* The channel's files in time order, one segment each; they must not
 * overlap. */
static int build_segments(ts_era5_dataset *ds, channel *c) {
    c->seg = ts_calloc(ds->nfiles, sizeof *c->seg);
    c->nseg = 0;
    for (size_t i = 0; i < ds->nfiles; i++)
        if (c->in[i].varid >= 0 && c->in[i].has_time && ds->file[i].ntime > 0)
            c->seg[c->nseg++] = (segment){.file = i, .n = ds->file[i].ntime, .first = ds->file[i].time[0]};
    if (c->nseg == 0) return fail(ds, "%s: variable %s (channel %s) has no valid times", ds->file[0].path, c->var, c->spec);
    qsort(c->seg, c->nseg, sizeof *c->seg, by_first_time);
    size_t t0 = 0;
    for (size_t s = 0; s < c->nseg; s++) {
        const src_file *f = &ds->file[c->seg[s].file];
        if (s > 0) {
            const src_file *p = &ds->file[c->seg[s - 1].file];
            if (f->time[0] <= p->time[p->ntime - 1]) {
                char a[32];
                iso_time(f->time[0], a, sizeof a);
                return fail(ds, "%s: variable %s: time %s is also in %s (files overlap in time)", f->path, c->var, a,
                            p->path);
            }
        }
        c->seg[s].t0 = t0;
        t0 += f->ntime;
    }
    return 0;
}

static int64_t seg_time(const ts_era5_dataset *ds, const channel *c, size_t t, size_t *s) {
    while (*s + 1 < c->nseg && c->seg[*s + 1].t0 <= t) (*s)++;
    const segment *g = &c->seg[*s];
    return ds->file[g->file].time[g->rec0 + t - g->t0];
}

static size_t seg_total(const channel *c) { return c->nseg ? c->seg[c->nseg - 1].t0 + c->seg[c->nseg - 1].n : 0; }

/* Every time-varying channel must cover exactly the dataset's times. */
static int match_times(ts_era5_dataset *ds, const channel *ref, const channel *c) {
    size_t n = seg_total(c), s = 0;
    for (size_t t = 0; t < ds->ntime && t < n; t++) {
        int64_t tc = seg_time(ds, c, t, &s);
        if (tc == ds->time[t]) continue;
        char a[32], b[32];
        iso_time(ds->time[t], a, sizeof a);
        iso_time(tc, b, sizeof b);
        return fail(ds, "%s: variable %s: valid time %s where %s has %s (every channel needs the same times)",
                    ds->file[c->seg[s].file].path, c->var, b, ref->spec, a);
    }
    if (n == ds->ntime) return 0;
    char a[32];
    const segment *last = &c->seg[c->nseg - 1];
    iso_time(n < ds->ntime ? ds->time[n] : seg_time(ds, c, ds->ntime, &s), a, sizeof a);
    return fail(ds, "%s: variable %s: %zu valid times where %s has %zu (%s is in one and not the other)",
                ds->file[last->file].path, c->var, n, ref->spec, ds->ntime, a);
}

static void pick_static(ts_era5_dataset *ds, channel *c) {
    int64_t best = INT64_MAX;
    int any = 0;
    for (size_t i = 0; i < ds->nfiles; i++) {
        if (c->in[i].varid < 0) continue;
        const src_file *f = &ds->file[i];
        int64_t first = c->in[i].has_time && f->ntime ? f->time[0] : INT64_MAX;
        if (!any || first < best) c->static_file = i, best = first;
        any = 1;
    }
}

static int build_time_axis(ts_era5_dataset *ds) {
    const channel *ref = NULL;
    size_t nch = ds->nstate + ds->nforcing;
    for (size_t i = 0; i < nch; i++) {
        channel *c = &ds->ch[i];
        if (c->pub.is_static) {
            pick_static(ds, c);
            continue;
        }
        if (build_segments(ds, c)) return -1;
        if (!ref) {
            ref = c;
            ds->ntime = seg_total(c);
            ds->time = ts_malloc(ds->ntime * sizeof *ds->time);
            size_t s = 0;
            for (size_t t = 0; t < ds->ntime; t++) ds->time[t] = seg_time(ds, c, t, &s);
        } else if (match_times(ds, ref, c)) {
            return -1;
        }
    }
    if (!ref) return fail(ds, "%s: no time-varying channel among data.variables and data.forcings", ds->file[0].path);
    return 0;
}

/* ---- areas and conservative coarsening ------------------------------------------------------ */

/* Bounds of row i of latitudes x (decreasing): midpoints between
 * neighbours, half a spacing beyond the ends clamped to +-90 (WeatherBench's
 * +-90 for every global grid). */
static void lat_bounds(const double *x, size_t n, size_t i, double *hi, double *lo) {
    double up = i > 0 ? 0.5 * (x[i - 1] + x[i]) : (n > 1 ? x[0] + 0.5 * (x[0] - x[1]) : 90.0);
    double dn = i + 1 < n ? 0.5 * (x[i] + x[i + 1]) : (n > 1 ? x[n - 1] - 0.5 * (x[n - 2] - x[n - 1]) : -90.0);
    *hi = up > 90.0 ? 90.0 : up;
    *lo = dn < -90.0 ? -90.0 : dn;
}

static double band(double hi, double lo) { return hi > lo ? sin(hi * DEG2RAD) - sin(lo * DEG2RAD) : 0.0; }

static void source_areas(ts_era5_dataset *ds) {
    const src_file *g = &ds->file[0];
    ds->src_area = ts_malloc(g->nlat * sizeof *ds->src_area);
    for (size_t i = 0; i < g->nlat; i++) {
        double hi, lo;
        lat_bounds(g->lat, g->nlat, i, &hi, &lo);
        ds->src_area[i] = band(hi, lo);
    }
}

static void free_overlaps(overlap *o, size_t n) {
    for (size_t i = 0; o && i < n; i++) free(o[i].w);
    free(o);
}

static void free_regrid(regrid *rg) {
    if (!rg) return;
    free_overlaps(rg->row, rg->nrow);
    free_overlaps(rg->col, rg->ncol);
    free(rg);
}

/* Source rows overlapping target band [lo, hi], weighted by sin-latitude. */
static void row_overlap(const double *slat, size_t ns, double hi, double lo, overlap *o) {
    o->w = ts_malloc(ns * sizeof *o->w);
    o->n = 0, o->wsum = 0, o->first = -1;
    for (size_t i = 0; i < ns; i++) {
        double shi, slo;
        lat_bounds(slat, ns, i, &shi, &slo);
        double w = band(shi < hi ? shi : hi, slo > lo ? slo : lo);
        if (w <= 0) continue;
        if (o->first < 0) o->first = (long)i;
        o->w[o->n++] = w, o->wsum += w; /* source rows are decreasing, so overlaps are contiguous */
    }
}

/* Source columns (unwrapped index j, cell [lon0 + (j-1/2)d, lon0 + (j+1/2)d))
 * overlapping target interval [a, b), weighted by overlap in degrees. */
static void col_overlap(double lon0, double d, double a, double b, overlap *o) {
    long j0 = (long)floor((a - lon0) / d + 0.5), j1 = (long)ceil((b - lon0) / d + 0.5) - 1;
    o->w = ts_malloc((size_t)(j1 - j0 + 1) * sizeof *o->w);
    o->n = 0, o->wsum = 0, o->first = j0;
    for (long j = j0; j <= j1; j++) {
        double clo = lon0 + ((double)j - 0.5) * d, chi = lon0 + ((double)j + 0.5) * d;
        double w = (chi < b ? chi : b) - (clo > a ? clo : a);
        if (w <= 0 && o->n == 0) { /* a rounding sliver before the first real overlap */
            o->first = j + 1;
            continue;
        }
        o->w[o->n++] = w > 0 ? w : 0, o->wsum += w > 0 ? w : 0;
    }
}

/* The source must cover the globe on a regular longitude grid, or the
 * coarsening would not conserve anything. */
static int check_global(ts_era5_dataset *ds, double *step) {
    const src_file *g = &ds->file[0];
    double hi, lo, tmp;
    lat_bounds(g->lat, g->nlat, 0, &hi, &tmp);
    lat_bounds(g->lat, g->nlat, g->nlat - 1, &tmp, &lo);
    *step = 360.0 / (double)g->nlon;
    int regular = g->nlon > 1;
    for (size_t j = 1; regular && j < g->nlon; j++) regular = fabs(g->lon[j] - g->lon[j - 1] - *step) < COORD_TOL;
    if (hi < 90.0 - COORD_TOL || lo > -90.0 + COORD_TOL || !regular)
        return fail(ds, "%s: latitude/longitude: data.grid needs a global regular source grid (this one spans latitudes %g..%g, %zu longitudes)",
                    g->path, g->lat[0], g->lat[g->nlat - 1], g->nlon);
    return 0;
}

static int setup_regrid(ts_era5_dataset *ds, size_t nlat, size_t nlon, double *lat, double *lon) {
    const src_file *g = &ds->file[0];
    double d = 180.0 / (double)nlat, step;
    for (size_t i = 0; i < nlat; i++) lat[i] = 90.0 - 0.5 * d - (double)i * d;
    for (size_t j = 0; j < nlon; j++) lon[j] = (double)j * d;
    if (g->nlat == nlat && g->nlon == nlon && same_coords(g->lat, lat, nlat) && same_coords(g->lon, lon, nlon))
        return 0; /* already on the target grid */
    if (check_global(ds, &step)) return -1;
    regrid *rg = ts_calloc(1, sizeof *rg);
    rg->nrow = nlat, rg->ncol = nlon;
    rg->row = ts_calloc(nlat, sizeof *rg->row);
    rg->col = ts_calloc(nlon, sizeof *rg->col);
    ds->rg = rg;
    for (size_t i = 0; i < nlat; i++) row_overlap(g->lat, g->nlat, lat[i] + 0.5 * d, lat[i] - 0.5 * d, &rg->row[i]);
    for (size_t j = 0; j < nlon; j++) col_overlap(g->lon[0], step, lon[j] - 0.5 * d, lon[j] + 0.5 * d, &rg->col[j]);
    return 0;
}

/* ---- the exposed grid ---------------------------------------------------------------------- */

int ts_era5_row_rule_rows(size_t nrows, size_t multiple, ts_era5_row_rule rule, size_t *rows_out,
                          size_t *data_rows_out, char *err, size_t errcap) {
    *rows_out = *data_rows_out = nrows;
    if (multiple <= 1 || nrows % multiple == 0) return 0;
    if (rule == TS_ERA5_ROWS_PAD) {
        *rows_out = (nrows + multiple - 1) / multiple * multiple;
        return 0;
    }
    if (nrows % 2 == 1 && (nrows - 1) % multiple == 0) {
        *rows_out = *data_rows_out = nrows - 1;
        return 0;
    }
    if (err && errcap)
        snprintf(err, errcap,
                 "data.row_rule=drop_south: %zu latitude rows%s are not a multiple of the window height %zu "
                 "(model.window); use data.row_rule=pad or another window",
                 nrows, nrows % 2 ? " less the south-pole row" : "", multiple);
    return -1;
}

static int setup_grid(ts_era5_dataset *ds, const ts_era5_open_opts *o) {
    const src_file *g = &ds->file[0];
    size_t nlat = g->nlat, nlon = g->nlon;
    if (o->grid == TS_ERA5_GRID_5625) nlat = 32, nlon = 64;
    if (o->grid == TS_ERA5_GRID_140625) nlat = 128, nlon = 256;
    double *lat = ts_malloc(nlat * sizeof *lat), *lon = ts_malloc(nlon * sizeof *lon); /* (nlat), (nlon) */
    if (o->grid == TS_ERA5_GRID_NATIVE) {
        memcpy(lat, g->lat, nlat * sizeof *lat);
        memcpy(lon, g->lon, nlon * sizeof *lon);
    }
    ds->lon = lon;
    if (o->grid != TS_ERA5_GRID_NATIVE && setup_regrid(ds, nlat, nlon, lat, lon)) {
        free(lat);
        return -1;
    }
    size_t rows, data_rows;
    if (ts_era5_row_rule_rows(nlat, o->row_multiple, o->row_rule, &rows, &data_rows, ds->err, ds->errcap)) {
        free(lat);
        return -1;
    }
    ds->lat = ts_malloc(rows * sizeof *ds->lat);
    ds->mask = ts_malloc(rows);
    for (size_t i = 0; i < rows; i++) {
        ds->lat[i] = i < data_rows ? lat[i] : -90.0; /* padded rows: at the pole, masked */
        ds->mask[i] = i < data_rows;
    }
    free(lat);
    ds->grid = (ts_era5_grid){.nlat = rows, .nlon = nlon, .nlat_data = data_rows, .lat = ds->lat, .lon = ds->lon,
                              .row_mask = ds->mask, .nlat_file = g->nlat, .nlon_file = g->nlon,
                              .dropped_south = rows < nlat};
    return 0;
}

/* ---- reading ---------------------------------------------------------------------------------- */

/* Which file and record hold channel c at dataset time t. */
static void locate(const channel *c, size_t t, size_t *file, size_t *rec) {
    if (c->pub.is_static) {
        *file = c->static_file, *rec = 0;
        return;
    }
    size_t lo = 0, hi = c->nseg;
    while (hi - lo > 1) { /* last segment starting at or before t */
        size_t mid = (lo + hi) / 2;
        if (c->seg[mid].t0 <= t) lo = mid;
        else hi = mid;
    }
    *file = c->seg[lo].file, *rec = c->seg[lo].rec0 + t - c->seg[lo].t0;
}

static int is_missing(const chan_file *cf, double raw) {
    if (isnan(raw)) return 1;
    for (size_t k = 0; k < cf->nmiss; k++)
        if (raw == cf->miss[k]) return 1;
    return 0;
}

/* Stored rows [s0, s0+nr) x stored columns [sc, sc+len) as raw values. */
static int get_stored(ts_era5_dataset *ds, const channel *c, size_t fi, size_t rec, size_t s0, size_t nr, size_t sc,
                      size_t len, double *raw /* (nr, len) */) {
    const chan_file *cf = &c->in[fi];
    size_t start[4], count[4], nd = 0;
    if (cf->has_time) start[nd] = rec, count[nd++] = 1;
    if (c->on_levels) start[nd] = cf->lev, count[nd++] = 1;
    start[nd] = s0, count[nd++] = nr;
    start[nd] = sc, count[nd++] = len;
    NC_CHECK(ds, ds->file[fi].path, c->var, nc_get_vara_double(ds->file[fi].ncid, cf->varid, start, count, raw));
    return 0;
}

/* Source rows [r0, r0+nr) x source columns c0.. (taken modulo the width;
 * nc <= width) of channel c at time t: unpacked, missing values as NaN.
 * The columns are at most three contiguous stored runs (the roll and the
 * wrap), each one nc_get_vara. */
static int read_source(ts_era5_dataset *ds, const channel *c, size_t t, size_t r0, size_t nr, long c0, size_t nc,
                       float *out /* (nr, nc) */, size_t *file_used) {
    size_t fi, rec;
    locate(c, t, &fi, &rec);
    *file_used = fi;
    src_file *f = &ds->file[fi];
    const chan_file *cf = &c->in[fi];
    if (ensure_open(ds, f)) return -1;
    size_t s0 = f->flip ? f->nlat - r0 - nr : r0;
    double *raw = ts_malloc(nr * min_sz(nc, f->nlon) * sizeof *raw); /* (nr, run length) */
    for (size_t j = 0; j < nc;) {
        size_t sc = (size_t)mod_l(c0 + (long)j + (long)f->roll, (long)f->nlon);
        size_t len = min_sz(nc - j, f->nlon - sc);
        if (get_stored(ds, c, fi, rec, s0, nr, sc, len, raw)) {
            free(raw);
            return -1;
        }
        for (size_t k = 0; k < nr; k++) {
            const double *src = raw + (f->flip ? nr - 1 - k : k) * len;
            float *dst = out + k * nc + j;
            for (size_t i = 0; i < len; i++)
                dst[i] = is_missing(cf, src[i]) ? NAN : (float)(src[i] * cf->scale + cf->offset);
        }
        j += len;
    }
    free(raw);
    return 0;
}

/* Area-weighted mean of the valid values of the whole source field (the
 * fill=mean policy: the same value whatever block a rank reads). */
static int field_mean(ts_era5_dataset *ds, const channel *c, size_t t, double *mean) {
    const src_file *g = &ds->file[0];
    size_t fi;
    float *x = ts_malloc(g->nlat * g->nlon * sizeof *x); /* (nlat, nlon) */
    int rc = read_source(ds, c, t, 0, g->nlat, 0, g->nlon, x, &fi);
    double sum = 0, wsum = 0;
    for (size_t i = 0; rc == 0 && i < g->nlat; i++)
        for (size_t j = 0; j < g->nlon; j++)
            if (!isnan(x[i * g->nlon + j])) sum += ds->src_area[i] * x[i * g->nlon + j], wsum += ds->src_area[i];
    free(x);
    if (rc) return -1;
    if (!(wsum > 0)) {
        char a[32];
        iso_time(ds->time[t], a, sizeof a);
        return fail(ds, "%s: variable %s (channel %s) at %s: every value is missing, nothing to fill with",
                    ds->file[fi].path, c->var, c->spec, a);
    }
    *mean = sum / wsum;
    return 0;
}

static int apply_fill(ts_era5_dataset *ds, const channel *c, size_t t, size_t fi, float *x, size_t n) {
    size_t missing = 0;
    for (size_t i = 0; i < n; i++) missing += isnan(x[i]) != 0;
    if (missing == 0) return 0;
    if (ds->fill == TS_ERA5_FILL_ERROR) {
        char a[32];
        iso_time(ds->time[t], a, sizeof a);
        return fail(ds, "%s: variable %s (channel %s) at %s (time %zu): %zu missing values (_FillValue, missing_value or NaN); set data.fill=zero or data.fill=mean to fill them",
                    ds->file[fi].path, c->var, c->spec, a, t, missing);
    }
    double value = 0;
    if (ds->fill == TS_ERA5_FILL_MEAN && field_mean(ds, c, t, &value)) return -1;
    for (size_t i = 0; i < n; i++)
        if (isnan(x[i])) x[i] = (float)value;
    return 0;
}

/* Target cells from the source cells they overlap: sum of overlap-weighted
 * values over the sum of overlaps (area = sin-latitude band x longitude). */
static int read_coarse(ts_era5_dataset *ds, const channel *c, size_t t, size_t row0, size_t nr, size_t col0,
                       size_t nc, float *out /* (nr, nc) */) {
    const regrid *rg = ds->rg;
    const src_file *g = &ds->file[0];
    const overlap *r_first = &rg->row[row0], *r_last = &rg->row[row0 + nr - 1];
    const overlap *c_first = &rg->col[col0], *c_last = &rg->col[col0 + nc - 1];
    size_t sr0 = (size_t)r_first->first, nsr = (size_t)r_last->first + r_last->n - sr0;
    long sc0 = c_first->first;
    size_t nsc = min_sz((size_t)(c_last->first + (long)c_last->n - sc0), g->nlon);
    float *src = ts_malloc(nsr * nsc * sizeof *src); /* (nsr, nsc) source rows x columns from sc0 */
    size_t fi;
    if (read_source(ds, c, t, sr0, nsr, sc0, nsc, src, &fi) || apply_fill(ds, c, t, fi, src, nsr * nsc)) {
        free(src);
        return -1;
    }
    for (size_t I = 0; I < nr; I++) {
        const overlap *ro = &rg->row[row0 + I];
        for (size_t J = 0; J < nc; J++) {
            const overlap *co = &rg->col[col0 + J];
            double acc = 0;
            for (size_t a = 0; a < ro->n; a++) {
                const float *srow = src + ((size_t)ro->first + a - sr0) * nsc;
                double racc = 0;
                for (size_t b = 0; b < co->n; b++)
                    racc += co->w[b] * srow[mod_l(co->first + (long)b - sc0, (long)g->nlon)];
                acc += ro->w[a] * racc;
            }
            out[I * nc + J] = (float)(acc / (ro->wsum * co->wsum));
        }
    }
    free(src);
    return 0;
}

static int read_channel(ts_era5_dataset *ds, const channel *c, size_t t, size_t row0, size_t nrows, size_t col0,
                        size_t ncols, float *out /* (nrows, ncols) */) {
    size_t data = ds->grid.nlat_data;
    size_t nreal = row0 >= data ? 0 : min_sz(nrows, data - row0);
    memset(out + nreal * ncols, 0, (nrows - nreal) * ncols * sizeof *out); /* the padded band */
    if (nreal == 0) return 0;
    if (ds->rg) return read_coarse(ds, c, t, row0, nreal, col0, ncols, out);
    size_t fi;
    if (read_source(ds, c, t, row0, nreal, (long)col0, ncols, out, &fi)) return -1;
    return apply_fill(ds, c, t, fi, out, nreal * ncols);
}

int ts_era5_read_block(ts_era5_dataset *ds, size_t t, size_t row0, size_t nrows, size_t col0, size_t ncols,
                       float *state, float *forcing, char *err, size_t errcap) {
    ds->err = err, ds->errcap = errcap;
    if (t >= ds->ntime) return fail(ds, "era5 read: time index %zu out of range (%zu times)", t, ds->ntime);
    if (!nrows || !ncols || row0 + nrows > ds->grid.nlat || col0 + ncols > ds->grid.nlon)
        return fail(ds, "era5 read: block rows %zu+%zu, columns %zu+%zu outside the %zu x %zu grid", row0, nrows, col0,
                    ncols, ds->grid.nlat, ds->grid.nlon);
    if (!state) return fail(ds, "era5 read: no state buffer given");
    size_t plane = nrows * ncols;
    for (size_t i = 0; i < ds->nstate; i++)
        if (read_channel(ds, &ds->ch[i], t, row0, nrows, col0, ncols, state + i * plane)) return -1;
    for (size_t i = 0; forcing && i < ds->nforcing; i++)
        if (read_channel(ds, &ds->ch[ds->nstate + i], t, row0, nrows, col0, ncols, forcing + i * plane)) return -1;
    return 0;
}

/* ---- open, close, accessors ------------------------------------------------------------------- */

static void publish_channels(ts_era5_dataset *ds) {
    for (size_t i = 0; i < ds->nstate + ds->nforcing; i++) {
        channel *c = &ds->ch[i];
        c->pub.spec = c->spec;
        c->pub.var = c->var;
        c->pub.units = c->units ? c->units : "";
        c->pub.long_name = c->long_name ? c->long_name : "";
        c->pub.standard_name = c->standard_name ? c->standard_name : "";
    }
}

ts_era5_dataset *ts_era5_open(const char *const *paths, size_t npaths, const ts_era5_open_opts *opts, char *err,
                              size_t errcap) {
    ts_era5_dataset *ds = ts_calloc(1, sizeof *ds);
    ds->err = err, ds->errcap = errcap;
    if (!opts) {
        fail(ds, "era5 open: no options given");
        free(ds);
        return NULL;
    }
    ds->fill = opts->fill;
    ds->nstate = count_tokens(opts->variables);
    ds->nforcing = count_tokens(opts->forcings);
    int rc = 0;
    if (!npaths) rc = fail(ds, "data.files: no ERA5 NetCDF file given");
    else if (!ds->nstate) rc = fail(ds, "data.variables: no state channel given");
    size_t next = 0;
    if (!rc) {
        ds->ch = ts_calloc(ds->nstate + ds->nforcing, sizeof *ds->ch);
        rc = open_files(ds, paths, npaths) || add_channels(ds, opts->variables, 0, &next) ||
             add_channels(ds, opts->forcings, 1, &next) || bind_channels(ds) || build_time_axis(ds);
    }
    if (!rc) {
        source_areas(ds);
        rc = setup_grid(ds, opts);
    }
    if (rc) {
        ts_era5_dataset_close(ds);
        return NULL;
    }
    publish_channels(ds);
    return ds;
}

void ts_era5_dataset_close(ts_era5_dataset *ds) {
    if (!ds) return;
    for (size_t i = 0; i < ds->nfiles; i++) {
        src_file *f = &ds->file[i];
        if (f->ncid >= 0) nc_close(f->ncid); /* read-only: nothing to lose if closing fails */
        for (size_t v = 0; v < f->nvars; v++) free(f->vname[v]);
        free(f->vname), free(f->vlev);
        free(f->path), free(f->time), free(f->lev), free(f->lat), free(f->lon);
    }
    for (size_t i = 0; ds->ch && i < ds->nstate + ds->nforcing; i++) {
        channel *c = &ds->ch[i];
        free(c->units), free(c->long_name), free(c->standard_name), free(c->in), free(c->seg);
    }
    free_regrid(ds->rg);
    free(ds->file), free(ds->ch), free(ds->time), free(ds->src_area), free(ds->lat), free(ds->lon), free(ds->mask);
    free(ds);
}

size_t ts_era5_ntimes(const ts_era5_dataset *ds) { return ds->ntime; }
const int64_t *ts_era5_times(const ts_era5_dataset *ds) { return ds->time; }

int ts_era5_find_time(const ts_era5_dataset *ds, int64_t t, size_t *index) {
    size_t lo = 0, hi = ds->ntime;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ds->time[mid] < t) lo = mid + 1;
        else hi = mid;
    }
    if (lo == ds->ntime || ds->time[lo] != t) return -1;
    *index = lo;
    return 0;
}

const ts_era5_grid *ts_era5_grid_info(const ts_era5_dataset *ds) { return &ds->grid; }
size_t ts_era5_nstate(const ts_era5_dataset *ds) { return ds->nstate; }
size_t ts_era5_nforcing(const ts_era5_dataset *ds) { return ds->nforcing; }
const ts_era5_channel *ts_era5_state_channel(const ts_era5_dataset *ds, size_t i) {
    return i < ds->nstate ? &ds->ch[i].pub : NULL;
}
const ts_era5_channel *ts_era5_forcing_channel(const ts_era5_dataset *ds, size_t i) {
    return i < ds->nforcing ? &ds->ch[ds->nstate + i].pub : NULL;
}

/* ---- configuration and file lists ---------------------------------------------------------- */

void ts_era5_opts_from_config(const ts_config *cfg, ts_era5_open_opts *o) {
    const char *fill = ts_config_str(cfg, "data.fill"), *grid = ts_config_str(cfg, "data.grid");
    *o = (ts_era5_open_opts){
        .variables = ts_config_str(cfg, "data.variables"),
        .forcings = ts_config_str(cfg, "data.forcings"),
        .fill = strcmp(fill, "zero") == 0 ? TS_ERA5_FILL_ZERO
                : strcmp(fill, "mean") == 0 ? TS_ERA5_FILL_MEAN
                                            : TS_ERA5_FILL_ERROR,
        .grid = strcmp(grid, "5.625") == 0 ? TS_ERA5_GRID_5625
                : strcmp(grid, "1.40625") == 0 ? TS_ERA5_GRID_140625
                                               : TS_ERA5_GRID_NATIVE,
        .row_rule = strcmp(ts_config_str(cfg, "data.row_rule"), "pad") == 0 ? TS_ERA5_ROWS_PAD : TS_ERA5_ROWS_DROP_SOUTH,
        .row_multiple = 0,
    };
}

static int by_string(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int glob_errno; /* what stopped the last glob (the reader is not thread-safe anyway) */

static int glob_stop(const char *path, int eerrno) {
    (void)path;
    glob_errno = eerrno;
    return 1;
}

static int glob_one(const char *pattern, glob_t *g, char *err, size_t errcap) {
    glob_errno = 0;
    int rc = glob(pattern, GLOB_ERR, glob_stop, g);
    if (rc == 0) return 0;
    /* GLOB_ERR also stops at a folder of the pattern that does not exist: for
     * the user that is a pattern matching nothing, not an unreadable folder. */
    if (rc == GLOB_NOMATCH || (rc == GLOB_ABORTED && (glob_errno == ENOENT || glob_errno == ENOTDIR)))
        snprintf(err, errcap, "data.files: \"%s\" matches no file", pattern);
    else if (rc == GLOB_ABORTED)
        snprintf(err, errcap, "data.files: \"%s\": cannot read a folder: %s", pattern, strerror(glob_errno));
    else snprintf(err, errcap, "data.files: \"%s\": glob failed (out of memory)", pattern);
    return -1;
}

int ts_era5_expand_files(const char *spec, char ***paths, size_t *npaths, char *err, size_t errcap) {
    char **out = NULL;
    size_t n = 0, cap = 0;
    const char *p = spec ? spec : "";
    *paths = NULL, *npaths = 0;
    while (*p) {
        size_t len = strcspn(p, ","), a = 0, b = len;
        while (a < b && isspace((unsigned char)p[a])) a++;
        while (b > a && isspace((unsigned char)p[b - 1])) b--;
        if (a < b) {
            char *pattern = ts_malloc(b - a + 1);
            snprintf(pattern, b - a + 1, "%.*s", (int)(b - a), p + a);
            glob_t g;
            int rc = glob_one(pattern, &g, err, errcap);
            free(pattern);
            if (rc) {
                ts_era5_free_paths(out, n);
                return -1;
            }
            for (size_t i = 0; i < g.gl_pathc; i++) {
                if (n == cap) out = realloc(out, (cap = cap ? 2 * cap : 16) * sizeof *out);
                if (!out) ts_fatal("out of memory listing data.files");
                out[n++] = dup_str(g.gl_pathv[i]);
            }
            globfree(&g);
        }
        p += len + (p[len] == ',');
    }
    if (n == 0) {
        snprintf(err, errcap, "data.files is empty: name the ERA5 NetCDF files (paths or globs, comma-separated)");
        return -1;
    }
    qsort(out, n, sizeof *out, by_string);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k > 0 && strcmp(out[k - 1], out[i]) == 0) free(out[i]);
        else out[k++] = out[i];
    }
    *paths = out, *npaths = k;
    return 0;
}

void ts_era5_free_paths(char **paths, size_t npaths) {
    for (size_t i = 0; paths && i < npaths; i++) free(paths[i]);
    free(paths);
}
