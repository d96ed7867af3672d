/* The ERA5 test files (tests/io/era5_fixture.h). */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "tests/io/era5_fixture.h"

#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Magnitudes like ERA5's, so float32 and int16 precision are exercised at
 * realistic scales. */
const var_def SL[NSL] = {
    {"t2m", "K", "2 metre temperature", "air_temperature", 167, 0, 280, 20},
    {"u10", "m s**-1", "10 metre U wind component", "eastward_wind", 165, 0, 0, 10},
    {"v10", "m s**-1", "10 metre V wind component", "northward_wind", 166, 0, 1, 8},
    {"msl", "Pa", "Mean sea level pressure", "air_pressure_at_mean_sea_level", 151, 0, 101000, 2000},
    {"lsm", "(0 - 1)", "Land-sea mask", "land_binary_mask", 172, 0, 0.5, 0.4},
    {"z", "m**2 s**-2", "Geopotential", "geopotential", 129, 0, 5000, 4000},
};
const var_def ACC[1] = {{"tisr", "J m**-2", "TOA incident solar radiation", NULL, 212, 0, 1e6, 1e6}};
const var_def PL[NPL] = {
    {"z", "m**2 s**-2", "Geopotential", "geopotential", 129, 1, 50000, 5000},
    {"t", "K", "Temperature", "air_temperature", 130, 1, 250, 30},
    {"u", "m s**-1", "U component of wind", "eastward_wind", 131, 1, 5, 20},
    {"q", "kg kg**-1", "Specific humidity", "specific_humidity", 133, 1, 0.005, 0.004},
};
const var_def CONST_T2M[1] = {{"t2m", "K", "2 metre temperature", "air_temperature", 167, 0, 273.15, 0}};
const double LEVELS[NLEVELS] = {850, 700, 500}; /* decreasing, as the CDS orders them */

/* The analytic field every file holds: distinct in variable, level,
 * latitude, longitude and time, so a wrong flip, roll, level or record
 * shows; not symmetric between the hemispheres, so wrong area weights do
 * not cancel in a global mean. */
double field_value(const var_def *v, double lev, double lat, double lon, int64_t t) {
    double s = 0.5 * sin(lat * D2R) + 0.3 * cos(2 * lat * D2R) + 0.3 * cos(lon * D2R) + 0.2 * sin(2 * lon * D2R);
    return v->base + v->amp * (s + 0.01 * (double)((t - T0) / DT) + 0.001 * lev);
}

/* ---- temporary files ------------------------------------------------------------------ */

char g_dir[256];
static char g_made[128][320];
static size_t g_nmade;
char err[2048];

const char *path_in(const char *name) {
    CU_ASSERT_FATAL(g_nmade < sizeof g_made / sizeof g_made[0]);
    snprintf(g_made[g_nmade], sizeof g_made[0], "%s/%s", g_dir, name);
    return g_made[g_nmade++];
}

void remove_all(void) {
    for (size_t i = 0; i < g_nmade; i++) unlink(g_made[i]);
    g_nmade = 0;
}

/* ---- writing test files ----------------------------------------------------------------- */

/* Deterministic noise in [-0.5, 0.5): a smooth field lets a wrong
 * weighting cancel out in a global mean; noise does not. */
static double noise_at(size_t i, size_t j, size_t k) {
    uint32_t h = (uint32_t)(i * 73856093u) ^ (uint32_t)(j * 19349663u) ^ (uint32_t)(k * 83492791u);
    h = h * 1103515245u + 12345u;
    h ^= h >> 13;
    h *= 2654435761u;
    return (double)(h >> 8) / 16777216.0 - 0.5;
}

/* Packing ranges covering the field: |s| <= 1.3, plus up to 0.1 for 10
 * times and 1.0 for levels up to 1000 hPa. */
double pack_min(const var_def *v) { return v->amp > 0 ? v->base - 1.4 * v->amp : v->base - 1; }
double pack_max(const var_def *v) { return v->amp > 0 ? v->base + 2.5 * v->amp : v->base + 1; }

static void fill_var(const file_req *r, const var_def *v, const double *lat, const double *lon, int64_t t,
                     float *out /* (nlev or 1, nlat, nlon) */) {
    size_t nlev = v->on_levels ? sizeof LEVELS / sizeof LEVELS[0] : 1;
    for (size_t k = 0; k < nlev; k++)
        for (size_t i = 0; i < r->nlat; i++)
            for (size_t j = 0; j < r->nlon; j++)
                out[(k * r->nlat + i) * r->nlon + j] =
                    (float)(field_value(v, v->on_levels ? LEVELS[k] : 0, lat[i], lon[j], t) +
                            (r->noise ? v->amp * noise_at(i, j, k) : 0));
}

/* lon (nlon) into the stored order r->lon_order; the field follows each
 * column's longitude, so every order holds the same field. */
static void reorder_lon(const file_req *r, double *lon) {
    const size_t n = r->nlon;
    double *in = malloc(n * sizeof *in); /* (n) */
    memcpy(in, lon, n * sizeof *in);
    for (size_t j = 0; j < n; j++) {
        if (r->lon_order == LON_XARRAY) {
            lon[j] = in[j] >= 180 ? in[j] - 360 : in[j];
        } else if (r->lon_order == LON_REVERSED) {
            lon[j] = in[n - 1 - j];
        } else if (r->lon_order == LON_SHUFFLED) {
            lon[j] = in[(j * 7 + 3) % n]; /* 7 is prime to the test grids' 24 columns */
        }
    }
    free(in);
}

int write_req(const file_req *r, const char *path) {
    double *lat = malloc(r->nlat * sizeof *lat), *lon = malloc(r->nlon * sizeof *lon); /* (nlat), (nlon) */
    for (size_t i = 0; i < r->nlat; i++) lat[i] = r->lat0 + (double)i * r->dlat;
    for (size_t j = 0; j < r->nlon; j++) lon[j] = r->lon0 + (double)j * r->dlon;
    reorder_lon(r, lon);
    ts_era5_var vars[8];
    float *data[8];
    const float *fields[8];
    for (size_t v = 0; v < r->nvars; v++) {
        const var_def *d = &r->vars[v];
        vars[v] = (ts_era5_var){d->name,  d->units,     d->long_name, d->standard_name,
                                d->param, d->on_levels, pack_min(d),  pack_max(d)};
        data[v] = malloc(3 * r->nlat * r->nlon * sizeof(float)); /* (up to 3 levels, nlat, nlon) */
        fields[v] = data[v];
    }
    ts_era5_file_spec spec = {.path = path,
                              .layout = r->layout,
                              .nlat = r->nlat,
                              .nlon = r->nlon,
                              .lat = lat,
                              .lon = lon,
                              .nlev = r->with_levels ? 3 : 0,
                              .levels = LEVELS,
                              .nvars = r->nvars,
                              .vars = vars,
                              .history = "tessera test_era5",
                              .source = NULL};
    ts_era5_writer *w = ts_era5_create(&spec, err, sizeof err);
    int rc = w ? 0 : -1;
    for (int n = 0; rc == 0 && n < r->nt; n++) {
        int64_t t = r->t_first + (int64_t)n * DT;
        for (size_t v = 0; v < r->nvars; v++) fill_var(r, &r->vars[v], lat, lon, t, data[v]);
        if (n == r->nan_t)
            for (size_t k = 0; k < 3; k++) data[0][r->nan_at + k] = NAN;
        rc = ts_era5_append(w, t, fields, err, sizeof err);
    }
    if (w && ts_era5_close(w, rc == 0, rc ? NULL : err, rc ? 0 : sizeof err)) rc = -1;
    if (rc) fprintf(stderr, "\n  writing %s: %s\n", path, err);
    for (size_t v = 0; v < r->nvars; v++) free(data[v]);
    free(lat), free(lon);
    return rc;
}

/* 15-degree global grids: 13 rows 90..-90 with poles, 24 columns 0..345. */
file_req sl_req(ts_era5_layout layout) {
    return (file_req){layout, 13, 24, 90, -15, 0, 15, 0, SL, NSL, T0, 4, -1, 0, 0, LON_AS_GIVEN};
}
file_req pl_req(ts_era5_layout layout) {
    return (file_req){layout, 13, 24, 90, -15, 0, 15, 1, PL, NPL, T0, 4, -1, 0, 0, LON_AS_GIVEN};
}

ts_era5_open_opts opts_of(const char *variables, const char *forcings) {
    return (ts_era5_open_opts){.variables = variables,
                               .forcings = forcings,
                               .fill = TS_ERA5_FILL_ERROR,
                               .grid = TS_ERA5_GRID_NATIVE,
                               .row_rule = TS_ERA5_ROWS_DROP_SOUTH,
                               .row_multiple = 0};
}

ts_era5_dataset *open_paths(const char *a, const char *b, const char *c, const ts_era5_open_opts *o) {
    const char *paths[3] = {a, b, c};
    size_t n = c ? 3 : b ? 2 : 1;
    err[0] = '\0';
    ts_era5_dataset *ds = ts_era5_open(paths, n, o, err, sizeof err);
    if (!ds) fprintf(stderr, "\n  open: %s\n", err);
    return ds;
}

/* ---- checking a dataset against the analytic field ------------------------------------------- */

const var_def *find_def(const var_def *defs, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(defs[i].name, name) == 0) return &defs[i];
    return NULL;
}

/* The writer's packing step for v (0 for float32 files). */
double packing_step(const var_def *v, int packed) { return packed ? (pack_max(v) - pack_min(v)) / 65534.0 : 0.0; }

/* Largest error of one channel over the full grid at time index t,
 * measured in units of its tolerance: float32 rounding, plus half a
 * packing step for the packed layout (the packing precision). */
static double channel_error(const ts_era5_dataset *ds, const ts_era5_channel *ch, const var_def *def, const float *x,
                            size_t t, int packed, int64_t t_field) {
    const ts_era5_grid *g = ts_era5_grid_info(ds);
    double worst = 0;
    for (size_t i = 0; i < g->nlat; i++)
        for (size_t j = 0; j < g->nlon; j++) {
            double want = field_value(def, ch->level_hpa, g->lat[i], g->lon[j], t_field);
            double tol = 0.5 * packing_step(def, packed) * (1 + 1e-9) + 1.2e-7 * fabs(want) + 1e-30;
            double e = fabs(x[i * g->nlon + j] - want) / tol;
            if (e > worst) worst = e;
        }
    (void)t;
    return worst;
}

/* Read every time in full and compare every channel with the analytic
 * field; static channels must equal their first time. */
void check_full(ts_era5_dataset *ds, int packed, const var_def *sl, size_t nsl, const var_def *pl, size_t npl) {
    const ts_era5_grid *g = ts_era5_grid_info(ds);
    size_t ns = ts_era5_nstate(ds), nf = ts_era5_nforcing(ds), plane = g->nlat * g->nlon;
    float *state = malloc(ns * plane * sizeof *state);                /* (ns, nlat, nlon) */
    float *forcing = malloc((nf ? nf : 1) * plane * sizeof *forcing); /* (nf, nlat, nlon) */
    for (size_t t = 0; t < ts_era5_ntimes(ds); t++) {
        int rc = ts_era5_read_block(ds, t, 0, g->nlat, 0, g->nlon, state, forcing, err, sizeof err);
        if (rc) fprintf(stderr, "\n  read: %s\n", err);
        CU_ASSERT_FATAL(rc == 0);
        for (size_t c = 0; c < ns + nf; c++) {
            const ts_era5_channel *ch = c < ns ? ts_era5_state_channel(ds, c) : ts_era5_forcing_channel(ds, c - ns);
            const var_def *def = ch->level_hpa > 0 ? find_def(pl, npl, ch->var) : find_def(sl, nsl, ch->var);
            if (!def) def = find_def(ACC, 1, ch->var);
            CU_ASSERT_FATAL(def != NULL);
            int64_t tf = ch->is_static ? ts_era5_times(ds)[0] : ts_era5_times(ds)[t];
            double e =
                channel_error(ds, ch, def, c < ns ? state + c * plane : forcing + (c - ns) * plane, t, packed, tf);
            if (e > 1) fprintf(stderr, "\n  %s at t=%zu: error %.3g tolerances\n", ch->spec, t, e);
            CU_ASSERT(e <= 1);
        }
    }
    free(state), free(forcing);
}
