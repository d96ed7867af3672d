/* Configuration registry and YAML loader: defaults, overrides, every error
 * class a user can hit (each must name the key and, where one is close,
 * the valid spelling), YAML nesting, precedence, and the generated docs. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* mkstemp, open_memstream, fork */
#endif
#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/config.h"
#include "io/config_yaml.h"
#include "tests/cunit_run.h"

/* A table with the types the real one has no key of yet (float, bool). */
static const ts_config_key TEST_KEYS[] = {
    {"train.lr", TS_CFG_FLOAT, "0.001", 0, 1, NULL, "learning rate"},
    {"train.ema", TS_CFG_BOOL, "true", 0, 0, NULL, "keep EMA weights"},
    {"train.steps", TS_CFG_INT, "3", -5, 5, NULL, "steps"},
    {"kind", TS_CFG_ENUM, "alpha", 0, 0, "alpha|beta|gamma", "a choice"},
};
#define N_TEST_KEYS (sizeof TEST_KEYS / sizeof TEST_KEYS[0])

static char err[1024];

/* Did setting fail with a message containing every one of the needles? */
static int fails_with(ts_config *cfg, const char *key, const char *value, const char *needle1,
                      const char *needle2) {
    err[0] = '\0';
    if (ts_config_set(cfg, key, value, "command line", err, sizeof err) == 0) return 0;
    int ok = strstr(err, key) && strstr(err, "command line") && (!needle1 || strstr(err, needle1)) &&
             (!needle2 || strstr(err, needle2));
    if (!ok) fprintf(stderr, "\n  unexpected message: %s\n", err);
    return ok;
}

/* Writes `text` to a fresh file under /tmp; the caller unlinks it. */
static void write_temp(char *path, const char *text) {
    strcpy(path, "/tmp/tessera_cfg_XXXXXX");
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    FILE *f = fdopen(fd, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs(text, f);
    fclose(f);
}

/* Loads `yaml` from a temp file into `cfg`; the temp path goes to `path`. */
static int load_text(ts_config *cfg, const char *yaml, char *path) {
    write_temp(path, yaml);
    err[0] = '\0';
    int rc = ts_config_load_yaml(cfg, path, err, sizeof err);
    unlink(path);
    return rc;
}

/* Everything `emit` writes, as one malloc'd string. */
static char *capture(void (*emit)(FILE *, const void *), const void *arg) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CU_ASSERT_FATAL(f != NULL);
    emit(f, arg);
    fclose(f);
    return text;
}

/* ------------------------------------------------------------- tests */

static void test_table_is_consistent(void) {
    /* ts_config_new aborts on duplicates or bad defaults; here, what it
     * does not check: help present and sections kept together. */
    size_t n = ts_config_key_count();
    CU_ASSERT(n >= 21);
    for (size_t i = 0; i < n; i++) {
        const ts_config_key *k = ts_config_key_at(i);
        CU_ASSERT(k->help && k->help[0]);
        CU_ASSERT(ts_config_find_key(k->name) == k);
        const char *dot = strchr(k->name, '.');
        size_t sec = dot ? (size_t)(dot - k->name) : 0;
        for (size_t j = i + 2; j < n && sec; j++) { /* no section resumes after another */
            const ts_config_key *later = ts_config_key_at(j), *prev = ts_config_key_at(j - 1);
            int same_later = strncmp(later->name, k->name, sec) == 0 && later->name[sec] == '.';
            int same_prev = strncmp(prev->name, k->name, sec) == 0 && prev->name[sec] == '.';
            CU_ASSERT(!(same_later && !same_prev));
        }
    }
    CU_ASSERT(ts_config_key_at(n) == NULL);
    CU_ASSERT(ts_config_find_key("parallel.dpp") == NULL);
}

static void test_defaults(void) {
    ts_config *cfg = ts_config_new();
    CU_ASSERT_STRING_EQUAL(ts_config_str(cfg, "out"), ".");
    CU_ASSERT_STRING_EQUAL(ts_config_str(cfg, "model.kind"), "swin");
    CU_ASSERT_EQUAL(ts_config_int(cfg, "seed"), 1234);
    CU_ASSERT_STRING_EQUAL(ts_config_str(cfg, "device"), "cpu");
    CU_ASSERT_EQUAL(ts_config_int(cfg, "threads"), 0);
    CU_ASSERT_STRING_EQUAL(ts_config_str(cfg, "log.level"), "info");
    const char *axes[] = {"parallel.dp", "parallel.wp_y", "parallel.wp_x", "parallel.sp", "parallel.pp"};
    for (size_t i = 0; i < 5; i++) CU_ASSERT_EQUAL(ts_config_int(cfg, axes[i]), 1);
    CU_ASSERT_EQUAL(ts_config_int(cfg, "bench.dim"), 256);
    CU_ASSERT_EQUAL(ts_config_int(cfg, "bench.heads"), 8);
    CU_ASSERT_EQUAL(ts_config_int(cfg, "bench.hidden"), 1024);
    CU_ASSERT_EQUAL(ts_config_int(cfg, "bench.window"), 8);
    CU_ASSERT_EQUAL(ts_config_int(cfg, "bench.grid_h"), 32);
    CU_ASSERT_EQUAL(ts_config_int(cfg, "bench.grid_w"), 64);
    CU_ASSERT_EQUAL(ts_config_int(cfg, "bench.batch"), 1);
    CU_ASSERT_EQUAL(ts_config_int(cfg, "bench.reps"), 5);
    CU_ASSERT_EQUAL(ts_config_int(cfg, "bench.ceiling_n"), 1024);
    CU_ASSERT_STRING_EQUAL(ts_config_str(cfg, "bench.ops"), "all");
    CU_ASSERT_STRING_EQUAL(ts_config_origin(cfg, "seed"), "default");
    ts_config_free(cfg);
}

static void test_overrides_each_type(void) {
    ts_config *cfg = ts_config_new();
    CU_ASSERT_EQUAL(ts_config_apply_override(cfg, "seed=7", err, sizeof err), 0);
    CU_ASSERT_EQUAL(ts_config_int(cfg, "seed"), 7);
    CU_ASSERT_STRING_EQUAL(ts_config_origin(cfg, "seed"), "command line");
    CU_ASSERT_EQUAL(ts_config_apply_override(cfg, "parallel.dp=+16", err, sizeof err), 0);
    CU_ASSERT_EQUAL(ts_config_int(cfg, "parallel.dp"), 16);
    CU_ASSERT_EQUAL(ts_config_apply_override(cfg, "model.kind=mesh", err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(ts_config_str(cfg, "model.kind"), "mesh");
    /* Only the first '=' splits: the value may hold more. */
    CU_ASSERT_EQUAL(ts_config_apply_override(cfg, "out=runs/a=b", err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(ts_config_str(cfg, "out"), "runs/a=b");
    CU_ASSERT_EQUAL(ts_config_apply_override(cfg, "bench.ops=", err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(ts_config_str(cfg, "bench.ops"), "");
    ts_config_free(cfg);

    cfg = ts_config_new_with_keys(TEST_KEYS, N_TEST_KEYS);
    CU_ASSERT(fabs(ts_config_float(cfg, "train.lr") - 0.001) < 1e-15);
    CU_ASSERT_EQUAL(ts_config_apply_override(cfg, "train.lr=2.5e-1", err, sizeof err), 0);
    CU_ASSERT_EQUAL(ts_config_float(cfg, "train.lr"), 0.25);
    CU_ASSERT_EQUAL(ts_config_apply_override(cfg, "train.lr=1", err, sizeof err), 0); /* int text is a float */
    CU_ASSERT_EQUAL(ts_config_float(cfg, "train.lr"), 1.0);
    const char *yes[] = {"true", "yes", "on", "1", "TRUE", "Yes"}, *no[] = {"false", "no", "off", "0", "Off"};
    for (size_t i = 0; i < 6; i++) {
        CU_ASSERT_EQUAL(ts_config_set(cfg, "train.ema", no[i % 5], NULL, err, sizeof err), 0);
        CU_ASSERT_EQUAL(ts_config_set(cfg, "train.ema", yes[i], NULL, err, sizeof err), 0);
        CU_ASSERT_EQUAL(ts_config_bool(cfg, "train.ema"), 1);
    }
    CU_ASSERT_EQUAL(ts_config_set(cfg, "train.ema", "off", NULL, err, sizeof err), 0);
    CU_ASSERT_EQUAL(ts_config_bool(cfg, "train.ema"), 0);
    CU_ASSERT_EQUAL(ts_config_set(cfg, "train.steps", "-5", NULL, err, sizeof err), 0);
    CU_ASSERT_EQUAL(ts_config_int(cfg, "train.steps"), -5);
    ts_config_free(cfg);
}

static void test_unknown_key(void) {
    ts_config *cfg = ts_config_new();
    CU_ASSERT(fails_with(cfg, "parallel.dpp", "2", "unknown configuration key", "did you mean 'parallel.dp'"));
    CU_ASSERT(fails_with(cfg, "bench.rep", "2", "did you mean 'bench.reps'", NULL));
    CU_ASSERT(fails_with(cfg, "sede", "2", "did you mean 'seed'", NULL));
    /* The section left out: the last part names the key. */
    CU_ASSERT(fails_with(cfg, "wp_x", "2", "did you mean 'parallel.wp_x'", NULL));
    /* Nothing close: no misleading suggestion. */
    CU_ASSERT(fails_with(cfg, "zzzzzzzz", "2", "unknown configuration key", NULL));
    CU_ASSERT(strstr(err, "did you mean") == NULL);
    CU_ASSERT(fails_with(cfg, "parallel", "2", "is a section", "parallel.dp"));
    /* The origin leads the message, as compilers do. */
    CU_ASSERT_EQUAL(ts_config_set(cfg, "parallel.dpp", "2", "run.yaml:12", err, sizeof err), -1);
    CU_ASSERT(strncmp(err, "run.yaml:12: ", 13) == 0);
    ts_config_free(cfg);
}

static void test_bad_integers(void) {
    ts_config *cfg = ts_config_new();
    CU_ASSERT(fails_with(cfg, "bench.reps", "abc", "wants an integer, got 'abc'", NULL));
    CU_ASSERT(fails_with(cfg, "bench.reps", "1.5", "wants an integer", NULL));
    CU_ASSERT(fails_with(cfg, "bench.reps", "12x", "wants an integer", NULL));
    CU_ASSERT(fails_with(cfg, "bench.reps", "1e3", "wants an integer", NULL));
    CU_ASSERT(fails_with(cfg, "bench.reps", "", "wants an integer", NULL));
    CU_ASSERT(fails_with(cfg, "bench.reps", " 5", "wants an integer", NULL));
    CU_ASSERT(fails_with(cfg, "bench.reps", "0x10", "wants an integer", NULL));
    CU_ASSERT(fails_with(cfg, "seed", "99999999999999999999", "out of range", NULL));
    CU_ASSERT(fails_with(cfg, "seed", "-1", "out of range", ">= 0"));
    CU_ASSERT(fails_with(cfg, "parallel.dp", "0", "'parallel.dp' = 0 is out of range [1, 1048576]", NULL));
    CU_ASSERT(fails_with(cfg, "bench.reps", "1001", "out of range [1, 1000]", NULL));
    /* A rejected value leaves the old one. */
    CU_ASSERT_EQUAL(ts_config_int(cfg, "bench.reps"), 5);
    CU_ASSERT_STRING_EQUAL(ts_config_origin(cfg, "bench.reps"), "default");
    ts_config_free(cfg);
}

static void test_bad_floats_and_bools(void) {
    ts_config *cfg = ts_config_new_with_keys(TEST_KEYS, N_TEST_KEYS);
    CU_ASSERT(fails_with(cfg, "train.lr", "nan", "finite", NULL));
    CU_ASSERT(fails_with(cfg, "train.lr", "inf", "finite", NULL));
    CU_ASSERT(fails_with(cfg, "train.lr", "-Infinity", "finite", NULL));
    CU_ASSERT(fails_with(cfg, "train.lr", "0.5x", "wants a number", NULL));
    CU_ASSERT(fails_with(cfg, "train.lr", "", "wants a number", NULL));
    CU_ASSERT(fails_with(cfg, "train.lr", "1e999", "out of range", NULL));
    CU_ASSERT(fails_with(cfg, "train.lr", "2", "out of range [0, 1]", NULL));
    CU_ASSERT(fails_with(cfg, "train.ema", "maybe", "wants true or false", "'maybe'"));
    CU_ASSERT(fails_with(cfg, "train.ema", "", "wants true or false", NULL));
    CU_ASSERT(fails_with(cfg, "train.steps", "6", "out of range [-5, 5]", NULL));
    CU_ASSERT(fabs(ts_config_float(cfg, "train.lr") - 0.001) < 1e-15);
    CU_ASSERT_EQUAL(ts_config_bool(cfg, "train.ema"), 1);
    ts_config_free(cfg);
}

static void test_bad_enums(void) {
    ts_config *cfg = ts_config_new();
    CU_ASSERT(fails_with(cfg, "model.kind", "swim", "must be one of swin|mesh, got 'swim'", "did you mean 'swin'"));
    CU_ASSERT(fails_with(cfg, "device", "gpu", "must be one of cpu|cuda", NULL));
    CU_ASSERT(fails_with(cfg, "log.level", "warning", "did you mean 'warn'", NULL));
    CU_ASSERT(fails_with(cfg, "model.kind", "transformer", "must be one of", NULL));
    CU_ASSERT(strstr(err, "did you mean") == NULL);
    CU_ASSERT(fails_with(cfg, "model.kind", "SWIN", "must be one of", NULL)); /* exact spelling */
    CU_ASSERT_STRING_EQUAL(ts_config_str(cfg, "model.kind"), "swin");
    ts_config_free(cfg);
}

static void test_override_syntax(void) {
    ts_config *cfg = ts_config_new();
    CU_ASSERT_EQUAL(ts_config_apply_override(cfg, "parallel.dp", err, sizeof err), -1);
    CU_ASSERT(strstr(err, "parallel.dp") && strstr(err, "key=value"));
    CU_ASSERT_EQUAL(ts_config_apply_override(cfg, "=3", err, sizeof err), -1);
    CU_ASSERT(strstr(err, "no key") != NULL);
    CU_ASSERT_EQUAL(ts_config_apply_override(cfg, "parallel.dpp=2", err, sizeof err), -1);
    CU_ASSERT(strstr(err, "command line") && strstr(err, "did you mean 'parallel.dp'"));
    CU_ASSERT_EQUAL(ts_config_apply_override(cfg, "threads=2000", err, sizeof err), -1);
    CU_ASSERT(strstr(err, "'threads' = 2000 is out of range [0, 1024]") != NULL);
    /* No room for a message must not crash. */
    CU_ASSERT_EQUAL(ts_config_apply_override(cfg, "nope=1", NULL, 0), -1);
    ts_config_free(cfg);
}

static void test_edit_distance(void) {
    CU_ASSERT_EQUAL(ts_edit_distance("kitten", "sitting"), 3);
    CU_ASSERT_EQUAL(ts_edit_distance("", "abc"), 3);
    CU_ASSERT_EQUAL(ts_edit_distance("seed", "seed"), 0);
    CU_ASSERT_EQUAL(ts_edit_distance("parallel.dpp", "parallel.dp"), 1);
    const char *commands[] = {"train", "forecast", "score", "bench"};
    CU_ASSERT_STRING_EQUAL(ts_closest_match("trian", commands, 4), "train");
    CU_ASSERT(ts_closest_match("xyz", commands, 4) == NULL);
}

static void test_getter_misuse_aborts(void) {
    /* A wrong getter is a programming error: the process must stop, not
     * hand back a made-up value. Checked in a child process. */
    const char *cases[][2] = {{"out", "int"}, {"no.such.key", "str"}, {"seed", "float"}};
    for (size_t i = 0; i < 3; i++) {
        fflush(NULL);
        pid_t pid = fork();
        CU_ASSERT_FATAL(pid >= 0);
        if (pid == 0) {
            if (!freopen("/dev/null", "w", stderr)) _exit(0); /* keeps the expected error quiet */
            ts_config *cfg = ts_config_new();
            if (strcmp(cases[i][1], "int") == 0) (void)ts_config_int(cfg, cases[i][0]);
            if (strcmp(cases[i][1], "str") == 0) (void)ts_config_str(cfg, cases[i][0]);
            if (strcmp(cases[i][1], "float") == 0) (void)ts_config_float(cfg, cases[i][0]);
            _exit(0);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) != 0);
    }
}

static void test_yaml_nested_and_flat(void) {
    char path[64];
    ts_config *cfg = ts_config_new();
    const char *yaml = "# a run\n"
                       "model:\n"
                       "  kind: mesh\n"
                       "parallel:\n"
                       "  dp: 2\n"
                       "  wp_y: 3\n"
                       "parallel.sp: 4\n"
                       "seed: 42\n"
                       "out: 'runs/one'\n"
                       "bench: {reps: 9, ops: \"gemm,softmax\"}\n";
    CU_ASSERT_EQUAL_FATAL(load_text(cfg, yaml, path), 0);
    CU_ASSERT_STRING_EQUAL(ts_config_str(cfg, "model.kind"), "mesh");
    CU_ASSERT_EQUAL(ts_config_int(cfg, "parallel.dp"), 2);
    CU_ASSERT_EQUAL(ts_config_int(cfg, "parallel.wp_y"), 3);
    CU_ASSERT_EQUAL(ts_config_int(cfg, "parallel.sp"), 4);
    CU_ASSERT_EQUAL(ts_config_int(cfg, "parallel.pp"), 1);
    CU_ASSERT_EQUAL(ts_config_int(cfg, "seed"), 42);
    CU_ASSERT_STRING_EQUAL(ts_config_str(cfg, "out"), "runs/one");
    CU_ASSERT_EQUAL(ts_config_int(cfg, "bench.reps"), 9);
    CU_ASSERT_STRING_EQUAL(ts_config_str(cfg, "bench.ops"), "gemm,softmax");
    /* Origin is "file:line" of the value. */
    char want[96];
    snprintf(want, sizeof want, "%s:5", path);
    CU_ASSERT_STRING_EQUAL(ts_config_origin(cfg, "parallel.dp"), want);
    CU_ASSERT_STRING_EQUAL(ts_config_origin(cfg, "parallel.pp"), "default");
    ts_config_free(cfg);
}

static void test_command_line_beats_file(void) {
    char path[64];
    ts_config *cfg = ts_config_new();
    CU_ASSERT_EQUAL_FATAL(load_text(cfg, "parallel:\n  dp: 2\nseed: 42\n", path), 0);
    CU_ASSERT_EQUAL(ts_config_apply_override(cfg, "parallel.dp=8", err, sizeof err), 0);
    CU_ASSERT_EQUAL(ts_config_int(cfg, "parallel.dp"), 8);
    CU_ASSERT_STRING_EQUAL(ts_config_origin(cfg, "parallel.dp"), "command line");
    CU_ASSERT_EQUAL(ts_config_int(cfg, "seed"), 42);
    ts_config_free(cfg);
}

static void test_yaml_empty_files(void) {
    char path[64];
    const char *empties[] = {"", "# only a comment\n", "---\n", "---\n...\n"};
    for (size_t i = 0; i < 4; i++) {
        ts_config *cfg = ts_config_new();
        CU_ASSERT_EQUAL(load_text(cfg, empties[i], path), 0);
        CU_ASSERT_EQUAL(ts_config_int(cfg, "seed"), 1234);
        ts_config_free(cfg);
    }
}

/* Loading `yaml` must fail with a message holding the file name, ":line:"
 * and `needle`. */
static int yaml_fails_with(const char *yaml, int line, const char *needle) {
    char path[64], at[96];
    ts_config *cfg = ts_config_new();
    int rc = load_text(cfg, yaml, path);
    ts_config_free(cfg);
    snprintf(at, sizeof at, "%s:%d:", path, line);
    int ok = rc == -1 && strstr(err, at) && strstr(err, needle);
    if (!ok) fprintf(stderr, "\n  wanted '%s' and '%s', got: %s\n", at, needle, err);
    return ok;
}

static void test_yaml_errors(void) {
    CU_ASSERT(yaml_fails_with("seed: 1\nout: x\nparallel: dp: 2\n", 3, "invalid YAML"));
    CU_ASSERT(yaml_fails_with("seed: 1\nbench:\n  reps: [1,\n", 4, "invalid YAML"));
    CU_ASSERT(yaml_fails_with("seed: 1\nparallel:\n  dpp: 2\n", 3, "did you mean 'parallel.dp'"));
    CU_ASSERT(yaml_fails_with("bench:\n  reps: abc\n", 2, "'bench.reps' wants an integer, got 'abc'"));
    CU_ASSERT(yaml_fails_with("model:\n  kind: swim\n", 2, "did you mean 'swin'"));
    CU_ASSERT(yaml_fails_with("bench:\n  ops: [gemm, softmax]\n", 2, "'bench.ops' wants a single value, got a list"));
    CU_ASSERT(yaml_fails_with("bench:\n  opz: [gemm]\n", 2, "did you mean 'bench.ops'"));
    CU_ASSERT(yaml_fails_with("seed:\n  a: 1\n", 2, "'seed' wants a single value, got a mapping"));
    CU_ASSERT(yaml_fails_with("parallel: 2\n", 1, "is a section"));
    CU_ASSERT(yaml_fails_with("seed:\n", 1, "'seed' has no value"));
    CU_ASSERT(yaml_fails_with("parallel:\n  dp: 2\nparallel.dp: 3\n", 3, "set twice in this file (first at line 2)"));
    CU_ASSERT(yaml_fails_with("- seed\n- out\n", 1, "must be a mapping"));
    CU_ASSERT(yaml_fails_with("seed: 1\n---\nseed: 2\n", 3, "one YAML document"));
    CU_ASSERT(yaml_fails_with("seed: *nowhere\n", 1, "invalid YAML"));
}

static void test_yaml_syntax_error_sets_nothing(void) {
    /* libyaml stops at the unterminated quote; the keys before it must
     * not be applied. */
    char path[64];
    ts_config *cfg = ts_config_new();
    CU_ASSERT_EQUAL(load_text(cfg, "seed: 9\nparallel:\n  dp: 2\n  sp: 'open\n", path), -1);
    CU_ASSERT(strstr(err, "invalid YAML") != NULL);
    CU_ASSERT_EQUAL(ts_config_int(cfg, "seed"), 1234);
    CU_ASSERT_EQUAL(ts_config_int(cfg, "parallel.dp"), 1);
    /* Anchors and aliases are plain YAML and work. */
    CU_ASSERT_EQUAL(load_text(cfg, "parallel:\n  dp: &n 4\n  sp: *n\n", path), 0);
    CU_ASSERT_EQUAL(ts_config_int(cfg, "parallel.sp"), 4);
    ts_config_free(cfg);
}

static void test_yaml_unreadable(void) {
    ts_config *cfg = ts_config_new();
    CU_ASSERT_EQUAL(ts_config_load_yaml(cfg, "/nonexistent/x.yaml", err, sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, "cannot open config '/nonexistent/x.yaml': No such file or directory");
    CU_ASSERT_EQUAL(ts_config_load_yaml(cfg, "/tmp", err, sizeof err), -1);
    CU_ASSERT(strstr(err, "cannot open config '/tmp'") && strstr(err, "directory"));
    ts_config_free(cfg);
}

static void test_json(void) {
    ts_config *cfg = ts_config_new();
    CU_ASSERT_EQUAL(ts_config_apply_override(cfg, "parallel.dp=4", err, sizeof err), 0);
    CU_ASSERT_EQUAL(ts_config_apply_override(cfg, "out=a\"b\\c", err, sizeof err), 0);
    int need = ts_config_to_json(cfg, NULL, 0);
    CU_ASSERT_FATAL(need > 2);
    char *json = malloc((size_t)need + 1);
    CU_ASSERT_EQUAL(ts_config_to_json(cfg, json, (size_t)need + 1), need);
    CU_ASSERT_EQUAL(strlen(json), (size_t)need);
    CU_ASSERT(json[0] == '{' && json[need - 1] == '}');
    CU_ASSERT(strstr(json, "\"parallel.dp\":4,") != NULL);     /* numbers unquoted */
    CU_ASSERT(strstr(json, "\"model.kind\":\"swin\"") != NULL); /* enums are strings */
    CU_ASSERT(strstr(json, "\"seed\":1234") != NULL);
    CU_ASSERT(strstr(json, "\"out\":\"a\\\"b\\\\c\"") != NULL); /* escaped */
    /* Every key appears exactly once. */
    for (size_t i = 0; i < ts_config_key_count(); i++) {
        char quoted[128];
        snprintf(quoted, sizeof quoted, "\"%s\":", ts_config_key_at(i)->name);
        const char *hit = strstr(json, quoted);
        CU_ASSERT(hit != NULL && strstr(hit + 1, quoted) == NULL);
    }
    /* Too small a buffer: truncated, terminated, same length reported. */
    char small[16];
    CU_ASSERT_EQUAL(ts_config_to_json(cfg, small, sizeof small), need);
    CU_ASSERT_EQUAL(strlen(small), sizeof small - 1);
    CU_ASSERT(strncmp(small, json, sizeof small - 1) == 0);
    free(json);
    ts_config_free(cfg);

    cfg = ts_config_new_with_keys(TEST_KEYS, N_TEST_KEYS);
    char buf[256];
    ts_config_to_json(cfg, buf, sizeof buf);
    CU_ASSERT(strstr(buf, "\"train.lr\":0.001,") && strstr(buf, "\"train.ema\":true,"));
    ts_config_free(cfg);
}

static void emit_print(FILE *f, const void *cfg) { ts_config_print(cfg, f); }
static void emit_markdown(FILE *f, const void *unused) { (void)unused, ts_config_markdown(f); }
static void emit_help_bench(FILE *f, const void *unused) { (void)unused, ts_config_help(f, "bench.,seed"); }
static void emit_help_all(FILE *f, const void *unused) { (void)unused, ts_config_help(f, NULL); }

static void test_print(void) {
    ts_config *cfg = ts_config_new();
    CU_ASSERT_EQUAL(ts_config_apply_override(cfg, "parallel.dp=4", err, sizeof err), 0);
    char *text = capture(emit_print, cfg);
    CU_ASSERT(strstr(text, "parallel.dp = 4  # command line\n") != NULL);
    CU_ASSERT(strstr(text, "model.kind = swin  # default\n") != NULL);
    free(text);
    ts_config_free(cfg);
}

static void test_docs_and_help(void) {
    char *md = capture(emit_markdown, NULL), *help = capture(emit_help_bench, NULL),
         *all = capture(emit_help_all, NULL);
    CU_ASSERT(strncmp(md, "# ", 2) == 0);
    CU_ASSERT(strstr(md, "| key | type | default | range / choices | help |") != NULL);
    CU_ASSERT(strstr(md, "parallel.dp=4") != NULL || strstr(md, "key.sub=value") != NULL);
    for (size_t i = 0; i < ts_config_key_count(); i++) {
        const ts_config_key *k = ts_config_key_at(i);
        char cell[128];
        snprintf(cell, sizeof cell, "| `%s` |", k->name);
        CU_ASSERT(strstr(md, cell) != NULL);
        CU_ASSERT(strstr(md, k->help) != NULL);
        snprintf(cell, sizeof cell, "  %s=", k->name);
        CU_ASSERT(strstr(all, cell) != NULL);
        int wanted = strncmp(k->name, "bench.", 6) == 0 || strcmp(k->name, "seed") == 0;
        CU_ASSERT((strstr(help, cell) != NULL) == wanted);
    }
    CU_ASSERT(strstr(md, "[1, 1048576]") != NULL);
    CU_ASSERT(strstr(md, "`swin`, `mesh`") != NULL);
    free(md);
    free(help);
    free(all);
}

/* A checkpoint's stored configuration read back: the chosen prefixes are
 * applied, other keys and keys the user already set are left alone, and
 * text that is not our JSON is refused. */
static void test_apply_json(void) {
    char err[512];
    ts_config *a = ts_config_new(), *b = ts_config_new();
    CU_ASSERT_EQUAL(ts_config_set(a, "model.dim", "64", NULL, err, sizeof err), 0);
    CU_ASSERT_EQUAL(ts_config_set(a, "model.heads", "4", NULL, err, sizeof err), 0);
    CU_ASSERT_EQUAL(ts_config_set(a, "data.variables", "z500,\"odd\" name", NULL, err, sizeof err), 0);
    CU_ASSERT_EQUAL(ts_config_set(a, "seed", "77", NULL, err, sizeof err), 0);
    int n = ts_config_to_json(a, NULL, 0);
    char *json = malloc((size_t)n + 1);
    ts_config_to_json(a, json, (size_t)n + 1);
    CU_ASSERT_EQUAL(ts_config_apply_override(b, "model.heads=2", err, sizeof err), 0);
    const char *prefixes[] = {"model.", "data.variables"};
    CU_ASSERT_EQUAL(ts_config_apply_json(b, json, prefixes, 2, "ckpt.h5", err, sizeof err), 0);
    CU_ASSERT_EQUAL(ts_config_int(b, "model.dim"), 64);
    CU_ASSERT_EQUAL(ts_config_int(b, "model.heads"), 2); /* the user's value wins */
    CU_ASSERT_STRING_EQUAL(ts_config_str(b, "data.variables"), "z500,\"odd\" name");
    CU_ASSERT_EQUAL(ts_config_int(b, "seed"), 1234); /* not a chosen prefix */
    CU_ASSERT_STRING_EQUAL(ts_config_origin(b, "model.dim"), "ckpt.h5");
    CU_ASSERT_EQUAL(ts_config_apply_json(b, "{\"model.dim\" 3}", prefixes, 2, "ckpt.h5", err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "ckpt.h5"));
    free(json);
    ts_config_free(a);
    ts_config_free(b);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("config", NULL, NULL);
    if (!s) goto registry_error;
    struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {
        {"table is consistent", test_table_is_consistent},
        {"defaults", test_defaults},
        {"overrides of each type", test_overrides_each_type},
        {"unknown key", test_unknown_key},
        {"bad integers", test_bad_integers},
        {"bad floats and bools", test_bad_floats_and_bools},
        {"bad enums", test_bad_enums},
        {"override syntax", test_override_syntax},
        {"edit distance", test_edit_distance},
        {"getter misuse aborts", test_getter_misuse_aborts},
        {"yaml nested and flat", test_yaml_nested_and_flat},
        {"command line beats file", test_command_line_beats_file},
        {"yaml empty files", test_yaml_empty_files},
        {"yaml errors", test_yaml_errors},
        {"yaml syntax error sets nothing", test_yaml_syntax_error_sets_nothing},
        {"yaml unreadable", test_yaml_unreadable},
        {"json", test_json},
        {"print", test_print},
        {"docs and help", test_docs_and_help},
        {"apply stored json", test_apply_json},
    };
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        if (!CU_add_test(s, tests[i].name, tests[i].fn)) goto registry_error;
    return ts_cunit_run();

registry_error:
    fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
    CU_cleanup_registry();
    return 1;
}
