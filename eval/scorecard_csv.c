/* The scorecard CSV reader (eval/scorecard_csv.h). */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* getline */
#endif
#include "eval/scorecard_csv.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

static const char *const SYSTEMS[] = {"tessera", "persistence", "climatology", "perfect_model"};
static const char *const METRICS[] = {"rmse", "acc", "crps", "spread_skill"};

static int rank_of(const char *s, const char *const *known, int n) {
    for (int i = 0; i < n; i++)
        if (strcmp(s, known[i]) == 0) return i;
    return n;
}

int ts_score_system_rank(const char *system) { return rank_of(system, SYSTEMS, TS_SCORE_SYSTEMS); }
int ts_score_metric_rank(const char *metric) { return rank_of(metric, METRICS, TS_SCORE_METRICS); }

/* Split one CSV line in place (RFC 4180 quotes; spaces around fields
 * trimmed). Returns the number of fields. */
static size_t split_csv(char *line, char **fields, size_t max) {
    size_t n = 0;
    char *p = line;
    line[strcspn(line, "\r\n")] = '\0';
    while (n < max) {
        while (*p == ' ') p++;
        char *out = p, *start = p;
        if (*p == '"') {
            for (p++; *p && !(*p == '"' && p[1] != '"'); p++) *out++ = *p == '"' ? *++p : *p;
            if (*p == '"') p++;
            while (*p && *p != ',') p++;
        } else {
            while (*p && *p != ',') p++;
            out = p;
            while (out > start && out[-1] == ' ') out--;
        }
        char sep = *p;
        *out = '\0';
        fields[n++] = start;
        if (sep != ',') break;
        p++;
    }
    return n;
}

/* "z" + "500" -> "z500"; a surface or derived variable (no level, 0 or nan)
 * keeps its name; a name that already ends in its level is left alone. */
static void score_variable(const char *var, const char *level, char *out, size_t cap) {
    char *end;
    double l = strtod(level, &end);
    char lev[32];
    if (end == level || !isfinite(l) || l == 0) {
        snprintf(out, cap, "%s", var);
        return;
    }
    snprintf(lev, sizeof lev, "%g", l);
    size_t nv = strlen(var), nl = strlen(lev);
    if (nv > nl && strcmp(var + nv - nl, lev) == 0)
        snprintf(out, cap, "%s", var);
    else
        snprintf(out, cap, "%s%s", var, lev);
}

/* A number cell: empty or "nan" is NaN; anything else must parse. */
static int parse_number(const char *s, double *v) {
    char *end;
    if (!*s) return *v = NAN, 0;
    *v = strtod(s, &end);
    return *end ? -1 : 0;
}

enum { COL_VAR, COL_LEVEL, COL_LEAD, COL_METRIC, COL_SYSTEM, COL_VALUE, COL_LO, COL_HI, NCOLS };
static const char *const COLUMNS[NCOLS] = {"variable", "level", "lead_hours", "metric",
                                           "system",   "value", "ci_low",     "ci_high"};

static int header_columns(const char *path, char *line, int *col, char *err, size_t cap) {
    char *f[64];
    size_t n = split_csv(line, f, 64);
    for (int c = 0; c < NCOLS; c++) {
        col[c] = -1;
        for (size_t i = 0; i < n; i++)
            if (strcmp(f[i], COLUMNS[c]) == 0) col[c] = (int)i;
        if (col[c] < 0)
            return TS_FAIL(err, cap,
                           "%s: no column '%s' in the header; a scorecard has variable, level, lead_hours, metric, "
                           "system, value, ci_low, ci_high",
                           path, COLUMNS[c]);
    }
    return 0;
}

static int parse_row(const char *path, char *line, size_t lineno, const int *col, ts_score_row *r, char *err,
                     size_t cap) {
    char *f[64];
    size_t n = split_csv(line, f, 64);
    for (int c = 0; c < NCOLS; c++)
        if ((size_t)col[c] >= n)
            return TS_FAIL(err, cap, "%s:%zu: %zu fields, the header names %d columns", path, lineno, n, NCOLS);
    score_variable(f[col[COL_VAR]], f[col[COL_LEVEL]], r->var, sizeof r->var);
    snprintf(r->metric, sizeof r->metric, "%s", f[col[COL_METRIC]]);
    snprintf(r->system, sizeof r->system, "%s", f[col[COL_SYSTEM]]);
    r->line = lineno;
    if (parse_number(f[col[COL_LEAD]], &r->lead) || !isfinite(r->lead))
        return TS_FAIL(err, cap, "%s:%zu: lead_hours '%s' is not a number", path, lineno, f[col[COL_LEAD]]);
    static const int NUM[] = {COL_VALUE, COL_LO, COL_HI};
    double *dst[] = {&r->value, &r->lo, &r->hi};
    for (int k = 0; k < 3; k++)
        if (parse_number(f[col[NUM[k]]], dst[k]))
            return TS_FAIL(err, cap, "%s:%zu: %s '%s' is not a number", path, lineno, COLUMNS[NUM[k]], f[col[NUM[k]]]);
    if (!r->var[0] || !r->metric[0] || !r->system[0])
        return TS_FAIL(err, cap, "%s:%zu: variable, metric and system must not be empty", path, lineno);
    return 0;
}

/* Variable, then metric (in METRICS order), then system (SYSTEMS order),
 * then lead: each chart's rows, and each series' points, are contiguous. */
static int cmp_rows(const void *pa, const void *pb) {
    const ts_score_row *a = pa, *b = pb;
    int c = strcmp(a->var, b->var);
    if (c) return c;
    int ma = ts_score_metric_rank(a->metric), mb = ts_score_metric_rank(b->metric);
    if (ma != mb) return ma - mb;
    if ((c = strcmp(a->metric, b->metric))) return c;
    int sa = ts_score_system_rank(a->system), sb = ts_score_system_rank(b->system);
    if (sa != sb) return sa - sb;
    if ((c = strcmp(a->system, b->system))) return c;
    return (a->lead > b->lead) - (a->lead < b->lead);
}

int ts_scorecard_csv_read(const char *path, ts_scorecard_csv *sc, char *err, size_t cap) {
    memset(sc, 0, sizeof *sc);
    FILE *fp = fopen(path, "r");
    if (!fp) return TS_FAIL(err, cap, "%s: cannot open the scorecard: %s", path, strerror(errno));
    char *line = NULL;
    size_t lcap = 0, rows_cap = 0, lineno = 0;
    int col[NCOLS], rc = 0;
    if (getline(&line, &lcap, fp) < 0) {
        rc = TS_FAIL(err, cap, "%s: empty file; a scorecard has a header line", path);
    } else {
        lineno++;
        rc = header_columns(path, line, col, err, cap);
    }
    while (rc == 0 && getline(&line, &lcap, fp) >= 0) {
        lineno++;
        if (line[strspn(line, " \r\n")] == '\0') continue; /* blank line */
        if (sc->n == rows_cap) {
            rows_cap = rows_cap ? 2 * rows_cap : 256;
            ts_score_row *p = realloc(sc->rows, rows_cap * sizeof *p);
            if (!p) ts_fatal("out of memory reading %s", path);
            sc->rows = p;
        }
        rc = parse_row(path, line, lineno, col, &sc->rows[sc->n++], err, cap);
    }
    free(line);
    fclose(fp);
    if (rc == 0 && sc->n == 0) rc = TS_FAIL(err, cap, "%s: no rows under the header", path);
    if (rc == 0) qsort(sc->rows, sc->n, sizeof *sc->rows, cmp_rows);
    for (size_t i = 1; rc == 0 && i < sc->n; i++) {
        const ts_score_row *a = &sc->rows[i - 1], *b = &sc->rows[i];
        if (!strcmp(a->var, b->var) && !strcmp(a->metric, b->metric) && !strcmp(a->system, b->system) &&
            a->lead == b->lead)
            rc = TS_FAIL(err, cap, "%s:%zu: a second row for %s %s %s at lead %g h (the first is line %zu)", path,
                         a->line > b->line ? a->line : b->line, b->var, b->metric, b->system, b->lead,
                         a->line < b->line ? a->line : b->line);
    }
    if (rc) ts_scorecard_csv_free(sc);
    return rc;
}

void ts_scorecard_csv_free(ts_scorecard_csv *sc) {
    free(sc->rows);
    sc->rows = NULL, sc->n = 0;
}
