/* The perfect-model ensemble of eval/perfect_model.c.
 *
 * A fixture runs the simulator from a spin-up, saves restart files at two
 * initial times and keeps the uninterrupted run's fields at the valid times
 * (the truth), and writes a small "tessera" forecast whose structure the
 * perfect model copies (3 members, 2 inits, leads 24 and 48 h, z on 850,
 * 700 and 500 hPa with 700 left NaN, t2m, msl). Checked: with a zero
 * perturbation every member is the truth bit for bit; with the default one
 * the members differ, stay finite and keep the NaN slot; the same seed
 * gives the same file; a missing restart file is one clear error.
 *
 * `test_perfect_model --spread` measures the spread the default and other
 * amplitudes grow to (the numbers docs/score.md quotes): 8 members from
 * four saturated states a season apart (120 days of spin-up), z500 t850
 * t2m msl at 24 h to 120 h, spread = sqrt(mean over inits of the
 * area-weighted ensemble variance), RMSE of the ensemble mean against the
 * unperturbed run.
 */
#include "eval/perfect_model.h"

#include <CUnit/Basic.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/caltime.h"
#include "core/geo.h"
#include "core/log.h"
#include "io/forecast_read.h"
#include "io/forecast_write.h"
#include "sim/qg.h"
#include "sim/synth_era5.h"
#include "tests/cunit_run.h"

enum { NLAT = 32, NLON = 64, M = 3, NINIT = 2, NSTEP = 2, NLEV = 3 };
static const double LEVELS[NLEV] = {850, 700, 500};
static const double STEPS[NSTEP] = {24, 48};
static char g_dir[256];
static int64_t g_inits[NINIT];
static float *g_truth_z, *g_truth_t2m, *g_truth_msl; /* (NINIT, NSTEP, [NLEV,] NLAT*NLON) */
static double g_lat[NLAT], g_lon[NLON];

/* ---- fixture ------------------------------------------------------------------------------------ */

static ts_qg *new_model(void) {
    ts_qg_params p;
    char err[512];
    if (ts_qg_params_default(&p, NLAT, NLON)) return NULL;
    ts_qg *m = ts_qg_create(&p, err, sizeof err);
    if (!m) fprintf(stderr, "%s\n", err);
    return m;
}

/* The tessera file: its values do not matter, only its structure and NaN slots. */
static int write_structure(const char *path, size_t nmem, size_t ninit, const int64_t *inits, size_t nstep,
                           const double *steps, const double *levels, size_t nlev, const int *nan_level) {
    ts_forecast_var vars[3] = {{"z", "m**2 s**-2", "Geopotential", "geopotential", 129, 1},
                               {"t2m", "K", "2 metre temperature", NULL, 167, 0},
                               {"msl", "Pa", "Mean sea level pressure", NULL, 151, 0}};
    ts_forecast_spec spec = {path, nmem, ninit, inits, nstep, steps, nlev, levels, NLAT, NLON, g_lat, g_lon, 3, vars,
                             "test structure"};
    char err[1024];
    ts_forecast_writer *w = ts_forecast_open(&spec, err, sizeof err);
    if (!w) return fprintf(stderr, "%s\n", err), -1;
    float *f = ts_calloc(nlev * NLAT * NLON, sizeof *f);
    for (size_t l = 0; l < nlev; l++)
        for (size_t k = 0; nan_level && nan_level[l] && k < NLAT * NLON; k++) f[l * NLAT * NLON + k] = NAN;
    int rc = 0;
    for (size_t s = 0; s < nstep && !rc; s++) {
        for (size_t v = 0; v < 3; v++)
            for (size_t i = 0; i < ninit; i++)
                for (size_t k = 0; k < nmem; k++) rc |= ts_forecast_write(w, v, k, i, s, f, err, sizeof err);
        rc |= ts_forecast_lead_complete(w, s, err, sizeof err);
    }
    rc |= ts_forecast_close(w, err, sizeof err);
    if (rc) fprintf(stderr, "%s\n", err);
    free(f);
    return rc;
}

/* Spin up, save the restart of each init, keep the truth at its leads. */
static int make_fixture(void) {
    ts_qg *m = new_model();
    if (!m) return -1;
    char err[1024], path[512];
    if (ts_parse_datetime("2021-01-21T00", &g_inits[0])) return -1;
    g_inits[1] = g_inits[0] + 3 * 86400;
    memcpy(g_lat, ts_qg_lat(m), sizeof g_lat), memcpy(g_lon, ts_qg_lon(m), sizeof g_lon);
    ts_qg_init(m, g_inits[0] - 30 * 86400, 11);
    ts_qg_fields f;
    ts_qg_fields_alloc(&f, NLAT, NLON, LEVELS, NLEV);
    size_t px = NLAT * NLON;
    g_truth_z = ts_malloc(NINIT * NSTEP * NLEV * px * sizeof(float));
    g_truth_t2m = ts_malloc(NINIT * NSTEP * px * sizeof(float));
    g_truth_msl = ts_malloc(NINIT * NSTEP * px * sizeof(float));
    for (size_t i = 0; i < NINIT; i++) {
        ts_qg_run_until(m, g_inits[i]);
        ts_synth_era5_restart_path(g_dir, g_inits[i], path, sizeof path);
        if (ts_qg_save(m, path, "test", err, sizeof err)) return fprintf(stderr, "%s\n", err), -1;
        for (size_t s = 0; s < NSTEP; s++) {
            ts_qg_run_until(m, g_inits[i] + (int64_t)STEPS[s] * 3600);
            ts_qg_diagnose(m, &f);
            size_t c = i * NSTEP + s;
            memcpy(g_truth_z + c * NLEV * px, f.z, NLEV * px * sizeof(float));
            memcpy(g_truth_t2m + c * px, f.t2m, px * sizeof(float));
            memcpy(g_truth_msl + c * px, f.msl, px * sizeof(float));
        }
    }
    ts_qg_fields_free(&f);
    ts_qg_free(m);
    snprintf(path, sizeof path, "%s/forecast.nc", g_dir);
    static const int NAN_700[NLEV] = {0, 1, 0};
    return write_structure(path, M, NINIT, g_inits, NSTEP, STEPS, LEVELS, NLEV, NAN_700);
}

static int run_pm(const char *restarts, const char *out, double amp, uint64_t seed, char *err, size_t cap) {
    char fc[512];
    snprintf(fc, sizeof fc, "%s/forecast.nc", g_dir);
    ts_perfect_model_opts o = {fc, restarts, out, amp, seed};
    return ts_perfect_model_forecast(&o, err, cap);
}

/* ---- tests -------------------------------------------------------------------------------------- */

static float g_buf[NLAT * NLON];

static int read_field(ts_forecast_file *f, const char *var, size_t k, size_t i, size_t s, size_t l) {
    char err[1024];
    int v = ts_forecast_file_find_var(f, var);
    if (v < 0 || ts_forecast_file_read(f, (size_t)v, k, i, s, l, g_buf, err, sizeof err))
        return fprintf(stderr, "%s: %s\n", var, err), -1;
    return 0;
}

static int equal_bits(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof *a) == 0; }

static int all_nan(const float *a, size_t n) {
    for (size_t k = 0; k < n; k++)
        if (!isnan(a[k])) return 0;
    return 1;
}

static void test_zero_perturbation_is_the_truth(void) {
    char out[512], err[1024];
    snprintf(out, sizeof out, "%s/pm_zero.nc", g_dir);
    CU_ASSERT_FATAL(run_pm(g_dir, out, 0.0, 1234, err, sizeof err) == 0);
    ts_forecast_file *f = ts_forecast_file_open(out, err, sizeof err);
    CU_ASSERT_FATAL(f != NULL);
    const ts_forecast_info *in = ts_forecast_file_info(f);
    CU_ASSERT(in->nmembers == M && in->ninits == NINIT && in->nsteps == NSTEP && in->nlev == NLEV);
    size_t px = NLAT * NLON;
    for (size_t i = 0; i < NINIT; i++)
        for (size_t s = 0; s < NSTEP; s++)
            for (size_t k = 0; k < M; k++) {
                size_t c = i * NSTEP + s;
                for (size_t l = 0; l < NLEV; l++) {
                    CU_ASSERT_FATAL(read_field(f, "z", k, i, s, l) == 0);
                    if (l == 1) CU_ASSERT(all_nan(g_buf, px)); /* tessera's NaN slot */
                    if (l != 1) CU_ASSERT(equal_bits(g_buf, g_truth_z + (c * NLEV + l) * px, px));
                }
                CU_ASSERT_FATAL(read_field(f, "t2m", k, i, s, 0) == 0);
                CU_ASSERT(equal_bits(g_buf, g_truth_t2m + c * px, px));
                CU_ASSERT_FATAL(read_field(f, "msl", k, i, s, 0) == 0);
                CU_ASSERT(equal_bits(g_buf, g_truth_msl + c * px, px));
            }
    ts_forecast_file_close(f);
}

/* Largest |member a - member b| of z500 at lead s of init 0. */
static double member_difference(ts_forecast_file *f, size_t a, size_t b, size_t s) {
    static float fa[NLAT * NLON];
    if (read_field(f, "z", a, 0, s, 2)) return NAN;
    memcpy(fa, g_buf, sizeof fa);
    if (read_field(f, "z", b, 0, s, 2)) return NAN;
    double d = 0;
    for (size_t k = 0; k < NLAT * NLON; k++) d = fmax(d, fabs((double)fa[k] - g_buf[k]));
    return d;
}

static void test_default_perturbation_spreads(void) {
    char out[512], again[512], err[1024];
    snprintf(out, sizeof out, "%s/pm.nc", g_dir);
    snprintf(again, sizeof again, "%s/pm_again.nc", g_dir);
    CU_ASSERT_FATAL(run_pm(g_dir, out, TS_PERFECT_MODEL_AMPLITUDE, 1234, err, sizeof err) == 0);
    CU_ASSERT_FATAL(run_pm(g_dir, again, TS_PERFECT_MODEL_AMPLITUDE, 1234, err, sizeof err) == 0);
    ts_forecast_file *f = ts_forecast_file_open(out, err, sizeof err), *g = ts_forecast_file_open(again, err, sizeof err);
    CU_ASSERT_FATAL(f && g);
    for (size_t s = 0; s < NSTEP; s++) {
        CU_ASSERT(member_difference(f, 0, 1, s) > 1.0); /* m^2 s^-2 */
        CU_ASSERT(member_difference(f, 1, 2, s) > 1.0);
    }
    size_t px = NLAT * NLON;
    static float a[NLAT * NLON];
    for (size_t i = 0; i < NINIT; i++)
        for (size_t k = 0; k < M; k++) {
            CU_ASSERT(read_field(f, "z", k, i, 1, 1) == 0 && all_nan(g_buf, px));
            CU_ASSERT_FATAL(read_field(f, "msl", k, i, 1, 0) == 0);
            memcpy(a, g_buf, sizeof a);
            for (size_t p = 0; p < px; p++) CU_ASSERT(isfinite(a[p]));
            CU_ASSERT_FATAL(read_field(g, "msl", k, i, 1, 0) == 0);
            CU_ASSERT(equal_bits(a, g_buf, px)); /* same seed, same members */
        }
    ts_forecast_file_close(f), ts_forecast_file_close(g);
}

static void test_missing_restart(void) {
    char dir[512], src[512], dst[512], out[512], err[1024];
    snprintf(dir, sizeof dir, "%s/only_first", g_dir);
    CU_ASSERT_FATAL(mkdir(dir, 0777) == 0);
    ts_synth_era5_restart_path(g_dir, g_inits[0], src, sizeof src);
    ts_synth_era5_restart_path(dir, g_inits[0], dst, sizeof dst);
    CU_ASSERT_FATAL(link(src, dst) == 0);
    snprintf(out, sizeof out, "%s/pm_missing.nc", g_dir);
    CU_ASSERT(run_pm(dir, out, TS_PERFECT_MODEL_AMPLITUDE, 1, err, sizeof err) == -1);
    printf("\n    error: %s\n", err);
    CU_ASSERT(strstr(err, "2021-01-24T00") != NULL);
    CU_ASSERT(strstr(err, "restart_2021-01-24T00.nc") != NULL);
    CU_ASSERT(strstr(err, "synth.restart_times") != NULL);
    CU_ASSERT(strchr(err, '\n') == NULL);
    CU_ASSERT(access(out, F_OK) != 0);
    CU_ASSERT(run_pm(g_dir, out, -1.0, 1, err, sizeof err) == -1);
}

/* ---- the spread measurement (--spread) ------------------------------------------------------------ */

enum { SM = 8, SI = 4, SS = 5 };

/* Per lead and variable: sqrt(mean_i spread^2) and sqrt(mean_i mse) over the inits. */
static int measure(const char *dir, double amp, const char *truth) {
    char out[512], err[1024];
    snprintf(out, sizeof out, "%s/pm_%g.nc", dir, amp);
    char fc[512];
    snprintf(fc, sizeof fc, "%s/forecast.nc", dir);
    ts_perfect_model_opts o = {fc, dir, out, amp, 1234};
    if (ts_perfect_model_forecast(&o, err, sizeof err)) return fprintf(stderr, "%s\n", err), -1;
    ts_forecast_file *f = ts_forecast_file_open(out, err, sizeof err), *t = ts_forecast_file_open(truth, err, sizeof err);
    if (!f || !t) return fprintf(stderr, "%s\n", err), -1;
    double w[NLAT];
    ts_lat_area_weights(g_lat, NLAT, w);
    static const struct { const char *var; size_t lev; const char *label; } V[] = {
        {"z", 0, "z500"}, {"z", 1, "z850"}, {"t2m", 0, "t2m"}, {"msl", 0, "msl"}};
    static float mem[SM][NLAT * NLON], tr[NLAT * NLON];
    printf("amplitude %g:\n", amp);
    for (size_t v = 0; v < 4; v++)
        for (size_t s = 0; s < SS; s++) {
            double var = 0, mse = 0;
            for (size_t i = 0; i < SI; i++) {
                int vi = ts_forecast_file_find_var(f, V[v].var);
                for (size_t k = 0; k < SM; k++)
                    if (ts_forecast_file_read(f, (size_t)vi, k, i, s, V[v].lev, mem[k], err, sizeof err)) return -1;
                if (ts_forecast_file_read(t, (size_t)vi, 0, i, s, V[v].lev, tr, err, sizeof err)) return -1;
                for (size_t p = 0; p < NLAT * NLON; p++) {
                    double mean = 0, ss = 0;
                    for (size_t k = 0; k < SM; k++) mean += mem[k][p] / (double)SM;
                    for (size_t k = 0; k < SM; k++) ss += (mem[k][p] - mean) * (mem[k][p] - mean);
                    var += w[p / NLON] * ss / (SM - 1) / (NLAT * NLON * SI);
                    mse += w[p / NLON] * (mean - tr[p]) * (mean - tr[p]) / (NLAT * NLON * SI);
                }
            }
            printf("  %-5s %3.0f h  spread %10.4g  rmse %10.4g\n", V[v].label, (s + 1) * 24.0, sqrt(var), sqrt(mse));
        }
    ts_forecast_file_close(f), ts_forecast_file_close(t);
    return 0;
}

static int spread_main(void) {
    ts_qg *m = new_model();
    char err[1024], path[512];
    snprintf(g_dir, sizeof g_dir, "/tmp/tessera_pm_spread_XXXXXX");
    if (!m || !mkdtemp(g_dir)) return 1;
    memcpy(g_lat, ts_qg_lat(m), sizeof g_lat), memcpy(g_lon, ts_qg_lon(m), sizeof g_lon);
    static const char *const DATES[SI] = {"2021-03-01", "2021-06-01", "2021-09-01", "2021-12-01"};
    int64_t inits[SI];
    for (size_t i = 0; i < SI; i++) ts_parse_datetime(DATES[i], &inits[i]);
    ts_qg_init(m, inits[0] - 120 * 86400, 1234);
    for (size_t i = 0; i < SI; i++) {
        ts_qg_run_until(m, inits[i]);
        ts_synth_era5_restart_path(g_dir, inits[i], path, sizeof path);
        if (ts_qg_save(m, path, "spread", err, sizeof err)) return fprintf(stderr, "%s\n", err), 1;
    }
    ts_qg_free(m);
    double steps[SS] = {24, 48, 72, 96, 120}, lev[2] = {500, 850};
    snprintf(path, sizeof path, "%s/forecast.nc", g_dir);
    if (write_structure(path, SM, SI, inits, SS, steps, lev, 2, NULL)) return 1;
    char truth[512];
    snprintf(truth, sizeof truth, "%s/pm_0.nc", g_dir);
    ts_perfect_model_opts o = {path, g_dir, truth, 0.0, 1234};
    if (ts_perfect_model_forecast(&o, err, sizeof err)) return fprintf(stderr, "%s\n", err), 1;
    static const double AMPS[] = {0.003, 0.01, 0.03, 0.1};
    for (size_t a = 0; a < sizeof AMPS / sizeof AMPS[0]; a++)
        if (measure(g_dir, AMPS[a], truth)) return 1;
    printf("files in %s\n", g_dir);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--spread") == 0) return spread_main();
    if (argc != 1) return fprintf(stderr, "usage: %s [--spread]\n", argv[0]), 2;
    snprintf(g_dir, sizeof g_dir, "/tmp/tessera_pm_XXXXXX");
    if (!mkdtemp(g_dir)) return perror("mkdtemp"), 1;
    if (make_fixture()) return fprintf(stderr, "fixture failed\n"), 1;
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("perfect_model", NULL, NULL);
    CU_add_test(s, "zero perturbation reproduces the truth", test_zero_perturbation_is_the_truth);
    CU_add_test(s, "default perturbation: members differ, deterministic", test_default_perturbation_spreads);
    CU_add_test(s, "missing restart file", test_missing_restart);
    int rc = ts_cunit_run();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (rc == 0 && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    return rc;
}
