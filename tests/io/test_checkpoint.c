/* HDF5 checkpoints (io/checkpoint.h).
 *
 *   test_checkpoint           run the CUnit suite
 *   test_checkpoint OUT.h5    write the sample checkpoint to OUT.h5 (for
 *                             test_checkpoint_h5py.sh) and exit 0
 *
 * The sample model (dim D = 16 in the sample file), in table order k:
 *   0 embed.weight [D, 5]            4 blocks.1.attn.qkv.weight [3D, D]
 *   1 blocks.0.norm1.weight [D]      5 pos_table [1, 2, 3, D]
 *   2 blocks.0.attn.qkv.weight [3D, D]  6 head.weight [4, D]
 *   3 blocks.0.attn.proj.weight [D, D]
 * Element i (row-major) of tensor k in group g (params 0, ema 1, adam_m 2,
 * adam_v 3) is sample_value(g, k, i) = ((i*7919 + k*104729 + g*31) mod 2001
 * - 1000) / 256: exact in float32, so numpy recomputes it bit for bit.
 * test_checkpoint_h5py.sh holds the same table and formula.
 */
#include <CUnit/Basic.h>
#include <dirent.h>
#include <hdf5.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/backend.h"
#include "core/params.h"
#include "io/checkpoint.h"
#include "io/stats_file.h"
#include "tests/cunit_run.h"

enum { SAMPLE_DIM = 16, WITH_EXTRA = 1, WITH_BIG = 2, NNAMED = 3 };

static const char *k_config = "{\"model.kind\": \"swin\", \"seed\": 7, \"data.files\": \"era5/*.nc\", "
                              "\"note\": \"grid 5.625\xc2\xb0\"}";
static const uint64_t k_seed = (UINT64_C(1) << 55) + 3; /* above 2^53: no double can carry it */

static char g_dir[256]; /* scratch folder of this run */

/* ---- the sample checkpoint ----------------------------------------------------------------- */

static float sample_value(int g, int k, size_t i) {
    return (float)((double)((i * 7919 + (size_t)k * 104729 + (size_t)g * 31) % 2001) - 1000.0) / 256.0f;
}

typedef struct {
    ts_params p, ema, m, v; /* one layout, four blocks */
    ts_stats stats;
    double norm_mean[3], norm_std[3], norm_count;
    ts_ckpt_named named[NNAMED];
} sample;

static void add(ts_params *p, const char *name, int ndim, int64_t a, int64_t b, int64_t c, int64_t d) {
    int64_t shape[4] = {a, b, c, d};
    ts_params_add(p, name, ndim, shape);
}

/* The sample table; WITH_EXTRA adds a parameter, WITH_BIG a 4 MiB one. */
static void declare_model(ts_params *p, int64_t dim, int flags) {
    ts_params_init(p);
    add(p, "embed.weight", 2, dim, 5, 0, 0);
    add(p, "blocks.0.norm1.weight", 1, dim, 0, 0, 0);
    add(p, "blocks.0.attn.qkv.weight", 2, 3 * dim, dim, 0, 0);
    add(p, "blocks.0.attn.proj.weight", 2, dim, dim, 0, 0);
    add(p, "blocks.1.attn.qkv.weight", 2, 3 * dim, dim, 0, 0);
    add(p, "pos_table", 4, 1, 2, 3, dim);
    add(p, "head.weight", 2, 4, dim, 0, 0);
    if (flags & WITH_EXTRA) add(p, "blocks.1.extra.bias", 1, dim, 0, 0, 0);
    if (flags & WITH_BIG) add(p, "big.weight", 2, 1024, 1024, 0, 0);
    ts_params_alloc(p, ts_backend_cpu());
}

static void fill_block(const ts_params *p, int g) {
    for (int k = 0; k < p->count; k++) {
        float *x = ts_params_ptr(p, k);
        for (size_t i = 0; i < p->entries[k].numel; i++) x[i] = sample_value(g, k, i);
    }
}

static void fill_stats(ts_stats *s) {
    static const char *names[] = {"z500", "t2m", "tisr"}, *units[] = {"m**2 s**-2", "K", "J m**-2"};
    ts_stats_alloc(s, 3, 2, 2, 0, 0, 0, 0);
    for (size_t c = 0; c < 3; c++) {
        strcpy(s->name[c], names[c]);
        strcpy(s->units[c], units[c]);
        s->mean[c] = 1000.5 * (double)(c + 1);
        s->std[c] = 0.1 * (double)(c + 1); /* not dyadic: doubles must survive as they are */
    }
    s->res_hours[0] = 6, s->res_hours[1] = 24;
    for (size_t r = 0; r < 2; r++)
        for (size_t c = 0; c < 2; c++) {
            s->res_mean[r * 2 + c] = 0.125 * (double)((r + 1) * (c + 1)) - 0.5;
            s->res_std[r * 2 + c] = ldexp(1.0, -(int)(r + c + 1)) / 3.0;
        }
    s->time_first = 1577836800, s->time_last = 1609459200, s->ntimes = 1464;
}

static void fill_named(sample *s) {
    s->norm_mean[0] = 1.5, s->norm_mean[1] = -2.25, s->norm_mean[2] = 1e-300;
    s->norm_std[0] = 0.1, s->norm_std[1] = 0.2, s->norm_std[2] = 0.3;
    s->norm_count = 12345;
    s->named[0] = (ts_ckpt_named){"node.mean", 1, {3}, s->norm_mean};
    s->named[1] = (ts_ckpt_named){"node.std", 1, {3}, s->norm_std};
    s->named[2] = (ts_ckpt_named){"node.count", 0, {0}, &s->norm_count};
}

static void sample_make(sample *s, int64_t dim, int flags) {
    memset(s, 0, sizeof *s);
    declare_model(&s->p, dim, flags);
    ts_params_alloc_like(&s->ema, &s->p);
    ts_params_alloc_like(&s->m, &s->p);
    ts_params_alloc_like(&s->v, &s->p);
    fill_block(&s->p, 0), fill_block(&s->ema, 1), fill_block(&s->m, 2), fill_block(&s->v, 3);
    fill_stats(&s->stats);
    fill_named(s);
}

static void sample_free(sample *s) {
    ts_params_free(&s->p), ts_params_free(&s->ema), ts_params_free(&s->m), ts_params_free(&s->v);
    ts_stats_free(&s->stats);
}

static ts_ckpt_meta sample_meta(const char *kind, int64_t step) {
    return (ts_ckpt_meta){.model_kind = kind, .config_json = k_config, .step = step, .optimizer_step = step - step / 8,
                          .data_position = 98765, .rng_seed = k_seed};
}

static ts_ckpt_contents sample_contents(const sample *s) {
    return (ts_ckpt_contents){.layout = &s->p, .params = s->p.data, .ema = s->ema.data, .adam_m = s->m.data,
                              .adam_v = s->v.data, .stats = &s->stats, .normalizers = s->named,
                              .nnormalizers = NNAMED};
}

static int write_sample(const char *path, const char *kind, int64_t dim, int flags, int64_t step, char *err,
                        size_t cap) {
    sample s;
    sample_make(&s, dim, flags);
    ts_ckpt_meta meta = sample_meta(kind, step);
    ts_ckpt_contents c = sample_contents(&s);
    int rc = ts_ckpt_write(path, &meta, &c, err, cap);
    sample_free(&s);
    return rc;
}

/* ---- helpers ------------------------------------------------------------------------------- */

static void path_in_dir(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", g_dir, name); }

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static int part_exists(const char *path) {
    char part[600];
    snprintf(part, sizeof part, "%s.part", path);
    return exists(part);
}

/* The whole file, for byte-for-byte comparisons (NULL when unreadable). */
static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
    *len = buf ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    return buf;
}

static int contains(const char *haystack, const char *needle) {
    if (!strstr(haystack, needle)) {
        fprintf(stderr, "\n    message \"%s\"\n    lacks \"%s\"\n", haystack, needle);
        return 0;
    }
    return 1;
}

/* A fresh, zeroed block with the sample's layout. */
static void empty_like(ts_params *dst, int64_t dim, int flags) {
    declare_model(dst, dim, flags);
}

static int blocks_equal_bitwise(const ts_params *a, const ts_params *b) {
    if (a->total != b->total) return 0;
    return memcmp(a->data, b->data, sizeof(float) * a->total) == 0; /* padding included: both stay 0 */
}

static int block_is_zero(const ts_params *p) {
    for (size_t i = 0; i < p->total; i++)
        if (p->data[i] != 0.0f) return 0;
    return 1;
}

/* ---- round trip ---------------------------------------------------------------------------- */

/* Bit patterns a float round trip through text or a conversion would lose. */
static void poke_special_values(ts_params *p) {
    static const uint32_t bits[] = {0x7fc12345u /* NaN with payload */, 0x80000000u /* -0 */, 0x7f800000u /* inf */,
                                    0x00000001u /* smallest subnormal */, 0xff7fffffu /* -FLT_MAX */};
    float *x = ts_params_ptr(p, 2);
    for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++) memcpy(&x[i * 7], &bits[i], sizeof(float));
}

static void check_meta_equal(const ts_ckpt_meta *got, const ts_ckpt_meta *want) {
    CU_ASSERT_STRING_EQUAL(got->model_kind, want->model_kind);
    CU_ASSERT_STRING_EQUAL(got->config_json, want->config_json);
    CU_ASSERT_EQUAL(got->step, want->step);
    CU_ASSERT_EQUAL(got->optimizer_step, want->optimizer_step);
    CU_ASSERT_EQUAL(got->data_position, want->data_position);
    CU_ASSERT_EQUAL(got->rng_seed, want->rng_seed);
    CU_ASSERT_EQUAL(got->format_version, TS_CKPT_FORMAT_VERSION);
}

static void check_stats_equal(const ts_stats *a, const ts_stats *b) {
    CU_ASSERT_EQUAL_FATAL(a->nchan, b->nchan);
    CU_ASSERT_EQUAL_FATAL(a->nstate, b->nstate);
    CU_ASSERT_EQUAL_FATAL(a->nres, b->nres);
    for (size_t c = 0; c < a->nchan; c++) {
        CU_ASSERT_STRING_EQUAL(a->name[c], b->name[c]);
        CU_ASSERT_STRING_EQUAL(a->units[c], b->units[c]);
    }
    CU_ASSERT(memcmp(a->mean, b->mean, sizeof(double) * a->nchan) == 0);
    CU_ASSERT(memcmp(a->std, b->std, sizeof(double) * a->nchan) == 0);
    CU_ASSERT(memcmp(a->res_hours, b->res_hours, sizeof(int) * a->nres) == 0);
    CU_ASSERT(memcmp(a->res_mean, b->res_mean, sizeof(double) * a->nres * a->nstate) == 0);
    CU_ASSERT(memcmp(a->res_std, b->res_std, sizeof(double) * a->nres * a->nstate) == 0);
    CU_ASSERT_EQUAL(a->time_first, b->time_first);
    CU_ASSERT_EQUAL(a->time_last, b->time_last);
    CU_ASSERT_EQUAL(a->ntimes, b->ntimes);
    CU_ASSERT(b->clim == NULL && b->nlat == 0 && b->nlon == 0 && b->nhour == 0);
}

static void check_named_equal(const sample *s, ts_ckpt *ck) {
    double mean[3] = {0}, std[3] = {0}, count = 0;
    ts_ckpt_named got[NNAMED] = {
        {"node.count", 0, {0}, &count}, /* another order than written: lookup is by name */
        {"node.mean", 1, {3}, mean},
        {"node.std", 1, {3}, std},
    };
    char err[1024] = "";
    CU_ASSERT_EQUAL_FATAL(ts_ckpt_read_named(ck, got, NNAMED, err, sizeof err), 0);
    CU_ASSERT(memcmp(mean, s->norm_mean, sizeof mean) == 0);
    CU_ASSERT(memcmp(std, s->norm_std, sizeof std) == 0);
    CU_ASSERT(memcmp(&count, &s->norm_count, sizeof count) == 0);
}

static void test_round_trip(void) {
    char path[512], err[1024] = "";
    path_in_dir(path, sizeof path, "roundtrip.h5");
    sample s;
    sample_make(&s, 8, 0);
    poke_special_values(&s.p);
    ts_ckpt_meta meta = sample_meta("swin", 1234);
    ts_ckpt_contents c = sample_contents(&s);
    CU_ASSERT_EQUAL_FATAL(ts_ckpt_write(path, &meta, &c, err, sizeof err), 0);
    CU_ASSERT(!part_exists(path));

    ts_ckpt *ck = ts_ckpt_open(path, "swin", err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ck);
    check_meta_equal(ts_ckpt_get_meta(ck), &meta);
    const char *groups[4] = {TS_CKPT_PARAMS, TS_CKPT_EMA, TS_CKPT_ADAM_M, TS_CKPT_ADAM_V};
    const ts_params *want[4] = {&s.p, &s.ema, &s.m, &s.v};
    for (int g = 0; g < 4; g++) {
        ts_params got;
        empty_like(&got, 8, 0);
        CU_ASSERT(ts_ckpt_has(ck, groups[g]));
        CU_ASSERT_EQUAL(ts_ckpt_read_params(ck, groups[g], &got, got.data, err, sizeof err), 0);
        CU_ASSERT(blocks_equal_bitwise(&got, want[g]));
        ts_params_free(&got);
    }
    ts_stats st;
    CU_ASSERT_EQUAL_FATAL(ts_ckpt_read_stats(ck, &st, err, sizeof err), 0);
    check_stats_equal(&s.stats, &st);
    ts_stats_free(&st);
    check_named_equal(&s, ck);
    ts_ckpt_close(ck);
    sample_free(&s);
}

/* Only the parameters: the rest is absent, and asking for it says so. */
static void test_optional_parts(void) {
    char path[512], err[1024] = "";
    path_in_dir(path, sizeof path, "params_only.h5");
    sample s;
    sample_make(&s, 8, 0);
    ts_ckpt_meta meta = sample_meta("mesh", 10);
    ts_ckpt_contents c = {.layout = &s.p, .params = s.p.data};
    CU_ASSERT_EQUAL_FATAL(ts_ckpt_write(path, &meta, &c, err, sizeof err), 0);
    ts_ckpt *ck = ts_ckpt_open(path, NULL, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ck);
    CU_ASSERT(ts_ckpt_has(ck, TS_CKPT_PARAMS));
    CU_ASSERT(!ts_ckpt_has(ck, TS_CKPT_EMA) && !ts_ckpt_has(ck, TS_CKPT_ADAM_M) && !ts_ckpt_has(ck, TS_CKPT_ADAM_V));
    CU_ASSERT(!ts_ckpt_has(ck, "stats") && !ts_ckpt_has(ck, "normalizers"));
    ts_params got;
    empty_like(&got, 8, 0);
    CU_ASSERT_EQUAL(ts_ckpt_read_params(ck, TS_CKPT_EMA, &got, got.data, err, sizeof err), -1);
    CU_ASSERT(contains(err, path) && contains(err, "no group 'ema/'"));
    CU_ASSERT(block_is_zero(&got));
    ts_stats st;
    CU_ASSERT_EQUAL(ts_ckpt_read_stats(ck, &st, err, sizeof err), -1);
    CU_ASSERT(contains(err, "no group 'stats/'"));
    CU_ASSERT_EQUAL(ts_ckpt_read_named(ck, NULL, 0, err, sizeof err), 0);
    CU_ASSERT_EQUAL(ts_ckpt_read_named(ck, s.named, 1, err, sizeof err), -1);
    CU_ASSERT(contains(err, "no group 'normalizers/'"));
    ts_params_free(&got);
    ts_ckpt_close(ck);
    sample_free(&s);
}

/* Statistics without residual steps (empty arrays) round-trip; a stats/
 * group missing an array is an error naming it. */
static void test_stats_edges(void) {
    char path[512], err[1024] = "";
    path_in_dir(path, sizeof path, "stats_edges.h5");
    sample s;
    sample_make(&s, 8, 0);
    s.stats.nres = 0; /* the arrays stay allocated; only the count says "none" */
    ts_ckpt_meta meta = sample_meta("swin", 7);
    ts_ckpt_contents c = sample_contents(&s);
    CU_ASSERT_EQUAL_FATAL(ts_ckpt_write(path, &meta, &c, err, sizeof err), 0);
    ts_ckpt *ck = ts_ckpt_open(path, "swin", err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ck);
    ts_stats st;
    CU_ASSERT_EQUAL(ts_ckpt_read_stats(ck, &st, err, sizeof err), 0);
    CU_ASSERT_FATAL(st.nres == 0 && st.nchan == 3 && st.nstate == 2);
    CU_ASSERT(memcmp(st.mean, s.stats.mean, sizeof(double) * 3) == 0);
    ts_stats_free(&st);
    ts_ckpt_close(ck);
    sample_free(&s);

    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    CU_ASSERT(H5Ldelete(f, "stats/std", H5P_DEFAULT) >= 0);
    CU_ASSERT(H5Fclose(f) >= 0);
    ck = ts_ckpt_open(path, "swin", err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ck);
    CU_ASSERT_EQUAL(ts_ckpt_read_stats(ck, &st, err, sizeof err), -1);
    CU_ASSERT(contains(err, path) && contains(err, "statistics array 'std' is not in the file (stats/)"));
    ts_ckpt_close(ck);
}

/* A second write to the same name replaces the first whole. */
static void test_overwrite(void) {
    char path[512], err[1024] = "";
    path_in_dir(path, sizeof path, "overwrite.h5");
    CU_ASSERT_EQUAL_FATAL(write_sample(path, "swin", 8, WITH_EXTRA, 100, err, sizeof err), 0);
    CU_ASSERT_EQUAL_FATAL(write_sample(path, "swin", 8, 0, 200, err, sizeof err), 0);
    CU_ASSERT(!part_exists(path));
    ts_ckpt *ck = ts_ckpt_open(path, "swin", err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ck);
    CU_ASSERT_EQUAL(ts_ckpt_get_meta(ck)->step, 200);
    ts_params got;
    empty_like(&got, 8, 0); /* the first file's extra parameter must be gone */
    CU_ASSERT_EQUAL(ts_ckpt_read_params(ck, TS_CKPT_PARAMS, &got, got.data, err, sizeof err), 0);
    ts_params_free(&got);
    ts_ckpt_close(ck);
}

/* ---- failures while writing ---------------------------------------------------------------- */

/* In a child whose files may not grow past 256 KiB (the way a full disk or
 * a quota stops a real write), write a 4 MiB checkpoint over `path`. With
 * `crash`, SIGXFSZ keeps its default action and kills the child mid-write;
 * otherwise the write fails with EFBIG and must report it. Returns the
 * wait status; the error line goes to err. */
static int write_past_file_limit(const char *path, int crash, char *err, size_t cap) {
    int fds[2];
    if (pipe(fds) != 0) return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        struct rlimit fsize = {256 * 1024, 256 * 1024}, core = {0, 0};
        setrlimit(RLIMIT_CORE, &core);
        if (!crash) signal(SIGXFSZ, SIG_IGN);
        if (setrlimit(RLIMIT_FSIZE, &fsize) != 0) _exit(3);
        char msg[1024] = "";
        int rc = write_sample(path, "swin", 8, WITH_BIG, 2, msg, sizeof msg);
        ssize_t n = write(fds[1], msg, strlen(msg));
        (void)n;
        _exit(rc == -1 ? 0 : 4); /* _exit: HDF5's atexit handlers must not run in the child */
    }
    close(fds[1]);
    ssize_t n = read(fds[0], err, cap - 1);
    err[n > 0 ? n : 0] = '\0';
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

static void test_failed_write_keeps_old(void) {
    char path[512], err[1024] = "";
    path_in_dir(path, sizeof path, "keep.h5");
    CU_ASSERT_EQUAL_FATAL(write_sample(path, "swin", 8, 0, 1, err, sizeof err), 0);
    size_t len0 = 0, len1 = 0;
    unsigned char *before = slurp(path, &len0);
    int status = write_past_file_limit(path, 0, err, sizeof err);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CU_ASSERT(contains(err, path) && contains(err, "File too large") && strchr(err, '\n') == NULL);
    CU_ASSERT(!part_exists(path));
    unsigned char *after = slurp(path, &len1);
    CU_ASSERT(before && after && len0 == len1 && memcmp(before, after, len0) == 0);
    free(before), free(after);
    ts_ckpt *ck = ts_ckpt_open(path, "swin", err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ck);
    CU_ASSERT_EQUAL(ts_ckpt_get_meta(ck)->step, 1);
    ts_ckpt_close(ck);
}

/* A crash mid-write leaves a stale .part (nothing can clean up after
 * SIGKILL), never a damaged file under the final name; the next write
 * replaces the stale .part. */
static void test_crash_keeps_old(void) {
    char path[512], err[1024] = "";
    path_in_dir(path, sizeof path, "crash.h5");
    CU_ASSERT_EQUAL_FATAL(write_sample(path, "swin", 8, 0, 1, err, sizeof err), 0);
    size_t len0 = 0, len1 = 0;
    unsigned char *before = slurp(path, &len0);
    int status = write_past_file_limit(path, 1, err, sizeof err);
    CU_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGXFSZ);
    CU_ASSERT(part_exists(path));
    unsigned char *after = slurp(path, &len1);
    CU_ASSERT(before && after && len0 == len1 && memcmp(before, after, len0) == 0);
    free(before), free(after);
    CU_ASSERT_EQUAL(write_sample(path, "swin", 8, 0, 3, err, sizeof err), 0);
    CU_ASSERT(!part_exists(path));
    ts_ckpt *ck = ts_ckpt_open(path, "swin", err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ck);
    CU_ASSERT_EQUAL(ts_ckpt_get_meta(ck)->step, 3);
    ts_ckpt_close(ck);
}

static void test_bad_write_arguments(void) {
    char path[512], err[1024] = "";
    path_in_dir(path, sizeof path, "no/such/folder/ckpt.h5");
    CU_ASSERT_EQUAL(write_sample(path, "swin", 8, 0, 1, err, sizeof err), -1);
    CU_ASSERT(contains(err, path) && contains(err, "cannot create") && contains(err, "No such file or directory"));

    path_in_dir(path, sizeof path, "bad.h5");
    sample s;
    sample_make(&s, 8, 0);
    ts_ckpt_meta meta = sample_meta("swin", 1);
    ts_ckpt_contents c = sample_contents(&s);
    meta.rng_seed = UINT64_MAX;
    CU_ASSERT_EQUAL(ts_ckpt_write(path, &meta, &c, err, sizeof err), -1);
    CU_ASSERT(contains(err, "rng_seed"));
    meta = sample_meta(NULL, 1);
    CU_ASSERT_EQUAL(ts_ckpt_write(path, &meta, &c, err, sizeof err), -1);
    CU_ASSERT(contains(err, "model_kind"));
    meta = sample_meta("swin", 1);
    ts_ckpt_named bad = {"node/mean", 1, {3}, s.norm_mean};
    c.normalizers = &bad, c.nnormalizers = 1;
    CU_ASSERT_EQUAL(ts_ckpt_write(path, &meta, &c, err, sizeof err), -1);
    CU_ASSERT(contains(err, "'node/mean'"));
    CU_ASSERT(!exists(path) && !part_exists(path));
    sample_free(&s);
}

/* ---- loading into another model ------------------------------------------------------------ */

/* Write the sample of (dim_file, flags_file), load into (dim_model,
 * flags_model): -1, the model's block untouched, the message in err. */
static void load_mismatch(const char *name, int64_t dim_file, int flags_file, int64_t dim_model, int flags_model,
                          char *err, size_t cap) {
    char path[512];
    path_in_dir(path, sizeof path, name);
    CU_ASSERT_EQUAL_FATAL(write_sample(path, "swin", dim_file, flags_file, 5, err, cap), 0);
    ts_ckpt *ck = ts_ckpt_open(path, "swin", err, cap);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ck);
    ts_params got;
    empty_like(&got, dim_model, flags_model);
    CU_ASSERT_EQUAL(ts_ckpt_read_params(ck, TS_CKPT_PARAMS, &got, got.data, err, cap), -1);
    CU_ASSERT(block_is_zero(&got));
    CU_ASSERT(contains(err, path) && strchr(err, '\n') == NULL);
    ts_params_free(&got);
    ts_ckpt_close(ck);
}

static void test_shape_mismatch(void) {
    char err[1024] = "";
    load_mismatch("dim8.h5", 8, 0, 4, 0, err, sizeof err);
    CU_ASSERT(contains(err, "parameter 'embed.weight' has shape [8, 5] in the file") &&
              contains(err, "the model wants [4, 5]") && contains(err, "another model shape"));
}

static void test_missing_name(void) {
    char err[1024] = "";
    load_mismatch("without_extra.h5", 8, 0, 8, WITH_EXTRA, err, sizeof err);
    CU_ASSERT(contains(err, "parameter 'blocks.1.extra.bias' of the model is not in the file") &&
              contains(err, "another model shape"));
}

static void test_extra_name(void) {
    char err[1024] = "";
    load_mismatch("with_extra.h5", 8, WITH_EXTRA, 8, 0, err, sizeof err);
    CU_ASSERT(contains(err, "parameter 'blocks.1.extra.bias' in the file") && contains(err, "is not in the model") &&
              contains(err, "another model shape"));
}

static void test_named_mismatch(void) {
    char path[512], err[1024] = "";
    path_in_dir(path, sizeof path, "named.h5");
    CU_ASSERT_EQUAL_FATAL(write_sample(path, "mesh", 8, 0, 5, err, sizeof err), 0);
    ts_ckpt *ck = ts_ckpt_open(path, "mesh", err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ck);
    double buf[4] = {0};
    ts_ckpt_named want = {"node.mean", 1, {4}, buf};
    CU_ASSERT_EQUAL(ts_ckpt_read_named(ck, &want, 1, err, sizeof err), -1);
    CU_ASSERT(contains(err, "'node.mean' has shape [3] in the file") && contains(err, "wants [4]"));
    ts_ckpt_close(ck);
}

static void test_other_kind(void) {
    char path[512], err[1024] = "";
    path_in_dir(path, sizeof path, "mesh.h5");
    CU_ASSERT_EQUAL_FATAL(write_sample(path, "mesh", 8, 0, 5, err, sizeof err), 0);
    CU_ASSERT_PTR_NULL(ts_ckpt_open(path, "swin", err, sizeof err));
    CU_ASSERT(contains(err, path) && contains(err, "a checkpoint of a mesh model") && contains(err, "swin"));
}

/* ---- files that are not good checkpoints --------------------------------------------------- */

static void test_missing_and_not_hdf5(void) {
    char path[512], err[1024] = "";
    path_in_dir(path, sizeof path, "absent.h5");
    CU_ASSERT_PTR_NULL(ts_ckpt_open(path, "swin", err, sizeof err));
    CU_ASSERT(contains(err, path) && contains(err, "No such file or directory"));

    path_in_dir(path, sizeof path, "text.h5");
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("step: 12\nthis is not HDF5 at all, but long enough to hold a superblock's worth of bytes\n", f);
    fclose(f);
    CU_ASSERT_PTR_NULL(ts_ckpt_open(path, "swin", err, sizeof err));
    CU_ASSERT(contains(err, path) && contains(err, "not an HDF5 file"));
}

static void test_truncated(void) {
    char path[512], err[1024] = "";
    path_in_dir(path, sizeof path, "truncated.h5");
    CU_ASSERT_EQUAL_FATAL(write_sample(path, "swin", 8, 0, 5, err, sizeof err), 0);
    struct stat st;
    CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL_FATAL(truncate(path, st.st_size / 2), 0);
    CU_ASSERT_PTR_NULL(ts_ckpt_open(path, "swin", err, sizeof err));
    CU_ASSERT(contains(err, path) && contains(err, "truncated") && strchr(err, '\n') == NULL);
}

static void test_no_format(void) {
    char path[512], err[1024] = "";
    path_in_dir(path, sizeof path, "foreign.h5");
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    hid_t g = H5Gcreate2(f, "params", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CU_ASSERT(g >= 0 && H5Gclose(g) >= 0);
    CU_ASSERT(H5Fclose(f) >= 0);
    CU_ASSERT_PTR_NULL(ts_ckpt_open(path, "swin", err, sizeof err));
    CU_ASSERT(contains(err, path) && contains(err, "not a tessera checkpoint"));
}

static void test_newer_version(void) {
    char path[512], err[1024] = "";
    path_in_dir(path, sizeof path, "future.h5");
    CU_ASSERT_EQUAL_FATAL(write_sample(path, "swin", 8, 0, 5, err, sizeof err), 0);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    hid_t a = H5Aopen(f, "format_version", H5P_DEFAULT);
    int future = TS_CKPT_FORMAT_VERSION + 98;
    CU_ASSERT(a >= 0 && H5Awrite(a, H5T_NATIVE_INT, &future) >= 0 && H5Aclose(a) >= 0);
    CU_ASSERT(H5Fclose(f) >= 0);
    CU_ASSERT_PTR_NULL(ts_ckpt_open(path, "swin", err, sizeof err));
    CU_ASSERT(contains(err, path) && contains(err, "format_version 99") && contains(err, "newer"));
}

/* A bit flipped inside a tensor's bytes on disk: the checksum catches it
 * at load, naming the tensor. */
static void test_corrupt_tensor(void) {
    char path[512], err[1024] = "";
    path_in_dir(path, sizeof path, "bitflip.h5");
    CU_ASSERT_EQUAL_FATAL(write_sample(path, "swin", 8, 0, 5, err, sizeof err), 0);
    size_t len = 0;
    unsigned char *file = slurp(path, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(file);
    float head[16]; /* the first values of params/blocks.0.attn.qkv.weight (tensor 2) */
    for (size_t i = 0; i < 16; i++) head[i] = sample_value(0, 2, i);
    unsigned char *at = NULL;
    for (size_t off = 0; off + sizeof head <= len && !at; off++)
        if (memcmp(file + off, head, sizeof head) == 0) at = file + off;
    CU_ASSERT_PTR_NOT_NULL_FATAL(at);
    at[21] ^= 0x10;
    FILE *f = fopen(path, "r+b");
    CU_ASSERT_FATAL(f != NULL);
    fseek(f, (long)(at - file + 21), SEEK_SET);
    fputc(at[21], f);
    fclose(f);
    free(file);
    ts_ckpt *ck = ts_ckpt_open(path, "swin", err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ck);
    ts_params got;
    empty_like(&got, 8, 0);
    CU_ASSERT_EQUAL(ts_ckpt_read_params(ck, TS_CKPT_PARAMS, &got, got.data, err, sizeof err), -1);
    CU_ASSERT(contains(err, path) && contains(err, "reading parameter 'blocks.0.attn.qkv.weight'") &&
              contains(err, "(io/checkpoint_read.c:"));
    /* the other group is intact */
    CU_ASSERT_EQUAL(ts_ckpt_read_params(ck, TS_CKPT_EMA, &got, got.data, err, sizeof err), 0);
    ts_params_free(&got);
    ts_ckpt_close(ck);
}

/* ---- suite --------------------------------------------------------------------------------- */

static int suite_init(void) {
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/tessera-ckpt-XXXXXX", tmp ? tmp : "/tmp");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int suite_cleanup(void) {
    DIR *d = opendir(g_dir);
    if (!d) return -1;
    char path[600];
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", g_dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    return rmdir(g_dir);
}

/* The file test_checkpoint_h5py.sh checks: the sample model of dim 16. */
static int write_h5py_sample(const char *path) {
    char err[1024];
    if (write_sample(path, "swin", SAMPLE_DIM, 0, 1234, err, sizeof err) == 0) return 0;
    fprintf(stderr, "test_checkpoint: %s\n", err);
    return 1;
}

int main(int argc, char **argv) {
    if (argc == 2) return write_h5py_sample(argv[1]);
    if (argc > 2) {
        fprintf(stderr, "usage: %s [OUT.h5]\n", argv[0]);
        return 2;
    }
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite suite = CU_add_suite("checkpoint", suite_init, suite_cleanup);
    if (!suite || !CU_add_test(suite, "round trip, bit for bit", test_round_trip) ||
        !CU_add_test(suite, "optional parts", test_optional_parts) ||
        !CU_add_test(suite, "statistics edge cases", test_stats_edges) ||
        !CU_add_test(suite, "overwrite", test_overwrite) ||
        !CU_add_test(suite, "failed write keeps the old checkpoint", test_failed_write_keeps_old) ||
        !CU_add_test(suite, "crash mid-write keeps the old checkpoint", test_crash_keeps_old) ||
        !CU_add_test(suite, "bad write arguments", test_bad_write_arguments) ||
        !CU_add_test(suite, "another shape", test_shape_mismatch) ||
        !CU_add_test(suite, "a name missing from the file", test_missing_name) ||
        !CU_add_test(suite, "a name the model lacks", test_extra_name) ||
        !CU_add_test(suite, "normalizer of another shape", test_named_mismatch) ||
        !CU_add_test(suite, "another model kind", test_other_kind) ||
        !CU_add_test(suite, "missing file, not HDF5", test_missing_and_not_hdf5) ||
        !CU_add_test(suite, "truncated file", test_truncated) ||
        !CU_add_test(suite, "HDF5 without format", test_no_format) ||
        !CU_add_test(suite, "newer format_version", test_newer_version) ||
        !CU_add_test(suite, "flipped bit in a tensor", test_corrupt_tensor)) {
        CU_cleanup_registry();
        return 1;
    }
    return ts_cunit_run();
}
