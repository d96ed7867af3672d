/* ERA5 NetCDF writer and reader: round trips of both CDS layouts against an
 * analytic field (tests/io/era5_fixture.h), orientation handling, the
 * instant/accum pair, files split in time, rank-local blocks, fill
 * policies, the row rule, conservative coarsening, and the writer's own
 * guarantees; files as users bring them and bad input are
 * test_era5_input.c's.
 *
 * With arguments (`test_era5 --write DIR`) it writes the sample files that
 * tests/io/test_era5_reader.sh checks with an independent reader (python3
 * netCDF4/xarray, cdo); the analytic field is documented there too.
 */
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

static void roundtrip(ts_era5_layout layout) {
    file_req s = sl_req(layout), p = pl_req(layout);
    const char *sp = path_in("sl.nc"), *pp = path_in("pl.nc");
    CU_ASSERT_FATAL(write_req(&s, sp) == 0 && write_req(&p, pp) == 0);
    ts_era5_open_opts o = opts_of("z500,t850,q700,u700,t2m,u10,v10,msl", "lsm,z_surface");
    ts_era5_dataset *ds = open_paths(pp, sp, NULL, &o);
    CU_ASSERT_FATAL(ds != NULL);
    CU_ASSERT_EQUAL(ts_era5_ntimes(ds), 4);
    for (size_t t = 0; t < 4; t++) CU_ASSERT_EQUAL(ts_era5_times(ds)[t], T0 + (int64_t)t * DT);
    const ts_era5_grid *g = ts_era5_grid_info(ds);
    CU_ASSERT(g->nlat == 13 && g->nlon == 24 && g->nlat_data == 13 && !g->dropped_south);
    CU_ASSERT(g->lat[0] == 90 && g->lat[12] == -90 && g->lon[0] == 0 && g->lon[23] == 345);
    CU_ASSERT_EQUAL(ts_era5_nstate(ds), 8);
    CU_ASSERT_EQUAL(ts_era5_nforcing(ds), 2);
    const ts_era5_channel *z500 = ts_era5_state_channel(ds, 0), *t2m = ts_era5_state_channel(ds, 4);
    CU_ASSERT(strcmp(z500->var, "z") == 0 && z500->level_hpa == 500 && strcmp(z500->units, "m**2 s**-2") == 0);
    CU_ASSERT(strcmp(t2m->standard_name, "air_temperature") == 0 && t2m->level_hpa == 0 && !t2m->is_static);
    const ts_era5_channel *zs = ts_era5_forcing_channel(ds, 1);
    CU_ASSERT(strcmp(zs->spec, "z_surface") == 0 && strcmp(zs->var, "z") == 0 && zs->is_static && zs->level_hpa == 0);
    CU_ASSERT(ts_era5_forcing_channel(ds, 0)->is_static);
    size_t idx = 99;
    CU_ASSERT(ts_era5_find_time(ds, T0 + 2 * DT, &idx) == 0 && idx == 2);
    CU_ASSERT(ts_era5_find_time(ds, T0 + 1, &idx) == -1);
    check_full(ds, layout == TS_ERA5_LAYOUT_PACKED, SL, NSL, PL, NPL);
    ts_era5_dataset_close(ds);
    remove_all();
}

static void test_roundtrip_cds(void) { roundtrip(TS_ERA5_LAYOUT_CDS); }
static void test_roundtrip_packed(void) { roundtrip(TS_ERA5_LAYOUT_PACKED); }

/* Latitude stored -90 -> 90 and longitude -180 -> 165 come back north to
 * south and from longitude 0, in both layouts. */
static void test_orientation(void) {
    for (int layout = 0; layout < 2; layout++) {
        file_req s = sl_req(layout), p = pl_req(layout);
        s.lat0 = p.lat0 = -90, s.dlat = p.dlat = 15, s.lon0 = p.lon0 = -180;
        const char *sp = path_in("sl_flip.nc"), *pp = path_in("pl_flip.nc");
        CU_ASSERT_FATAL(write_req(&s, sp) == 0 && write_req(&p, pp) == 0);
        ts_era5_open_opts o = opts_of("t850,t2m,msl", "lsm");
        ts_era5_dataset *ds = open_paths(sp, pp, NULL, &o);
        CU_ASSERT_FATAL(ds != NULL);
        const ts_era5_grid *g = ts_era5_grid_info(ds);
        CU_ASSERT(g->lat[0] == 90 && g->lat[12] == -90 && g->lon[0] == 0 && g->lon[12] == 180 && g->lon[23] == 345);
        check_full(ds, layout, SL, NSL, PL, NPL);
        ts_era5_dataset_close(ds);
        remove_all();
    }
}

static void check_blocks(ts_era5_dataset *ds, size_t t);

/* Longitudes stored in xarray's 0..165, -180..-15 order, decreasing, or
 * shuffled: the source grid is 0..345 as for the sorted file, every value
 * read equals the sorted file's bit for bit (so statistics do too), and
 * blocks equal slices of full reads, in both layouts. */
static void test_longitude_orders(void) {
    static const int orders[] = {LON_XARRAY, LON_REVERSED, LON_SHUFFLED};
    for (int layout = 0; layout < 2; layout++) {
        file_req s0 = sl_req(layout), p0 = pl_req(layout);
        const char *sp0 = path_in("sl_sorted.nc"), *pp0 = path_in("pl_sorted.nc");
        CU_ASSERT_FATAL(write_req(&s0, sp0) == 0 && write_req(&p0, pp0) == 0);
        ts_era5_open_opts o = opts_of("z500,t850,t2m,msl", "lsm,z_surface");
        ts_era5_dataset *ref = open_paths(sp0, pp0, NULL, &o);
        CU_ASSERT_FATAL(ref != NULL);
        const ts_era5_grid *g0 = ts_era5_grid_info(ref);
        const size_t plane = g0->nlat * g0->nlon, ns = ts_era5_nstate(ref), nf = ts_era5_nforcing(ref);
        float *want = malloc((ns + nf) * plane * sizeof(float)), *got = malloc((ns + nf) * plane * sizeof(float));
        CU_ASSERT_FATAL(
            ts_era5_read_block(ref, 1, 0, g0->nlat, 0, g0->nlon, want, want + ns * plane, err, sizeof err) == 0);
        for (size_t k = 0; k < sizeof orders / sizeof orders[0]; k++) {
            file_req s = s0, p = p0;
            s.lon_order = p.lon_order = orders[k];
            const char *sp = path_in("sl_lon.nc"), *pp = path_in("pl_lon.nc");
            CU_ASSERT_FATAL(write_req(&s, sp) == 0 && write_req(&p, pp) == 0);
            ts_era5_dataset *ds = open_paths(sp, pp, NULL, &o);
            if (!ds) fprintf(stderr, "\n  longitude order %d: %s\n", orders[k], err);
            CU_ASSERT_FATAL(ds != NULL);
            const ts_era5_grid *g = ts_era5_grid_info(ds);
            CU_ASSERT(g->nlon == 24 && memcmp(g->lon, g0->lon, 24 * sizeof *g->lon) == 0);
            CU_ASSERT(ts_era5_read_block(ds, 1, 0, g->nlat, 0, g->nlon, got, got + ns * plane, err, sizeof err) == 0);
            CU_ASSERT(memcmp(got, want, (ns + nf) * plane * sizeof(float)) == 0);
            check_blocks(ds, 2);
            ts_era5_dataset_close(ds);
            unlink(sp), unlink(pp);
        }
        free(want), free(got);
        ts_era5_dataset_close(ref);
        remove_all();
    }
}

/* The zip of a mixed instant/accumulated request: two single-level files
 * with the same times and different variables. */
static void test_instant_accum_pair(void) {
    file_req inst = sl_req(TS_ERA5_LAYOUT_CDS), acc = sl_req(TS_ERA5_LAYOUT_CDS), p = pl_req(TS_ERA5_LAYOUT_CDS);
    acc.vars = ACC, acc.nvars = 1;
    const char *ip = path_in("data_stream-oper_stepType-instant.nc"), *ap = path_in("data_stream-oper_stepType-accum.nc");
    const char *pp = path_in("pl.nc");
    CU_ASSERT_FATAL(write_req(&inst, ip) == 0 && write_req(&acc, ap) == 0 && write_req(&p, pp) == 0);
    ts_era5_open_opts o = opts_of("z500,t2m,u10", "tisr,lsm,z_surface");
    ts_era5_dataset *ds = open_paths(ip, ap, pp, &o);
    CU_ASSERT_FATAL(ds != NULL);
    const ts_era5_channel *tisr = ts_era5_forcing_channel(ds, 0);
    CU_ASSERT(strcmp(tisr->var, "tisr") == 0 && !tisr->is_static && strcmp(tisr->units, "J m**-2") == 0);
    CU_ASSERT(strcmp(tisr->standard_name, "") == 0); /* tisr has none in ERA5 */
    check_full(ds, 0, SL, NSL, PL, NPL);
    ts_era5_dataset_close(ds);
    remove_all();
}

/* Files split in time (one per "year"), given out of order, single and
 * pressure levels split differently: one dataset in time order. */
static void test_time_split(void) {
    const char *names[] = {"sl_2020c.nc", "sl_2020a.nc", "sl_2020b.nc"};
    const int first[] = {5, 0, 2}, count[] = {2, 2, 3};
    const char *paths[5];
    for (int k = 0; k < 3; k++) {
        file_req s = sl_req(TS_ERA5_LAYOUT_CDS);
        s.t_first = T0 + first[k] * DT, s.nt = count[k];
        paths[k] = path_in(names[k]);
        CU_ASSERT_FATAL(write_req(&s, paths[k]) == 0);
    }
    for (int k = 0; k < 2; k++) { /* pressure levels: times 0-3 and 4-6, packed */
        file_req p = pl_req(TS_ERA5_LAYOUT_PACKED);
        p.t_first = T0 + (k ? 4 : 0) * DT, p.nt = k ? 3 : 4;
        paths[3 + k] = path_in(k ? "pl_b.nc" : "pl_a.nc");
        CU_ASSERT_FATAL(write_req(&p, paths[3 + k]) == 0);
    }
    ts_era5_open_opts o = opts_of("t850,t2m", "lsm");
    err[0] = '\0';
    ts_era5_dataset *ds = ts_era5_open(paths, 5, &o, err, sizeof err);
    if (!ds) fprintf(stderr, "\n  %s\n", err);
    CU_ASSERT_FATAL(ds != NULL);
    CU_ASSERT_EQUAL(ts_era5_ntimes(ds), 7);
    for (size_t t = 0; t < ts_era5_ntimes(ds); t++) CU_ASSERT_EQUAL(ts_era5_times(ds)[t], T0 + (int64_t)t * DT);
    check_full(ds, 1, SL, NSL, PL, NPL); /* t850 is packed: its tolerance includes half a step */
    ts_era5_dataset_close(ds);
    remove_all();
}

/* More files than the reader keeps open (64): one per time, as a request
 * split by day arrives; reading must reopen closed files on demand. */
static void test_many_files(void) {
    enum { N = 70 };
    static const char *paths[N];
    for (int k = 0; k < N; k++) {
        char name[32];
        snprintf(name, sizeof name, "day_%03d.nc", k);
        file_req s = sl_req(TS_ERA5_LAYOUT_CDS);
        s.nvars = 1, s.t_first = T0 + (int64_t)k * DT, s.nt = 1;
        paths[k] = path_in(name);
        CU_ASSERT_FATAL(write_req(&s, paths[k]) == 0);
    }
    ts_era5_open_opts o = opts_of("t2m", "");
    ts_era5_dataset *ds = ts_era5_open(paths, N, &o, err, sizeof err);
    CU_ASSERT_FATAL(ds != NULL);
    CU_ASSERT_EQUAL(ts_era5_ntimes(ds), N);
    check_full(ds, 0, SL, NSL, PL, NPL);
    ts_era5_dataset_close(ds);
    remove_all();
}

/* ---- rank-local blocks ------------------------------------------------------------------------ */

/* Every block must equal the same slice of a full read, bit for bit. */
static void check_blocks(ts_era5_dataset *ds, size_t t) {
    const ts_era5_grid *g = ts_era5_grid_info(ds);
    size_t ns = ts_era5_nstate(ds), nf = ts_era5_nforcing(ds), plane = g->nlat * g->nlon;
    float *full_s = malloc(ns * plane * sizeof(float)), *full_f = malloc(nf * plane * sizeof(float)); /* (n*, nlat, nlon) */
    CU_ASSERT_FATAL(ts_era5_read_block(ds, t, 0, g->nlat, 0, g->nlon, full_s, full_f, err, sizeof err) == 0);
    size_t blocks[][4] = {{0, 1, 0, 1}, {1, 3, 2, 5}, {g->nlat - 2, 2, g->nlon - 3, 3}, {2, g->nlat - 4, 0, g->nlon},
                          {0, g->nlat, g->nlon / 2, g->nlon / 2}};
    for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++) {
        size_t r0 = blocks[b][0], nr = blocks[b][1], c0 = blocks[b][2], nc = blocks[b][3];
        float *bs = malloc(ns * nr * nc * sizeof(float)), *bf = malloc(nf * nr * nc * sizeof(float)); /* (n*, nr, nc) */
        int rc = ts_era5_read_block(ds, t, r0, nr, c0, nc, bs, bf, err, sizeof err);
        if (rc) fprintf(stderr, "\n  block: %s\n", err);
        CU_ASSERT_FATAL(rc == 0);
        size_t diff = 0;
        for (size_t c = 0; c < ns + nf; c++)
            for (size_t i = 0; i < nr; i++)
                for (size_t j = 0; j < nc; j++) {
                    const float *full = c < ns ? full_s + c * plane : full_f + (c - ns) * plane;
                    const float *blk = c < ns ? bs + c * nr * nc : bf + (c - ns) * nr * nc;
                    diff += memcmp(&full[(r0 + i) * g->nlon + c0 + j], &blk[i * nc + j], sizeof(float)) != 0;
                }
        CU_ASSERT_EQUAL(diff, 0);
        free(bs), free(bf);
    }
    free(full_s), free(full_f);
}

static void test_block_equals_full(void) {
    file_req s = sl_req(TS_ERA5_LAYOUT_CDS), p = pl_req(TS_ERA5_LAYOUT_PACKED);
    s.lat0 = -90, s.dlat = 15, s.lon0 = -180; /* stored flipped and rolled: blocks cross the roll */
    const char *sp = path_in("sl.nc"), *pp = path_in("pl.nc");
    CU_ASSERT_FATAL(write_req(&s, sp) == 0 && write_req(&p, pp) == 0);
    ts_era5_open_opts o = opts_of("z500,t850,t2m,msl", "lsm,z_surface");
    ts_era5_dataset *ds = open_paths(sp, pp, NULL, &o);
    CU_ASSERT_FATAL(ds != NULL);
    check_blocks(ds, 2);
    ts_era5_dataset_close(ds);
    remove_all();
}

/* ---- fill policies -------------------------------------------------------------------------- */

/* WeatherBench's cell areas: bounds at midpoints, +-90 at the ends. */
static double row_area(const double *lat, size_t n, size_t i) {
    double hi = i == 0 ? 90 : 0.5 * (lat[i - 1] + lat[i]), lo = i + 1 == n ? -90 : 0.5 * (lat[i] + lat[i + 1]);
    return sin(hi * D2R) - sin(lo * D2R);
}

static double area_mean(const float *x, const double *lat, size_t nlat, size_t nlon, int skip_nan) {
    double s = 0, w = 0;
    for (size_t i = 0; i < nlat; i++)
        for (size_t j = 0; j < nlon; j++) {
            if (skip_nan && isnan(x[i * nlon + j])) continue;
            s += row_area(lat, nlat, i) * x[i * nlon + j], w += row_area(lat, nlat, i);
        }
    return s / w;
}

static void test_fill_policies(void) {
    for (int layout = 0; layout < 2; layout++) {
        file_req s = sl_req(layout);
        s.nan_t = 1, s.nan_at = 30; /* t2m at the second time: points 30..32 (row 1, columns 6..8) */
        const char *sp = path_in("sl_nan.nc");
        CU_ASSERT_FATAL(write_req(&s, sp) == 0);
        ts_era5_open_opts o = opts_of("t2m,msl", "");
        float x[2 * 13 * 24]; /* (2 channels, 13, 24) */
        ts_era5_dataset *ds = open_paths(sp, NULL, NULL, &o);
        CU_ASSERT_FATAL(ds != NULL);
        CU_ASSERT(ts_era5_read_block(ds, 0, 0, 13, 0, 24, x, NULL, err, sizeof err) == 0);
        CU_ASSERT(ts_era5_read_block(ds, 1, 0, 13, 0, 24, x, NULL, err, sizeof err) == -1);
        CU_ASSERT(strstr(err, sp) && strstr(err, "t2m") && strstr(err, "2020-01-01T06:00:00") && !strchr(err, '\n'));
        CU_ASSERT(ts_era5_read_block(ds, 1, 2, 3, 0, 24, x, NULL, err, sizeof err) == 0); /* a block without them */
        ts_era5_dataset_close(ds);

        o.fill = TS_ERA5_FILL_ZERO;
        CU_ASSERT_FATAL((ds = open_paths(sp, NULL, NULL, &o)) != NULL);
        CU_ASSERT_FATAL(ts_era5_read_block(ds, 1, 0, 13, 0, 24, x, NULL, err, sizeof err) == 0);
        CU_ASSERT(x[30] == 0 && x[31] == 0 && x[32] == 0 && x[29] != 0 && x[33] != 0);
        ts_era5_dataset_close(ds);

        /* mean: the area-weighted mean of the field's valid values, the
         * same whatever block is read */
        o.fill = TS_ERA5_FILL_MEAN;
        CU_ASSERT_FATAL((ds = open_paths(sp, NULL, NULL, &o)) != NULL);
        CU_ASSERT_FATAL(ts_era5_read_block(ds, 1, 0, 13, 0, 24, x, NULL, err, sizeof err) == 0);
        x[30] = x[31] = x[32] = NAN;
        double want = area_mean(x, ts_era5_grid_info(ds)->lat, 13, 24, 1);
        float blk[2 * 2 * 4]; /* (2 channels, 2 rows, 4 columns) */
        CU_ASSERT_FATAL(ts_era5_read_block(ds, 1, 1, 2, 5, 4, blk, NULL, err, sizeof err) == 0);
        for (int k = 1; k < 4; k++) CU_ASSERT(fabs(blk[k] - want) <= 1e-6 * fabs(want));
        ts_era5_dataset_close(ds);
        remove_all();
    }
}

/* ---- the row rule ------------------------------------------------------------------------------ */

static void test_row_rule_counts(void) {
    size_t rows, data;
    CU_ASSERT(ts_era5_row_rule_rows(721, 60, TS_ERA5_ROWS_DROP_SOUTH, &rows, &data, err, sizeof err) == 0);
    CU_ASSERT(rows == 720 && data == 720);
    CU_ASSERT(ts_era5_row_rule_rows(121, 12, TS_ERA5_ROWS_DROP_SOUTH, &rows, &data, err, sizeof err) == 0);
    CU_ASSERT(rows == 120 && data == 120);
    CU_ASSERT(ts_era5_row_rule_rows(32, 8, TS_ERA5_ROWS_DROP_SOUTH, &rows, &data, err, sizeof err) == 0);
    CU_ASSERT(rows == 32 && data == 32); /* a grid the window divides is left alone */
    CU_ASSERT(ts_era5_row_rule_rows(721, 0, TS_ERA5_ROWS_DROP_SOUTH, &rows, &data, err, sizeof err) == 0);
    CU_ASSERT(rows == 721);
    CU_ASSERT(ts_era5_row_rule_rows(121, 7, TS_ERA5_ROWS_DROP_SOUTH, &rows, &data, err, sizeof err) == -1);
    CU_ASSERT(strstr(err, "data.row_rule=pad") != NULL);
    CU_ASSERT(ts_era5_row_rule_rows(121, 7, TS_ERA5_ROWS_PAD, &rows, &data, err, sizeof err) == 0);
    CU_ASSERT(rows == 126 && data == 121);
    CU_ASSERT(ts_era5_row_rule_rows(721, 30, TS_ERA5_ROWS_PAD, &rows, &data, err, sizeof err) == 0);
    CU_ASSERT(rows == 750 && data == 721);
}

static void test_row_rule_dataset(void) {
    file_req s = sl_req(TS_ERA5_LAYOUT_CDS);
    const char *sp = path_in("sl.nc");
    CU_ASSERT_FATAL(write_req(&s, sp) == 0);
    ts_era5_open_opts o = opts_of("t2m,u10", "lsm");
    o.row_multiple = 4; /* 13 rows: drop_south serves 12 */
    ts_era5_dataset *ds = open_paths(sp, NULL, NULL, &o);
    CU_ASSERT_FATAL(ds != NULL);
    const ts_era5_grid *g = ts_era5_grid_info(ds);
    CU_ASSERT(g->nlat == 12 && g->nlat_data == 12 && g->dropped_south && g->lat[11] == -75 && g->nlat_file == 13);
    check_full(ds, 0, SL, NSL, PL, NPL);
    check_blocks(ds, 1);
    CU_ASSERT(ts_era5_read_block(ds, 0, 8, 5, 0, 24, (float[2 * 5 * 24]){0}, NULL, err, sizeof err) == -1);
    ts_era5_dataset_close(ds);

    o.row_rule = TS_ERA5_ROWS_PAD, o.row_multiple = 5; /* 13 rows: padded to 15 */
    CU_ASSERT_FATAL((ds = open_paths(sp, NULL, NULL, &o)) != NULL);
    g = ts_era5_grid_info(ds);
    CU_ASSERT(g->nlat == 15 && g->nlat_data == 13 && !g->dropped_south && g->row_mask[12] == 1 &&
              g->row_mask[13] == 0 && g->row_mask[14] == 0 && g->lat[14] == -90);
    float blk[2 * 4 * 24], lsm[4 * 24]; /* (2, 4 rows, 24), (1, 4, 24): rows 11..14, two of them padding */
    CU_ASSERT_FATAL(ts_era5_read_block(ds, 0, 11, 4, 0, 24, blk, lsm, err, sizeof err) == 0);
    size_t nonzero = 0;
    for (size_t c = 0; c < 2; c++)
        for (size_t k = 2 * 24; k < 4 * 24; k++) nonzero += blk[c * 4 * 24 + k] != 0;
    for (size_t k = 2 * 24; k < 4 * 24; k++) nonzero += lsm[k] != 0;
    CU_ASSERT_EQUAL(nonzero, 0);
    CU_ASSERT(fabs(blk[0] - field_value(&SL[0], 0, -75, 0, T0)) < 1e-3); /* row 11 is data */
    check_blocks(ds, 0);
    ts_era5_dataset_close(ds);
    remove_all();
}

/* ---- conservative coarsening ----------------------------------------------------------------- */

static void coarsen_check(const file_req *r, ts_era5_target_grid grid, size_t nlat, size_t nlon, double lat0) {
    const char *sp = path_in("coarse_src.nc");
    CU_ASSERT_FATAL(write_req(r, sp) == 0);
    ts_era5_open_opts o = opts_of("t2m", "");
    ts_era5_dataset *nat = open_paths(sp, NULL, NULL, &o);
    o.grid = grid;
    ts_era5_dataset *co = open_paths(sp, NULL, NULL, &o);
    CU_ASSERT_FATAL(nat && co);
    const ts_era5_grid *gn = ts_era5_grid_info(nat), *gc = ts_era5_grid_info(co);
    CU_ASSERT(gc->nlat == nlat && gc->nlon == nlon && gc->nlat_file == r->nlat && gc->nlon_file == r->nlon);
    CU_ASSERT(fabs(gc->lat[0] - lat0) < 1e-12 && fabs(gc->lat[nlat - 1] + lat0) < 1e-12 && gc->lon[0] == 0 &&
              fabs(gc->lon[1] - 360.0 / (double)nlon) < 1e-12);
    float *xn = malloc(gn->nlat * gn->nlon * sizeof *xn), *xc = malloc(nlat * nlon * sizeof *xc); /* (rows, cols) */
    CU_ASSERT_FATAL(ts_era5_read_block(nat, 0, 0, gn->nlat, 0, gn->nlon, xn, NULL, err, sizeof err) == 0);
    CU_ASSERT_FATAL(ts_era5_read_block(co, 0, 0, nlat, 0, nlon, xc, NULL, err, sizeof err) == 0);
    if (r->vars[0].amp == 0) { /* a constant field stays constant */
        size_t off = 0;
        for (size_t k = 0; k < nlat * nlon; k++) off += fabs(xc[k] - r->vars[0].base) > 1e-6 * r->vars[0].base;
        CU_ASSERT_EQUAL(off, 0);
    } else { /* the area-weighted global mean of a noisy field is preserved */
        double mn = area_mean(xn, gn->lat, gn->nlat, gn->nlon, 0), mc = area_mean(xc, gc->lat, nlat, nlon, 0);
        if (fabs(mc - mn) > 1e-6 * fabs(mn)) fprintf(stderr, "\n  mean %.9g -> %.9g\n", mn, mc);
        CU_ASSERT(fabs(mc - mn) <= 1e-6 * fabs(mn));
    }
    check_blocks(co, 0);
    free(xn), free(xc);
    ts_era5_dataset_close(nat);
    ts_era5_dataset_close(co);
    remove_all();
}

static void test_coarsen_5625(void) {
    /* 2.5 deg with pole rows, stored south to north from -180: target cells
     * straddle source cells and longitude 0 */
    file_req r = {TS_ERA5_LAYOUT_CDS, 73, 144, -90, 2.5, -180, 2.5, 0, SL, 1, T0, 1, -1, 0, 1, LON_AS_GIVEN};
    coarsen_check(&r, TS_ERA5_GRID_5625, 32, 64, 87.1875);
    r.vars = CONST_T2M, r.noise = 0;
    coarsen_check(&r, TS_ERA5_GRID_5625, 32, 64, 87.1875);
}

/* ds unpacked from the bytes of an opened dataset serves the same data:
 * the same times, grid and channels, and every read of every time, bit for
 * bit, without having opened a file before its first read. */
static void same_after_pack(ts_era5_dataset *ds) {
    void *bytes;
    size_t n;
    CU_ASSERT_FATAL(ts_era5_pack(ds, &bytes, &n) == 0 && n > 0);
    ts_era5_dataset *cp = ts_era5_unpack(bytes, n, err, sizeof err);
    CU_ASSERT_FATAL(cp != NULL);
    const ts_era5_grid *a = ts_era5_grid_info(ds), *b = ts_era5_grid_info(cp);
    CU_ASSERT(a->nlat == b->nlat && a->nlon == b->nlon && a->nlat_data == b->nlat_data &&
              a->nlat_file == b->nlat_file && a->nlon_file == b->nlon_file && a->dropped_south == b->dropped_south);
    CU_ASSERT(memcmp(a->lat, b->lat, a->nlat * sizeof *a->lat) == 0 &&
              memcmp(a->lon, b->lon, a->nlon * sizeof *a->lon) == 0);
    CU_ASSERT(memcmp(a->row_mask, b->row_mask, a->nlat) == 0);
    CU_ASSERT_FATAL(ts_era5_ntimes(ds) == ts_era5_ntimes(cp) && ts_era5_nstate(ds) == ts_era5_nstate(cp) &&
                    ts_era5_nforcing(ds) == ts_era5_nforcing(cp));
    CU_ASSERT(memcmp(ts_era5_times(ds), ts_era5_times(cp), ts_era5_ntimes(ds) * sizeof(int64_t)) == 0);
    size_t ns = ts_era5_nstate(ds), nf = ts_era5_nforcing(ds);
    for (size_t c = 0; c < ns + nf; c++) {
        const ts_era5_channel *x = c < ns ? ts_era5_state_channel(ds, c) : ts_era5_forcing_channel(ds, c - ns);
        const ts_era5_channel *y = c < ns ? ts_era5_state_channel(cp, c) : ts_era5_forcing_channel(cp, c - ns);
        CU_ASSERT(strcmp(x->spec, y->spec) == 0 && strcmp(x->var, y->var) == 0 && x->level_hpa == y->level_hpa &&
                  x->is_static == y->is_static && strcmp(x->units, y->units) == 0 &&
                  strcmp(x->long_name, y->long_name) == 0 && strcmp(x->standard_name, y->standard_name) == 0);
    }
    size_t plane = a->nlat * a->nlon;
    float *s1 = malloc(ns * plane * sizeof *s1), *s2 = malloc(ns * plane * sizeof *s2);
    float *f1 = malloc((nf ? nf : 1) * plane * sizeof *f1), *f2 = malloc((nf ? nf : 1) * plane * sizeof *f2);
    char err2[512];
    for (size_t t = 0; t < ts_era5_ntimes(ds); t++) {
        int r1 = ts_era5_read_block(ds, t, 0, a->nlat, 0, a->nlon, s1, nf ? f1 : NULL, err, sizeof err);
        int r2 = ts_era5_read_block(cp, t, 0, b->nlat, 0, b->nlon, s2, nf ? f2 : NULL, err2, sizeof err2);
        CU_ASSERT(r1 == r2);
        if (r1 == 0 && r2 == 0) {
            CU_ASSERT(memcmp(s1, s2, ns * plane * sizeof *s1) == 0);
            CU_ASSERT(!nf || memcmp(f1, f2, nf * plane * sizeof *f1) == 0);
        } else { /* a refused read is refused alike */
            CU_ASSERT(strcmp(err, err2) == 0);
        }
    }
    /* damaged bytes: one line, no dataset */
    CU_ASSERT(ts_era5_unpack(bytes, n - 9, err, sizeof err) == NULL && strstr(err, "damaged") && !strchr(err, '\n'));
    ((unsigned char *)bytes)[0] ^= 1;
    CU_ASSERT(ts_era5_unpack(bytes, n, err, sizeof err) == NULL && strstr(err, "damaged"));
    free(s1), free(s2), free(f1), free(f2), free(bytes);
    ts_era5_dataset_close(cp);
}

static void test_pack_unpack(void) {
    for (int layout = 0; layout < 2; layout++) { /* two files, levels, statics, both layouts */
        file_req s = sl_req(layout), p = pl_req(layout);
        const char *sp = path_in("sl.nc"), *pp = path_in("pl.nc");
        CU_ASSERT_FATAL(write_req(&s, sp) == 0 && write_req(&p, pp) == 0);
        ts_era5_open_opts o = opts_of("z500,t850,q700,u700,t2m,u10,v10,msl", "lsm,z_surface");
        ts_era5_dataset *ds = open_paths(pp, sp, NULL, &o);
        CU_ASSERT_FATAL(ds != NULL);
        same_after_pack(ds);
        ts_era5_dataset_close(ds);
        remove_all();
    }
    /* coarsened (regridding weights), flipped and rolled, and the row rule */
    file_req r = {TS_ERA5_LAYOUT_CDS, 73, 144, -90, 2.5, -180, 2.5, 0, SL, 1, T0, 2, -1, 0, 1, LON_AS_GIVEN};
    const char *cp = path_in("coarse_src.nc");
    CU_ASSERT_FATAL(write_req(&r, cp) == 0);
    ts_era5_open_opts o = opts_of("t2m", "");
    o.grid = TS_ERA5_GRID_5625, o.row_multiple = 8;
    ts_era5_dataset *ds = open_paths(cp, NULL, NULL, &o);
    CU_ASSERT_FATAL(ds != NULL);
    same_after_pack(ds);
    ts_era5_dataset_close(ds);
    /* NaNs refused at one time by the fill policy, alike after the trip */
    file_req nan = sl_req(TS_ERA5_LAYOUT_CDS);
    nan.nan_t = 1, nan.nan_at = 30;
    const char *np = path_in("sl_nan.nc");
    CU_ASSERT_FATAL(write_req(&nan, np) == 0);
    o = opts_of("t2m,msl", "");
    CU_ASSERT_FATAL((ds = open_paths(np, NULL, NULL, &o)) != NULL);
    same_after_pack(ds);
    ts_era5_dataset_close(ds);
    remove_all();
}

static void test_coarsen_140625(void) {
    file_req r = {TS_ERA5_LAYOUT_CDS, 181, 360, 90, -1, 0, 1, 0, SL, 1, T0, 1, -1, 0, 1, LON_AS_GIVEN};
    coarsen_check(&r, TS_ERA5_GRID_140625, 128, 256, 89.296875);
    r.vars = CONST_T2M, r.layout = TS_ERA5_LAYOUT_PACKED, r.noise = 0;
    coarsen_check(&r, TS_ERA5_GRID_140625, 128, 256, 89.296875);
}

/* ---- the writer's own guarantees -------------------------------------------------------------- */

static void test_writer_rename_and_errors(void) {
    double lat[2] = {45, -45}, lon[4] = {0, 90, 180, 270};
    ts_era5_var v = {"t2m", "K", "2 metre temperature", "air_temperature", 167, 0, 200, 300};
    const char *path = path_in("w.nc");
    char part[400];
    snprintf(part, sizeof part, "%s.part", path);
    ts_era5_file_spec spec = {.path = path, .layout = TS_ERA5_LAYOUT_PACKED, .nlat = 2, .nlon = 4, .lat = lat,
                              .lon = lon, .nvars = 1, .vars = &v};
    float x[8] = {250, 250, 250, 250, 250, 250, 250, 250};
    const float *fields[1] = {x};
    ts_era5_writer *w = ts_era5_create(&spec, err, sizeof err);
    CU_ASSERT_FATAL(w != NULL);
    CU_ASSERT(ts_era5_append(w, T0, fields, err, sizeof err) == 0);
    CU_ASSERT(access(part, F_OK) == 0 && access(path, F_OK) != 0); /* incomplete: only the .part exists */
    CU_ASSERT(ts_era5_append(w, T0, fields, err, sizeof err) == -1); /* times must increase */
    CU_ASSERT(strstr(err, "increase") != NULL);
    x[3] = 301; /* outside [200, 300] by more than half a step */
    CU_ASSERT(ts_era5_append(w, T0 + DT, fields, err, sizeof err) == -1);
    CU_ASSERT(strstr(err, "t2m") && strstr(err, "packing range"));
    x[3] = 250;
    CU_ASSERT(ts_era5_append(w, T0 + DT + 1800, fields, err, sizeof err) == -1); /* not a whole hour */
    CU_ASSERT(ts_era5_close(w, 0, err, sizeof err) == 0);
    CU_ASSERT(access(part, F_OK) != 0 && access(path, F_OK) != 0); /* abandoned: nothing left */

    spec.layout = TS_ERA5_LAYOUT_CDS;
    CU_ASSERT_FATAL((w = ts_era5_create(&spec, err, sizeof err)) != NULL);
    CU_ASSERT(ts_era5_append(w, T0, fields, err, sizeof err) == 0);
    CU_ASSERT(ts_era5_close(w, 1, err, sizeof err) == 0);
    CU_ASSERT(access(part, F_OK) != 0 && access(path, F_OK) == 0);

    v.pack_min = v.pack_max; /* an empty packing range is refused up front */
    spec.layout = TS_ERA5_LAYOUT_PACKED;
    CU_ASSERT(ts_era5_create(&spec, err, sizeof err) == NULL && strstr(err, "t2m") != NULL);
    remove_all();
}

static void test_expand_files(void) {
    const char *a1 = path_in("era5_a1.nc"), *a2 = path_in("era5_a2.nc"), *b = path_in("era5_b.nc");
    const char *files[] = {a2, a1, b};
    for (int i = 0; i < 3; i++) {
        FILE *f = fopen(files[i], "w");
        CU_ASSERT_FATAL(f != NULL);
        fclose(f);
    }
    char spec[1200];
    snprintf(spec, sizeof spec, " %s/era5_a*.nc , %s,%s ", g_dir, b, a1);
    char **paths;
    size_t n;
    CU_ASSERT_FATAL(ts_era5_expand_files(spec, &paths, &n, err, sizeof err) == 0);
    CU_ASSERT(n == 3 && strcmp(paths[0], a1) == 0 && strcmp(paths[1], a2) == 0 && strcmp(paths[2], b) == 0);
    ts_era5_free_paths(paths, n);
    snprintf(spec, sizeof spec, "%s/era5_a*.nc,%s/nothing_*.nc", g_dir, g_dir);
    CU_ASSERT(ts_era5_expand_files(spec, &paths, &n, err, sizeof err) == -1);
    CU_ASSERT(strstr(err, "nothing_*.nc") && strstr(err, "data.files"));
    CU_ASSERT(ts_era5_expand_files(" , ", &paths, &n, err, sizeof err) == -1);
    remove_all();
}

static void test_opts_from_config(void) {
    ts_config *cfg = ts_config_new();
    CU_ASSERT_FATAL(cfg != NULL);
    ts_era5_open_opts o;
    ts_era5_opts_from_config(cfg, &o);
    CU_ASSERT(o.fill == TS_ERA5_FILL_ERROR && o.grid == TS_ERA5_GRID_NATIVE && o.row_rule == TS_ERA5_ROWS_DROP_SOUTH);
    CU_ASSERT(strcmp(o.variables, ts_config_str(cfg, "data.variables")) == 0);
    CU_ASSERT(ts_config_apply_override(cfg, "data.fill=mean", err, sizeof err) == 0);
    CU_ASSERT(ts_config_apply_override(cfg, "data.grid=1.40625", err, sizeof err) == 0);
    CU_ASSERT(ts_config_apply_override(cfg, "data.row_rule=pad", err, sizeof err) == 0);
    ts_era5_opts_from_config(cfg, &o);
    CU_ASSERT(o.fill == TS_ERA5_FILL_MEAN && o.grid == TS_ERA5_GRID_140625 && o.row_rule == TS_ERA5_ROWS_PAD);
    ts_config_free(cfg);
}

/* ---- sample files for the independent reader ---------------------------------------------------- */

/* cds_sl.nc, cds_pl.nc, packed_sl.nc, packed_pl.nc: the 15-degree grid,
 * 4 times 6 hours apart from 2020-01-01, the analytic field_value. */
static int write_samples(const char *dir) {
    static const char *const names[] = {"cds_sl.nc", "cds_pl.nc", "packed_sl.nc", "packed_pl.nc"};
    for (int k = 0; k < 4; k++) {
        ts_era5_layout layout = k < 2 ? TS_ERA5_LAYOUT_CDS : TS_ERA5_LAYOUT_PACKED;
        file_req r = k % 2 ? pl_req(layout) : sl_req(layout);
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        if (write_req(&r, path)) return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--write") == 0) return write_samples(argv[2]);
    if (argc != 1) {
        fprintf(stderr, "usage: %s [--write DIR]\n", argv[0]);
        return 2;
    }
    snprintf(g_dir, sizeof g_dir, "/tmp/tessera_era5_XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("era5", NULL, NULL);
    if (!s) goto registry_error;
    struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {
        {"round trip, CDS layout", test_roundtrip_cds},
        {"round trip, packed layout", test_roundtrip_packed},
        {"latitude increasing, longitude -180..180", test_orientation},
        {"longitudes in any stored order", test_longitude_orders},
        {"instant/accum pair", test_instant_accum_pair},
        {"files split in time", test_time_split},
        {"more files than stay open", test_many_files},
        {"block equals slice of full read", test_block_equals_full},
        {"fill policies", test_fill_policies},
        {"row rule counts", test_row_rule_counts},
        {"row rule on a dataset", test_row_rule_dataset},
        {"coarsening to 5.625", test_coarsen_5625},
        {"coarsening to 1.40625", test_coarsen_140625},
        {"metadata packed for other ranks", test_pack_unpack},
        {"writer: rename and errors", test_writer_rename_and_errors},
        {"data.files expansion", test_expand_files},
        {"options from config", test_opts_from_config},
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
