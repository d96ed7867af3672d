/* Tests of the graph-physics mesh file writer and reader (io/mesh_file.h):
 * a written file reads back identically, and damaged files (missing
 * dataset, cells naming a missing node, non-finite velocity, a truncated
 * file, a meta JSON that disagrees) are refused with one line naming the
 * file, trajectory and dataset.
 *
 *   test_mesh_file            the CUnit suite
 *   test_mesh_file --check F  open F and read every step of every dynamic
 *                             field; exit 1 with the reader's error line
 */
#include <CUnit/Basic.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "io/mesh_file.h"

static char err[2048], dir[64];

static int check_file(const char *path) {
    ts_mesh_file *f = ts_mesh_file_open(path, err, sizeof err);
    if (!f) return fprintf(stderr, "%s\n", err), 1;
    const char *fields[2] = {"velocity", "pressure"};
    for (size_t t = 0; t < ts_mesh_file_trajectories(f); t++)
        for (int k = 0; k < 2; k++) {
            size_t c = ts_mesh_file_channels(f, fields[k]), T = ts_mesh_file_steps(f);
            if (!c) continue;
            float *buf = ts_malloc(T * ts_mesh_file_nodes(f, t) * c * sizeof *buf);
            int rc = ts_mesh_file_read_steps(f, t, fields[k], 0, T, buf, err, sizeof err);
            free(buf);
            if (rc) return fprintf(stderr, "%s\n", err), ts_mesh_file_close(f), 1;
        }
    printf("%s: %zu trajectories of %zu steps, dt %g\n", path, ts_mesh_file_trajectories(f), ts_mesh_file_steps(f),
           ts_mesh_file_dt(f));
    ts_mesh_file_close(f);
    return 0;
}

/* A two-triangle square, 3 steps; velocity (t, n) = (t + n, -n), pressure t. */
enum { N = 4, F = 2, T = 3 };
static const float POS[N * 2] = {0, 0, 1, 0, 1, 1, 0, 1};
static const int32_t TRI[F * 3] = {0, 1, 2, 0, 2, 3};
static const int32_t TYPE[N] = {4, 5, 6, 0};

static void sample(const char *path, int bad_cell, float bad_value) {
    float vel[T * N * 2], pre[T * N];
    for (int t = 0; t < T; t++)
        for (int n = 0; n < N; n++) vel[(t * N + n) * 2] = (float)(t + n), vel[(t * N + n) * 2 + 1] = (float)-n, pre[t * N + n] = (float)t;
    vel[5] = bad_value;
    int32_t tri[F * 3];
    memcpy(tri, TRI, sizeof tri);
    if (bad_cell) tri[4] = N;
    ts_mesh_writer *w = ts_mesh_writer_create(path, T, 0.01, "test", err, sizeof err);
    CU_ASSERT_FATAL(w != NULL);
    for (int k = 0; k < 2; k++) CU_ASSERT(ts_mesh_writer_add(w, N, F, POS, tri, TYPE, vel, pre, err, sizeof err) == 0);
    CU_ASSERT(ts_mesh_writer_finish(w, err, sizeof err) == 0);
}

static void test_roundtrip(void) {
    char path[128];
    snprintf(path, sizeof path, "%s/ok.h5", dir);
    sample(path, 0, 1.0f);
    CU_ASSERT(access(path, F_OK) == 0);
    ts_mesh_file *f = ts_mesh_file_open(path, err, sizeof err);
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT(ts_mesh_file_trajectories(f) == 2 && ts_mesh_file_steps(f) == T && ts_mesh_file_dt(f) == 0.01);
    CU_ASSERT(ts_mesh_file_nodes(f, 1) == N && ts_mesh_file_cells(f, 1) == F);
    CU_ASSERT(ts_mesh_file_channels(f, "velocity") == 2 && ts_mesh_file_channels(f, "pressure") == 1);
    float pos[N * 2], v[2 * N * 2];
    int32_t tri[F * 3], type[N];
    CU_ASSERT(ts_mesh_file_read_static(f, 1, pos, tri, type, err, sizeof err) == 0);
    CU_ASSERT(!memcmp(pos, POS, sizeof pos) && !memcmp(tri, TRI, sizeof tri) && !memcmp(type, TYPE, sizeof type));
    CU_ASSERT(ts_mesh_file_read_steps(f, 1, "velocity", 1, 2, v, err, sizeof err) == 0);
    CU_ASSERT(v[(1 * N + 3) * 2] == 5.0f && v[(1 * N + 3) * 2 + 1] == -3.0f); /* t = 2, n = 3 */
    CU_ASSERT(ts_mesh_file_read_steps(f, 1, "velocity", 2, 2, v, err, sizeof err) != 0); /* past the end */
    ts_mesh_file_close(f);
}

static void expect_refused(const char *path, const char *what) {
    ts_mesh_file *f = ts_mesh_file_open(path, err, sizeof err);
    int refused = !f;
    if (f) {
        float buf[T * N * 2];
        refused = ts_mesh_file_read_steps(f, 0, "velocity", 0, T, buf, err, sizeof err) != 0;
        ts_mesh_file_close(f);
    }
    CU_ASSERT(refused);
    if (refused && !strstr(err, what)) fprintf(stderr, "\n  error lacks '%s': %s\n", what, err);
    CU_ASSERT(refused && strstr(err, what) && strstr(err, path) && !strchr(err, '\n'));
}

static void test_damaged(void) {
    char path[128], cmd[512];
    snprintf(path, sizeof path, "%s/badcell.h5", dir);
    sample(path, 1, 1.0f);
    expect_refused(path, "cells");
    snprintf(path, sizeof path, "%s/nan.h5", dir);
    sample(path, 0, NAN);
    expect_refused(path, "non-finite");
    /* a dataset removed */
    snprintf(path, sizeof path, "%s/missing.h5", dir);
    sample(path, 0, 1.0f);
    hid_t h = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    CU_ASSERT(H5Ldelete(h, "1/pressure", H5P_DEFAULT) >= 0);
    H5Fclose(h);
    expect_refused(path, "pressure is missing");
    /* the meta disagrees: say 4 steps */
    snprintf(path, sizeof path, "%s/meta.h5", dir);
    sample(path, 0, 1.0f);
    snprintf(cmd, sizeof cmd, "sed -i 's/\"trajectory_length\": 3/\"trajectory_length\": 4/; s/\\[3, -1/[4, -1/g' %s/meta.json", dir);
    CU_ASSERT(system(cmd) == 0);
    expect_refused(path, "shape");
    /* truncated */
    snprintf(path, sizeof path, "%s/cut.h5", dir);
    sample(path, 0, 1.0f);
    CU_ASSERT(truncate(path, 2000) == 0);
    expect_refused(path, "cut.h5");
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--check")) return check_file(argv[2]);
    snprintf(dir, sizeof dir, "/tmp/test_mesh_file.XXXXXX");
    if (!mkdtemp(dir)) return 1;
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("mesh_file", NULL, NULL);
    CU_add_test(s, "a written file reads back identically", test_roundtrip);
    CU_add_test(s, "damaged files are refused with one line", test_damaged);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) failed++;
    return failed ? 1 : 0;
}
