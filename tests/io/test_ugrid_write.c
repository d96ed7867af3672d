/* The UGRID mesh rollout writer: step-by-step writing, the .part name until
 * complete, resume after a partial run, refusals of bad specs.
 *
 * `test_ugrid_write DIR` writes DIR/tri.nc (a triangulated rectangle) and
 * DIR/tet.nc (a cube of tetrahedra) whose fields follow a formula that
 * tests/io/test_ugrid.sh checks with an independent reader.
 */
#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/ugrid_write.h"
#include "tests/cunit_run.h"

enum { NX = 6, NY = 4, NSTEPS = 3 };

typedef struct {
    int dim;
    size_t nnodes, ncells;
    double *xyz;
    int32_t *cells, *type;
    double times[NSTEPS];
} mesh;

/* An NX x NY lattice of nodes, each square cut into two triangles. */
static void tri_mesh(mesh *m) {
    m->dim = 2, m->nnodes = NX * NY, m->ncells = 2 * (NX - 1) * (NY - 1);
    m->xyz = malloc(sizeof(double) * 2 * m->nnodes);
    m->type = malloc(sizeof(int32_t) * m->nnodes);
    m->cells = malloc(sizeof(int32_t) * 3 * m->ncells);
    for (int j = 0; j < NY; j++)
        for (int i = 0; i < NX; i++) {
            int n = j * NX + i;
            m->xyz[2 * n] = 0.1 * i, m->xyz[2 * n + 1] = 0.05 * j;
            m->type[n] = i == 0 ? 4 : i == NX - 1 ? 5 : (j == 0 || j == NY - 1) ? 6 : 0;
        }
    size_t c = 0;
    for (int j = 0; j + 1 < NY; j++)
        for (int i = 0; i + 1 < NX; i++) {
            int a = j * NX + i, b = a + 1, d = a + NX, e = d + 1;
            int32_t t[6] = {a, b, e, a, e, d};
            memcpy(m->cells + 3 * c, t, sizeof t);
            c += 2;
        }
    for (int s = 0; s < NSTEPS; s++) m->times[s] = 0.01 * (s + 1);
}

/* The unit cube's 8 corners cut into 5 tetrahedra. */
static void tet_mesh(mesh *m) {
    static const int32_t T[5][4] = {{0, 1, 3, 4}, {1, 2, 3, 6}, {1, 4, 5, 6}, {3, 4, 6, 7}, {1, 3, 4, 6}};
    m->dim = 3, m->nnodes = 8, m->ncells = 5;
    m->xyz = malloc(sizeof(double) * 3 * 8);
    m->type = NULL;
    m->cells = malloc(sizeof T);
    memcpy(m->cells, T, sizeof T);
    for (int n = 0; n < 8; n++) {
        int x = (n == 1 || n == 2 || n == 5 || n == 6), y = (n == 2 || n == 3 || n == 6 || n == 7), z = n >= 4;
        m->xyz[3 * n] = x, m->xyz[3 * n + 1] = y, m->xyz[3 * n + 2] = z;
    }
    for (int s = 0; s < NSTEPS; s++) m->times[s] = 0.5 * (s + 1);
}

static void mesh_free(mesh *m) { free(m->xyz), free(m->cells), free(m->type); }

static const ts_ugrid_var VARS[] = {{"velocity_x", "m s-1", "velocity, x component"},
                                    {"pressure", "Pa", "pressure"}};

/* The formula test_ugrid.sh recomputes: var v at step s, node n. */
static float value(size_t v, size_t s, size_t n, const mesh *m) {
    return (float)((double)(v + 1) * sin(m->xyz[n * (size_t)m->dim] * 3.0 + 0.7 * (double)s) + 0.25 * (double)n);
}

static ts_ugrid_spec spec_of(const mesh *m, const char *path, const char *history) {
    return (ts_ugrid_spec){.path = path, .dim = m->dim, .nnodes = m->nnodes, .ncells = m->ncells, .node_xyz = m->xyz,
                           .cells = m->cells, .node_type = m->type, .nsteps = NSTEPS, .times = m->times,
                           .time_units = "s", .nvars = 2, .vars = VARS, .history = history};
}

/* Write steps [from, to) of the formula; returns 0 on success. */
static int write_steps(ts_ugrid_writer *w, const mesh *m, size_t from, size_t to) {
    char err[1024];
    float *f = malloc(sizeof(float) * m->nnodes);
    int rc = 0;
    for (size_t s = from; s < to && !rc; s++) {
        for (size_t v = 0; v < 2 && !rc; v++) {
            for (size_t n = 0; n < m->nnodes; n++) f[n] = value(v, s, n, m);
            rc = ts_ugrid_write(w, v, s, f, err, sizeof err);
        }
        if (!rc) rc = ts_ugrid_step_complete(w, s, err, sizeof err);
    }
    if (rc) fprintf(stderr, "%s\n", err);
    free(f);
    return rc;
}

static int write_file(const mesh *m, const char *path) {
    char err[1024];
    ts_ugrid_spec s = spec_of(m, path, "test");
    ts_ugrid_writer *w = ts_ugrid_open(&s, err, sizeof err);
    if (!w) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    int rc = write_steps(w, m, 0, NSTEPS);
    return ts_ugrid_close(w, err, sizeof err) || rc;
}

static char dir[256];

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static void test_complete_file(void) {
    mesh m;
    tri_mesh(&m);
    char path[512], part[600];
    snprintf(path, sizeof path, "%s/a.nc", dir);
    snprintf(part, sizeof part, "%s.part", path);
    CU_ASSERT_EQUAL(write_file(&m, path), 0);
    CU_ASSERT(exists(path));
    CU_ASSERT(!exists(part));
    mesh_free(&m);
}

/* Two steps, closed (as a killed run leaves it), then resumed: it ends as
 * one file whose last step is read back exactly. */
static void test_partial_and_resume(void) {
    mesh m;
    tri_mesh(&m);
    char path[512], part[600], err[1024];
    snprintf(path, sizeof path, "%s/b.nc", dir);
    snprintf(part, sizeof part, "%s.part", path);
    ts_ugrid_spec s = spec_of(&m, path, "run-b");
    ts_ugrid_writer *w = ts_ugrid_open(&s, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_EQUAL(write_steps(w, &m, 0, 2), 0);
    /* a write of a later step than the open one is refused */
    float *f = calloc(m.nnodes, sizeof(float));
    CU_ASSERT_NOT_EQUAL(ts_ugrid_write(w, 0, 2 + 1, f, err, sizeof err), 0);
    CU_ASSERT_EQUAL(ts_ugrid_close(w, err, sizeof err), 0);
    CU_ASSERT(exists(part));
    CU_ASSERT(!exists(path));

    ts_ugrid_spec other = spec_of(&m, path, "run-c");
    CU_ASSERT_PTR_NULL(ts_ugrid_open(&other, err, sizeof err)); /* another configuration's partial file */
    CU_ASSERT_PTR_NOT_NULL(strstr(err, part));

    w = ts_ugrid_open(&s, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_EQUAL(ts_ugrid_steps_done(w), 2);
    CU_ASSERT_EQUAL(ts_ugrid_read(w, 1, 1, f, err, sizeof err), 0);
    int same = 1;
    for (size_t n = 0; n < m.nnodes; n++) same &= f[n] == value(1, 1, n, &m);
    CU_ASSERT(same);
    CU_ASSERT_EQUAL(write_steps(w, &m, 2, NSTEPS), 0);
    CU_ASSERT_EQUAL(ts_ugrid_close(w, err, sizeof err), 0);
    CU_ASSERT(exists(path));
    CU_ASSERT(!exists(part));
    free(f);
    mesh_free(&m);
}

static void test_bad_specs(void) {
    mesh m;
    tri_mesh(&m);
    char path[512], err[1024];
    snprintf(path, sizeof path, "%s/bad.nc", dir);
    m.cells[7] = (int32_t)m.nnodes; /* a cell naming a missing node */
    ts_ugrid_spec s = spec_of(&m, path, "x");
    CU_ASSERT_PTR_NULL(ts_ugrid_open(&s, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cell 2"));
    m.cells[7] = 0;
    m.times[1] = m.times[0];
    s = spec_of(&m, path, "x");
    CU_ASSERT_PTR_NULL(ts_ugrid_open(&s, err, sizeof err));
    CU_ASSERT(!exists(path));
    mesh_free(&m);
}

int main(int argc, char **argv) {
    if (argc == 2) {
        char p[512];
        mesh m;
        tri_mesh(&m);
        snprintf(p, sizeof p, "%s/tri.nc", argv[1]);
        int rc = write_file(&m, p);
        mesh_free(&m);
        tet_mesh(&m);
        snprintf(p, sizeof p, "%s/tet.nc", argv[1]);
        rc |= write_file(&m, p);
        mesh_free(&m);
        return rc;
    }
    snprintf(dir, sizeof dir, "/tmp/test_ugrid_XXXXXX");
    if (!mkdtemp(dir)) return 1;
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite suite = CU_add_suite("ugrid_write", NULL, NULL);
    if (!suite || !CU_add_test(suite, "complete file", test_complete_file) ||
        !CU_add_test(suite, "partial and resume", test_partial_and_resume) ||
        !CU_add_test(suite, "bad specs", test_bad_specs)) {
        CU_cleanup_registry();
        return 1;
    }
    int rc = ts_cunit_run();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
    return rc;
}
