/* The ERA5 reader's grids: source cell areas, conservative coarsening onto
 * a WeatherBench grid, and the exposed grid after the row rule. */
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

double era5_band(double hi, double lo) { return hi > lo ? sin(hi * DEG2RAD) - sin(lo * DEG2RAD) : 0.0; }

void era5_source_areas(ts_era5_dataset *ds) {
    const src_file *g = &ds->file[0];
    ds->src_area = ts_malloc(g->nlat * sizeof *ds->src_area);
    for (size_t i = 0; i < g->nlat; i++) {
        double hi, lo;
        lat_bounds(g->lat, g->nlat, i, &hi, &lo);
        ds->src_area[i] = era5_band(hi, lo);
    }
}

static void free_overlaps(overlap *o, size_t n) {
    for (size_t i = 0; o && i < n; i++) free(o[i].w);
    free(o);
}

void era5_free_regrid(regrid *rg) {
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
        double w = era5_band(shi < hi ? shi : hi, slo > lo ? slo : lo);
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
        return TS_FAIL(ds->err, ds->errcap,
                       "%s: latitude/longitude: data.grid needs a global regular source grid (this one spans latitudes "
                       "%g..%g, %zu longitudes)",
                       g->path, g->lat[0], g->lat[g->nlat - 1], g->nlon);
    return 0;
}

static int setup_regrid(ts_era5_dataset *ds, size_t nlat, size_t nlon, double *lat, double *lon) {
    const src_file *g = &ds->file[0];
    double d = 180.0 / (double)nlat, step;
    for (size_t i = 0; i < nlat; i++) lat[i] = 90.0 - 0.5 * d - (double)i * d;
    for (size_t j = 0; j < nlon; j++) lon[j] = (double)j * d;
    if (g->nlat == nlat && g->nlon == nlon && era5_same_coords(g->lat, lat, nlat) &&
        era5_same_coords(g->lon, lon, nlon))
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

int ts_era5_row_rule_rows(size_t nrows, size_t multiple, ts_era5_row_rule rule, size_t *rows_out, size_t *data_rows_out,
                          char *err, size_t errcap) {
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

int era5_setup_grid(ts_era5_dataset *ds, const ts_era5_open_opts *o) {
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
    ds->grid = (ts_era5_grid){.nlat = rows,
                              .nlon = nlon,
                              .nlat_data = data_rows,
                              .lat = ds->lat,
                              .lon = ds->lon,
                              .row_mask = ds->mask,
                              .nlat_file = g->nlat,
                              .nlon_file = g->nlon,
                              .dropped_south = rows < nlat};
    return 0;
}
