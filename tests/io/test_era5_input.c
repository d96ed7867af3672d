/* ERA5 files as users bring them and as they break: other time units,
 * calendars, axis names and Pa levels read right; every class of bad input
 * (a missing variable or level, wrong dimensions, a truncated file, grids
 * that differ between files, a file that is not NetCDF, bad times) is -1
 * and one line naming the file and the variable. The files come from
 * tests/io/era5_fixture.h. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* mkdtemp, truncate */
#endif
#include <CUnit/Basic.h>
#include <math.h>
#include <netcdf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/era5_read.h"
#include "io/era5_write.h"
#include "tests/cunit_run.h"
#include "tests/io/era5_fixture.h"

/* ---- bad input: -1 and one line naming the file and the variable -------------------------------- */

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static int fails_naming(const char *const *paths, size_t n, const ts_era5_open_opts *o, const char *file,
                        const char *var) {
    err[0] = '\0';
    ts_era5_dataset *ds = ts_era5_open(paths, n, o, err, sizeof err);
    if (ds) {
        ts_era5_dataset_close(ds);
        fprintf(stderr, "\n  opened, expected an error naming %s and %s\n", file, var);
        return 0;
    }
    int ok = err[0] && !strchr(err, '\n') && strstr(err, file) && (!var || strstr(err, var));
    if (!ok) fprintf(stderr, "\n  unexpected message: %s\n", err);
    return ok;
}

static void write_good_pair(const char **sp, const char **pp) {
    file_req s = sl_req(TS_ERA5_LAYOUT_CDS), p = pl_req(TS_ERA5_LAYOUT_CDS);
    *sp = path_in("sl.nc"), *pp = path_in("pl.nc");
    CU_ASSERT_FATAL(write_req(&s, *sp) == 0 && write_req(&p, *pp) == 0);
}

static void test_bad_missing_variable_and_level(void) {
    const char *sp, *pp;
    write_good_pair(&sp, &pp);
    const char *paths[] = {sp, pp};
    ts_era5_open_opts o = opts_of("t2m,sst", "");
    CU_ASSERT(fails_naming(paths, 2, &o, sp, "sst"));
    o = opts_of("t925,t2m", "");
    CU_ASSERT(fails_naming(paths, 2, &o, pp, "925"));
    CU_ASSERT(strstr(err, "variable t:") != NULL);
    o = opts_of("t", ""); /* a pressure-level variable without its level */
    CU_ASSERT(fails_naming(paths, 2, &o, sp, "t500"));
    o = opts_of("t2m", "tisr");
    CU_ASSERT(fails_naming(paths, 2, &o, sp, "tisr"));
    o = opts_of("t2m,t2m", "");
    CU_ASSERT(fails_naming(paths, 2, &o, "t2m", NULL));
    remove_all();
}

/* t2m(latitude, longitude) in a file whose other variables have time. */
static void write_2d_t2m(const char *path) {
    int nc, dt, dy, dx, vt, vy, vx, v, dims[2];
    double lat[13], lon[24];
    float x[13 * 24] = {0};
    long long t = 0;
    for (int i = 0; i < 13; i++) lat[i] = 90 - 15 * i;
    for (int j = 0; j < 24; j++) lon[j] = 15 * j;
    CU_ASSERT_FATAL(nc_create(path, NC_NETCDF4 | NC_CLOBBER, &nc) == NC_NOERR);
    CU_ASSERT_FATAL(nc_def_dim(nc, "valid_time", 1, &dt) == NC_NOERR &&
                    nc_def_dim(nc, "latitude", 13, &dy) == NC_NOERR &&
                    nc_def_dim(nc, "longitude", 24, &dx) == NC_NOERR);
    CU_ASSERT_FATAL(nc_def_var(nc, "valid_time", NC_INT64, 1, &dt, &vt) == NC_NOERR &&
                    nc_def_var(nc, "latitude", NC_DOUBLE, 1, &dy, &vy) == NC_NOERR &&
                    nc_def_var(nc, "longitude", NC_DOUBLE, 1, &dx, &vx) == NC_NOERR);
    CU_ASSERT_FATAL(nc_put_att_text(nc, vt, "units", 24, "seconds since 1970-01-01") == NC_NOERR);
    dims[0] = dy, dims[1] = dx;
    CU_ASSERT_FATAL(nc_def_var(nc, "t2m", NC_FLOAT, 2, dims, &v) == NC_NOERR);
    CU_ASSERT_FATAL(nc_put_var_longlong(nc, vt, &t) == NC_NOERR && nc_put_var_double(nc, vy, lat) == NC_NOERR &&
                    nc_put_var_double(nc, vx, lon) == NC_NOERR && nc_put_var_float(nc, v, x) == NC_NOERR);
    CU_ASSERT_FATAL(nc_close(nc) == NC_NOERR);
}

/* A file as other tools write ERA5: dims time/lat/lon, latitude south to
 * north, a time axis of any type and units, and t on `plev` in Pa. Values:
 * field_value of SL[0] (t2m) and PL[1] (t) at the named valid times. */
typedef struct {
    nc_type time_type;
    const char *units, *calendar; /* calendar NULL: no attribute */
    double tvals[2];
    int64_t valid[2]; /* the unix times those mean */
} custom_time;

static void write_custom(const char *path, const custom_time *c) {
    int nc, dt, dy, dx, dz, vt, vy, vx, vz, v, vl, dims[4];
    double lat[13], lon[24], plev[2] = {85000, 50000};
    float x[2 * 13 * 24]; /* (2 levels or 1, 13, 24) */
    for (int i = 0; i < 13; i++) lat[i] = -90 + 15 * i;
    for (int j = 0; j < 24; j++) lon[j] = 15 * j;
    CU_ASSERT_FATAL(nc_create(path, NC_NETCDF4 | NC_CLOBBER, &nc) == NC_NOERR);
    CU_ASSERT_FATAL(nc_def_dim(nc, "time", 2, &dt) == NC_NOERR && nc_def_dim(nc, "lat", 13, &dy) == NC_NOERR &&
                    nc_def_dim(nc, "lon", 24, &dx) == NC_NOERR && nc_def_dim(nc, "plev", 2, &dz) == NC_NOERR);
    CU_ASSERT_FATAL(nc_def_var(nc, "time", c->time_type, 1, &dt, &vt) == NC_NOERR &&
                    nc_def_var(nc, "lat", NC_FLOAT, 1, &dy, &vy) == NC_NOERR &&
                    nc_def_var(nc, "lon", NC_FLOAT, 1, &dx, &vx) == NC_NOERR &&
                    nc_def_var(nc, "plev", NC_DOUBLE, 1, &dz, &vz) == NC_NOERR);
    CU_ASSERT_FATAL(nc_put_att_text(nc, vt, "units", strlen(c->units), c->units) == NC_NOERR);
    if (c->calendar) CU_ASSERT_FATAL(nc_put_att_text(nc, vt, "calendar", strlen(c->calendar), c->calendar) == NC_NOERR);
    CU_ASSERT_FATAL(nc_put_att_text(nc, vz, "units", 2, "Pa") == NC_NOERR);
    dims[0] = dt, dims[1] = dy, dims[2] = dx;
    CU_ASSERT_FATAL(nc_def_var(nc, "t2m", NC_FLOAT, 3, dims, &v) == NC_NOERR);
    dims[1] = dz, dims[2] = dy, dims[3] = dx;
    CU_ASSERT_FATAL(nc_def_var(nc, "t", NC_FLOAT, 4, dims, &vl) == NC_NOERR);
    CU_ASSERT_FATAL(nc_put_var_double(nc, vt, c->tvals) == NC_NOERR && nc_put_var_double(nc, vy, lat) == NC_NOERR &&
                    nc_put_var_double(nc, vx, lon) == NC_NOERR && nc_put_var_double(nc, vz, plev) == NC_NOERR);
    for (size_t k = 0; k < 2; k++) {
        size_t start[4] = {k, 0, 0, 0}, count[4] = {1, 13, 24, 0}, lcount[4] = {1, 2, 13, 24};
        for (size_t i = 0; i < 13 * 24; i++)
            x[i] = (float)field_value(&SL[0], 0, lat[i / 24], lon[i % 24], c->valid[k]);
        CU_ASSERT_FATAL(nc_put_vara_float(nc, v, start, count, x) == NC_NOERR);
        for (size_t i = 0; i < 2 * 13 * 24; i++)
            x[i] = (float)field_value(&PL[1], plev[i / (13 * 24)] / 100, lat[i / 24 % 13], lon[i % 24], c->valid[k]);
        CU_ASSERT_FATAL(nc_put_vara_float(nc, vl, start, lcount, x) == NC_NOERR);
    }
    CU_ASSERT_FATAL(nc_close(nc) == NC_NOERR);
}

static void test_time_units_and_names(void) {
    const custom_time good[] = {
        {NC_DOUBLE, "days since 2019-12-31 18:00:00", "standard", {0.25, 0.5}, {T0, T0 + DT}},
        {NC_INT, "minutes since 2020-01-01T00:00:00Z", NULL, {0, 360}, {T0, T0 + DT}},
        {NC_INT64, "hours since 1900-01-01", "gregorian", {1051896, 1051902}, {T0, T0 + DT}},
    };
    for (size_t k = 0; k < sizeof good / sizeof good[0]; k++) {
        const char *p = path_in("custom.nc");
        write_custom(p, &good[k]);
        ts_era5_open_opts o = opts_of("t850,t500,t2m", "");
        ts_era5_dataset *ds = open_paths(p, NULL, NULL, &o);
        CU_ASSERT_FATAL(ds != NULL);
        CU_ASSERT(ts_era5_ntimes(ds) == 2 && ts_era5_times(ds)[0] == T0 && ts_era5_times(ds)[1] == T0 + DT);
        CU_ASSERT(ts_era5_state_channel(ds, 1)->level_hpa == 500);
        check_full(ds, 0, SL, NSL, PL, NPL);
        ts_era5_dataset_close(ds);
        remove_all();
    }
    const custom_time bad[] = {
        {NC_DOUBLE, "days since 2000-01-01", "noleap", {0, 1}, {0, 0}},
        {NC_DOUBLE, "hours after 2020-01-01", NULL, {0, 1}, {0, 0}},
        {NC_DOUBLE, "hours since 2020-01-01", NULL, {1, 1}, {0, 0}}, /* not increasing */
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        const char *p = path_in("custom_bad.nc");
        write_custom(p, &bad[k]);
        ts_era5_open_opts o = opts_of("t2m", "");
        CU_ASSERT(fails_naming(&p, 1, &o, p, "time"));
        remove_all();
    }
}

static void test_bad_dimensions(void) {
    const char *bad = path_in("t2m_2d.nc");
    write_2d_t2m(bad);
    ts_era5_open_opts o = opts_of("t2m", "");
    CU_ASSERT(fails_naming(&bad, 1, &o, bad, "t2m"));
    CU_ASSERT(strstr(err, "(latitude, longitude)") && strstr(err, "(valid_time, latitude, longitude)"));
    remove_all();
}

/* A download cut short, by a little (inside the last record) and by a
 * third. NetCDF-4 (HDF5) refuses the file at open, before any variable is
 * involved, so only the file can be named; the classic layout opens from
 * its header, and the reader must name the variable whose data is cut off
 * (netCDF-C would read the missing bytes as zeros). */
static void test_bad_truncated(void) {
    for (int layout = 0; layout < 2; layout++)
        for (int cut = 0; cut < 2; cut++) {
            file_req s = sl_req(layout);
            const char *sp = path_in("cut.nc");
            CU_ASSERT_FATAL(write_req(&s, sp) == 0);
            long size = file_size(sp);
            CU_ASSERT_FATAL(truncate(sp, cut ? size * 2 / 3 : size - 16) == 0);
            ts_era5_open_opts o = opts_of("t2m,msl", "");
            CU_ASSERT(fails_naming(&sp, 1, &o, sp, NULL));
            /* z is the last variable of each record: the small cut is in it */
            if (layout == TS_ERA5_LAYOUT_PACKED && !cut) CU_ASSERT(strstr(err, "variable z:") != NULL);
            remove_all();
        }
}

static void test_bad_grid_mismatch(void) {
    file_req s = sl_req(TS_ERA5_LAYOUT_CDS), p = pl_req(TS_ERA5_LAYOUT_CDS);
    p.nlat = 19, p.dlat = -10; /* 10-degree rows against 15-degree ones */
    const char *sp = path_in("sl.nc"), *pp = path_in("pl_10deg.nc");
    CU_ASSERT_FATAL(write_req(&s, sp) == 0 && write_req(&p, pp) == 0);
    const char *paths[] = {sp, pp};
    ts_era5_open_opts o = opts_of("t850,t2m", "");
    CU_ASSERT(fails_naming(paths, 2, &o, pp, "latitude"));
    CU_ASSERT(strstr(err, sp) != NULL);
    /* a regional file cannot be coarsened onto a global grid */
    file_req reg = sl_req(TS_ERA5_LAYOUT_CDS);
    reg.nlat = 5, reg.lat0 = 60, reg.nlon = 8, reg.lon0 = 0;
    const char *rp = path_in("regional.nc");
    CU_ASSERT_FATAL(write_req(&reg, rp) == 0);
    o = opts_of("t2m", "");
    o.grid = TS_ERA5_GRID_5625;
    CU_ASSERT(fails_naming(&rp, 1, &o, rp, "latitude"));
    remove_all();
}

static void test_bad_not_netcdf(void) {
    const char *np = path_in("readme.nc");
    FILE *f = fopen(np, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs("this is not a NetCDF file\n", f);
    fclose(f);
    ts_era5_open_opts o = opts_of("t2m", "");
    CU_ASSERT(fails_naming(&np, 1, &o, np, NULL));
    remove_all();
}

static void test_bad_times(void) {
    file_req s = sl_req(TS_ERA5_LAYOUT_CDS), p = pl_req(TS_ERA5_LAYOUT_CDS), s2 = sl_req(TS_ERA5_LAYOUT_CDS);
    p.nt = 3;                            /* pressure levels lack the last time */
    s2.t_first = T0 + 3 * DT, s2.nt = 2; /* overlaps the first single-level file at T0 + 3 DT */
    const char *sp = path_in("sl.nc"), *pp = path_in("pl.nc"), *sp2 = path_in("sl_next.nc");
    CU_ASSERT_FATAL(write_req(&s, sp) == 0 && write_req(&p, pp) == 0 && write_req(&s2, sp2) == 0);
    const char *pair[] = {sp, pp}, *overlap[] = {sp2, sp};
    ts_era5_open_opts o = opts_of("t2m,t850", "");
    CU_ASSERT(fails_naming(pair, 2, &o, pp, "variable t:"));
    CU_ASSERT(strstr(err, "2020-01-01T18:00:00") != NULL);
    o = opts_of("t2m", "");
    CU_ASSERT(fails_naming(overlap, 2, &o, sp2, "t2m"));
    CU_ASSERT(strstr(err, "overlap") != NULL);
    remove_all();
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/tessera_era5_XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("era5 input", NULL, NULL);
    if (!s) goto registry_error;
    struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {
        {"time units, calendars, axis names, Pa levels", test_time_units_and_names},
        {"bad: missing variable or level", test_bad_missing_variable_and_level},
        {"bad: wrong dimensions", test_bad_dimensions},
        {"bad: truncated file", test_bad_truncated},
        {"bad: grid mismatch", test_bad_grid_mismatch},
        {"bad: not NetCDF", test_bad_not_netcdf},
        {"bad: times", test_bad_times},
    };
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        if (!CU_add_test(s, tests[i].name, tests[i].fn)) goto registry_error;
    int rc = ts_cunit_run();
    remove_all();
    rmdir(g_dir);
    return rc;

registry_error:
    fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
    CU_cleanup_registry();
    return 1;
}
