/* The ERA5 test files of tests/io/test_era5.c and test_era5_input.c: an
 * analytic field, writers of files in both CDS layouts, and the checks of a
 * dataset read back against the field. */
#ifndef TESSERA_TESTS_IO_ERA5_FIXTURE_H
#define TESSERA_TESTS_IO_ERA5_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "io/era5_read.h"
#include "io/era5_write.h"

#define T0 1577836800LL /* 2020-01-01T00:00:00Z */
#define DT 21600        /* 6 hours */
#define D2R (3.14159265358979323846 / 180.0)

typedef struct {
    const char *name, *units, *long_name, *standard_name;
    int param, on_levels;
    double base, amp;
} var_def;

typedef struct {
    ts_era5_layout layout;
    size_t nlat, nlon;
    double lat0, dlat, lon0, dlon; /* first value and signed step */
    int with_levels;
    const var_def *vars;
    size_t nvars;
    int64_t t_first;
    int nt;
    int nan_t;     /* time index (from t_first) holding NaNs in variable 0, or -1 */
    size_t nan_at; /* first of the 3 NaN points */
    int noise;     /* add point-to-point noise of amplitude amp/2 (CDS layout only: it leaves the packing range) */
    int lon_order; /* the stored order of the longitudes: LON_AS_GIVEN, or reordered after lon0 + j dlon */
} file_req;

/* Stored longitude orders besides lon0 + j dlon: the values from 180 on
 * written as negative (with lon0 = 0: 0..165 then -180..-15, the order
 * xarray's assign_coords leaves a 0..360 file in), reversed, and shuffled. */
enum { LON_AS_GIVEN, LON_XARRAY, LON_REVERSED, LON_SHUFFLED };

/* Single-level, accumulated and pressure-level variables with magnitudes
 * like ERA5's, a constant t2m, and the pressure levels (decreasing, as the
 * CDS orders them). */
enum { NSL = 6, NPL = 4, NLEVELS = 3 };
extern const var_def SL[NSL], ACC[1], PL[NPL], CONST_T2M[1];
extern const double LEVELS[NLEVELS];

/* The analytic field every file holds (at level lev, 0 for single-level
 * variables, and time t in seconds since 1970). */
double field_value(const var_def *v, double lev, double lat, double lon, int64_t t);

/* Temporary files: g_dir is made by the test's main (mkdtemp); path_in
 * names a file in it and remembers it; remove_all deletes them all. */
extern char g_dir[256];
const char *path_in(const char *name);
void remove_all(void);
/* The last error message of a writer or reader call. */
extern char err[2048];

/* The writer's packing range for v, and its packing step (0 for float32). */
double pack_min(const var_def *v);
double pack_max(const var_def *v);
double packing_step(const var_def *v, int packed);
/* Write the file r describes to path; 0, or -1 with the message on stderr. */
int write_req(const file_req *r, const char *path);
/* 15-degree global grids: 13 rows 90..-90 with poles, 24 columns 0..345,
 * 4 times from T0: the single-level and the pressure-level file. */
file_req sl_req(ts_era5_layout layout);
file_req pl_req(ts_era5_layout layout);
ts_era5_open_opts opts_of(const char *variables, const char *forcings);
/* Open one to three paths (b, c may be NULL); NULL with the message on stderr. */
ts_era5_dataset *open_paths(const char *a, const char *b, const char *c, const ts_era5_open_opts *o);
const var_def *find_def(const var_def *defs, size_t n, const char *name);
/* Read every time in full and compare every channel with the analytic
 * field (CUnit assertions); static channels must equal their first time. */
void check_full(ts_era5_dataset *ds, int packed, const var_def *sl, size_t nsl, const var_def *pl, size_t npl);

#endif
