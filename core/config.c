/* Configuration registry: everything derived from the key table of
 * core/config_keys.c (parsing, lookups, JSON, --help and docs/config.md). */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* strcasecmp */
#endif
#include "core/config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"

/* ------------------------------------------------------- small helpers */

static const ts_config_key *find_in(const ts_config_key *keys, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i].name, name) == 0) return &keys[i];
    return NULL;
}

/* Format into err if the caller gave room; always returns -1 so error paths
 * read `return fail(...)`. */
__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t cap, const char *fmt, ...) {
    if (err && cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static char *dup_string(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = ts_malloc(n);
    memcpy(d, s, n);
    return d;
}

static const char *type_name(ts_config_type t) {
    switch (t) {
    case TS_CFG_INT: return "int";
    case TS_CFG_FLOAT: return "float";
    case TS_CFG_BOOL: return "bool";
    case TS_CFG_STRING: return "string";
    case TS_CFG_ENUM: return "enum";
    }
    return "?";
}

/* Length of the section part of a key name ("" for undotted keys). */
static size_t section_len(const char *name) {
    const char *dot = strchr(name, '.');
    return dot ? (size_t)(dot - name) : 0;
}

static int same_section(const char *a, const char *b) {
    size_t n = section_len(a);
    return n == section_len(b) && strncmp(a, b, n) == 0;
}

static int is_number_type(ts_config_type t) { return t == TS_CFG_INT || t == TS_CFG_FLOAT; }

/* Shortest text that reads back as the same double. */
static void format_double(char *buf, size_t cap, double v) {
    snprintf(buf, cap, "%.15g", v);
    if (strtod(buf, NULL) != v) snprintf(buf, cap, "%.17g", v);
}

static void format_bound(char *buf, size_t cap, ts_config_type t, double v) {
    if (t == TS_CFG_INT)
        snprintf(buf, cap, "%lld", (long long)v);
    else
        format_double(buf, cap, v);
}

/* "[1, 1048576]", ">= 0", "<= 5" or "" for an unbounded number. */
static void format_range(char *buf, size_t cap, const ts_config_key *k) {
    char lo[48], hi[48];
    int has_lo = k->min > -TS_CFG_UNBOUNDED, has_hi = k->max < TS_CFG_UNBOUNDED;
    /* an absent bound is +-1e308, which no integer holds: never formatted */
    if (has_lo) format_bound(lo, sizeof lo, k->type, k->min);
    if (has_hi) format_bound(hi, sizeof hi, k->type, k->max);
    if (has_lo && has_hi)
        snprintf(buf, cap, "[%s, %s]", lo, hi);
    else if (has_lo)
        snprintf(buf, cap, ">= %s", lo);
    else if (has_hi)
        snprintf(buf, cap, "<= %s", hi);
    else
        snprintf(buf, cap, "%s", "");
}

/* ------------------------------------------------------ edit distance */

size_t ts_edit_distance(const char *a, const char *b) {
    enum { MAX_LEN = 255 };
    size_t na = strlen(a), nb = strlen(b);
    if (na > MAX_LEN || nb > MAX_LEN) return na > nb ? na : nb; /* too long to be a typo */
    size_t row[MAX_LEN + 1];                                      /* distances for the previous prefix of a */
    for (size_t j = 0; j <= nb; j++) row[j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t diag = row[0]; /* row[i-1][j-1] */
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[nb];
}

/* A typo changes a few characters, not a third of a long name: past that
 * the suggestion would be noise. */
static int close_enough(size_t distance, const char *candidate) {
    size_t len = strlen(candidate), limit = len / 3 > 2 ? len / 3 : 2;
    return distance <= limit && distance < len;
}

typedef const char *(*name_at_fn)(const void *ctx, size_t i);

static const char *closest(const char *word, const void *ctx, size_t n, name_at_fn name_at) {
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        const char *c = name_at(ctx, i);
        size_t d = ts_edit_distance(word, c);
        if (d < best_d && close_enough(d, c)) best = c, best_d = d;
    }
    return best;
}

static const char *string_at(const void *ctx, size_t i) { return ((const char *const *)ctx)[i]; }

const char *ts_closest_match(const char *word, const char *const *candidates, size_t n) {
    return closest(word, candidates, n, string_at);
}

/* -------------------------------------------------------- the config */

typedef struct {
    int64_t i;
    double f;
    int b;
    char *s;      /* STRING and ENUM */
    char *origin; /* "default", "command line", "x.yaml:3" */
} config_value;

struct ts_config {
    const ts_config_key *keys;
    size_t n;
    config_value *values; /* one per key, same order */
};

static const char *key_name_at(const void *ctx, size_t i) {
    const ts_config *cfg = ctx;
    return cfg->keys[i].name;
}

/* The key that has `word` as its last part ("dp" -> "parallel.dp"), for a
 * user who left out the section. */
static const char *key_with_suffix(const ts_config *cfg, const char *word) {
    size_t nw = strlen(word);
    for (size_t i = 0; i < cfg->n; i++) {
        const char *name = cfg->keys[i].name;
        size_t nn = strlen(name);
        if (nn > nw && name[nn - nw - 1] == '.' && strcmp(name + nn - nw, word) == 0) return name;
    }
    return NULL;
}

/* The first key of section `word`, when `word` names a section. */
static const char *first_key_of_section(const ts_config *cfg, const char *word) {
    size_t nw = strlen(word);
    for (size_t i = 0; i < cfg->n; i++)
        if (strncmp(cfg->keys[i].name, word, nw) == 0 && cfg->keys[i].name[nw] == '.')
            return cfg->keys[i].name;
    return NULL;
}

static int unknown_key_error(const ts_config *cfg, const char *key, const char *where, char *err,
                             size_t cap) {
    const char *section_key = first_key_of_section(cfg, key);
    if (section_key)
        return fail(err, cap, "%sconfiguration key '%s' is a section, not a key (set e.g. '%s')", where,
                    key, section_key);
    const char *hint = closest(key, cfg, cfg->n, key_name_at);
    if (!hint) hint = key_with_suffix(cfg, key);
    if (hint) return fail(err, cap, "%sunknown configuration key '%s' (did you mean '%s'?)", where, key, hint);
    return fail(err, cap, "%sunknown configuration key '%s' (see --help for the keys)", where, key);
}

/* ------------------------------------------------------ value parsing */

static int out_of_range(const ts_config_key *k, const char *text, const char *where, char *err, size_t cap) {
    char range[128];
    format_range(range, sizeof range, k);
    return fail(err, cap, "%sconfiguration key '%s' = %s is out of range %s", where, k->name, text, range);
}

static int parse_int(const ts_config_key *k, const char *text, const char *where, int64_t *out, char *err,
                     size_t cap) {
    char *end;
    /* strtoll would skip leading blanks and accept "1.5" as 1; insist on
     * the whole text being one decimal integer. */
    if (!isdigit((unsigned char)text[0]) && !((text[0] == '-' || text[0] == '+') && isdigit((unsigned char)text[1])))
        return fail(err, cap, "%sconfiguration key '%s' wants an integer, got '%s'", where, k->name, text);
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (*end != '\0')
        return fail(err, cap, "%sconfiguration key '%s' wants an integer, got '%s'", where, k->name, text);
    if (errno == ERANGE || (double)v < k->min || (double)v > k->max)
        return out_of_range(k, text, where, err, cap);
    *out = v;
    return 0;
}

static int parse_float(const ts_config_key *k, const char *text, const char *where, double *out, char *err,
                       size_t cap) {
    char *end;
    if (text[0] == '\0' || isspace((unsigned char)text[0]))
        return fail(err, cap, "%sconfiguration key '%s' wants a number, got '%s'", where, k->name, text);
    errno = 0;
    double v = strtod(text, &end);
    int overflow = errno == ERANGE && fabs(v) >= 1.0; /* tiny ERANGE = underflow, a fine value */
    if (*end != '\0')
        return fail(err, cap, "%sconfiguration key '%s' wants a number, got '%s'", where, k->name, text);
    if (!overflow && !isfinite(v)) /* "nan", "inf" written out */
        return fail(err, cap, "%sconfiguration key '%s' wants a finite number, got '%s'", where, k->name, text);
    if (overflow || v < k->min || v > k->max) return out_of_range(k, text, where, err, cap);
    *out = v;
    return 0;
}

static int parse_bool(const ts_config_key *k, const char *text, const char *where, int *out, char *err,
                      size_t cap) {
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0) return *out = 1, 0;
        if (strcasecmp(text, no[i]) == 0) return *out = 0, 0;
    }
    return fail(err, cap, "%sconfiguration key '%s' wants true or false (or yes/no, on/off, 1/0), got '%s'",
                where, k->name, text);
}

/* Split "a|b|c" into pointers into `buf`; returns the count. */
static size_t split_choices(const char *choices, char *buf, size_t cap, const char **out, size_t max_out) {
    size_t n = 0;
    snprintf(buf, cap, "%s", choices);
    for (char *p = buf; n < max_out;) {
        out[n++] = p;
        char *bar = strchr(p, '|');
        if (!bar) break;
        *bar = '\0';
        p = bar + 1;
    }
    return n;
}

/* "warning" -> "warn", "cu" -> "cuda": a choice the text starts with, or
 * one that starts with the text; typos of that kind are too long for the
 * edit-distance limit. */
static const char *choice_sharing_prefix(const char *text, const char *const *choice, size_t n) {
    size_t nt = strlen(text);
    if (nt < 2) return NULL;
    for (size_t i = 0; i < n; i++) {
        size_t nc = strlen(choice[i]), common = nt < nc ? nt : nc;
        if (nc >= 2 && strncmp(text, choice[i], common) == 0) return choice[i];
    }
    return NULL;
}

static int check_enum(const ts_config_key *k, const char *text, const char *where, char *err, size_t cap) {
    char buf[512];
    const char *choice[64];
    size_t n = split_choices(k->choices, buf, sizeof buf, choice, 64);
    for (size_t i = 0; i < n; i++)
        if (strcmp(text, choice[i]) == 0) return 0;
    const char *hint = ts_closest_match(text, choice, n);
    if (!hint) hint = choice_sharing_prefix(text, choice, n);
    if (hint)
        return fail(err, cap, "%sconfiguration key '%s' must be one of %s, got '%s' (did you mean '%s'?)",
                    where, k->name, k->choices, text, hint);
    return fail(err, cap, "%sconfiguration key '%s' must be one of %s, got '%s'", where, k->name, k->choices,
                text);
}

/* Parse `text` into `v` (not touching its origin); v->s must be NULL. */
static int parse_value(const ts_config_key *k, const char *text, const char *where, config_value *v,
                       char *err, size_t cap) {
    switch (k->type) {
    case TS_CFG_INT: return parse_int(k, text, where, &v->i, err, cap);
    case TS_CFG_FLOAT: return parse_float(k, text, where, &v->f, err, cap);
    case TS_CFG_BOOL: return parse_bool(k, text, where, &v->b, err, cap);
    case TS_CFG_ENUM:
        if (check_enum(k, text, where, err, cap)) return -1;
        v->s = dup_string(text); /* stored as its text, like a string */
        return 0;
    case TS_CFG_STRING:
        v->s = dup_string(text);
        return 0;
    }
    return fail(err, cap, "%sconfiguration key '%s' has an unknown type", where, k->name);
}

/* ------------------------------------------------------- set and get */

const ts_config_key *ts_config_lookup(const ts_config *cfg, const char *name) {
    return find_in(cfg->keys, cfg->n, name);
}

/* Looks up, parses and stores the value; the origin is the caller's. */
static int set_parsed(ts_config *cfg, const char *key, const char *value, const char *where, char *err,
                      size_t errcap) {
    const ts_config_key *k = find_in(cfg->keys, cfg->n, key);
    if (!k) return unknown_key_error(cfg, key, where, err, errcap);
    config_value *v = &cfg->values[k - cfg->keys];
    /* Parse into a copy so a rejected value leaves the old one intact. */
    config_value parsed = *v;
    parsed.s = NULL;
    if (parse_value(k, value, where, &parsed, err, errcap)) return -1;
    if (parsed.s)
        free(v->s);
    else
        parsed.s = v->s;
    *v = parsed;
    return 0;
}

int ts_config_set(ts_config *cfg, const char *key, const char *value, const char *origin, char *err,
                  size_t errcap) {
    /* Messages start "origin: " as compilers do; origins may be long paths. */
    size_t nw = origin ? strlen(origin) + 3 : 1;
    char *where = ts_malloc(nw);
    snprintf(where, nw, "%s%s", origin ? origin : "", origin ? ": " : "");
    int rc = set_parsed(cfg, key, value, where, err, errcap);
    free(where);
    if (rc == 0) {
        config_value *v = &cfg->values[ts_config_lookup(cfg, key) - cfg->keys];
        free(v->origin);
        v->origin = dup_string(origin ? origin : "set by program");
    }
    return rc;
}

int ts_config_apply_override(ts_config *cfg, const char *arg, char *err, size_t errcap) {
    const char *eq = strchr(arg, '=');
    if (!eq) return fail(err, errcap, "command line: '%s' is not a key=value setting (e.g. parallel.dp=2)", arg);
    if (eq == arg) return fail(err, errcap, "command line: '%s' has no key before '='", arg);
    size_t n = (size_t)(eq - arg);
    char *key = ts_malloc(n + 1);
    memcpy(key, arg, n);
    key[n] = '\0';
    int rc = ts_config_set(cfg, key, eq + 1, "command line", err, errcap);
    free(key);
    return rc;
}

/* The value slot of `key`, which must be declared with type `want` (or
 * STRING/ENUM for strings); anything else is a bug in the caller. */
static const config_value *typed_value(const ts_config *cfg, const char *key, ts_config_type want) {
    const ts_config_key *k = find_in(cfg->keys, cfg->n, key);
    if (!k) ts_fatal("configuration key '%s' is read but not declared in core/config.c", key);
    int ok = k->type == want || (want == TS_CFG_STRING && k->type == TS_CFG_ENUM);
    if (!ok)
        ts_fatal("configuration key '%s' is %s but read as %s", key, type_name(k->type), type_name(want));
    return &cfg->values[k - cfg->keys];
}

int64_t ts_config_int(const ts_config *cfg, const char *key) { return typed_value(cfg, key, TS_CFG_INT)->i; }

double ts_config_float(const ts_config *cfg, const char *key) {
    return typed_value(cfg, key, TS_CFG_FLOAT)->f;
}

int ts_config_bool(const ts_config *cfg, const char *key) { return typed_value(cfg, key, TS_CFG_BOOL)->b; }

const char *ts_config_str(const ts_config *cfg, const char *key) {
    return typed_value(cfg, key, TS_CFG_STRING)->s;
}

const char *ts_config_origin(const ts_config *cfg, const char *key) {
    const ts_config_key *k = find_in(cfg->keys, cfg->n, key);
    if (!k) ts_fatal("configuration key '%s' is read but not declared in core/config.c", key);
    return cfg->values[k - cfg->keys].origin;
}

/* ---------------------------------------------------- create and free */

ts_config *ts_config_new_with_keys(const ts_config_key *keys, size_t n) {
    ts_config *cfg = ts_calloc(1, sizeof *cfg);
    cfg->keys = keys;
    cfg->n = n;
    cfg->values = ts_calloc(n ? n : 1, sizeof *cfg->values);
    for (size_t i = 0; i < n; i++) {
        char err[512];
        if (find_in(keys, i, keys[i].name)) ts_fatal("configuration key '%s' is declared twice", keys[i].name);
        if (ts_config_set(cfg, keys[i].name, keys[i].def, "default", err, sizeof err))
            ts_fatal("bad default in the configuration table: %s", err);
    }
    return cfg;
}

ts_config *ts_config_new(void) { return ts_config_new_with_keys(ts_config_key_at(0), ts_config_key_count()); }

void ts_config_free(ts_config *cfg) {
    if (!cfg) return;
    for (size_t i = 0; i < cfg->n; i++) {
        free(cfg->values[i].s);
        free(cfg->values[i].origin);
    }
    free(cfg->values);
    free(cfg);
}

/* ----------------------------------------------------------- output */

/* The value as a user would write it back. */
static void format_value(char *buf, size_t cap, const ts_config_key *k, const config_value *v) {
    switch (k->type) {
    case TS_CFG_INT: snprintf(buf, cap, "%lld", (long long)v->i); break;
    case TS_CFG_FLOAT: format_double(buf, cap, v->f); break;
    case TS_CFG_BOOL: snprintf(buf, cap, "%s", v->b ? "true" : "false"); break;
    case TS_CFG_STRING:
    case TS_CFG_ENUM: snprintf(buf, cap, "%s", v->s); break;
    }
}

void ts_config_print(const ts_config *cfg, FILE *f) {
    for (size_t i = 0; i < cfg->n; i++) {
        const ts_config_key *k = &cfg->keys[i];
        const config_value *v = &cfg->values[i];
        if (k->type == TS_CFG_STRING || k->type == TS_CFG_ENUM)
            fprintf(f, "%s = %s  # %s\n", k->name, v->s, v->origin); /* strings may be long */
        else {
            char value[64];
            format_value(value, sizeof value, k, v);
            fprintf(f, "%s = %s  # %s\n", k->name, value, v->origin);
        }
    }
}

/* Appends to a fixed buffer, counting what would not fit, so one pass
 * gives snprintf's "bytes needed". */
typedef struct {
    char *buf;
    size_t cap, len;
} text_out;

static void out_char(text_out *o, char c) {
    if (o->len + 1 < o->cap) o->buf[o->len] = c, o->buf[o->len + 1] = '\0';
    o->len++;
}

static void out_str(text_out *o, const char *s) {
    while (*s) out_char(o, *s++);
}

static void out_json_string(text_out *o, const char *s) {
    out_char(o, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out_char(o, '\\');
            out_char(o, (char)c);
        } else if (c < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", c);
            out_str(o, esc);
        } else
            out_char(o, (char)c);
    }
    out_char(o, '"');
}

int ts_config_to_json(const ts_config *cfg, char *buf, size_t cap) {
    text_out o = {buf, cap, 0};
    if (buf && cap) buf[0] = '\0';
    out_char(&o, '{');
    for (size_t i = 0; i < cfg->n; i++) {
        const ts_config_key *k = &cfg->keys[i];
        const config_value *v = &cfg->values[i];
        if (i) out_char(&o, ',');
        out_json_string(&o, k->name);
        out_char(&o, ':');
        if (k->type == TS_CFG_STRING || k->type == TS_CFG_ENUM)
            out_json_string(&o, v->s);
        else {
            char value[64];
            format_value(value, sizeof value, k, v);
            out_str(&o, value);
        }
    }
    out_char(&o, '}');
    return (int)o.len;
}

/* Does `name` start with one of the comma-separated prefixes? */
static int matches_filter(const char *name, const char *filter) {
    if (!filter) return 1;
    for (const char *p = filter; *p;) {
        size_t n = strcspn(p, ",");
        if (n > 0 && strncmp(name, p, n) == 0) return 1;
        p += n;
        if (*p == ',') p++;
    }
    return 0;
}

/* "INT", "swin|mesh", ... as shown after "key=" in --help. */
static const char *placeholder(const ts_config_key *k) {
    switch (k->type) {
    case TS_CFG_INT: return "INT";
    case TS_CFG_FLOAT: return "FLOAT";
    case TS_CFG_BOOL: return "BOOL";
    case TS_CFG_STRING: return "TEXT";
    case TS_CFG_ENUM: return k->choices;
    }
    return "?";
}

static void help_line(FILE *f, const ts_config_key *k) {
    char lhs[160], range[128] = "";
    snprintf(lhs, sizeof lhs, "%s=%s", k->name, placeholder(k));
    if (is_number_type(k->type)) format_range(range, sizeof range, k);
    fprintf(f, "  %-30s %s (default %s%s%s)\n", lhs, k->help, k->def[0] ? k->def : "\"\"",
            range[0] ? "; " : "", range);
}

void ts_config_help(FILE *f, const char *prefix_filter) {
    for (size_t i = 0; i < ts_config_key_count(); i++)
        if (matches_filter(ts_config_key_at(i)->name, prefix_filter)) help_line(f, ts_config_key_at(i));
}

/* ---------------------------------------------------------- markdown */

static void section_title(char *buf, size_t cap, const char *key_name) {
    size_t n = section_len(key_name);
    const char *title = ts_config_section_title(key_name, n);
    if (title) snprintf(buf, cap, "%s", title);
    else snprintf(buf, cap, "%.*s", (int)n, key_name);
}

/* Writes text for a table cell: '|' would end the cell. */
static void markdown_cell(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '|') fputc('\\', f);
        fputc(*s, f);
    }
}

static void markdown_choices(FILE *f, const char *choices) {
    char buf[512];
    const char *choice[64];
    size_t n = split_choices(choices, buf, sizeof buf, choice, 64);
    for (size_t i = 0; i < n; i++) fprintf(f, "%s`%s`", i ? ", " : "", choice[i]);
}

static void markdown_row(FILE *f, const ts_config_key *k) {
    fprintf(f, "| `%s` | %s | ", k->name, type_name(k->type));
    if (k->def[0])
        fprintf(f, "`%s` | ", k->def);
    else
        fputs("(empty) | ", f);
    if (k->type == TS_CFG_ENUM)
        markdown_choices(f, k->choices);
    else if (is_number_type(k->type)) {
        char range[128];
        format_range(range, sizeof range, k);
        markdown_cell(f, range);
    }
    fputs(" | ", f);
    markdown_cell(f, k->help);
    fputs(" |\n", f);
}

static void markdown_intro(FILE *f) {
    fputs("# Configuration keys\n\n"
          "<!-- Generated from the key table in core/config.c; edit the table, not this file. -->\n\n"
          "Every command reads the same keys:\n\n"
          "    tessera <command> [config.yaml] [key.sub=value ...]\n\n"
          "Values are taken from the defaults below, then the YAML file, then the\n"
          "command line: a `key.sub=value` argument wins over the file (as in hydra).\n"
          "In YAML, a section is a nested mapping or a dotted key; both mean the same:\n\n"
          "```yaml\n"
          "model:\n"
          "  kind: swin\n"
          "parallel:\n"
          "  dp: 2\n"
          "parallel.wp_x: 4\n"
          "```\n\n"
          "    tessera train run.yaml parallel.dp=4 seed=7\n\n"
          "Booleans accept `true/false`, `yes/no`, `on/off` and `1/0`; integers are\n"
          "decimal; floats must be finite. An unknown key, a value of the wrong type\n"
          "or one out of range stops the command with one line naming the key, the\n"
          "file and line or the command line, and the closest valid key (exit code 2).\n"
          "Every command prints the resolved configuration when it starts.\n",
          f);
}

void ts_config_markdown(FILE *f) {
    markdown_intro(f);
    /* Sections in order of first appearance; keys of a section together
     * even if the table ever interleaves them. */
    for (size_t i = 0; i < ts_config_key_count(); i++) {
        const char *name = (*ts_config_key_at(i)).name;
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++) seen = same_section((*ts_config_key_at(j)).name, name);
        if (seen) continue;
        char title[128];
        section_title(title, sizeof title, name);
        fprintf(f, "\n## %s\n\n| key | type | default | range / choices | help |\n|---|---|---|---|---|\n",
                title);
        for (size_t j = i; j < ts_config_key_count(); j++)
            if (same_section((*ts_config_key_at(j)).name, name)) markdown_row(f, &(*ts_config_key_at(j)));
    }
}

/* ---------------------------------------------------------------- JSON in */

/* Reads one JSON string literal at *p (after the opening quote) into buf. */
static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int json_string(const char **p, char *buf, size_t cap) {
    size_t n = 0;
    for (const char *s = *p; *s; s++) {
        char c = *s;
        if (c == '"') {
            buf[n] = '\0';
            *p = s + 1;
            return 0;
        }
        if (c == '\\') {
            s++;
            switch (*s) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'u': { /* our writer escapes control characters only: \u00XX */
                unsigned code = 0;
                for (int d = 1; d <= 4; d++) {
                    int h = hex_digit(s[d]); /* stops at the terminator, which is no digit */
                    if (h < 0) return -1;
                    code = code * 16 + (unsigned)h;
                }
                if (code == 0 || code > 0x7f) return -1;
                c = (char)code;
                s += 4;
                break;
            }
            case '\0': return -1;
            default: c = *s;
            }
        }
        if (n + 1 >= cap) return -1;
        buf[n++] = c;
    }
    return -1;
}

static int wanted_key(const char *name, const char *const *prefixes, size_t n) {
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(prefixes[i]);
        if (strncmp(name, prefixes[i], len) == 0 && (prefixes[i][len - 1] == '.' || name[len] == '\0')) return 1;
    }
    return 0;
}

int ts_config_apply_json(ts_config *cfg, const char *json, const char *const *prefixes, size_t nprefixes,
                         const char *origin, char *err, size_t errcap) {
    const char *p = json;
    /* No key or value is longer than the text: a long data.files list or
     * path reads back whole. */
    size_t cap = strlen(json) + 1;
    char *key = ts_malloc(cap), *value = ts_malloc(cap);
    int rc = -1;
    while (isspace((unsigned char)*p)) p++;
    if (*p++ != '{') goto bad;
    for (;;) {
        while (isspace((unsigned char)*p) || *p == ',') p++;
        if (*p == '}') {
            rc = 0;
            goto done;
        }
        if (*p++ != '"' || json_string(&p, key, cap)) goto bad;
        while (isspace((unsigned char)*p)) p++;
        if (*p++ != ':') goto bad;
        while (isspace((unsigned char)*p)) p++;
        if (*p == '"') {
            p++;
            if (json_string(&p, value, cap)) goto bad;
        } else {
            size_t n = 0;
            while (*p && *p != ',' && *p != '}' && !isspace((unsigned char)*p)) value[n++] = *p++;
            value[n] = '\0';
            if (n == 0) goto bad;
        }
        /* Keys this version does not know, and keys the user set, are left alone. */
        const ts_config_key *k = ts_config_lookup(cfg, key);
        if (k && wanted_key(key, prefixes, nprefixes) && strcmp(ts_config_origin(cfg, key), "default") == 0 &&
            ts_config_set(cfg, key, value, origin, err, errcap))
            goto done;
    }
bad:
    snprintf(err, errcap, "%s: the stored configuration is not the flat JSON tessera writes (near offset %ld)",
             origin ? origin : "config", (long)(p - json));
done:
    free(key);
    free(value);
    return rc;
}
