/* Tests of the graph-physics mesh file writer and reader (io/mesh_file.h):
 * a written file reads back identically, 2-D triangles and 3-D tetrahedra
 * (its meta JSON and dataset shapes checked with the HDF5 library, not the
 * reader), and damaged files (missing dataset, cells naming a missing node,
 * non-finite velocity, a truncated file, a meta JSON that disagrees,
 * tetrahedra with 2-D positions) are refused with one line naming the
 * file, trajectory and dataset. Datasets as MeshGraphNets' h5 conversions
 * deliver them (statics [1, -1, C] or [T, -1, C] stored (N, C), (1, N, C)
 * or tiled (T, N, C); one meta.json in the folder) read as the same mesh.
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
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "io/mesh_file.h"
#include "tests/cunit_run.h"

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

/* One unit tetrahedron and its mirror through the face x + y + z = 1, 2
 * steps; velocity (t, n) = (t, n, t - n). */
enum { N3 = 5, F3 = 2, T3 = 2 };
static const float POS3[N3 * 3] = {0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1};
static const int32_t TET[F3 * 4] = {0, 1, 2, 3, 1, 2, 3, 4};
static const int32_t TYPE3[N3] = {4, 0, 0, 6, 5};

static void sample3d(const char *path) {
    float vel[T3 * N3 * 3], pre[T3 * N3] = {0};
    for (int t = 0; t < T3; t++)
        for (int n = 0; n < N3; n++) {
            float *v = vel + (t * N3 + n) * 3;
            v[0] = (float)t, v[1] = (float)n, v[2] = (float)(t - n);
        }
    ts_mesh_writer *w = ts_mesh_writer_create_dim(path, 3, T3, 0.5, NULL, err, sizeof err);
    CU_ASSERT_FATAL(w != NULL);
    CU_ASSERT(ts_mesh_writer_add(w, N3, F3, POS3, TET, TYPE3, vel, pre, err, sizeof err) == 0);
    CU_ASSERT(ts_mesh_writer_finish(w, err, sizeof err) == 0);
}

/* The dims of dataset name, read with the HDF5 library. */
static int dims_of(const char *path, const char *name, hsize_t *dims) {
    hid_t h = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), d = H5Dopen2(h, name, H5P_DEFAULT), s = H5Dget_space(d);
    int rank = H5Sget_simple_extent_dims(s, dims, NULL);
    H5Sclose(s), H5Dclose(d), H5Fclose(h);
    return rank;
}

static void test_roundtrip_3d(void) {
    char path[128], meta[128];
    snprintf(path, sizeof path, "%s/tet.h5", dir);
    sample3d(path);
    /* the layout as written, independent of the reader */
    hsize_t d[3];
    CU_ASSERT(dims_of(path, "0/mesh_pos", d) == 2 && d[0] == N3 && d[1] == 3);
    CU_ASSERT(dims_of(path, "0/cells", d) == 2 && d[0] == F3 && d[1] == 4);
    CU_ASSERT(dims_of(path, "0/velocity", d) == 3 && d[0] == T3 && d[1] == N3 && d[2] == 3);
    snprintf(meta, sizeof meta, "%s/tet.json", dir);
    FILE *m = fopen(meta, "r");
    CU_ASSERT_FATAL(m != NULL);
    char text[4096] = {0};
    CU_ASSERT(fread(text, 1, sizeof text - 1, m) > 0);
    fclose(m);
    CU_ASSERT(strstr(text, "\"mesh_pos\": {\"type\": \"static\", \"shape\": [1, -1, 3]") != NULL);
    CU_ASSERT(strstr(text, "\"cells\": {\"type\": \"static\", \"shape\": [1, -1, 4]") != NULL);
    CU_ASSERT(strstr(text, "\"velocity\": {\"type\": \"dynamic\", \"shape\": [2, -1, 3]") != NULL);
    /* and through the reader */
    ts_mesh_file *f = ts_mesh_file_open(path, err, sizeof err);
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT(ts_mesh_file_dim(f) == 3 && ts_mesh_file_channels(f, "velocity") == 3);
    CU_ASSERT(ts_mesh_file_nodes(f, 0) == N3 && ts_mesh_file_cells(f, 0) == F3 && ts_mesh_file_steps(f) == T3);
    float pos[N3 * 3], v[N3 * 3];
    int32_t tet[F3 * 4], type[N3];
    CU_ASSERT(ts_mesh_file_read_static(f, 0, pos, tet, type, err, sizeof err) == 0);
    CU_ASSERT(!memcmp(pos, POS3, sizeof pos) && !memcmp(tet, TET, sizeof tet) && !memcmp(type, TYPE3, sizeof type));
    CU_ASSERT(ts_mesh_file_read_steps(f, 0, "velocity", 1, 1, v, err, sizeof err) == 0);
    CU_ASSERT(v[4 * 3] == 1.0f && v[4 * 3 + 1] == 4.0f && v[4 * 3 + 2] == -3.0f); /* t = 1, n = 4 */
    ts_mesh_file_close(f);
    /* the 2-D file says 2 */
    snprintf(path, sizeof path, "%s/ok.h5", dir);
    sample(path, 0, 1.0f);
    f = ts_mesh_file_open(path, err, sizeof err);
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT(ts_mesh_file_dim(f) == 2);
    ts_mesh_file_close(f);
    /* only 2-D and 3-D meshes */
    snprintf(path, sizeof path, "%s/four.h5", dir);
    CU_ASSERT(ts_mesh_writer_create_dim(path, 4, T3, 0.5, NULL, err, sizeof err) == NULL && strstr(err, "not 4-D"));
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
    /* tetrahedra with 2-D positions: mesh_pos rewritten as (N, 2), the meta agreeing */
    snprintf(path, sizeof path, "%s/flat.h5", dir);
    sample3d(path);
    h = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    CU_ASSERT(H5Ldelete(h, "0/mesh_pos", H5P_DEFAULT) >= 0);
    hsize_t pd[2] = {N3, 2};
    hid_t sp = H5Screate_simple(2, pd, NULL);
    hid_t d = H5Dcreate2(h, "0/mesh_pos", H5T_NATIVE_FLOAT, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CU_ASSERT(d >= 0 && H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, POS3) >= 0);
    H5Dclose(d), H5Sclose(sp), H5Fclose(h);
    snprintf(cmd, sizeof cmd, "sed -i 's/\"shape\": \\[1, -1, 3\\]/\"shape\": [1, -1, 2]/' %s/flat.json", dir);
    CU_ASSERT(system(cmd) == 0);
    expect_refused(path, "trajectory 0: dataset cells has 4 nodes per cell with 2-D mesh_pos");
}

/* ---- datasets as MeshGraphNets' h5 conversions deliver them ---------------------------------------- */

static void put(hid_t g, const char *name, hid_t type, int rank, const hsize_t *dims, const void *data) {
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(g, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CU_ASSERT(d >= 0 && H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
    H5Dclose(d), H5Sclose(sp);
}

/* DIR/NAME.h5 (one trajectory of the square) with its statics stored with
 * `lead` leading steps: 0 (N, C), else (lead, N, C), step s of a tiled copy
 * shifted by s (positions + s, cells rotated, types 0) so that only step 0
 * holds the square; and DIR/meta.json declaring statics [meta_lead, -1, C]. */
static void delivered(const char *folder, const char *name, int lead, int meta_lead) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s.h5", folder, name);
    hid_t h = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t g = H5Gcreate2(h, "0", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const int S = lead ? lead : 1;
    float *pos = ts_malloc(sizeof(float) * (size_t)S * N * 2);
    int32_t *tri = ts_malloc(sizeof(int32_t) * (size_t)S * F * 3), *type = ts_malloc(sizeof(int32_t) * (size_t)S * N);
    for (int s = 0; s < S; s++) {
        for (int k = 0; k < N * 2; k++) pos[s * N * 2 + k] = POS[k] + (float)s;
        for (int k = 0; k < F * 3; k++) tri[s * F * 3 + k] = s ? TRI[(k + 1) % (F * 3)] : TRI[k];
        for (int k = 0; k < N; k++) type[s * N + k] = s ? 0 : TYPE[k];
    }
    hsize_t pd[3] = {(hsize_t)lead, N, 2}, cd[3] = {(hsize_t)lead, F, 3}, td[3] = {(hsize_t)lead, N, 1};
    const int r = lead ? 3 : 2, o = lead ? 0 : 1;
    put(g, "mesh_pos", H5T_NATIVE_FLOAT, r, pd + o, pos);
    put(g, "cells", H5T_NATIVE_INT32, r, cd + o, tri);
    put(g, "node_type", H5T_NATIVE_INT32, r, td + o, type);
    float vel[T * N * 2];
    for (int k = 0; k < T * N * 2; k++) vel[k] = (float)k;
    hsize_t vd[3] = {T, N, 2};
    put(g, "velocity", H5T_NATIVE_FLOAT, 3, vd, vel);
    H5Gclose(g), H5Fclose(h);
    free(pos), free(tri), free(type);
    snprintf(path, sizeof path, "%s/meta.json", folder);
    FILE *m = fopen(path, "w");
    CU_ASSERT_FATAL(m != NULL);
    fprintf(m, "{\"dt\": 0.01, \"collision_radius\": null, \"features\": {"
               "\"cells\": {\"type\": \"static\", \"shape\": [%d, -1, 3], \"dtype\": \"int32\"},"
               "\"mesh_pos\": {\"type\": \"static\", \"shape\": [%d, -1, 2], \"dtype\": \"float32\"},"
               "\"node_type\": {\"type\": \"static\", \"shape\": [%d, -1, 1], \"dtype\": \"int32\"},"
               "\"velocity\": {\"type\": \"dynamic\", \"shape\": [%d, -1, 2], \"dtype\": \"float32\"}},"
               "\"field_names\": [\"cells\", \"mesh_pos\", \"node_type\", \"velocity\"], \"trajectory_length\": %d}\n",
            meta_lead, meta_lead, meta_lead, T, T);
    fclose(m);
}

/* Statics declared [1, -1, C] or [T, -1, C] and stored (N, C), (1, N, C) or
 * (T, N, C): all six read as the square (the first step of a tiled copy);
 * a static stored with another step count is refused, naming it. */
static void test_delivered_statics(void) {
    char folder[128], path[256];
    const int leads[3] = {0, 1, T}, metas[2] = {1, T};
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 2; b++) {
            snprintf(folder, sizeof folder, "%s/d%d%d", dir, a, b);
            CU_ASSERT_FATAL(mkdir(folder, 0700) == 0);
            delivered(folder, "train", leads[a], metas[b]);
            snprintf(path, sizeof path, "%s/train.h5", folder);
            ts_mesh_file *f = ts_mesh_file_open(path, err, sizeof err); /* finds meta.json in the folder */
            if (!f) fprintf(stderr, "\n  stored lead %d, meta lead %d: %s\n", leads[a], metas[b], err);
            CU_ASSERT_FATAL(f != NULL);
            CU_ASSERT(ts_mesh_file_nodes(f, 0) == N && ts_mesh_file_cells(f, 0) == F && ts_mesh_file_dim(f) == 2);
            float pos[N * 2], v[N * 2];
            int32_t tri[F * 3], type[N];
            CU_ASSERT(ts_mesh_file_read_static(f, 0, pos, tri, type, err, sizeof err) == 0);
            CU_ASSERT(!memcmp(pos, POS, sizeof pos) && !memcmp(tri, TRI, sizeof tri) && !memcmp(type, TYPE, sizeof type));
            CU_ASSERT(ts_mesh_file_read_steps(f, 0, "velocity", 2, 1, v, err, sizeof err) == 0 && v[0] == 2 * N * 2);
            ts_mesh_file_close(f);
        }
    /* 2 steps of a 3-step trajectory */
    snprintf(folder, sizeof folder, "%s/wrong_t", dir);
    CU_ASSERT_FATAL(mkdir(folder, 0700) == 0);
    delivered(folder, "train", T - 1, T);
    snprintf(path, sizeof path, "%s/train.h5", folder);
    expect_refused(path, "trajectory 0: dataset cells has shape (2, 2, 3)");
    /* a meta declaring a static with a step count that is neither 1 nor T */
    snprintf(folder, sizeof folder, "%s/wrong_meta", dir);
    CU_ASSERT_FATAL(mkdir(folder, 0700) == 0);
    delivered(folder, "train", T, T - 1);
    snprintf(path, sizeof path, "%s/train.h5", folder);
    CU_ASSERT(ts_mesh_file_open(path, err, sizeof err) == NULL && strstr(err, "feature cells") && strstr(err, "meta.json"));
}

/* <stem>.json first, then meta.json in the folder; an explicit meta path;
 * none: one line naming both paths tried. */
static void test_meta_lookup(void) {
    char folder[128], path[256], meta[256], want[512];
    snprintf(folder, sizeof folder, "%s/lookup", dir);
    CU_ASSERT_FATAL(mkdir(folder, 0700) == 0);
    delivered(folder, "valid", 0, 1);
    snprintf(path, sizeof path, "%s/valid.h5", folder);
    CU_ASSERT(ts_mesh_meta_find(path, meta, sizeof meta, err, sizeof err) == 0 && strstr(meta, "lookup/meta.json"));
    snprintf(path, sizeof path, "%s/ok.h5", dir); /* written by test_roundtrip, with ok.json beside it */
    CU_ASSERT(ts_mesh_meta_find(path, meta, sizeof meta, err, sizeof err) == 0 && strstr(meta, "/ok.json"));
    /* the folder's meta.json for a file elsewhere */
    snprintf(meta, sizeof meta, "%s/meta.json", folder);
    snprintf(path, sizeof path, "%s/moved.h5", dir);
    snprintf(want, sizeof want, "%s/valid.h5", folder);
    CU_ASSERT(rename(want, path) == 0);
    ts_mesh_file *f = ts_mesh_file_open_meta(path, meta, err, sizeof err);
    CU_ASSERT(f != NULL && ts_mesh_file_nodes(f, 0) == N);
    ts_mesh_file_close(f);
    CU_ASSERT(unlink(meta) == 0);
    snprintf(path, sizeof path, "%s/test.h5", folder);
    f = ts_mesh_file_open(path, err, sizeof err);
    snprintf(want, sizeof want, "neither %s/test.json nor %s/meta.json exists", folder, folder);
    CU_ASSERT(f == NULL && strstr(err, want) && strstr(err, path) && !strchr(err, '\n'));
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--check")) return check_file(argv[2]);
    snprintf(dir, sizeof dir, "/tmp/test_mesh_file.XXXXXX");
    if (!mkdtemp(dir)) return 1;
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("mesh_file", NULL, NULL);
    CU_add_test(s, "a written file reads back identically", test_roundtrip);
    CU_add_test(s, "a 3-D tetrahedral file reads back identically", test_roundtrip_3d);
    CU_add_test(s, "damaged files are refused with one line", test_damaged);
    CU_add_test(s, "statics declared and stored as MeshGraphNets conversions deliver them", test_delivered_statics);
    CU_add_test(s, "the meta JSON: beside the file, else the folder's meta.json", test_meta_lookup);
    int rc = ts_cunit_run();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) {
        fprintf(stderr, "could not remove %s\n", dir);
        rc = 1;
    }
    return rc;
}
