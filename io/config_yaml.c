/* Configuration from a YAML file, read with libyaml's document API (nodes
 * carry line numbers, which every error names). */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* fileno */
#endif
#include "io/config_yaml.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "core/log.h"

/* Longest dotted key; also bounds the nesting depth, since every level
 * adds at least two characters. */
enum { MAX_KEY = 256 };

typedef struct {
    char key[MAX_KEY];
    size_t line;
} seen_key;

typedef struct {
    yaml_parser_t parser;
    yaml_document_t *doc; /* the document being applied */
    ts_config *cfg;
    const char *path;
    char *err;
    size_t cap;
    seen_key *seen; /* keys this file set, to catch one set twice */
    size_t n_seen, cap_seen;
} yaml_loader;

__attribute__((format(printf, 3, 4))) static int fail_at(yaml_loader *L, size_t line, const char *fmt, ...) {
    if (L->err && L->cap > 0) {
        int n = snprintf(L->err, L->cap, "%s:%zu: ", L->path, line);
        if (n >= 0 && (size_t)n < L->cap) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(L->err + n, L->cap - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return -1;
}

/* libyaml's own words: "mapping values are not allowed in this context". */
static int parser_error(yaml_loader *L) {
    const yaml_parser_t *p = &L->parser;
    const char *problem = p->problem ? p->problem : "cannot parse";
    if (p->error == YAML_MEMORY_ERROR) return fail_at(L, 1, "out of memory reading YAML");
    if (p->error == YAML_READER_ERROR) /* bad bytes: libyaml knows only the offset */
        return fail_at(L, p->problem_mark.line + 1, "invalid YAML: %s (byte %zu)", problem, p->problem_offset);
    if (p->context)
        return fail_at(L, p->problem_mark.line + 1, "invalid YAML: %s (%s started at line %zu)", problem,
                       p->context, p->context_mark.line + 1);
    return fail_at(L, p->problem_mark.line + 1, "invalid YAML: %s", problem);
}

/* A plain `key:` with nothing after it, or `~`/`null`. */
static int is_null_scalar(const yaml_node_t *node) {
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
    for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++)
        if (strcmp((const char *)node->data.scalar.value, nulls[i]) == 0) return 1;
    return 0;
}

static size_t line_of(const yaml_node_t *node) { return node->start_mark.line + 1; }

static const seen_key *find_seen(const yaml_loader *L, const char *key) {
    for (size_t i = 0; i < L->n_seen; i++)
        if (strcmp(L->seen[i].key, key) == 0) return &L->seen[i];
    return NULL;
}

static void remember_seen(yaml_loader *L, const char *key, size_t line) {
    if (L->n_seen == L->cap_seen) {
        L->cap_seen = L->cap_seen ? 2 * L->cap_seen : 32;
        seen_key *grown = realloc(L->seen, L->cap_seen * sizeof *grown);
        if (!grown) ts_fatal("out of memory reading config '%s'", L->path);
        L->seen = grown;
    }
    snprintf(L->seen[L->n_seen].key, MAX_KEY, "%s", key);
    L->seen[L->n_seen++].line = line;
}

/* ts_config_set with origin "path:line". */
static int set_value(yaml_loader *L, const char *key, const char *value, size_t line) {
    size_t n = strlen(L->path) + 32;
    char *origin = ts_malloc(n);
    snprintf(origin, n, "%s:%zu", L->path, line);
    int rc = ts_config_set(L->cfg, key, value, origin, L->err, L->cap);
    free(origin);
    return rc;
}

/* Report `key` when it is not declared; ts_config_set words that error
 * (with its "did you mean"), and any value fails for an unknown key. */
static int check_declared(yaml_loader *L, const char *key, size_t line) {
    return ts_config_lookup(L->cfg, key) ? 0 : set_value(L, key, "", line);
}

static int load_scalar(yaml_loader *L, const char *key, const yaml_node_t *node) {
    size_t line = line_of(node);
    if (check_declared(L, key, line)) return -1;
    const seen_key *earlier = find_seen(L, key);
    if (earlier)
        return fail_at(L, line, "configuration key '%s' is set twice in this file (first at line %zu)", key,
                       earlier->line);
    if (is_null_scalar(node)) return fail_at(L, line, "configuration key '%s' has no value", key);
    if (set_value(L, key, (const char *)node->data.scalar.value, line)) return -1;
    remember_seen(L, key, line);
    return 0;
}

static int load_mapping(yaml_loader *L, const char *prefix, yaml_node_t *mapping);

/* The value of `key`: a scalar, or a nested mapping (a section). */
static int load_value(yaml_loader *L, const char *key, yaml_node_t *node) {
    size_t line = line_of(node);
    switch (node->type) {
    case YAML_SCALAR_NODE: return load_scalar(L, key, node);
    case YAML_MAPPING_NODE:
        if (ts_config_lookup(L->cfg, key))
            return fail_at(L, line, "configuration key '%s' wants a single value, got a mapping", key);
        return load_mapping(L, key, node);
    case YAML_SEQUENCE_NODE:
        if (check_declared(L, key, line)) return -1;
        return fail_at(L, line, "configuration key '%s' wants a single value, got a list", key);
    default: return fail_at(L, line, "unexpected YAML structure at key '%s'", key);
    }
}

/* "prefix.name", or "name" at the top level. */
static int join_key(yaml_loader *L, char *out, const char *prefix, const yaml_node_t *name_node) {
    const char *name = (const char *)name_node->data.scalar.value;
    size_t line = line_of(name_node);
    if (name[0] == '\0') return fail_at(L, line, "empty configuration key");
    int n = prefix[0] ? snprintf(out, MAX_KEY, "%s.%s", prefix, name) : snprintf(out, MAX_KEY, "%s", name);
    if (n < 0 || n >= MAX_KEY) return fail_at(L, line, "configuration key '%.64s...' is too long", out);
    return 0;
}

static int load_mapping(yaml_loader *L, const char *prefix, yaml_node_t *mapping) {
    for (yaml_node_pair_t *p = mapping->data.mapping.pairs.start; p < mapping->data.mapping.pairs.top; p++) {
        yaml_node_t *name = yaml_document_get_node(L->doc, p->key);
        yaml_node_t *value = yaml_document_get_node(L->doc, p->value);
        char key[MAX_KEY];
        if (name->type != YAML_SCALAR_NODE)
            return fail_at(L, line_of(name), "configuration keys must be plain names, not lists or mappings");
        if (join_key(L, key, prefix, name) || load_value(L, key, value)) return -1;
    }
    return 0;
}

/* The document's top: a mapping, or nothing at all ("---" alone). */
static int load_root(yaml_loader *L, yaml_node_t *root) {
    if (!root || is_null_scalar(root)) return 0;
    if (root->type != YAML_MAPPING_NODE)
        return fail_at(L, line_of(root), "the top level of a config must be a mapping (key: value lines)");
    return load_mapping(L, "", root);
}

/* The whole file is parsed before any key is set, so a syntax error is
 * reported as such and leaves the config untouched. A second document is
 * refused: which one should win would be a guess. */
static int load_stream(yaml_loader *L) {
    yaml_document_t first, second;
    if (!yaml_parser_load(&L->parser, &first)) return parser_error(L);
    int rc = 0;
    if (yaml_document_get_root_node(&first)) {
        if (!yaml_parser_load(&L->parser, &second)) {
            rc = parser_error(L);
        } else {
            yaml_node_t *extra = yaml_document_get_root_node(&second);
            if (extra) rc = fail_at(L, line_of(extra), "a config holds one YAML document, this file has more");
            yaml_document_delete(&second);
        }
    }
    L->doc = &first;
    if (rc == 0) rc = load_root(L, yaml_document_get_root_node(&first));
    yaml_document_delete(&first);
    L->doc = NULL;
    return rc;
}

/* fopen succeeds on a folder; say so instead of libyaml's "input error". */
static FILE *open_config(const char *path, char *err, size_t cap) {
    FILE *f = fopen(path, "rb");
    struct stat st;
    int e = errno;
    if (f && fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        f = NULL;
        e = EISDIR;
    }
    if (!f && err && cap) snprintf(err, cap, "cannot open config '%s': %s", path, strerror(e));
    return f;
}

int ts_config_load_yaml(ts_config *cfg, const char *path, char *err, size_t errcap) {
    FILE *f = open_config(path, err, errcap);
    if (!f) return -1;
    yaml_loader L = {.cfg = cfg, .path = path, .err = err, .cap = errcap};
    if (!yaml_parser_initialize(&L.parser)) {
        fclose(f);
        return fail_at(&L, 1, "cannot start the YAML parser (out of memory)");
    }
    yaml_parser_set_input_file(&L.parser, f);
    int rc = load_stream(&L);
    yaml_parser_delete(&L.parser);
    free(L.seen);
    fclose(f);
    return rc;
}

int ts_config_load_yaml_text(ts_config *cfg, const char *text, size_t len, const char *name, char *err, size_t errcap) {
    yaml_loader L = {.cfg = cfg, .path = name, .err = err, .cap = errcap};
    if (!yaml_parser_initialize(&L.parser)) return fail_at(&L, 1, "cannot start the YAML parser (out of memory)");
    yaml_parser_set_input_string(&L.parser, (const unsigned char *)text, len);
    int rc = load_stream(&L);
    yaml_parser_delete(&L.parser);
    free(L.seen);
    return rc;
}
