/* Configuration registry: every key is declared once, in the table in
 * core/config.c (name, type, default, range or choices, one-line help).
 * The parser, `--help`, the "unknown key, did you mean ..." errors and
 * docs/config.md all come from that table.
 *
 * Values are resolved in layers: defaults, then a YAML file
 * (io/config_yaml.h), then `key.sub=value` command-line overrides; the last
 * one set wins, and each value remembers where it came from.
 *
 * Library functions here return errors (0 ok, -1 error, message in `err`)
 * so the CLI decides how to exit (ts_usage_error, exit code 2). Asking a
 * getter for an undeclared key or the wrong type is a programming error and
 * aborts with ts_fatal.
 */
#ifndef TESSERA_CORE_CONFIG_H
#define TESSERA_CORE_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    TS_CFG_INT,    /* 64-bit signed integer, decimal only */
    TS_CFG_FLOAT,  /* finite double */
    TS_CFG_BOOL,   /* true/false, yes/no, on/off, 1/0 */
    TS_CFG_STRING, /* any text */
    TS_CFG_ENUM    /* one of `choices`, e.g. "swin|mesh" */
} ts_config_type;

/* Bound of a number key that has no limit on that side. */
#define TS_CFG_UNBOUNDED 1e308

typedef struct {
    const char *name;    /* dotted, e.g. "parallel.dp"; section = text before the first dot */
    ts_config_type type;
    const char *def;     /* default, as the text a user would write */
    double min, max;     /* INT and FLOAT only; +-TS_CFG_UNBOUNDED for none */
    const char *choices; /* ENUM only: "a|b|c" */
    const char *help;    /* one line */
} ts_config_key;

typedef struct ts_config ts_config;

/* The declared keys, in table order (grouped by section). */
size_t ts_config_key_count(void);
const ts_config_key *ts_config_key_at(size_t i);
/* NULL when `name` is not declared. */
const ts_config_key *ts_config_find_key(const char *name);
/* The title of the section named by the first n characters of section
 * ("train" -> "Training (`tessera train`)"), NULL when it has none. */
const char *ts_config_section_title(const char *section, size_t n);

/* A config holding every key's default. Aborts (ts_fatal) if the table is
 * inconsistent (duplicate name, default that does not parse), since that is
 * a bug in the table, not a user error. */
ts_config *ts_config_new(void);
/* The same over another table (tests, tools); `keys` must outlive the
 * config. */
ts_config *ts_config_new_with_keys(const ts_config_key *keys, size_t n);
void ts_config_free(ts_config *cfg);

/* The key `name` as declared in this config's table, or NULL. */
const ts_config_key *ts_config_lookup(const ts_config *cfg, const char *name);

/* Parse `value` by the key's type, range-check it and store it, recording
 * `origin` ("run.yaml:12", "command line"; NULL for "set by program").
 * On error returns -1, leaves the old value, and writes one line naming
 * the origin, the key, and the closest valid key or choice. */
int ts_config_set(ts_config *cfg, const char *key, const char *value, const char *origin,
                  char *err, size_t errcap);

/* A hydra-style "key.sub=value" argument (origin "command line"). */
int ts_config_apply_override(ts_config *cfg, const char *arg, char *err, size_t errcap);

/* Typed getters. ts_config_str serves STRING and ENUM keys. */
int64_t ts_config_int(const ts_config *cfg, const char *key);
double ts_config_float(const ts_config *cfg, const char *key);
int ts_config_bool(const ts_config *cfg, const char *key);
const char *ts_config_str(const ts_config *cfg, const char *key);
/* Where the current value came from: "default", "command line", "x.yaml:3". */
const char *ts_config_origin(const ts_config *cfg, const char *key);

/* Apply a flat JSON object written by ts_config_to_json (the resolved
 * configuration a checkpoint stores): only keys matching one of the
 * prefixes ("model." matches model.dim; "train.step_hours" itself) whose
 * value here is still the default, so a user's setting wins. Unknown keys
 * are skipped. Returns 0 or -1 with err set. */
int ts_config_apply_json(ts_config *cfg, const char *json, const char *const *prefixes, size_t nprefixes,
                         const char *origin, char *err, size_t errcap);

/* One "key = value  # origin" line per key. */
void ts_config_print(const ts_config *cfg, FILE *f);
/* A flat JSON object {"key": value, ...}, numbers and booleans unquoted.
 * Like snprintf: returns the full length (without the NUL); the text is
 * complete only when that is < cap. buf may be NULL when cap is 0. */
int ts_config_to_json(const ts_config *cfg, char *buf, size_t cap);

/* --help: keys whose names start with one of the comma-separated prefixes
 * in `prefix_filter` ("bench.,parallel."), or every key when NULL. */
void ts_config_help(FILE *f, const char *prefix_filter);
/* The whole of docs/config.md. */
void ts_config_markdown(FILE *f);

/* Levenshtein distance (exposed for tests and the CLI's command names). */
size_t ts_edit_distance(const char *a, const char *b);
/* The candidate closest to `word` among `n` strings, or NULL when none is
 * close enough to be a plausible typo. */
const char *ts_closest_match(const char *word, const char *const *candidates, size_t n);

#endif
