/* The WeatherBench-2 scores of eval/score.c and the scorecard driver of
 * eval/scorecard.c.
 *
 * The metric tests check properties a user relies on, not values copied
 * from the program: a perfect forecast scores 0 / 1; fair CRPS is unbiased
 * for any ensemble size; a calibrated ensemble's spread-skill ratio is
 * sqrt(M/(M+1)); MSE is averaged before the square root; the bootstrap is
 * deterministic for a seed. The driver tests write small ERA5-format truth,
 * a statistics file and forecast files, and check the scorecard's rows and
 * its errors.
 *
 * `test_score --write DIR` writes the data set that
 * tests/eval/test_score_numpy.sh recomputes in numpy (truth_sl.nc,
 * truth_pl.nc, stats.nc, forecast.nc, perfect.nc) and scores it into
 * DIR/scorecard.csv and DIR/scorecard.jsonl with seed 7 and 1000 resamples,
 * the way `tessera score` does.
 */
#include "eval/score.h"

#include <CUnit/Basic.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/caltime.h"
#include "core/geo.h"
#include "core/log.h"
#include "core/rng.h"
#include "eval/perfect_model.h"
#include "io/era5_write.h"
#include "io/forecast_write.h"
#include "io/stats_file.h"
#include "tests/cunit_run.h"

#define T0 1582761600LL /* 2020-02-27T00:00:00Z: the cases cross 29 February */
#define HOUR 3600
#define D2R (3.14159265358979323846 / 180.0)

/* ---- small helpers ---------------------------------------------------------------------- */

static double *weights_of(size_t nlat) {
    double *lat = malloc(nlat * sizeof *lat), *w = malloc(nlat * sizeof *w); /* (nlat) */
    for (size_t i = 0; i < nlat; i++) lat[i] = 90.0 - 180.0 * ((double)i + 0.5) / (double)nlat;
    CU_ASSERT_FATAL(ts_lat_area_weights(lat, nlat, w) == 0);
    free(lat);
    return w;
}

/* Serial draws: the data set is many small fields, for which waking
 * OpenMP threads (ts_rng_normal) costs more than the draws. */
static float *normals(uint64_t stream, size_t n) {
    float *x = malloc(n * sizeof *x);
    ts_rng_key key = ts_rng_key_make(99, TS_RNG_TEST);
    for (size_t k = 0; k < n; k++) x[k] = ts_rng_normal1(key, stream, k);
    return x;
}

static int close_rel(double a, double b, double tol) { return fabs(a - b) <= tol * fmax(fabs(b), 1e-300); }

/* ---- per initial time ----------------------------------------------------------------------- */

/* A constant error e gives MSE e^2 whatever the weights (they have mean 1). */
static void test_mse_constant_error(void) {
    size_t nlat = 6, nlon = 8, npix = nlat * nlon, m = 3;
    double *w = weights_of(nlat);
    float *y = normals(1, npix), *ens = malloc(m * npix * sizeof *ens);
    for (size_t k = 0; k < m; k++)
        for (size_t p = 0; p < npix; p++) ens[k * npix + p] = y[p] + 2.0f;
    CU_ASSERT(close_rel(ts_score_mse(ens, m, y, w, nlat, nlon), 4.0, 1e-6));
    CU_ASSERT(close_rel(ts_score_crps(ens, m, y, w, nlat, nlon), 2.0, 1e-6)); /* no spread: CRPS = |error| */
    CU_ASSERT(fabs(ts_score_ens_var(ens, m, w, nlat, nlon)) < 1e-9);
    free(w), free(y), free(ens);
}

/* Members y + d and y - d: the ensemble mean is perfect (MSE 0) and the
 * ddof-1 variance is 2 d^2. */
static void test_ensemble_mean_and_variance(void) {
    size_t nlat = 4, nlon = 5, npix = nlat * nlon;
    double *w = weights_of(nlat);
    float *y = normals(2, npix), ens[2 * 20];
    for (size_t p = 0; p < npix; p++) ens[p] = y[p] + 0.5f, ens[npix + p] = y[p] - 0.5f;
    CU_ASSERT(fabs(ts_score_mse(ens, 2, y, w, nlat, nlon)) < 1e-12);
    CU_ASSERT(close_rel(ts_score_ens_var(ens, 2, w, nlat, nlon), 0.5, 1e-6));
    CU_ASSERT(isnan(ts_score_ens_var(ens, 1, w, nlat, nlon))); /* one member has no spread */
    free(w), free(y);
}

/* An error in one row weighs that row's cell area: a polar row counts
 * less than an equatorial one. */
static void test_latitude_weighting(void) {
    size_t nlat = 8, nlon = 4, npix = nlat * nlon;
    double *w = weights_of(nlat);
    float y[32] = {0}, f[32] = {0};
    for (size_t j = 0; j < nlon; j++) f[0 * nlon + j] = 1; /* northernmost row */
    double polar = ts_score_mse(f, 1, y, w, nlat, nlon);
    CU_ASSERT(close_rel(polar, w[0] / (double)nlat, 1e-12));
    memset(f, 0, sizeof f);
    for (size_t j = 0; j < nlon; j++) f[3 * nlon + j] = 1; /* next to the equator */
    CU_ASSERT(ts_score_mse(f, 1, y, w, nlat, nlon) > 4 * polar);
    (void)npix;
    free(w);
}

static void test_acc(void) {
    size_t nlat = 5, nlon = 6, npix = nlat * nlon;
    double *w = weights_of(nlat);
    float *y = normals(3, npix), *c = normals(4, npix), f[30];
    CU_ASSERT(close_rel(ts_score_acc(y, 1, y, c, w, nlat, nlon), 1.0, 1e-9));
    for (size_t p = 0; p < npix; p++) f[p] = c[p] + 3.0f * (y[p] - c[p]); /* scaled anomaly: still 1 */
    CU_ASSERT(close_rel(ts_score_acc(f, 1, y, c, w, nlat, nlon), 1.0, 1e-6));
    for (size_t p = 0; p < npix; p++) f[p] = c[p] - (y[p] - c[p]); /* opposite anomaly */
    CU_ASSERT(close_rel(ts_score_acc(f, 1, y, c, w, nlat, nlon), -1.0, 1e-6));
    CU_ASSERT(isnan(ts_score_acc(c, 1, y, c, w, nlat, nlon))); /* the climatology has no anomaly */
    /* An anomaly at a known angle to the truth's: f' = cos(th) o^ + sin(th) q^
     * with q' the part of a random field orthogonal to o' (weighted inner
     * product of the latitude weights, as the score averages): ACC = cos(th). */
    float *g = normals(5, npix);
    double oo = 0, ro = 0;
    for (size_t p = 0; p < npix; p++) {
        double o = (double)y[p] - c[p], r = (double)g[p] - c[p], wp = w[p / nlon];
        oo += wp * o * o, ro += wp * r * o;
    }
    double *q = calloc(npix, sizeof(double)), qq = 0;
    for (size_t p = 0; p < npix; p++) {
        q[p] = ((double)g[p] - c[p]) - ro / oo * ((double)y[p] - c[p]);
        qq += w[p / nlon] * q[p] * q[p];
    }
    const double angles[3] = {0.3, 1.0, 2.5};
    for (int k = 0; k < 3; k++) {
        for (size_t p = 0; p < npix; p++)
            f[p] = (float)(c[p] + cos(angles[k]) * ((double)y[p] - c[p]) / sqrt(oo) + sin(angles[k]) * q[p] / sqrt(qq));
        CU_ASSERT_DOUBLE_EQUAL(ts_score_acc(f, 1, y, c, w, nlat, nlon), cos(angles[k]), 1e-5);
    }
    free(q), free(w), free(y), free(c), free(g);
}

/* The sorted-sum spread term equals the pairwise definition. */
static void test_crps_matches_pairwise_definition(void) {
    size_t nlat = 3, nlon = 4, npix = nlat * nlon, m = 7;
    double *w = weights_of(nlat);
    float *ens = normals(6, m * npix), *y = normals(7, npix);
    double want = 0;
    for (size_t i = 0; i < nlat; i++)
        for (size_t j = 0; j < nlon; j++) {
            size_t p = i * nlon + j;
            double skill = 0, spread = 0;
            for (size_t a = 0; a < m; a++) {
                skill += fabs((double)ens[a * npix + p] - y[p]);
                for (size_t b = 0; b < m; b++) spread += fabs((double)ens[a * npix + p] - ens[b * npix + p]);
            }
            want += w[i] * (skill / (double)m - spread / (2.0 * (double)m * (double)(m - 1)));
        }
    want /= (double)npix;
    CU_ASSERT(close_rel(ts_score_crps(ens, m, y, w, nlat, nlon), want, 1e-12));
    /* one member: the mean absolute error */
    double mae = 0;
    for (size_t i = 0; i < nlat; i++)
        for (size_t j = 0; j < nlon; j++) mae += w[i] * fabs((double)ens[i * nlon + j] - y[i * nlon + j]);
    CU_ASSERT(close_rel(ts_score_crps(ens, 1, y, w, nlat, nlon), mae / (double)npix, 1e-12));
    free(w), free(ens), free(y);
}

/* Fair CRPS is unbiased whatever the ensemble size: two members drawn
 * from N(0, 1) score CRPS(N(0,1), 0) = sqrt(2/pi) - 1/sqrt(pi) = 0.2337 on
 * average (the unfair estimator would give 0.516 with two members).
 * 2 x 10^5 points give a standard error near 0.002; the tolerance is 0.01. */
static void test_crps_fair_is_unbiased(void) {
    size_t nlat = 400, nlon = 500, npix = nlat * nlon, m = 2;
    double *w = malloc(nlat * sizeof *w);
    for (size_t i = 0; i < nlat; i++) w[i] = 1; /* equal weights: every point counts the same */
    float *ens = normals(8, m * npix), *y = calloc(npix, sizeof *y);
    double crps = ts_score_crps(ens, m, y, w, nlat, nlon);
    const double pi = 3.14159265358979323846;
    double expect = sqrt(2.0 / pi) - 1.0 / sqrt(pi);
    CU_ASSERT(fabs(crps - expect) < 0.01);
    free(w), free(ens), free(y);
}

/* Truth and M members drawn from one distribution: the raw spread-skill
 * ratio is sqrt(M/(M+1)) (REFERENCE.md); 20 inits x 8192 points bring the
 * sampling error under 1 %, the tolerance is 2 %. */
static void test_spread_skill_of_calibrated_ensemble(void) {
    size_t nlat = 64, nlon = 128, npix = nlat * nlon, m = 8, ninit = 20;
    double *w = weights_of(nlat), mse[20], var[20];
    for (size_t i = 0; i < ninit; i++) {
        float *ens = normals(100 + i, m * npix), *y = normals(200 + i, npix);
        mse[i] = ts_score_mse(ens, m, y, w, nlat, nlon);
        var[i] = ts_score_ens_var(ens, m, w, nlat, nlon);
        free(ens), free(y);
    }
    double ratio = ts_score_aggregate(TS_METRIC_SPREAD_SKILL, mse, var, NULL, ninit);
    CU_ASSERT(fabs(ratio - sqrt(8.0 / 9.0)) < 0.02);
    free(w);
}

static void test_vector_wind_and_speed(void) {
    size_t nlat = 2, nlon = 3, npix = 6;
    double *w = weights_of(nlat);
    float u[6], v[6], fu[6], fv[6], s[6];
    for (size_t p = 0; p < npix; p++) u[p] = (float)p, v[p] = -(float)p, fu[p] = u[p] + 3, fv[p] = v[p] - 4;
    CU_ASSERT(close_rel(sqrt(ts_score_vector_mse(fu, fv, 1, u, v, w, nlat, nlon)), 5.0, 1e-9));
    float a[2] = {3, -5}, b[2] = {-4, 12};
    ts_wind_speed(a, b, 2, s);
    CU_ASSERT(s[0] == 5.0f && s[1] == 13.0f);
    free(w);
}

/* Rows are summed in parallel but combined in row order: the same bits
 * whatever the thread count. */
static void test_same_bits_for_any_thread_count(void) {
    size_t nlat = 101, nlon = 200, npix = nlat * nlon, m = 5; /* above the size where rows go parallel */
    double *w = weights_of(nlat), got[2][4];
    float *ens = normals(9, m * npix), *y = normals(10, npix), *c = normals(11, npix);
    int saved = omp_get_max_threads();
    for (int t = 0; t < 2; t++) {
        omp_set_num_threads(t ? 3 : 1);
        got[t][0] = ts_score_mse(ens, m, y, w, nlat, nlon);
        got[t][1] = ts_score_acc(ens, m, y, c, w, nlat, nlon);
        got[t][2] = ts_score_crps(ens, m, y, w, nlat, nlon);
        got[t][3] = ts_score_ens_var(ens, m, w, nlat, nlon);
    }
    omp_set_num_threads(saved);
    CU_ASSERT(memcmp(got[0], got[1], sizeof got[0]) == 0);
    free(w), free(ens), free(y), free(c);
}

/* ---- over initial times ----------------------------------------------------------------------- */

static void test_aggregate_mse_before_sqrt(void) {
    double mse[2] = {1, 9}, var[2] = {4, 16}, acc[3] = {0.5, 0.7, 0.9};
    CU_ASSERT(close_rel(ts_score_aggregate(TS_METRIC_RMSE, mse, NULL, NULL, 2), sqrt(5.0), 1e-15)); /* not 2 */
    CU_ASSERT(close_rel(ts_score_aggregate(TS_METRIC_ACC, acc, NULL, NULL, 3), 0.7, 1e-15));
    CU_ASSERT(close_rel(ts_score_aggregate(TS_METRIC_SPREAD_SKILL, mse, var, NULL, 2), sqrt(10.0 / 5.0), 1e-15));
    size_t idx[2] = {1, 1};
    CU_ASSERT(close_rel(ts_score_aggregate(TS_METRIC_RMSE, mse, NULL, idx, 2), 3.0, 1e-15));
}

/* numpy.percentile's default (linear) on known data. */
static void test_percentile_like_numpy(void) {
    double x[4] = {1, 2, 3, 4}, big[1000];
    CU_ASSERT(close_rel(ts_percentile(x, 4, 25), 1.75, 1e-15));
    CU_ASSERT(close_rel(ts_percentile(x, 4, 100), 4, 1e-15));
    CU_ASSERT(close_rel(ts_percentile(x, 4, 0), 1, 1e-15));
    for (int k = 0; k < 1000; k++) big[k] = k;
    CU_ASSERT(close_rel(ts_percentile(big, 1000, 2.5), 24.975, 1e-12));
    CU_ASSERT(close_rel(ts_percentile(big, 1000, 97.5), 974.025, 1e-12));
}

static void test_bootstrap(void) {
    size_t n = 10, nb = 1000;
    size_t *a = malloc(nb * n * sizeof *a), *b = malloc(nb * n * sizeof *b);
    ts_bootstrap_indices(7, nb, n, a);
    ts_bootstrap_indices(7, nb, n, b);
    CU_ASSERT(memcmp(a, b, nb * n * sizeof *a) == 0); /* deterministic for a seed */
    size_t count[10] = {0};
    for (size_t k = 0; k < nb * n; k++) {
        CU_ASSERT_FATAL(a[k] < n);
        count[a[k]]++;
    }
    for (size_t i = 0; i < n; i++) CU_ASSERT(count[i] > 850 && count[i] < 1150); /* 1000 +- 5 sigma */
    ts_bootstrap_indices(8, nb, n, b);
    CU_ASSERT(memcmp(a, b, nb * n * sizeof *a) != 0);
    double mse[10], lo, hi;
    for (size_t i = 0; i < n; i++) mse[i] = 1.0 + (double)i;
    ts_bootstrap_interval(TS_METRIC_RMSE, mse, NULL, n, a, nb, &lo, &hi);
    double v = ts_score_aggregate(TS_METRIC_RMSE, mse, NULL, NULL, n);
    CU_ASSERT(lo < v && v < hi && lo >= 1.0 && hi <= sqrt(10.0));
    double same[10];
    for (size_t i = 0; i < n; i++) same[i] = 2.5;
    ts_bootstrap_interval(TS_METRIC_CRPS, same, NULL, n, a, nb, &lo, &hi);
    CU_ASSERT(close_rel(lo, 2.5, 1e-15) && close_rel(hi, 2.5, 1e-15)); /* nothing varies, nothing to resample */
    ts_bootstrap_interval(TS_METRIC_CRPS, same, NULL, n, a, 0, &lo, &hi);
    CU_ASSERT(isnan(lo) && isnan(hi));
    free(a), free(b);
}

/* ---- scorecard files -------------------------------------------------------------------------------- */

static char g_dir[256];

static char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_scorecard_files(void) {
    ts_score_row rows[2] = {
        {"z500", "z", 500, 24, TS_METRIC_RMSE, "tessera", 1.5, 1.25, 1.75},
        {"t2m", "t2m", NAN, 6, TS_METRIC_ACC, "persistence", 0.5, NAN, NAN},
    };
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/card.csv", g_dir);
    CU_ASSERT_FATAL(ts_scorecard_write_csv(path, rows, 2, err, sizeof err) == 0);
    CU_ASSERT_STRING_EQUAL(slurp(path), "variable,level,lead_hours,metric,system,value,ci_low,ci_high\n"
                                        "z,500,24,rmse,tessera,1.5,1.25,1.75\n"
                                        "t2m,,6,acc,persistence,0.5,,\n");
    snprintf(path, sizeof path, "%s/card.jsonl", g_dir);
    CU_ASSERT_FATAL(ts_scorecard_write_jsonl(path, rows, 2, err, sizeof err) == 0);
    CU_ASSERT_STRING_EQUAL(slurp(path),
                           "{\"variable\":\"z\",\"level\":500,\"lead_hours\":24,\"metric\":\"rmse\",\"system\":"
                           "\"tessera\",\"value\":1.5,\"ci_low\":1.25,\"ci_high\":1.75}\n"
                           "{\"variable\":\"t2m\",\"level\":null,\"lead_hours\":6,\"metric\":\"acc\",\"system\":"
                           "\"persistence\",\"value\":0.5,\"ci_low\":null,\"ci_high\":null}\n");
    snprintf(path, sizeof path, "%s/nodir/card.csv", g_dir);
    CU_ASSERT(ts_scorecard_write_csv(path, rows, 2, err, sizeof err) == -1 && strstr(err, "nodir"));
}

/* ---- a small data set: truth, statistics, forecasts ---------------------------------------------------- */

enum { NLAT = 8, NLON = 16, NPIX = NLAT * NLON, NLEV = 3, NHOUR = 4 };
static const double LEVELS[NLEV] = {850, 700, 500};

typedef struct {
    const char *name, *units, *long_name, *std_name;
    int param, on_levels;
    double base, amp;
} var_def;

/* Level variables first, then surface ones: the order of the forecast file. */
static const var_def VARS[] = {
    {"z", "m**2 s**-2", "Geopotential", "geopotential", 129, 1, 50000, 800},
    {"t", "K", "Temperature", "air_temperature", 130, 1, 260, 8},
    {"u", "m s**-1", "U component of wind", "eastward_wind", 131, 1, 4, 10},
    {"v", "m s**-1", "V component of wind", "northward_wind", 132, 1, -1, 8},
    {"q", "kg kg**-1", "Specific humidity", "specific_humidity", 133, 1, 0.004, 0.002},
    {"t2m", "K", "2 metre temperature", "air_temperature", 167, 0, 285, 12},
    {"u10", "m s**-1", "10 metre U wind component", "eastward_wind", 165, 0, 1, 6},
    {"v10", "m s**-1", "10 metre V wind component", "northward_wind", 166, 0, 0.5, 5},
    {"msl", "Pa", "Mean sea level pressure", "air_pressure_at_mean_sea_level", 151, 0, 101000, 1500},
};
enum { NVARS = sizeof VARS / sizeof VARS[0], NPLVARS = 5 };

typedef struct {
    size_t members;   /* of forecast.nc */
    double noise;     /* forecast error in units of amp; 0: every member is the truth */
    int truth_times;  /* 6-hourly truth times from T0 */
    int stats_ws10;   /* the stats file has a ws10 climatology */
    int stats_skip;   /* leave q500 out of the stats file */
    int with_perfect; /* write perfect.nc too */
} dataset;

static const int64_t INITS[] = {T0, T0 + 12 * HOUR, T0 + 30 * HOUR, T0 + 48 * HOUR}; /* the last: 29 Feb 00 UTC */
static const double STEPS[] = {6, 12, 24, 48};
enum { NINIT = 4, NSTEP = 4 };

static void grid(double *lat, double *lon) {
    for (size_t i = 0; i < NLAT; i++) lat[i] = 78.75 - 22.5 * (double)i;
    for (size_t j = 0; j < NLON; j++) lon[j] = 22.5 * (double)j;
}

/* The truth of variable v at level k and time t: a pattern, a drift, noise. */
static void truth_field(size_t v, size_t k, int64_t t, float *out /* (NLAT, NLON) */) {
    double lat[NLAT], lon[NLON];
    grid(lat, lon);
    const var_def *d = &VARS[v];
    uint64_t step = (uint64_t)((t - T0) / (6 * HOUR));
    float *z = normals(1000 + (v * NLEV + k) * 1000 + step, NPIX);
    for (size_t i = 0; i < NLAT; i++)
        for (size_t j = 0; j < NLON; j++) {
            double s = 0.6 * sin(lat[i] * D2R) + 0.3 * cos(lon[j] * D2R + 0.1 * (double)step);
            out[i * NLON + j] =
                (float)(d->base + d->amp * (s + 0.05 * (double)step + 0.01 * (double)k + 0.4 * z[i * NLON + j]));
        }
    free(z);
}

static int write_truth(const char *dir, const dataset *ds) {
    double lat[NLAT], lon[NLON];
    grid(lat, lon);
    char err[1024], path[512];
    for (int pl = 1; pl >= 0; pl--) {
        ts_era5_var ev[NVARS];
        size_t nv = 0, vi[NVARS];
        for (size_t v = 0; v < NVARS; v++)
            if (VARS[v].on_levels == pl) {
                const var_def *d = &VARS[v];
                ev[nv] = (ts_era5_var){d->name, d->units, d->long_name, d->std_name, d->param, pl, 0, 0};
                vi[nv++] = v;
            }
        snprintf(path, sizeof path, "%s/truth_%s.nc", dir, pl ? "pl" : "sl");
        ts_era5_file_spec spec = {path, TS_ERA5_LAYOUT_CDS, NLAT, NLON, lat, lon, pl ? NLEV : 0, LEVELS, nv,
                                  ev,   "test_score",       NULL};
        ts_era5_writer *w = ts_era5_create(&spec, err, sizeof err);
        if (!w) return fprintf(stderr, "%s\n", err), -1;
        float *data = malloc(nv * NLEV * NPIX * sizeof *data); /* (nv, up to NLEV, NPIX) */
        const float *fields[NVARS];
        for (int ti = 0; ti < ds->truth_times; ti++) {
            int64_t t = T0 + (int64_t)ti * 6 * HOUR;
            for (size_t q = 0; q < nv; q++) {
                for (size_t k = 0; k < (pl ? NLEV : 1); k++) truth_field(vi[q], k, t, data + (q * NLEV + k) * NPIX);
                fields[q] = data + q * NLEV * NPIX;
            }
            if (ts_era5_append(w, t, fields, err, sizeof err)) return fprintf(stderr, "%s\n", err), -1;
        }
        free(data);
        if (ts_era5_close(w, 1, err, sizeof err)) return fprintf(stderr, "%s\n", err), -1;
    }
    return 0;
}

static size_t spec_names(char names[][16]) {
    size_t n = 0;
    for (size_t v = 0; v < NVARS; v++)
        for (size_t k = 0; k < (VARS[v].on_levels ? NLEV : 1); k++) {
            if (VARS[v].on_levels)
                snprintf(names[n++], 16, "%s%g", VARS[v].name, LEVELS[k]);
            else
                snprintf(names[n++], 16, "%s", VARS[v].name);
        }
    return n;
}

/* Climatology: each channel's base + amp (pattern + noise), for every day and hour. */
static int write_stats(const char *dir, const dataset *ds) {
    char names[NVARS * NLEV + 1][16];
    size_t nall = spec_names(names), nstate = 0;
    double scale[NVARS * NLEV + 1], base[NVARS * NLEV + 1];
    char keep[NVARS * NLEV + 1][16];
    for (size_t c = 0, v = 0, k = 0; c < nall; c++) {
        if (!(ds->stats_skip && strcmp(names[c], "q500") == 0)) {
            strcpy(keep[nstate], names[c]);
            base[nstate] = VARS[v].base, scale[nstate++] = VARS[v].amp;
        }
        if (++k == (VARS[v].on_levels ? NLEV : 1)) k = 0, v++;
    }
    if (ds->stats_ws10) strcpy(keep[nstate], "ws10"), base[nstate] = 4, scale[nstate++] = 2;
    ts_stats s;
    ts_stats_alloc(&s, nstate, nstate, 1, NLAT, NLON, NHOUR, 1);
    grid(s.lat, s.lon);
    for (size_t c = 0; c < nstate; c++) {
        snprintf(s.name[c], TS_STATS_NAME_MAX, "%s", keep[c]);
        snprintf(s.units[c], TS_STATS_NAME_MAX, "1");
        s.mean[c] = base[c], s.std[c] = scale[c];
    }
    s.res_hours[0] = 6;
    for (size_t c = 0; c < nstate; c++) s.res_std[c] = 1;
    for (int h = 0; h < NHOUR; h++) s.hours[h] = 6 * h;
    s.smooth_days = 61;
    size_t field = (size_t)TS_STATS_DAYS * NHOUR * NPIX;
    for (size_t c = 0; c < nstate; c++) {
        float *z = normals(500000 + c, field);
        for (size_t q = 0; q < field; q++) s.clim[c * field + q] = (float)(base[c] + scale[c] * 0.5 * z[q]);
        free(z);
    }
    char path[512], err[1024];
    snprintf(path, sizeof path, "%s/stats.nc", dir);
    int rc = ts_stats_write(&s, path, "test_score", err, sizeof err);
    if (rc) fprintf(stderr, "%s\n", err);
    ts_stats_free(&s);
    return rc;
}

/* A forecast file: members = truth at the valid time + noise growing with
 * the lead, plus a small bias; `skip_q` leaves q out (a system lacking a
 * variable); `inits` may hold more initial times than the cases. */
typedef struct {
    const char *path;
    size_t members, ninit, nstep;
    const int64_t *inits;
    const double *steps;
    double noise;
    int skip_q;
    uint64_t stream;
} forecast_req;

static int write_forecast(const forecast_req *q) {
    double lat[NLAT], lon[NLON];
    grid(lat, lon);
    ts_forecast_var fv[NVARS];
    size_t nv = 0, vi[NVARS];
    for (size_t v = 0; v < NVARS; v++) {
        if (q->skip_q && strcmp(VARS[v].name, "q") == 0) continue;
        const var_def *d = &VARS[v];
        fv[nv] = (ts_forecast_var){d->name, d->units, d->long_name, d->std_name, d->param, d->on_levels};
        vi[nv++] = v;
    }
    ts_forecast_spec spec = {q->path, q->members, q->ninit, q->inits, q->nstep, q->steps, NLEV,        LEVELS,
                             NLAT,    NLON,       lat,      lon,      nv,       fv,       "test_score"};
    char err[1024];
    ts_forecast_writer *w = ts_forecast_open(&spec, err, sizeof err);
    if (!w) return fprintf(stderr, "%s\n", err), -1;
    float field[NLEV * NPIX];
    for (size_t l = 0; l < q->nstep; l++) {
        for (size_t a = 0; a < nv; a++)
            for (size_t m = 0; m < q->members; m++)
                for (size_t i = 0; i < q->ninit; i++) {
                    const var_def *d = &VARS[vi[a]];
                    int64_t valid = q->inits[i] + (int64_t)llround(q->steps[l] * HOUR);
                    size_t nk = d->on_levels ? NLEV : 1;
                    float *z = normals(q->stream + (((vi[a] * 64 + m) * 64 + i) * 64 + l), nk * NPIX);
                    for (size_t k = 0; k < nk; k++) {
                        truth_field(vi[a], k, valid, field + k * NPIX);
                        for (size_t p = 0; p < NPIX; p++)
                            field[k * NPIX + p] +=
                                (float)(d->amp * q->noise * (0.1 + (1 + 0.2 * (double)l) * z[k * NPIX + p]));
                    }
                    free(z);
                    if (ts_forecast_write(w, a, m, i, l, field, err, sizeof err))
                        return fprintf(stderr, "%s\n", err), -1;
                }
        if (ts_forecast_lead_complete(w, l, err, sizeof err)) return fprintf(stderr, "%s\n", err), -1;
    }
    return ts_forecast_close(w, err, sizeof err) ? fprintf(stderr, "%s\n", err), -1 : 0;
}

static int write_dataset(const char *dir, const dataset *ds) {
    char fc[512], pm[512];
    snprintf(fc, sizeof fc, "%s/forecast.nc", dir);
    snprintf(pm, sizeof pm, "%s/perfect.nc", dir);
    forecast_req f = {fc, ds->members, NINIT, NSTEP, INITS, STEPS, ds->noise, 0, 1u << 24};
    /* The perfect-model file: another member count, an extra initial time
     * and lead (never scored: not tessera cases), no q. */
    static const int64_t pinits[] = {T0, T0 + 12 * HOUR, T0 + 24 * HOUR, T0 + 30 * HOUR, T0 + 48 * HOUR};
    static const double psteps[] = {6, 12, 24, 48, 72};
    forecast_req p = {pm, 3, 5, 5, pinits, psteps, 0.5 * ds->noise, 1, 1u << 28};
    if (write_truth(dir, ds) || write_stats(dir, ds) || write_forecast(&f)) return -1;
    return ds->with_perfect ? write_forecast(&p) : 0;
}

/* Score DIR's files as `tessera score` would: tessera + perfect_model. */
static int score_dataset(const char *dir, int with_perfect, size_t nboot, FILE *table, ts_score_row **rows, size_t *n,
                         char *err, size_t errcap) {
    char fc[512], pm[512], sl[512], pl[512], st[512];
    snprintf(fc, sizeof fc, "%s/forecast.nc", dir);
    snprintf(pm, sizeof pm, "%s/perfect.nc", dir);
    snprintf(sl, sizeof sl, "%s/truth_sl.nc", dir);
    snprintf(pl, sizeof pl, "%s/truth_pl.nc", dir);
    snprintf(st, sizeof st, "%s/stats.nc", dir);
    ts_score_system sys[2] = {{"tessera", fc}, {"perfect_model", pm}};
    const char *truth[2] = {sl, pl};
    ts_score_opts o = {sys,
                       with_perfect ? 2 : 1,
                       truth,
                       2,
                       TS_ERA5_FILL_ERROR,
                       TS_ERA5_GRID_NATIVE,
                       TS_ERA5_ROWS_DROP_SOUTH,
                       st,
                       nboot,
                       7,
                       dir,
                       table};
    return ts_score_run(&o, rows, n, err, errcap);
}

/* ---- driver tests --------------------------------------------------------------------------------------- */

static const ts_score_row *row_of(const ts_score_row *rows, size_t n, const char *label, double lead, ts_metric m,
                                  const char *system) {
    for (size_t k = 0; k < n; k++)
        if (!strcmp(rows[k].label, label) && rows[k].lead_hours == lead && rows[k].metric == m &&
            !strcmp(rows[k].system, system))
            return &rows[k];
    return NULL;
}

static void make_dir(char *dir, size_t cap, const char *name) {
    snprintf(dir, cap, "%s/%s", g_dir, name);
    CU_ASSERT_FATAL(mkdir(dir, 0777) == 0);
}

/* Members equal to the truth: RMSE 0, CRPS 0, ACC 1 at every lead; the
 * persistence RMSE grows with the lead (the truth drifts). */
static void test_driver_perfect_forecast(void) {
    char dir[512], err[2048];
    make_dir(dir, sizeof dir, "perfect");
    dataset ds = {2, 0.0, 24, 0, 0, 0};
    CU_ASSERT_FATAL(write_dataset(dir, &ds) == 0);
    ts_score_row *rows;
    size_t n;
    int rc = score_dataset(dir, 0, 100, NULL, &rows, &n, err, sizeof err);
    if (rc) fprintf(stderr, "%s\n", err);
    CU_ASSERT_FATAL(rc == 0);
    const char *labels[] = {"z500", "t850", "q700", "wv850", "t2m", "ws10", "msl"};
    for (size_t v = 0; v < 7; v++)
        for (size_t l = 0; l < NSTEP; l++) {
            const ts_score_row *r = row_of(rows, n, labels[v], STEPS[l], TS_METRIC_RMSE, "tessera");
            CU_ASSERT_FATAL(r != NULL);
            CU_ASSERT(fabs(r->value) < 1e-12);
            if (strcmp(labels[v], "wv850") == 0) continue;
            CU_ASSERT(fabs(row_of(rows, n, labels[v], STEPS[l], TS_METRIC_CRPS, "tessera")->value) < 1e-12);
            if (strcmp(labels[v], "ws10") != 0) /* no ws10 climatology in this stats file: no ACC */
                CU_ASSERT(close_rel(row_of(rows, n, labels[v], STEPS[l], TS_METRIC_ACC, "tessera")->value, 1, 1e-9));
        }
    const ts_score_row *p6 = row_of(rows, n, "z500", 6, TS_METRIC_RMSE, "persistence");
    const ts_score_row *p48 = row_of(rows, n, "z500", 48, TS_METRIC_RMSE, "persistence");
    CU_ASSERT(p6 && p48 && p48->value > p6->value && p6->value > 0);
    free(rows);
}

/* What is not applicable has no row: spread for deterministic systems,
 * ACC of the climatology, ACC and climatology of ws10 without a ws10
 * climatology, metrics other than RMSE for the vector wind, q500 without a
 * climatology, and q for a system whose file lacks it. */
static void test_driver_rows_not_applicable(void) {
    char dir[512], err[2048];
    make_dir(dir, sizeof dir, "rows");
    dataset ds = {4, 0.3, 24, 0, 1, 1};
    CU_ASSERT_FATAL(write_dataset(dir, &ds) == 0);
    ts_score_row *rows;
    size_t n;
    int rc = score_dataset(dir, 1, 0, NULL, &rows, &n, err, sizeof err);
    if (rc) fprintf(stderr, "%s\n", err);
    CU_ASSERT_FATAL(rc == 0);
    CU_ASSERT(row_of(rows, n, "z500", 24, TS_METRIC_SPREAD_SKILL, "tessera") != NULL);
    CU_ASSERT(row_of(rows, n, "z500", 24, TS_METRIC_SPREAD_SKILL, "perfect_model") != NULL);
    CU_ASSERT(row_of(rows, n, "z500", 24, TS_METRIC_SPREAD_SKILL, "persistence") == NULL);
    CU_ASSERT(row_of(rows, n, "z500", 24, TS_METRIC_SPREAD_SKILL, "climatology") == NULL);
    CU_ASSERT(row_of(rows, n, "z500", 24, TS_METRIC_ACC, "climatology") == NULL);
    CU_ASSERT(row_of(rows, n, "z500", 24, TS_METRIC_ACC, "persistence") != NULL);
    CU_ASSERT(row_of(rows, n, "z500", 24, TS_METRIC_CRPS, "climatology") != NULL);
    CU_ASSERT(row_of(rows, n, "ws10", 24, TS_METRIC_RMSE, "tessera") != NULL);
    CU_ASSERT(row_of(rows, n, "ws10", 24, TS_METRIC_ACC, "tessera") == NULL);
    CU_ASSERT(row_of(rows, n, "ws10", 24, TS_METRIC_RMSE, "climatology") == NULL);
    CU_ASSERT(row_of(rows, n, "wv850", 24, TS_METRIC_RMSE, "climatology") != NULL);
    CU_ASSERT(row_of(rows, n, "wv850", 24, TS_METRIC_CRPS, "tessera") == NULL);
    CU_ASSERT(row_of(rows, n, "q500", 24, TS_METRIC_ACC, "tessera") == NULL);
    CU_ASSERT(row_of(rows, n, "q500", 24, TS_METRIC_RMSE, "climatology") == NULL);
    CU_ASSERT(row_of(rows, n, "q500", 24, TS_METRIC_RMSE, "tessera") != NULL);
    CU_ASSERT(row_of(rows, n, "q700", 24, TS_METRIC_RMSE, "perfect_model") == NULL);
    CU_ASSERT(row_of(rows, n, "z500", 72, TS_METRIC_RMSE, "perfect_model") == NULL); /* not a tessera lead */
    for (size_t k = 0; k < n; k++) CU_ASSERT(isnan(rows[k].ci_low));                 /* nboot 0: no intervals */
    free(rows);
}

static int fails_with(const char *dir, int with_perfect, const char *needle) {
    char err[2048] = "";
    ts_score_row *rows = NULL;
    size_t n;
    int rc = score_dataset(dir, with_perfect, 10, NULL, &rows, &n, err, sizeof err);
    free(rows);
    if (rc == 0 || !strstr(err, needle))
        fprintf(stderr, "\nexpected an error with '%s', got rc %d: %s\n", needle, rc, err);
    return rc == -1 && strstr(err, needle) != NULL && !strchr(err, '\n');
}

static void test_driver_errors(void) {
    char dir[512], path[700], part[720];
    make_dir(dir, sizeof dir, "errors");
    dataset ds = {3, 0.3, 16, 0, 0, 1}; /* truth ends 2020-03-01T18: the last case's valid time is missing */
    CU_ASSERT_FATAL(write_dataset(dir, &ds) == 0);
    CU_ASSERT(fails_with(
        dir, 0, "valid time 2020-03-02T00:00:00 (initial time 2020-02-29T00:00:00 + 48 h) is not in the truth"));
    /* an unfinished forecast */
    snprintf(path, sizeof path, "%s/forecast.nc", dir);
    snprintf(part, sizeof part, "%s.part", path);
    CU_ASSERT_FATAL(rename(path, part) == 0);
    CU_ASSERT(fails_with(dir, 0, "the forecast has not finished"));
    CU_ASSERT_FATAL(rename(part, path) == 0);
    /* a stats file on another grid */
    ts_stats s;
    char err[1024];
    snprintf(path, sizeof path, "%s/stats.nc", dir);
    CU_ASSERT_FATAL(ts_stats_read(&s, path, err, sizeof err) == 0);
    s.lon[3] += 1;
    CU_ASSERT_FATAL(ts_stats_write(&s, path, "moved", err, sizeof err) == 0);
    ts_stats_free(&s);
    ds.truth_times = 24;
    CU_ASSERT_FATAL(write_truth(dir, &ds) == 0);
    CU_ASSERT(fails_with(dir, 0, "grid differs from the forecast's"));
    /* a system named like a built-in baseline */
    ts_score_system sys[2] = {{"tessera", path}, {"persistence", path}};
    ts_score_opts o = {sys, 2, NULL, 0, 0, 0, 0, path, 0, 0, dir, NULL};
    CU_ASSERT(ts_score_run(&o, NULL, NULL, err, sizeof err) == -1 && strstr(err, "built-in baseline"));
}

/* ---- the data set of test_score_numpy.sh ------------------------------------------------------------- */

static int write_and_score(const char *dir) {
    dataset ds = {5, 0.3, 24, 1, 1, 1};
    if (write_dataset(dir, &ds)) return 1;
    char err[2048];
    ts_score_row *rows;
    size_t n;
    if (score_dataset(dir, 1, 1000, stdout, &rows, &n, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    free(rows);
    return 0;
}

static void remove_tree(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--write") == 0) return write_and_score(argv[2]);
    if (argc != 1) {
        fprintf(stderr, "usage: %s [--write DIR]\n", argv[0]);
        return 2;
    }
    snprintf(g_dir, sizeof g_dir, "/tmp/tessera_score_XXXXXX");
    if (!mkdtemp(g_dir)) return perror("mkdtemp"), 1;
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("score", NULL, NULL);
    struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {
        {"MSE of a constant error", test_mse_constant_error},
        {"ensemble mean and variance", test_ensemble_mean_and_variance},
        {"latitude weighting", test_latitude_weighting},
        {"ACC", test_acc},
        {"CRPS equals its pairwise definition", test_crps_matches_pairwise_definition},
        {"fair CRPS is unbiased for 2 members", test_crps_fair_is_unbiased},
        {"spread-skill of a calibrated ensemble", test_spread_skill_of_calibrated_ensemble},
        {"vector wind and speed", test_vector_wind_and_speed},
        {"same bits for any thread count", test_same_bits_for_any_thread_count},
        {"MSE averaged before the square root", test_aggregate_mse_before_sqrt},
        {"percentile like numpy", test_percentile_like_numpy},
        {"bootstrap", test_bootstrap},
        {"scorecard files", test_scorecard_files},
        {"driver: perfect forecast", test_driver_perfect_forecast},
        {"driver: rows that do not apply", test_driver_rows_not_applicable},
        {"driver: errors", test_driver_errors},
    };
    for (size_t i = 0; s && i < sizeof tests / sizeof tests[0]; i++)
        if (!CU_add_test(s, tests[i].name, tests[i].fn)) s = NULL;
    if (!s) {
        CU_cleanup_registry();
        return 1;
    }
    int rc = ts_cunit_run();
    remove_tree(g_dir);
    return rc;
}
