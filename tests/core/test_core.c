/* Unit tests of core/: the counter RNG, the parameter table, the activation
 * arena and the JSON log. */
#define _POSIX_C_SOURCE 200809L
#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/backend.h"
#include "core/caltime.h"
#include "core/geo.h"
#include "core/log.h"
#include "core/params.h"
#include "core/rng.h"
#include "core/solar.h"
#include "tests/cunit_run.h"

#define DEG_TO_RAD (3.14159265358979323846 / 180.0)

#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- RNG -------------------------------------------------------------------- */

/* The published known-answer vectors of Random123 (tests/kat_vectors,
 * "philox4x32 10"): counter, key, expected output. */
static void test_philox_kat(void) {
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d, 0x41c83b0e,
         0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb,
         0x5001e420, 0x24126ea1},
    };
    for (int i = 0; i < 3; i++) {
        uint32_t out[4];
        ts_philox4x32_10(kat[i], kat[i] + 4, out);
        for (int j = 0; j < 4; j++) CU_ASSERT_EQUAL(out[j], kat[i][6 + j]);
    }
}

/* The key and counter packing of docs/rng.md. */
static void test_rng_packing(void) {
    ts_rng_key k = ts_rng_key_make(UINT64_C(0x00ABCDEF12345678), 5);
    CU_ASSERT_EQUAL(k.k[0], 0x12345678u);
    CU_ASSERT_EQUAL(k.k[1], 0x05ABCDEFu);
    /* element 4b + lane of stream s is lane `lane` of Philox(ctr = {b, s}) */
    uint64_t stream = UINT64_C(0x1122334455667788), b = UINT64_C(0x99AABBCCDD);
    uint32_t ctr[4] = {(uint32_t)b, (uint32_t)(b >> 32), (uint32_t)stream, (uint32_t)(stream >> 32)}, w[4];
    ts_philox4x32_10(ctr, k.k, w);
    for (int lane = 0; lane < 4; lane++) {
        float u = ts_rng_uniform1(k, stream, 4 * b + (uint64_t)lane);
        CU_ASSERT_EQUAL(u, (float)(((double)(w[lane] >> 8) + 0.5) / 16777216.0));
    }
}

/* Any slice of a stream equals the same slice of the whole draw, and the
 * thread count changes nothing. */
static void test_rng_slices_and_threads(void) {
    const size_t n = 10007;
    ts_rng_key k = ts_rng_key_make(99, TS_RNG_SAMPLER_NOISE);
    float *all = malloc(sizeof(float) * n), *part = malloc(sizeof(float) * n);
    for (int kind = 0; kind < 2; kind++) {
        void (*draw)(ts_rng_key, uint64_t, uint64_t, size_t, float *) = kind ? ts_rng_normal : ts_rng_uniform;
        draw(k, 3, 0, n, all);
        for (size_t first = 0; first < 9; first++) {
            size_t len = n - first - 5 * first;
            draw(k, 3, first, len, part);
            CU_ASSERT_EQUAL(memcmp(part, all + first, sizeof(float) * len), 0);
        }
        for (size_t i = 0; i < n; i += 997)
            CU_ASSERT_EQUAL(all[i], kind ? ts_rng_normal1(k, 3, i) : ts_rng_uniform1(k, 3, i));
#ifdef _OPENMP
        for (int th = 1; th <= 3; th++) {
            omp_set_num_threads(th);
            draw(k, 3, 0, n, part);
            CU_ASSERT_EQUAL(memcmp(part, all, sizeof(float) * n), 0);
        }
#endif
    }
    free(all), free(part);
}

/* Moments of 2^20 draws within 6 standard errors, and no overlap between
 * purposes, seeds or streams. */
static void test_rng_distribution(void) {
    const size_t n = 1 << 20;
    float *x = malloc(sizeof(float) * n);
    ts_rng_key k = ts_rng_key_make(1, TS_RNG_TEST);
    ts_rng_uniform(k, 0, 0, n, x);
    double s = 0, s2 = 0, lo = 1, hi = 0;
    for (size_t i = 0; i < n; i++) s += x[i], s2 += x[i] * (double)x[i], lo = fmin(lo, x[i]), hi = fmax(hi, x[i]);
    CU_ASSERT(lo > 0.0 && hi < 1.0);
    CU_ASSERT(fabs(s / n - 0.5) < 6 * sqrt(1.0 / 12 / n));
    CU_ASSERT(fabs(s2 / n - 1.0 / 3) < 6 * sqrt(4.0 / 45 / n));
    ts_rng_normal(k, 0, 0, n, x);
    double m1 = 0, m2 = 0, m4 = 0;
    for (size_t i = 0; i < n; i++) m1 += x[i], m2 += x[i] * (double)x[i], m4 += pow(x[i], 4);
    m1 /= n, m2 /= n, m4 /= n;
    CU_ASSERT(fabs(m1) < 6 / sqrt((double)n));
    CU_ASSERT(fabs(m2 - 1) < 6 * sqrt(2.0 / n));
    CU_ASSERT(fabs(m4 - 3) < 6 * sqrt(96.0 / n));
    /* Different purpose / seed / stream: different numbers. */
    float a = ts_rng_uniform1(k, 0, 0);
    CU_ASSERT(a != ts_rng_uniform1(ts_rng_key_make(1, TS_RNG_DATA_ORDER), 0, 0));
    CU_ASSERT(a != ts_rng_uniform1(ts_rng_key_make(2, TS_RNG_TEST), 0, 0));
    CU_ASSERT(a != ts_rng_uniform1(k, 1, 0));
    free(x);
}

/* ---- parameters and arena ------------------------------------------------------ */

static void test_params_table(void) {
    ts_params p, g;
    ts_params_init(&p);
    int64_t s1[2] = {3, 5}, s2[1] = {7}, s3[2] = {64, 2};
    int a = ts_params_add(&p, "blocks.0.attn.qkv.weight", 2, s1);
    int b = ts_params_add(&p, "blocks.0.norm.weight", 1, s2);
    int c = ts_params_add(&p, "head.weight", 2, s3);
    CU_ASSERT_EQUAL(ts_params_count(&p), 15 + 7 + 128);
    CU_ASSERT_EQUAL(ts_params_index(&p, "head.weight"), c);
    CU_ASSERT_EQUAL(ts_params_index(&p, "head.bias"), -1);
    ts_params_alloc(&p, ts_backend_cpu());
    /* Tensors are disjoint, aligned, inside the block, in declaration order. */
    for (int i = 0; i < p.count; i++) {
        CU_ASSERT_EQUAL(p.entries[i].offset % TS_PARAM_ALIGN_FLOATS, 0);
        CU_ASSERT(p.entries[i].offset + p.entries[i].numel <= p.total);
        if (i) CU_ASSERT(p.entries[i].offset >= p.entries[i - 1].offset + p.entries[i - 1].numel);
    }
    float *pa = ts_params_ptr(&p, a), *pb = ts_params_ptr(&p, b);
    for (int i = 0; i < 15; i++) pa[i] = 1.0f;
    for (int i = 0; i < 7; i++) pb[i] = 2.0f;
    CU_ASSERT_EQUAL(pa[14], 1.0f);
    CU_ASSERT_EQUAL(pb[0], 2.0f);
    /* A gradient block has the same layout and starts at zero. */
    ts_params_alloc_like(&g, &p);
    CU_ASSERT_EQUAL(g.total, p.total);
    CU_ASSERT_EQUAL(g.count, p.count);
    CU_ASSERT_STRING_EQUAL(g.entries[b].name, "blocks.0.norm.weight");
    CU_ASSERT_EQUAL(ts_params_ptr(&g, c) - g.data, ts_params_ptr(&p, c) - p.data);
    double sum = 0;
    for (size_t i = 0; i < g.total; i++) sum += g.data[i];
    CU_ASSERT_EQUAL(sum, 0.0);
    ts_params_free(&g);
    ts_params_free(&p);
}

static void test_arena(void) {
    ts_arena a;
    ts_arena_measure(&a);
    CU_ASSERT_PTR_NULL(ts_arena_take(&a, 10, "x"));
    CU_ASSERT_PTR_NULL(ts_arena_take(&a, 100, "y"));
    size_t need = a.peak;
    CU_ASSERT_EQUAL(need, 256 + 512);
    ts_arena_alloc(&a, ts_backend_cpu(), need);
    float *x = ts_arena_take(&a, 10, "x"), *y = ts_arena_take(&a, 100, "y");
    CU_ASSERT_PTR_NOT_NULL(x);
    CU_ASSERT_EQUAL((uintptr_t)y % 256, 0);
    CU_ASSERT(y >= x + 10);
    CU_ASSERT_EQUAL(a.used, need);
    ts_arena_reset(&a);
    CU_ASSERT_PTR_EQUAL(ts_arena_take(&a, 10, "x"), x);
    ts_arena_free(&a);
}

/* ---- log ------------------------------------------------------------------------ */

static void test_json_log(void) {
    char path[] = "/tmp/tessera_logXXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
    CU_ASSERT_EQUAL(ts_log_open_json(path), 0);
    ts_log_set_level(TS_LOG_ERROR); /* keep the terminal quiet; the file gets nothing below the level */
    ts_log(TS_LOG_ERROR, "quote \" and \\ and newline\n end");
    ts_log_event("bench", "\"what\":\"sgemm\",\"gflops\":1.5");
    ts_log_close_json();
    ts_log_set_level(TS_LOG_INFO);
    FILE *f = fopen(path, "r");
    char line[1024];
    CU_ASSERT_PTR_NOT_NULL_FATAL(fgets(line, sizeof line, f));
    CU_ASSERT_PTR_NOT_NULL(strstr(line, "\"msg\":\"quote \\\" and \\\\ and newline\\n end\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(line, "\"level\":\"error\""));
    CU_ASSERT_PTR_NOT_NULL_FATAL(fgets(line, sizeof line, f));
    CU_ASSERT_PTR_NOT_NULL(strstr(line, "\"event\":\"bench\",\"what\":\"sgemm\",\"gflops\":1.5}"));
    fclose(f);
    unlink(path);
}

/* ---- solar geometry ------------------------------------------------------------ */

/* tisr, integrated exactly over the hour angle, against a plain 1-second
 * midpoint sum of the instantaneous flux (whose sun moves within the hour):
 * agreement to 1e-4 of the hour's clear-sky maximum, at points where sunrise
 * or sunset falls inside the hour too. */
static void test_tisr_vs_quadrature(void) {
    const double t0 = 1592654400.0; /* 2020-06-20 12:00 UTC */
    const double pts[][2] = {{0, 0}, {45, 10}, {-60, 200}, {87.1875, 33.75}, {-87.1875, 300}, {30, 95}, {52, 250}};
    double worst = 0;
    for (size_t p = 0; p < sizeof pts / sizeof pts[0]; p++)
        for (int h = 0; h < 24; h++) {
            double t = t0 + 3600.0 * h;
            double sum = 0;
            for (int k = 0; k < 3600; k++) sum += ts_solar_toa_flux(t - 3600 + k + 0.5, pts[p][0], pts[p][1]);
            double err = fabs(ts_solar_tisr(t, pts[p][0], pts[p][1]) - sum) / (TS_SOLAR_CONSTANT * 3600);
            if (err > worst) worst = err;
        }
    CU_ASSERT(worst < 1e-4);
    if (worst >= 1e-4) printf("\n  tisr vs quadrature: worst %.3e\n", worst);
}

/* Known geometry: solstice declinations, polar night, the equinox daily total
 * at the equator (S/pi per second of day), and a field equal to its points. */
static void test_solar_geometry(void) {
    const double deg = 180.0 / 3.14159265358979323846;
    CU_ASSERT(fabs(ts_sun_at(1592654400.0).declination * deg - 23.44) < 0.05);  /* 2020-06-20 12 UTC */
    CU_ASSERT(fabs(ts_sun_at(1608552000.0).declination * deg + 23.44) < 0.05);  /* 2020-12-21 12 UTC */
    CU_ASSERT(fabs(ts_sun_at(1584662400.0).declination * deg) < 0.1);          /* 2020-03-20 00 UTC */
    double polar = 0, day = 0;
    for (int h = 1; h <= 24; h++) {
        polar += ts_solar_tisr(1608508800.0 + 3600.0 * h, 80.0, 20.0);
        day += ts_solar_tisr(1584662400.0 + 3600.0 * h, 0.0, 0.0);
    }
    CU_ASSERT_EQUAL(polar, 0.0);
    double expect = ts_sun_at(1584705600.0).irradiance / 3.14159265358979323846 * 86400.0;
    CU_ASSERT(fabs(day / expect - 1.0) < 2e-3);
    double lat[3] = {60, 0, -45}, lon[4] = {0, 90, 180, 270};
    float field[12];
    ts_solar_tisr_field(1600000000.0, lat, 3, lon, 4, field);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) CU_ASSERT_EQUAL(field[i * 4 + j], (float)ts_solar_tisr(1600000000.0, lat[i], lon[j]));
}

/* WeatherBench-2 cell-area weights: mean 1, positive, symmetric, the same
 * whatever the storage order, and close to cos(lat) away from the poles. */
static void test_lat_weights(void) {
    double lat[32], rev[32], w[32], wr[32];
    for (int i = 0; i < 32; i++) lat[i] = 87.1875 - 5.625 * i, rev[31 - i] = lat[i];
    CU_ASSERT_FATAL(ts_lat_area_weights(lat, 32, w) == 0);
    CU_ASSERT_FATAL(ts_lat_area_weights(rev, 32, wr) == 0);
    double mean = 0, cmean = 0;
    for (int i = 0; i < 32; i++) mean += w[i] / 32, cmean += cos(lat[i] * DEG_TO_RAD) / 32;
    CU_ASSERT(fabs(mean - 1) < 1e-12);
    for (int i = 0; i < 32; i++) {
        CU_ASSERT(w[i] > 0);
        CU_ASSERT(fabs(w[i] - w[31 - i]) < 1e-12);
        CU_ASSERT(fabs(w[i] - wr[31 - i]) < 1e-12);
        if (i > 0 && i < 31) CU_ASSERT(fabs(w[i] / (cos(lat[i] * DEG_TO_RAD) / cmean) - 1) < 0.01);
    }
    double bad[3] = {10, 10, 0};
    CU_ASSERT_EQUAL(ts_lat_area_weights(bad, 3, w), -1);
}

/* Calendar: known dates (checked against GNU date), round trips over four
 * centuries, leap days, parsing and refusing impossible dates. */
static void test_calendar(void) {
    int64_t t;
    CU_ASSERT(ts_parse_datetime("2020-02-29T18", &t) == 0 && t == 1582999200);
    CU_ASSERT(ts_parse_datetime("1970-01-01", &t) == 0 && t == 0);
    CU_ASSERT(ts_parse_datetime("2000-03-01 12:30:15", &t) == 0 && t == 951913815);
    CU_ASSERT(ts_parse_datetime("1900-01-01T00:00", &t) == 0 && t == -2208988800LL);
    CU_ASSERT(ts_parse_datetime("2024-12-31T23", &t) == 0 && ts_day_of_year(t) == 366);
    CU_ASSERT(ts_parse_datetime("2023-12-31", &t) == 0 && ts_day_of_year(t) == 365);
    CU_ASSERT(ts_parse_datetime("2021-02-29", &t) == -1);
    CU_ASSERT(ts_parse_datetime("2021-13-01", &t) == -1);
    CU_ASSERT(ts_parse_datetime("2021-1-1", &t) == -1);
    CU_ASSERT(ts_parse_datetime("2021-01-01T24", &t) == -1);
    CU_ASSERT(ts_parse_datetime("2021-01-01x", &t) == -1);
    int ok = 1;
    for (int64_t d = -146097; d < 146097 * 2; d += 7) {
        int y, m, dd;
        ts_civil_from_days(d, &y, &m, &dd);
        ok &= ts_days_from_civil(y, m, dd) == d;
    }
    CU_ASSERT(ok);
    char buf[32];
    ts_format_datetime(951913815, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "2000-03-01T12:30:15");
    ts_format_datetime(-1, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "1969-12-31T23:59:59");
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite s = CU_add_suite("core", NULL, NULL);
    if (!s || !CU_add_test(s, "philox known answers", test_philox_kat) ||
        !CU_add_test(s, "rng key and counter packing", test_rng_packing) ||
        !CU_add_test(s, "rng slices and thread counts", test_rng_slices_and_threads) ||
        !CU_add_test(s, "rng distribution", test_rng_distribution) ||
        !CU_add_test(s, "parameter table", test_params_table) || !CU_add_test(s, "arena", test_arena) ||
        !CU_add_test(s, "json log", test_json_log) ||
        !CU_add_test(s, "tisr against quadrature", test_tisr_vs_quadrature) ||
        !CU_add_test(s, "solar geometry", test_solar_geometry) ||
        !CU_add_test(s, "latitude weights", test_lat_weights) || !CU_add_test(s, "calendar", test_calendar))
        return 2;
    return ts_cunit_run();
}
