/* The forecast writer (io/forecast_write.h).
 *
 *   test_forecast_write           run the CUnit suite
 *   test_forecast_write OUT.nc    write the sample forecast to OUT.nc (for
 *                                 test_forecast_reader.sh) and exit 0
 *   test_forecast_write OUT.nc 2  stop after 2 complete leads: OUT.nc.part
 *                                 is left as a killed forecast leaves it
 *   TESSERA_BENCH=1 test_forecast_write
 *                                 the suite, then the writer's throughput
 *                                 (TESSERA_BENCH_DIR: where to write; default
 *                                 TMPDIR or /tmp)
 *
 * The sample forecast: 3 members, 2 inits, 4 leads (6..24 h), z and t on
 * 850 and 500 hPa, t2m and msl, on an 8 x 16 grid. Every value follows
 * sample_value(), which test_forecast_reader.sh recomputes in numpy.
 */
#include <CUnit/Basic.h>
#include <math.h>
#include <netcdf.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "io/forecast_write.h"
#include "tests/cunit_run.h"

enum { NMEM = 3, NINIT = 2, NSTEP = 4, NLEV = 2, NLAT = 8, NLON = 16, NVARS = 4 };

static const int64_t k_inits[NINIT] = {1577836800, 1577880000}; /* 2020-01-01 00:00 and 12:00 UTC */
static const double k_steps[NSTEP] = {6, 12, 18, 24};
static const double k_levels[NLEV] = {850, 500}; /* decreasing, as the CDS orders them */
static double g_lat[NLAT], g_lon[NLON];
static const ts_forecast_var k_vars[NVARS] = {
    {"z", "m**2 s**-2", "Geopotential", "geopotential", 129, 1},
    {"t", "K", "Temperature", "air_temperature", 130, 1},
    {"t2m", "K", "2 metre temperature", NULL, 167, 0}, /* NULL: no standard_name attribute */
    {"msl", "Pa", "Mean sea level pressure", "air_pressure_at_mean_sea_level", 151, 0},
};
static const char *k_history = "seed: 7\nforecast.members: 3\n";

static char g_dir[256]; /* scratch folder of this run */

/* The value of every sample point, computed in double and rounded once to
 * float, so numpy reproduces it bit for bit. */
static float sample_value(size_t v, size_t m, size_t n, size_t l, size_t k, size_t i, size_t j) {
    return (float)(1000.0 * v + 100.0 * m + 10.0 * n + l + 0.25 * k + 0.001 * (i * NLON + j));
}

static void sample_grid(void) {
    for (size_t i = 0; i < NLAT; i++) g_lat[i] = 78.75 - 22.5 * i;
    for (size_t j = 0; j < NLON; j++) g_lon[j] = 22.5 * j;
}

static ts_forecast_spec sample_spec(const char *path) {
    sample_grid();
    ts_forecast_spec s = {.path = path, .nmembers = NMEM, .ninits = NINIT, .init_times = k_inits,
                          .nsteps = NSTEP, .step_hours = k_steps, .nlev = NLEV, .levels = k_levels,
                          .nlat = NLAT, .nlon = NLON, .lat = g_lat, .lon = g_lon,
                          .nvars = NVARS, .vars = k_vars, .history = k_history};
    return s;
}

static size_t var_levels(size_t v) { return k_vars[v].on_levels ? NLEV : 1; }

/* field: (levels of v, NLAT, NLON); `poison` replaces every value. */
static void sample_field(float *field, size_t v, size_t m, size_t n, size_t l, float poison) {
    for (size_t k = 0; k < var_levels(v); k++)
        for (size_t i = 0; i < NLAT; i++)
            for (size_t j = 0; j < NLON; j++)
                field[(k * NLAT + i) * NLON + j] = isnan(poison) ? sample_value(v, m, n, l, k, i, j) : poison;
}

/* Write the fields of lead l; with nfields < all, only the first nfields
 * (a lead cut short), poisoned so a resume must overwrite them. */
static int write_lead(ts_forecast_writer *w, size_t l, size_t nfields, float poison) {
    float field[NLEV * NLAT * NLON]; /* (levels, NLAT, NLON) */
    char err[2048];
    size_t count = 0;
    for (size_t v = 0; v < NVARS; v++)
        for (size_t m = 0; m < NMEM; m++)
            for (size_t n = 0; n < NINIT; n++) {
                if (count++ == nfields) return 0;
                sample_field(field, v, m, n, l, poison);
                if (ts_forecast_write(w, v, m, n, l, field, err, sizeof err)) {
                    fprintf(stderr, "%s\n", err);
                    return -1;
                }
            }
    return 0;
}

static int write_leads(ts_forecast_writer *w, size_t from, size_t to) {
    char err[2048];
    for (size_t l = from; l < to; l++) {
        if (write_lead(w, l, SIZE_MAX, NAN) || ts_forecast_lead_complete(w, l, err, sizeof err)) {
            fprintf(stderr, "lead %zu: %s\n", l, err);
            return -1;
        }
    }
    return 0;
}

/* Write the first `nleads` leads of the sample forecast to `path` and close:
 * with every lead the file is complete under `path`; with fewer it stays
 * `path`.part, as a killed forecast leaves it. Returns 0 or -1. */
static int write_sample_leads(const char *path, size_t nleads) {
    ts_forecast_spec s = sample_spec(path);
    char err[2048];
    ts_forecast_writer *w = ts_forecast_open(&s, err, sizeof err);
    if (!w) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    int bad = write_leads(w, ts_forecast_leads_done(w), nleads) || ts_forecast_is_complete(w) != (nleads == NSTEP);
    if (ts_forecast_close(w, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        bad = 1;
    }
    return bad ? -1 : 0;
}

static int write_sample(const char *path) { return write_sample_leads(path, NSTEP); }

static int exists(const char *path) { return access(path, F_OK) == 0; }

static void path_in_dir(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", g_dir, name); }

static void part_of(char *buf, size_t cap, const char *path) { snprintf(buf, cap, "%s.part", path); }

/* ---- reading back with the netCDF C API ----------------------------------------------------- */

static int text_att_is(int ncid, int varid, const char *name, const char *want) {
    char buf[4096];
    size_t len;
    if (nc_inq_attlen(ncid, varid, name, &len) || len >= sizeof buf) return 0;
    if (nc_get_att_text(ncid, varid, name, buf)) return 0;
    buf[len] = 0;
    return strcmp(buf, want) == 0;
}

static int var_dims_are(int ncid, int varid, const char *const *names, int n) {
    int ndims, dims[NC_MAX_VAR_DIMS];
    char name[NC_MAX_NAME + 1];
    if (nc_inq_varndims(ncid, varid, &ndims) || ndims != n || nc_inq_vardimid(ncid, varid, dims)) return 0;
    for (int d = 0; d < n; d++)
        if (nc_inq_dimname(ncid, dims[d], name) || strcmp(name, names[d])) return 0;
    return 1;
}

static void check_coordinates(int ncid) {
    int varid, number[NMEM];
    long long time[NINIT], valid[NINIT * NSTEP];
    double step[NSTEP], lev[NLEV], lat[NLAT], lon[NLON];
    CU_ASSERT_FATAL(nc_inq_varid(ncid, "number", &varid) == NC_NOERR);
    CU_ASSERT(nc_get_var_int(ncid, varid, number) == NC_NOERR && number[0] == 0 && number[NMEM - 1] == NMEM - 1);
    CU_ASSERT(text_att_is(ncid, varid, "standard_name", "realization"));
    CU_ASSERT_FATAL(nc_inq_varid(ncid, "time", &varid) == NC_NOERR);
    CU_ASSERT(nc_get_var_longlong(ncid, varid, time) == NC_NOERR && time[0] == k_inits[0] && time[1] == k_inits[1]);
    CU_ASSERT(text_att_is(ncid, varid, "standard_name", "forecast_reference_time"));
    CU_ASSERT(text_att_is(ncid, varid, "units", "seconds since 1970-01-01 00:00:00"));
    CU_ASSERT(text_att_is(ncid, varid, "calendar", "proleptic_gregorian"));
    CU_ASSERT_FATAL(nc_inq_varid(ncid, "step", &varid) == NC_NOERR);
    CU_ASSERT(nc_get_var_double(ncid, varid, step) == NC_NOERR && !memcmp(step, k_steps, sizeof step));
    CU_ASSERT(text_att_is(ncid, varid, "standard_name", "forecast_period"));
    CU_ASSERT(text_att_is(ncid, varid, "units", "hours"));
    CU_ASSERT_FATAL(nc_inq_varid(ncid, "pressure_level", &varid) == NC_NOERR);
    CU_ASSERT(nc_get_var_double(ncid, varid, lev) == NC_NOERR && !memcmp(lev, k_levels, sizeof lev));
    CU_ASSERT(text_att_is(ncid, varid, "units", "hPa"));
    CU_ASSERT_FATAL(nc_inq_varid(ncid, "latitude", &varid) == NC_NOERR);
    CU_ASSERT(nc_get_var_double(ncid, varid, lat) == NC_NOERR && !memcmp(lat, g_lat, sizeof lat) && lat[0] > lat[1]);
    CU_ASSERT(text_att_is(ncid, varid, "units", "degrees_north"));
    CU_ASSERT_FATAL(nc_inq_varid(ncid, "longitude", &varid) == NC_NOERR);
    CU_ASSERT(nc_get_var_double(ncid, varid, lon) == NC_NOERR && !memcmp(lon, g_lon, sizeof lon));
    CU_ASSERT(text_att_is(ncid, varid, "units", "degrees_east"));
    CU_ASSERT_FATAL(nc_inq_varid(ncid, "valid_time", &varid) == NC_NOERR);
    static const char *const tstep[] = {"time", "step"};
    CU_ASSERT(var_dims_are(ncid, varid, tstep, 2));
    CU_ASSERT(text_att_is(ncid, varid, "standard_name", "time"));
    CU_ASSERT(text_att_is(ncid, varid, "units", "seconds since 1970-01-01 00:00:00"));
    CU_ASSERT_FATAL(nc_get_var_longlong(ncid, varid, valid) == NC_NOERR);
    for (size_t n = 0; n < NINIT; n++)
        for (size_t l = 0; l < NSTEP; l++) CU_ASSERT(valid[n * NSTEP + l] == k_inits[n] + (long long)k_steps[l] * 3600);
}

/* Layout, compression and attributes of data variable v. */
static void check_data_var_layout(int ncid, size_t v) {
    static const char *const lev_dims[] = {"number", "time", "step", "pressure_level", "latitude", "longitude"};
    static const char *const sfc_dims[] = {"number", "time", "step", "latitude", "longitude"};
    int varid, storage, shuffle, deflate, level, no_fill;
    size_t chunks[6];
    float fill;
    long long param;
    nc_type type;
    CU_ASSERT_FATAL(nc_inq_varid(ncid, k_vars[v].name, &varid) == NC_NOERR);
    CU_ASSERT(nc_inq_vartype(ncid, varid, &type) == NC_NOERR && type == NC_FLOAT);
    int nd = k_vars[v].on_levels ? 6 : 5;
    CU_ASSERT(var_dims_are(ncid, varid, k_vars[v].on_levels ? lev_dims : sfc_dims, nd));
    CU_ASSERT(nc_inq_var_chunking(ncid, varid, &storage, chunks) == NC_NOERR && storage == NC_CHUNKED);
    for (int d = 0; d < nd - 2; d++) CU_ASSERT(chunks[d] == 1);
    CU_ASSERT(chunks[nd - 2] == NLAT && chunks[nd - 1] == NLON);
    CU_ASSERT(nc_inq_var_deflate(ncid, varid, &shuffle, &deflate, &level) == NC_NOERR);
    CU_ASSERT(shuffle == 1 && deflate == 1 && level == 1);
    CU_ASSERT(nc_inq_var_fill(ncid, varid, &no_fill, &fill) == NC_NOERR && !no_fill && isnan(fill));
    CU_ASSERT(text_att_is(ncid, varid, "units", k_vars[v].units));
    CU_ASSERT(text_att_is(ncid, varid, "long_name", k_vars[v].long_name));
    CU_ASSERT(text_att_is(ncid, varid, "coordinates", "valid_time"));
    if (k_vars[v].standard_name) {
        CU_ASSERT(text_att_is(ncid, varid, "standard_name", k_vars[v].standard_name));
    } else {
        CU_ASSERT(nc_inq_att(ncid, varid, "standard_name", NULL, NULL) == NC_ENOTATT);
    }
    CU_ASSERT(nc_get_att_longlong(ncid, varid, "GRIB_paramId", &param) == NC_NOERR && param == k_vars[v].grib_param_id);
}

/* Every value of variable v against sample_value, for leads below `complete`;
 * later leads must read as the NaN fill. */
static void check_data_values(int ncid, size_t v, size_t complete) {
    int varid;
    size_t nk = var_levels(v);
    float *all = ts_malloc((size_t)NMEM * NINIT * NSTEP * nk * NLAT * NLON * sizeof *all); /* (M, N, L, nk, Y, X) */
    CU_ASSERT_FATAL(nc_inq_varid(ncid, k_vars[v].name, &varid) == NC_NOERR);
    CU_ASSERT_FATAL(nc_get_var_float(ncid, varid, all) == NC_NOERR);
    size_t bad = 0, idx = 0;
    for (size_t m = 0; m < NMEM; m++)
        for (size_t n = 0; n < NINIT; n++)
            for (size_t l = 0; l < NSTEP; l++)
                for (size_t k = 0; k < nk; k++)
                    for (size_t i = 0; i < NLAT; i++)
                        for (size_t j = 0; j < NLON; j++, idx++)
                            bad += l < complete ? all[idx] != sample_value(v, m, n, l, k, i, j) : !isnan(all[idx]);
    CU_ASSERT(bad == 0);
    if (bad) fprintf(stderr, "variable %s: %zu values differ\n", k_vars[v].name, bad);
    free(all);
}

/* The whole sample file, read back independently of the writer. */
static void check_sample_file(const char *path, size_t complete) {
    int ncid, done;
    size_t len;
    CU_ASSERT_FATAL(nc_open(path, NC_NOWRITE, &ncid) == NC_NOERR);
    static const char *const dims[] = {"number", "time", "step", "pressure_level", "latitude", "longitude"};
    static const size_t lens[] = {NMEM, NINIT, NSTEP, NLEV, NLAT, NLON};
    for (int d = 0; d < 6; d++) {
        int dimid;
        CU_ASSERT(nc_inq_dimid(ncid, dims[d], &dimid) == NC_NOERR && nc_inq_dimlen(ncid, dimid, &len) == NC_NOERR &&
                  len == lens[d]);
    }
    CU_ASSERT(text_att_is(ncid, NC_GLOBAL, "Conventions", "CF-1.8"));
    CU_ASSERT(text_att_is(ncid, NC_GLOBAL, "history", k_history));
    CU_ASSERT(nc_inq_att(ncid, NC_GLOBAL, "source", NULL, NULL) == NC_NOERR);
    CU_ASSERT(nc_get_att_int(ncid, NC_GLOBAL, "tessera_complete_leads", &done) == NC_NOERR && done == (int)complete);
    check_coordinates(ncid);
    for (size_t v = 0; v < NVARS; v++) {
        check_data_var_layout(ncid, v);
        check_data_values(ncid, v, complete);
    }
    CU_ASSERT(nc_close(ncid) == NC_NOERR);
}

/* ---- tests ------------------------------------------------------------------------------------ */

/* Lead by lead: the file is path.part until the last lead, then path; every
 * value, coordinate and attribute reads back. */
static void test_write_and_read_back(void) {
    char path[512], part[600], err[2048];
    path_in_dir(path, sizeof path, "roundtrip.nc");
    part_of(part, sizeof part, path);
    ts_forecast_spec s = sample_spec(path);
    ts_forecast_writer *w = ts_forecast_open(&s, err, sizeof err);
    CU_ASSERT_FATAL(w != NULL);
    CU_ASSERT(ts_forecast_leads_done(w) == 0);
    for (size_t l = 0; l < NSTEP; l++) {
        CU_ASSERT(exists(part) && !exists(path));
        CU_ASSERT_FATAL(write_leads(w, l, l + 1) == 0);
        CU_ASSERT(ts_forecast_leads_done(w) == l + 1);
    }
    CU_ASSERT(ts_forecast_is_complete(w));
    CU_ASSERT(exists(path) && !exists(part));
    CU_ASSERT(ts_forecast_close(w, err, sizeof err) == 0);
    check_sample_file(path, NSTEP);
}

/* The sample forecast written as blocks (members {0} and {1, 2}, rows 3 +
 * 5, columns 10 + 6), as the ranks of a layout write it, plus an empty
 * share: the file reads back as the field-by-field one. A lead missing one
 * member's blocks is not complete; a block outside the file is refused;
 * read_block returns a complete lead's block. */
static void sample_block(float *data, const ts_forecast_block *b) {
    size_t idx = 0;
    for (size_t m = b->member0; m < b->member0 + b->nmembers; m++)
        for (size_t k = 0; k < var_levels(b->var); k++)
            for (size_t i = b->row0; i < b->row0 + b->nrows; i++)
                for (size_t j = b->col0; j < b->col0 + b->ncols; j++)
                    data[idx++] = sample_value(b->var, m, b->init, b->lead, k, i, j);
}

static int write_lead_blocks(ts_forecast_writer *w, size_t l, int skip_member2) {
    static const size_t m0[2] = {0, 1}, nm[2] = {1, 2}, r0[2] = {0, 3}, nr[2] = {3, 5}, c0[2] = {0, 10},
                        nc[2] = {10, 6};
    float data[2 * NLEV * NLAT * NLON], got[2 * NLEV * NLAT * NLON];
    char err[2048];
    for (size_t v = 0; v < NVARS; v++)
        for (size_t n = 0; n < NINIT; n++)
            for (int a = 0; a < 2; a++)
                for (int r = 0; r < 2; r++)
                    for (int c = 0; c < 2; c++) {
                        ts_forecast_block b = {v, m0[a], nm[a], n, l, r0[r], nr[r], c0[c], nc[c]};
                        if (skip_member2 && a == 1) b.nmembers = 1;
                        sample_block(data, &b);
                        if (ts_forecast_write_block(w, &b, data, err, sizeof err))
                            return fprintf(stderr, "%s\n", err), -1;
                    }
    ts_forecast_block empty = {0, 0, 0, 0, l, 0, 0, 0, 0};
    if (ts_forecast_write_block(w, &empty, NULL, err, sizeof err)) return fprintf(stderr, "%s\n", err), -1;
    if (l == 0) return 0;
    ts_forecast_block back = {1, 1, 2, 1, l - 1, 3, 5, 10, 6}; /* a block of the lead before */
    sample_block(data, &back);
    if (ts_forecast_read_block(w, &back, got, err, sizeof err)) return fprintf(stderr, "%s\n", err), -1;
    return memcmp(data, got, sizeof(float) * 2 * NLEV * 5 * 6) ? -1 : 0;
}

static void test_blocks(void) {
    char path[512], err[2048];
    path_in_dir(path, sizeof path, "blocks.nc");
    ts_forecast_spec s = sample_spec(path);
    ts_forecast_writer *w = ts_forecast_open(&s, err, sizeof err);
    CU_ASSERT_FATAL(w != NULL);
    CU_ASSERT_FATAL(write_lead_blocks(w, 0, 1) == 0);
    CU_ASSERT(ts_forecast_lead_complete(w, 0, err, sizeof err) == -1 && strstr(err, "member 2") != NULL);
    ts_forecast_block outside = {0, 0, 1, 0, 0, 4, 5, 0, 1}; /* rows 4..8 of 8 */
    float one[NLEV * 5];
    CU_ASSERT(ts_forecast_write_block(w, &outside, one, err, sizeof err) == -1 && strstr(err, "no block") != NULL);
    for (size_t l = 0; l < NSTEP; l++) {
        CU_ASSERT_FATAL(write_lead_blocks(w, l, 0) == 0);
        CU_ASSERT_FATAL(ts_forecast_lead_complete(w, l, err, sizeof err) == 0);
    }
    CU_ASSERT(ts_forecast_is_complete(w));
    CU_ASSERT(ts_forecast_close(w, err, sizeof err) == 0);
    check_sample_file(path, NSTEP);
}

/* A writer closed after 2 leads leaves a .part that says so, whose later
 * leads read as NaN. */
static void test_partial_file(void) {
    char path[512], part[600], err[2048];
    path_in_dir(path, sizeof path, "partial.nc");
    part_of(part, sizeof part, path);
    ts_forecast_spec s = sample_spec(path);
    ts_forecast_writer *w = ts_forecast_open(&s, err, sizeof err);
    CU_ASSERT_FATAL(w != NULL);
    CU_ASSERT_FATAL(write_leads(w, 0, 2) == 0);
    CU_ASSERT(ts_forecast_close(w, err, sizeof err) == 0);
    CU_ASSERT(exists(part) && !exists(path));
    check_sample_file(part, 2);
}

/* Compare every data value of two files bit for bit. */
static void check_identical(const char *a, const char *b) {
    int na, nb;
    CU_ASSERT_FATAL(nc_open(a, NC_NOWRITE, &na) == NC_NOERR);
    CU_ASSERT_FATAL(nc_open(b, NC_NOWRITE, &nb) == NC_NOERR);
    for (size_t v = 0; v < NVARS; v++) {
        size_t n = (size_t)NMEM * NINIT * NSTEP * var_levels(v) * NLAT * NLON;
        float *x = ts_malloc(n * sizeof *x), *y = ts_malloc(n * sizeof *y); /* (M, N, L, nk, Y, X) each */
        int va, vb;
        CU_ASSERT_FATAL(nc_inq_varid(na, k_vars[v].name, &va) == NC_NOERR);
        CU_ASSERT_FATAL(nc_inq_varid(nb, k_vars[v].name, &vb) == NC_NOERR);
        CU_ASSERT_FATAL(nc_get_var_float(na, va, x) == NC_NOERR && nc_get_var_float(nb, vb, y) == NC_NOERR);
        CU_ASSERT(memcmp(x, y, n * sizeof *x) == 0);
        free(x);
        free(y);
    }
    CU_ASSERT(nc_close(na) == NC_NOERR && nc_close(nb) == NC_NOERR);
}

/* The child writes 2 leads, half of lead 3 with poison, and is killed. */
static void killed_writer(const char *path) {
    ts_forecast_spec s = sample_spec(path);
    char err[2048];
    ts_forecast_writer *w = ts_forecast_open(&s, err, sizeof err);
    if (!w || write_leads(w, 0, 2) || write_lead(w, 2, NVARS * NMEM * NINIT / 2, -999.0f)) _exit(3);
    raise(SIGKILL);
    _exit(4); /* not reached */
}

/* Kill mid-lead, resume at 2 complete leads, finish: identical to an
 * uninterrupted run. */
static void test_kill_and_resume(void) {
    char ref[512], path[512], part[600], err[2048];
    float field[NLEV * NLAT * NLON]; /* (NLEV, NLAT, NLON) */
    path_in_dir(ref, sizeof ref, "uninterrupted.nc");
    path_in_dir(path, sizeof path, "resumed.nc");
    part_of(part, sizeof part, path);
    CU_ASSERT_FATAL(write_sample(ref) == 0);
    fflush(NULL);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) killed_writer(path);
    int status;
    CU_ASSERT_FATAL(waitpid(pid, &status, 0) == pid);
    CU_ASSERT_FATAL(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    CU_ASSERT(exists(part) && !exists(path));

    ts_forecast_spec s = sample_spec(path);
    ts_forecast_writer *w = ts_forecast_open(&s, err, sizeof err);
    if (!w) fprintf(stderr, "%s\n", err);
    CU_ASSERT_FATAL(w != NULL);
    CU_ASSERT_FATAL(ts_forecast_leads_done(w) == 2);
    /* A resumed rollout restarts from the last complete lead's fields. */
    CU_ASSERT(ts_forecast_read(w, 1, 2, 1, 1, field, err, sizeof err) == 0);
    CU_ASSERT(field[(1 * NLAT + 3) * NLON + 5] == sample_value(1, 2, 1, 1, 1, 3, 5));
    CU_ASSERT(ts_forecast_read(w, 1, 2, 1, 2, field, err, sizeof err) == -1);
    CU_ASSERT_FATAL(write_leads(w, 2, NSTEP) == 0);
    CU_ASSERT(ts_forecast_is_complete(w) && exists(path) && !exists(part));
    CU_ASSERT(ts_forecast_close(w, err, sizeof err) == 0);
    check_identical(ref, path);
    check_sample_file(path, NSTEP);
}

/* Opening a .part with another structure fails, naming the file and the
 * difference, and leaves the .part as it was. */
static void expect_mismatch(const ts_forecast_spec *s, const char *part, const char *what) {
    char err[2048] = "";
    ts_forecast_writer *w = ts_forecast_open(s, err, sizeof err);
    CU_ASSERT(w == NULL);
    CU_ASSERT(strstr(err, part) != NULL);
    CU_ASSERT(strstr(err, what) != NULL);
    if (!strstr(err, what)) fprintf(stderr, "expected '%s' in: %s\n", what, err);
    ts_forecast_close(w, err, sizeof err);
    CU_ASSERT(exists(part));
}

static void test_resume_mismatch(void) {
    char path[512], part[600], err[2048];
    path_in_dir(path, sizeof path, "mismatch.nc");
    part_of(part, sizeof part, path);
    ts_forecast_spec s = sample_spec(path);
    ts_forecast_writer *w = ts_forecast_open(&s, err, sizeof err);
    CU_ASSERT_FATAL(w != NULL && write_leads(w, 0, 2) == 0);
    CU_ASSERT(ts_forecast_close(w, err, sizeof err) == 0);

    ts_forecast_spec t = s;
    t.nmembers = NMEM + 1;
    expect_mismatch(&t, part, "'number'");
    t = s;
    const double other_steps[NSTEP] = {6, 12, 18, 30};
    t.step_hours = other_steps;
    expect_mismatch(&t, part, "'step'");
    t = s;
    ts_forecast_var other_vars[NVARS];
    memcpy(other_vars, k_vars, sizeof other_vars);
    other_vars[3].name = "q";
    t.vars = other_vars;
    expect_mismatch(&t, part, "'q'");
    t = s;
    t.history = "seed: 8\n";
    expect_mismatch(&t, part, "history");

    w = ts_forecast_open(&s, err, sizeof err); /* the right spec still resumes */
    CU_ASSERT_FATAL(w != NULL);
    CU_ASSERT(ts_forecast_leads_done(w) == 2);
    CU_ASSERT(ts_forecast_close(w, err, sizeof err) == 0);
}

/* Killed after the last lead's sync but before the rename: opening renames. */
static void test_resume_complete_part(void) {
    char path[512], part[600], err[2048];
    path_in_dir(path, sizeof path, "renamed.nc");
    part_of(part, sizeof part, path);
    CU_ASSERT_FATAL(write_sample(path) == 0);
    CU_ASSERT_FATAL(rename(path, part) == 0);
    ts_forecast_spec s = sample_spec(path);
    ts_forecast_writer *w = ts_forecast_open(&s, err, sizeof err);
    CU_ASSERT_FATAL(w != NULL);
    CU_ASSERT(ts_forecast_is_complete(w) && ts_forecast_leads_done(w) == NSTEP);
    CU_ASSERT(exists(path) && !exists(part));
    CU_ASSERT(ts_forecast_close(w, err, sizeof err) == 0);
}

/* Out-of-order leads, incomplete leads, bad specs and unreadable .part files
 * are errors naming the file; a bad spec leaves no file behind. */
static void test_misuse(void) {
    char path[512], part[600], err[2048];
    float field[NLEV * NLAT * NLON] = {0}; /* (NLEV, NLAT, NLON) */
    path_in_dir(path, sizeof path, "misuse.nc");
    part_of(part, sizeof part, path);
    ts_forecast_spec s = sample_spec(path);
    ts_forecast_writer *w = ts_forecast_open(&s, err, sizeof err);
    CU_ASSERT_FATAL(w != NULL);
    CU_ASSERT(ts_forecast_write(w, 0, 0, 0, 1, field, err, sizeof err) == -1 && strstr(err, part));
    CU_ASSERT(ts_forecast_write(w, NVARS, 0, 0, 0, field, err, sizeof err) == -1);
    CU_ASSERT(write_lead(w, 0, NVARS * NMEM * NINIT - 1, NAN) == 0);
    CU_ASSERT(ts_forecast_lead_complete(w, 0, err, sizeof err) == -1 && strstr(err, "'msl' of member 2, init 1"));
    CU_ASSERT(ts_forecast_lead_complete(w, 1, err, sizeof err) == -1);
    CU_ASSERT(ts_forecast_close(w, err, sizeof err) == 0);
    CU_ASSERT(unlink(part) == 0);

    double rising[NLAT];
    for (size_t i = 0; i < NLAT; i++) rising[i] = -g_lat[i];
    ts_forecast_spec t = s;
    t.lat = rising;
    CU_ASSERT(ts_forecast_open(&t, err, sizeof err) == NULL && strstr(err, path) && strstr(err, "latitudes"));
    CU_ASSERT(!exists(part) && !exists(path));

    FILE *f = fopen(part, "w"); /* a .part that is not NetCDF at all */
    CU_ASSERT_FATAL(f != NULL);
    fputs("not a netcdf file\n", f);
    fclose(f);
    CU_ASSERT(ts_forecast_open(&s, err, sizeof err) == NULL && strstr(err, part) && strstr(err, "cannot resume"));
    CU_ASSERT(exists(part)); /* never delete what may be someone's partial forecast */
    CU_ASSERT(unlink(part) == 0);
}

/* ---- throughput (TESSERA_BENCH=1) -------------------------------------------------------------- */

/* Model-like fields: a smooth large-scale pattern plus small-scale noise in
 * every mantissa bit, so zlib sees what real output gives it. */
static void bench_field(float *f, size_t nk, size_t nlat, size_t nlon, size_t seed) {
    uint64_t x = 0x9E3779B97F4A7C15ull * (seed + 1);
    for (size_t k = 0; k < nk; k++)
        for (size_t i = 0; i < nlat; i++)
            for (size_t j = 0; j < nlon; j++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                double noise = (double)(x >> 11) / 9007199254740992.0 - 0.5;
                f[(k * nlat + i) * nlon + j] = (float)(280.0 + 10.0 * k + 30.0 * cos(3.14159 * i / nlat) *
                                                       sin(6.28318 * j / nlon) + 0.5 * noise);
            }
}

static double file_mb(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size / 1e6 : 0;
}

/* The machine's own ceiling: write() + fsync of the same bytes, uncompressed. */
static double plain_write_mbs(const char *path, const float *buf, size_t n, size_t repeats) {
    double t0 = ts_now();
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    for (size_t r = 0; r < repeats; r++) fwrite(buf, sizeof *buf, n, f);
    fflush(f);
    fsync(fileno(f));
    fclose(f);
    double dt = ts_now() - t0;
    unlink(path);
    return repeats * n * sizeof *buf / 1e6 / dt;
}

static void bench_grid(const char *dir, size_t nlat, size_t nlon) {
    enum { M = 8, N = 2, L = 20, K = 3, V = 9 };
    static const ts_forecast_var vars[V] = {
        {"z", "m**2 s**-2", "Geopotential", "geopotential", 129, 1},
        {"t", "K", "Temperature", "air_temperature", 130, 1},
        {"u", "m s**-1", "U component of wind", "eastward_wind", 131, 1},
        {"v", "m s**-1", "V component of wind", "northward_wind", 132, 1},
        {"q", "kg kg**-1", "Specific humidity", "specific_humidity", 133, 1},
        {"t2m", "K", "2 metre temperature", NULL, 167, 0},
        {"u10", "m s**-1", "10 metre U wind component", NULL, 165, 0},
        {"v10", "m s**-1", "10 metre V wind component", NULL, 166, 0},
        {"msl", "Pa", "Mean sea level pressure", "air_pressure_at_mean_sea_level", 151, 0}};
    const int64_t inits[N] = {1577836800, 1577923200};
    const double levels[K] = {850, 700, 500};
    double steps[L], *lat = ts_malloc(nlat * sizeof *lat), *lon = ts_malloc(nlon * sizeof *lon);
    for (size_t l = 0; l < L; l++) steps[l] = 6.0 * (l + 1);
    for (size_t i = 0; i < nlat; i++) lat[i] = 90.0 - 180.0 * (i + 0.5) / nlat;
    for (size_t j = 0; j < nlon; j++) lon[j] = 360.0 * j / nlon;
    size_t fsz = K * nlat * nlon;
    float *fields = ts_malloc(V * M * fsz * sizeof *fields); /* (V, M, K, nlat, nlon): one set, reused per lead */
    for (size_t v = 0; v < V; v++)
        for (size_t m = 0; m < M; m++) bench_field(fields + (v * M + m) * fsz, K, nlat, nlon, v * M + m);
    char path[600], err[2048];
    snprintf(path, sizeof path, "%s/bench_%zux%zu.nc", dir, nlat, nlon);
    ts_forecast_spec s = {.path = path, .nmembers = M, .ninits = N, .init_times = inits, .nsteps = L,
                          .step_hours = steps, .nlev = K, .levels = levels, .nlat = nlat, .nlon = nlon,
                          .lat = lat, .lon = lon, .nvars = V, .vars = vars, .history = "bench\n"};
    double t0 = ts_now(), bytes = 0;
    ts_forecast_writer *w = ts_forecast_open(&s, err, sizeof err);
    for (size_t l = 0; w && l < L; l++) {
        for (size_t v = 0; v < V; v++)
            for (size_t m = 0; m < M; m++)
                for (size_t n = 0; n < N; n++) {
                    if (ts_forecast_write(w, v, m, n, l, fields + (v * M + m) * fsz, err, sizeof err)) goto fail;
                    bytes += (vars[v].on_levels ? K : 1) * nlat * nlon * sizeof(float);
                }
        if (ts_forecast_lead_complete(w, l, err, sizeof err)) goto fail;
    }
    if (!w || ts_forecast_close(w, err, sizeof err)) goto fail;
    double dt = ts_now() - t0, mb = bytes / 1e6, file = file_mb(path);
    char plain[700];
    snprintf(plain, sizeof plain, "%s.plain", path);
    double ceiling = plain_write_mbs(plain, fields, V * M * fsz, 4);
    printf("bench %zux%zu: %d members x %d inits x %d leads x %d vars (%d fields of %zux%zu per lead and member): "
           "%.1f MB in %.3f s = %.1f MB/s (%.2f ms per lead; file %.1f MB, zlib ratio %.2f); "
           "plain write+fsync ceiling here %.0f MB/s\n",
           nlat, nlon, M, N, L, V, 5 * K + 4, nlat, nlon, mb, dt, mb / dt, 1e3 * dt / L, file, mb / file,
           ceiling);
    unlink(path);
    free(fields), free(lat), free(lon);
    return;
fail:
    fprintf(stderr, "bench %zux%zu: %s\n", nlat, nlon, err);
    free(fields), free(lat), free(lon);
}

static void run_bench(void) {
    const char *dir = getenv("TESSERA_BENCH_DIR");
    if (!dir) dir = getenv("TMPDIR");
    if (!dir) dir = "/tmp";
    bench_grid(dir, 32, 64);
    bench_grid(dir, 128, 256);
}

/* ---- suite ------------------------------------------------------------------------------------- */

static int suite_init(void) {
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/tessera-forecast-XXXXXX", tmp ? tmp : "/tmp");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int suite_cleanup(void) {
    static const char *const names[] = {"roundtrip.nc",     "partial.nc.part", "uninterrupted.nc", "resumed.nc",
                                        "mismatch.nc.part", "renamed.nc",      "misuse.nc.part",   "blocks.nc"};
    char path[512];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        path_in_dir(path, sizeof path, names[i]);
        unlink(path);
    }
    return rmdir(g_dir);
}

int main(int argc, char **argv) {
    if (argc == 2 || argc == 3) {
        long nleads = argc == 3 ? strtol(argv[2], NULL, 10) : NSTEP;
        if (nleads < 0 || nleads > NSTEP) {
            fprintf(stderr, "%s: LEADS must be 0..%d\n", argv[0], NSTEP);
            return 2;
        }
        return write_sample_leads(argv[1], (size_t)nleads) == 0 ? 0 : 1;
    }
    if (argc > 3) {
        fprintf(stderr, "usage: %s [OUT.nc [LEADS]]\n", argv[0]);
        return 2;
    }
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite suite = CU_add_suite("forecast_write", suite_init, suite_cleanup);
    if (!suite || !CU_add_test(suite, "write lead by lead, read back", test_write_and_read_back) ||
        !CU_add_test(suite, "partial file", test_partial_file) ||
        !CU_add_test(suite, "blocks, as the ranks of a layout write them", test_blocks) ||
        !CU_add_test(suite, "kill and resume", test_kill_and_resume) ||
        !CU_add_test(suite, "resume mismatch", test_resume_mismatch) ||
        !CU_add_test(suite, "resume a complete .part", test_resume_complete_part) ||
        !CU_add_test(suite, "misuse", test_misuse)) {
        CU_cleanup_registry();
        return 1;
    }
    int rc = ts_cunit_run();
    const char *bench = getenv("TESSERA_BENCH");
    if (rc == 0 && bench && !strcmp(bench, "1")) run_bench();
    return rc;
}
