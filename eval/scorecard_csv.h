/* Reading a scorecard CSV (docs/score.md: variable, level, lead_hours,
 * metric, system, value, ci_low, ci_high, in any column order, RFC 4180
 * quotes) for charts: rows sorted by variable, then metric (rmse, acc,
 * crps, spread_skill first), then system (tessera, persistence,
 * climatology, perfect_model first), then lead, so each chart's rows and
 * each series' points are contiguous. */
#ifndef TESSERA_EVAL_SCORECARD_CSV_H
#define TESSERA_EVAL_SCORECARD_CSV_H

#include <stddef.h>

enum { TS_SCORE_SYSTEMS = 4, TS_SCORE_METRICS = 4 };

typedef struct {
    char var[320]; /* variable with its level: "z500", "t2m" */
    char metric[64], system[64];
    double lead, value, lo, hi; /* lead in hours; NaN for an empty or "nan" cell */
    size_t line;                /* in the file, for messages */
} ts_score_row;

typedef struct {
    ts_score_row *rows;
    size_t n;
} ts_scorecard_csv;

/* 0, or -1 with one line in err naming the file (and line): it cannot be
 * opened, is empty, lacks a column, has a short row, a cell that is not a
 * number, an empty name, no rows, or two rows for one point. */
int ts_scorecard_csv_read(const char *path, ts_scorecard_csv *sc, char *err, size_t cap);
void ts_scorecard_csv_free(ts_scorecard_csv *sc);

/* The place of a known system or metric in the chart order (its colour and
 * marker), or TS_SCORE_SYSTEMS / TS_SCORE_METRICS for another. */
int ts_score_system_rank(const char *system);
int ts_score_metric_rank(const char *metric);

#endif
