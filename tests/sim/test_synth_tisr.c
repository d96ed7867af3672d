/* The tisr the simulator writes is core/solar.h's at the file's own valid
 * times and coordinates (read back with netcdf.h, independently of the
 * writer): exactly in the CDS layout (float32 written as computed), and
 * within half a packing step in the packed layout. Both the one-file and
 * the split instant/accum forms are checked, and the files appear under
 * their final names only. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <CUnit/Basic.h>
#include <math.h>
#include <netcdf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/solar.h"
#include "sim/synth_era5.h"
#include "tests/cunit_run.h"

#define T2020 INT64_C(1577836800)

/* Every netCDF call checked: on error, print file:line and the library's
 * message, fail the test and leave. */
#define NC_OK(call)                                                                           \
    do {                                                                                      \
        int rc_ = (call);                                                                     \
        if (rc_ != NC_NOERR) {                                                                \
            fprintf(stderr, "\n  %s:%d: %s: %s\n", __FILE__, __LINE__, #call, nc_strerror(rc_)); \
            CU_FAIL(#call);                                                                   \
            goto done;                                                                        \
        }                                                                                     \
    } while (0)

/* Largest |file - core| over the file's times, in J m^-2; -1 on a read error. */
static double tisr_error(const char *path, int packed, size_t *ntimes) {
    int nc = -1, id;
    double worst = -1.0, lat[32], lon[64];
    float *want = malloc(32 * 64 * sizeof *want); /* (lat, lon) */
    float *got = NULL;                             /* (time, lat, lon) */
    int64_t *times = NULL;                         /* (time) unix seconds */
    size_t nt = 0, nlat = 0, nlon = 0;
    NC_OK(nc_open(path, NC_NOWRITE, &nc));
    NC_OK(nc_inq_dimid(nc, packed ? "time" : "valid_time", &id));
    NC_OK(nc_inq_dimlen(nc, id, &nt));
    NC_OK(nc_inq_dimid(nc, "latitude", &id));
    NC_OK(nc_inq_dimlen(nc, id, &nlat));
    NC_OK(nc_inq_dimid(nc, "longitude", &id));
    NC_OK(nc_inq_dimlen(nc, id, &nlon));
    if (nlat != 32 || nlon != 64 || nt == 0) {
        fprintf(stderr, "\n  %s: grid %zu x %zu, %zu times; expected 32 x 64 and some times\n", path, nlat, nlon, nt);
        goto done;
    }
    NC_OK(nc_inq_varid(nc, "latitude", &id));
    NC_OK(nc_get_var_double(nc, id, lat));
    NC_OK(nc_inq_varid(nc, "longitude", &id));
    NC_OK(nc_get_var_double(nc, id, lon));
    times = malloc(nt * sizeof *times);
    got = malloc(nt * 32 * 64 * sizeof *got);
    if (packed) { /* int32 hours since 1900-01-01, int16 with scale and offset */
        int *hours = malloc(nt * sizeof *hours);
        short *raw = malloc(nt * 32 * 64 * sizeof *raw);
        double scale, offset;
        int rc = nc_inq_varid(nc, "time", &id);
        if (rc == NC_NOERR) rc = nc_get_var_int(nc, id, hours);
        if (rc == NC_NOERR) rc = nc_inq_varid(nc, "tisr", &id);
        if (rc == NC_NOERR) rc = nc_get_var_short(nc, id, raw);
        if (rc == NC_NOERR) rc = nc_get_att_double(nc, id, "scale_factor", &scale);
        if (rc == NC_NOERR) rc = nc_get_att_double(nc, id, "add_offset", &offset);
        for (size_t i = 0; rc == NC_NOERR && i < nt; i++) times[i] = (int64_t)hours[i] * 3600 - INT64_C(2208988800);
        for (size_t i = 0; rc == NC_NOERR && i < nt * 32 * 64; i++) got[i] = (float)(raw[i] * scale + offset);
        free(hours), free(raw);
        NC_OK(rc);
    } else {
        long long *t64 = malloc(nt * sizeof *t64);
        int rc = nc_inq_varid(nc, "valid_time", &id);
        if (rc == NC_NOERR) rc = nc_get_var_longlong(nc, id, t64);
        for (size_t i = 0; rc == NC_NOERR && i < nt; i++) times[i] = t64[i];
        free(t64);
        NC_OK(rc);
        NC_OK(nc_inq_varid(nc, "tisr", &id));
        NC_OK(nc_get_var_float(nc, id, got));
    }
    worst = 0.0;
    for (size_t i = 0; i < nt; i++) {
        ts_solar_tisr_field((double)times[i], lat, 32, lon, 64, want);
        for (size_t g = 0; g < 32 * 64; g++) {
            double d = fabs((double)got[i * 32 * 64 + g] - (double)want[g]);
            if (d > worst) worst = d;
        }
    }
    *ntimes = nt;
done:
    if (nc >= 0) nc_close(nc);
    free(want), free(got), free(times);
    return worst;
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Run 1 day of output (after 1 day of spin-up) into a fresh folder. */
static int run_synth(char *dir, ts_era5_layout layout, int split) {
    static const double levels[1] = {500};
    ts_synth_era5_opts o = {0};
    o.out_dir = dir;
    o.nlat = 32, o.nlon = 64;
    o.start = T2020 + 181 * 86400; /* 2020-06-30, around the solstice: polar day and night */
    o.days = 1, o.step_hours = 3, o.spinup_days = 1;
    o.levels = levels, o.nlev = 1;
    o.layout = layout, o.split_accum = split;
    o.seed = 3;
    o.history = "test_synth_tisr";
    char err[2048];
    if (ts_synth_era5_run(&o, err, sizeof err)) {
        fprintf(stderr, "\n  %s\n", err);
        return -1;
    }
    return 0;
}

static void check_layout(ts_era5_layout layout, int split) {
    char dir[] = "/tmp/tessera_synth_XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    CU_ASSERT_FATAL(run_synth(dir, layout, split) == 0);
    ts_synth_era5_opts o = {.out_dir = dir, .split_accum = split};
    char pressure[4096], single[4096], accum[4096], part[4200];
    ts_synth_era5_paths(&o, T2020 + 181 * 86400, pressure, single, accum, sizeof pressure);
    const char *with_tisr = split ? accum : single;
    size_t nt = 0;
    int packed = layout == TS_ERA5_LAYOUT_PACKED;
    double err = tisr_error(with_tisr, packed, &nt);
    /* CDS: the same float32 function, so equal; packed: half a packing
     * step (the range -5.5e6..5.5e6 J m^-2 over 65534 steps) plus float
     * rounding. */
    double tol = packed ? 0.5 * 11.0e6 / 65534 + 1.0 : 0.0;
    if (!(err >= 0 && err <= tol)) fprintf(stderr, "\n  %s: tisr off by %g J m^-2 (allowed %g)\n", with_tisr, err, tol);
    CU_ASSERT(err >= 0 && err <= tol);
    CU_ASSERT(nt == 8);
    snprintf(part, sizeof part, "%s.part", with_tisr);
    CU_ASSERT(!exists(part));
    CU_ASSERT(exists(pressure) && exists(single));
    unlink(pressure), unlink(single);
    if (split) {
        unlink(accum);
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/era5_single_levels_2020", dir);
        CU_ASSERT(rmdir(sub) == 0);
    }
    CU_ASSERT(rmdir(dir) == 0); /* nothing else was left behind */
}

static void test_tisr_cds(void) { check_layout(TS_ERA5_LAYOUT_CDS, 0); }
static void test_tisr_cds_split(void) { check_layout(TS_ERA5_LAYOUT_CDS, 1); }
static void test_tisr_packed(void) { check_layout(TS_ERA5_LAYOUT_PACKED, 0); }

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite s = CU_add_suite("synth tisr", NULL, NULL);
    if (!s || !CU_add_test(s, "tisr equals core/solar, CDS layout", test_tisr_cds) ||
        !CU_add_test(s, "tisr equals core/solar, split accum file", test_tisr_cds_split) ||
        !CU_add_test(s, "tisr within packing precision, packed layout", test_tisr_packed)) {
        CU_cleanup_registry();
        return 2;
    }
    return ts_cunit_run();
}
