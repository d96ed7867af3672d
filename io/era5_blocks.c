/* The ERA5 reader's reading: blocks of the exposed grid with the fill
 * policy, open and close, accessors, configuration and file lists
 * (era5_internal.h lists the reader's files). */
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
        if (c->seg[mid].t0 <= t)
            lo = mid;
        else
            hi = mid;
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
    TS_NC_CHECK(nc_get_vara_double(ds->file[fi].ncid, cf->varid, start, count, raw), ds->err, ds->errcap, "%s: %s",
                ds->file[fi].path, c->var);
    return 0;
}

/* Source rows [r0, r0+nr) x source columns c0.. (taken modulo the width;
 * nc <= width) of channel c at time t: unpacked, missing values as NaN.
 * The columns are read in runs of consecutive stored columns, each one
 * nc_get_vara: at most three for a file stored in increasing order (its
 * origin and the wrap), one a column for one stored decreasing. */
static int read_source(ts_era5_dataset *ds, const channel *c, size_t t, size_t r0, size_t nr, long c0, size_t nc,
                       float *out /* (nr, nc) */, size_t *file_used) {
    size_t fi, rec;
    locate(c, t, &fi, &rec);
    *file_used = fi;
    src_file *f = &ds->file[fi];
    const chan_file *cf = &c->in[fi];
    if (era5_ensure_open(ds, f)) return -1;
    size_t s0 = f->flip ? f->nlat - r0 - nr : r0;
    double *raw = ts_malloc(nr * era5_min_sz(nc, f->nlon) * sizeof *raw); /* (nr, run length) */
    for (size_t j = 0; j < nc;) {
        size_t sc = f->col[era5_mod_l(c0 + (long)j, (long)f->nlon)], len = 1;
        while (j + len < nc && f->col[era5_mod_l(c0 + (long)(j + len), (long)f->nlon)] == sc + len) len++;
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
        era5_iso_time(ds->time[t], a, sizeof a);
        return TS_FAIL(ds->err, ds->errcap,
                       "%s: variable %s (channel %s) at %s: every value is missing, nothing to fill with",
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
        era5_iso_time(ds->time[t], a, sizeof a);
        return TS_FAIL(ds->err, ds->errcap,
                       "%s: variable %s (channel %s) at %s (time %zu): %zu missing values (_FillValue, missing_value "
                       "or NaN); set data.fill=zero or data.fill=mean to fill them",
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
static int read_coarse(ts_era5_dataset *ds, const channel *c, size_t t, size_t row0, size_t nr, size_t col0, size_t nc,
                       float *out /* (nr, nc) */) {
    const regrid *rg = ds->rg;
    const src_file *g = &ds->file[0];
    const overlap *r_first = &rg->row[row0], *r_last = &rg->row[row0 + nr - 1];
    const overlap *c_first = &rg->col[col0], *c_last = &rg->col[col0 + nc - 1];
    size_t sr0 = (size_t)r_first->first, nsr = (size_t)r_last->first + r_last->n - sr0;
    long sc0 = c_first->first;
    size_t nsc = era5_min_sz((size_t)(c_last->first + (long)c_last->n - sc0), g->nlon);
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
                    racc += co->w[b] * srow[era5_mod_l(co->first + (long)b - sc0, (long)g->nlon)];
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
    size_t nreal = row0 >= data ? 0 : era5_min_sz(nrows, data - row0);
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
    if (t >= ds->ntime)
        return TS_FAIL(ds->err, ds->errcap, "era5 read: time index %zu out of range (%zu times)", t, ds->ntime);
    if (!nrows || !ncols || row0 + nrows > ds->grid.nlat || col0 + ncols > ds->grid.nlon)
        return TS_FAIL(ds->err, ds->errcap, "era5 read: block rows %zu+%zu, columns %zu+%zu outside the %zu x %zu grid",
                       row0, nrows, col0, ncols, ds->grid.nlat, ds->grid.nlon);
    if (!state) return TS_FAIL(ds->err, ds->errcap, "era5 read: no state buffer given");
    size_t plane = nrows * ncols;
    for (size_t i = 0; i < ds->nstate; i++)
        if (read_channel(ds, &ds->ch[i], t, row0, nrows, col0, ncols, state + i * plane)) return -1;
    for (size_t i = 0; forcing && i < ds->nforcing; i++)
        if (read_channel(ds, &ds->ch[ds->nstate + i], t, row0, nrows, col0, ncols, forcing + i * plane)) return -1;
    return 0;
}

/* ---- open, close, accessors ------------------------------------------------------------------- */

void era5_publish_channels(ts_era5_dataset *ds) {
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
        TS_FAIL(ds->err, ds->errcap, "era5 open: no options given");
        free(ds);
        return NULL;
    }
    ds->fill = opts->fill;
    ds->nstate = era5_count_tokens(opts->variables);
    ds->nforcing = era5_count_tokens(opts->forcings);
    int rc = 0;
    if (!npaths)
        rc = TS_FAIL(ds->err, ds->errcap, "data.files: no ERA5 NetCDF file given");
    else if (!ds->nstate)
        rc = TS_FAIL(ds->err, ds->errcap, "data.variables: no state channel given");
    size_t next = 0;
    if (!rc) {
        ds->ch = ts_calloc(ds->nstate + ds->nforcing, sizeof *ds->ch);
        rc = era5_open_files(ds, paths, npaths) || era5_add_channels(ds, opts->variables, 0, &next) ||
             era5_add_channels(ds, opts->forcings, 1, &next) || era5_bind_channels(ds) || era5_build_time_axis(ds);
    }
    if (!rc) {
        era5_source_areas(ds);
        rc = era5_setup_grid(ds, opts);
    }
    if (rc) {
        ts_era5_dataset_close(ds);
        return NULL;
    }
    era5_publish_channels(ds);
    return ds;
}

void ts_era5_dataset_close(ts_era5_dataset *ds) {
    if (!ds) return;
    for (size_t i = 0; i < ds->nfiles; i++) {
        src_file *f = &ds->file[i];
        if (f->ncid >= 0) nc_close(f->ncid); /* read-only: nothing to lose if closing fails */
        for (size_t v = 0; v < f->nvars; v++) free(f->vname[v]);
        free(f->vname), free(f->vlev);
        free(f->path), free(f->time), free(f->lev), free(f->lat), free(f->lon), free(f->col);
    }
    for (size_t i = 0; ds->ch && i < ds->nstate + ds->nforcing; i++) {
        channel *c = &ds->ch[i];
        free(c->units), free(c->long_name), free(c->standard_name), free(c->in), free(c->seg);
    }
    era5_free_regrid(ds->rg);
    free(ds->file), free(ds->ch), free(ds->time), free(ds->src_area), free(ds->lat), free(ds->lon), free(ds->mask);
    free(ds);
}

size_t ts_era5_ntimes(const ts_era5_dataset *ds) { return ds->ntime; }
const int64_t *ts_era5_times(const ts_era5_dataset *ds) { return ds->time; }

int ts_era5_find_time(const ts_era5_dataset *ds, int64_t t, size_t *index) {
    size_t lo = 0, hi = ds->ntime;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ds->time[mid] < t)
            lo = mid + 1;
        else
            hi = mid;
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
        .fill = strcmp(fill, "zero") == 0   ? TS_ERA5_FILL_ZERO
                : strcmp(fill, "mean") == 0 ? TS_ERA5_FILL_MEAN
                                            : TS_ERA5_FILL_ERROR,
        .grid = strcmp(grid, "5.625") == 0     ? TS_ERA5_GRID_5625
                : strcmp(grid, "1.40625") == 0 ? TS_ERA5_GRID_140625
                                               : TS_ERA5_GRID_NATIVE,
        .row_rule =
            strcmp(ts_config_str(cfg, "data.row_rule"), "pad") == 0 ? TS_ERA5_ROWS_PAD : TS_ERA5_ROWS_DROP_SOUTH,
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
    else
        snprintf(err, errcap, "data.files: \"%s\": glob failed (out of memory)", pattern);
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
                out[n++] = era5_dup_str(g.gl_pathv[i]);
            }
            globfree(&g);
        }
        p += len + (p[len] == ',');
    }
    if (n == 0) {
        return TS_FAIL(err, errcap,
                       "data.files is empty: name the ERA5 NetCDF files (paths or globs, comma-separated)");
    }
    qsort(out, n, sizeof *out, by_string);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k > 0 && strcmp(out[k - 1], out[i]) == 0)
            free(out[i]);
        else
            out[k++] = out[i];
    }
    *paths = out, *npaths = k;
    return 0;
}

void ts_era5_free_paths(char **paths, size_t npaths) {
    for (size_t i = 0; paths && i < npaths; i++) free(paths[i]);
    free(paths);
}
