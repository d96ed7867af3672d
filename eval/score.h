/* WeatherBench-2 scores of ensemble forecasts (REFERENCE.md, "WeatherBench 2
 * metrics"; docs/score.md has every formula).
 *
 * Three layers, each usable alone:
 *  - per initial time: plain functions over one field's arrays (members,
 *    truth, climatology, latitude weights) returning one number each;
 *  - over initial times: the aggregate of those numbers (MSE averaged
 *    before the square root, ACC and CRPS averaged) and its bootstrap
 *    interval over initial times;
 *  - the scorecard: rows (variable, level, lead_hours, metric, system,
 *    value, ci_low, ci_high) written as CSV and JSON lines, and the readable
 *    table of relative skill.
 * The driver that reads forecast, truth and statistics files and fills the
 * scorecard is ts_score_run, defined in eval/scorecard.c.
 *
 * Fields are (nlat, nlon) row-major, latitude rows matching the weights;
 * ensembles are (m, nlat, nlon), member-major. `w` is (nlat) latitude weights
 * of mean 1 (core/geo.h, ts_lat_area_weights), so a weighted spatial mean is
 * sum_i w_i sum_j x_ij / (nlat nlon). Sums are in double.
 */
#ifndef TESSERA_EVAL_SCORE_H
#define TESSERA_EVAL_SCORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/rng.h"
#include "io/era5_read.h"

/* ---- per initial time ------------------------------------------------------------------- */

/* Weighted spatial mean of (ensemble mean - truth)^2. */
double ts_score_mse(const float *ens, size_t m, const float *truth, const double *w, size_t nlat, size_t nlon);
/* Vector wind error: weighted spatial mean of (u_mean - u)^2 + (v_mean - v)^2. */
double ts_score_vector_mse(const float *ens_u, const float *ens_v, size_t m, const float *truth_u,
                           const float *truth_v, const double *w, size_t nlat, size_t nlon);
/* Anomaly correlation of the ensemble mean: mean(f' o') / sqrt(mean(f'^2) mean(o'^2)), weighted means,
 * f' = ensemble mean - clim, o' = truth - clim (not re-centred, as WB2). NaN when either anomaly is 0
 * everywhere (a climatology forecast has no anomaly to correlate). */
double ts_score_acc(const float *ens, size_t m, const float *truth, const float *clim, const double *w,
                    size_t nlat, size_t nlon);
/* Fair CRPS, weighted spatial mean of E|X - y| - 1/(2m(m-1)) sum_{i != j} |X_i - X_j|;
 * for m = 1 the second term is absent and this is the mean absolute error. */
double ts_score_crps(const float *ens, size_t m, const float *truth, const double *w, size_t nlat, size_t nlon);
/* Weighted spatial mean of the ensemble variance with ddof 1; NaN for m < 2. */
double ts_score_ens_var(const float *ens, size_t m, const double *w, size_t nlat, size_t nlon);
/* speed[k] = sqrt(u[k]^2 + v[k]^2), k < n. */
void ts_wind_speed(const float *u, const float *v, size_t n, float *speed);

/* ---- over initial times ------------------------------------------------------------------- */

typedef enum { TS_METRIC_RMSE = 0, TS_METRIC_ACC, TS_METRIC_CRPS, TS_METRIC_SPREAD_SKILL, TS_METRIC_COUNT } ts_metric;
extern const char *const TS_METRIC_NAMES[TS_METRIC_COUNT]; /* "rmse", "acc", "crps", "spread_skill" */

/* The statistic of per-init values, over the inits idx[0..n) (idx NULL: 0..n-1):
 *   rmse          sqrt(mean a)              a = MSE per init
 *   acc, crps     mean a                    a = ACC or CRPS per init
 *   spread_skill  sqrt(mean b) / sqrt(mean a)   a = MSE, b = ensemble variance per init */
double ts_score_aggregate(ts_metric metric, const double *a, const double *b, const size_t *idx, size_t n);

/* Purpose of the bootstrap's counter-RNG draws: the next purpose after
 * core/rng.h's six (docs/rng.md lists 0-6), reserved for this use. */
enum { TS_SCORE_RNG_PURPOSE = TS_RNG_BOOTSTRAP };

/* Resamples of n initial times with replacement: idx[r * n + k] =
 * floor(n * u) with u = ts_rng_uniform1(key(seed, TS_SCORE_RNG_PURPOSE),
 * stream r, index k). The same resamples serve every variable, lead, metric
 * and system, so their intervals are paired. */
void ts_bootstrap_indices(uint64_t seed, size_t nboot, size_t n, size_t *idx /* (nboot, n) */);
/* The 2.5th and 97.5th percentiles (numpy's default linear interpolation)
 * of the statistic over the nboot resamples. NaN when nboot is 0. */
void ts_bootstrap_interval(ts_metric metric, const double *a, const double *b, size_t n, const size_t *idx,
                           size_t nboot, double *lo, double *hi);
/* Percentile p in [0, 100] of sorted x[0..n), numpy's "linear" method. */
double ts_percentile(const double *sorted, size_t n, double p);

/* ---- the scorecard ------------------------------------------------------------------------- */

typedef struct {
    char label[64];     /* how the table names it: "z500", "t2m", "ws10", "wv850" */
    char variable[64];  /* CSV variable: "z", "t2m", "ws10", "wv850" */
    double level;       /* hPa; NaN for surface variables (empty in the CSV) */
    double lead_hours;
    ts_metric metric;
    char system[64];    /* "tessera", "persistence", "climatology", "perfect_model", ... */
    double value, ci_low, ci_high; /* NaN: none (empty in the CSV, null in JSON) */
} ts_score_row;

/* `variable,level,lead_hours,metric,system,value,ci_low,ci_high`, one row a line. 0 or -1 with err. */
int ts_scorecard_write_csv(const char *path, const ts_score_row *rows, size_t n, char *err, size_t errcap);
/* The same rows as JSON objects, one a line. */
int ts_scorecard_write_jsonl(const char *path, const ts_score_row *rows, size_t n, char *err, size_t errcap);
/* The readable table: per variable x lead x metric, `system`'s value and
 * interval and 100 (system - baseline) / baseline for each baseline. Shows
 * the headline variables of REFERENCE.md that are present (all variables
 * when none is). */
void ts_scorecard_print(FILE *f, const ts_score_row *rows, size_t n, const char *system,
                        const char *const *baselines, size_t nbaselines);

/* ---- the driver (eval/scorecard.c) ------------------------------------------------------ */

typedef struct {
    const char *name; /* system name in the scorecard */
    const char *path; /* ensemble forecast file, layout of docs/forecast-format.md */
} ts_score_system;

/* Each system has a name and a path; names are distinct, not a built-in
 * baseline's, at most 63 characters without commas, quotes, backslashes or
 * newlines. Returns 0, or -1 with one line in err. */
int ts_score_check_systems(const ts_score_system *sys, size_t n, char *err, size_t errcap);

typedef struct {
    const ts_score_system *systems; /* (nsystems) systems[0] is the one the table compares; the others are
                                       more ensembles (the perfect-model baseline) scored on its cases */
    size_t nsystems;
    const char *const *truth_paths; /* (ntruth) ERA5-format files holding every init and valid time */
    size_t ntruth;
    ts_era5_fill fill;               /* how the truth is read: data.fill, data.grid, data.row_rule */
    ts_era5_target_grid grid;
    ts_era5_row_rule row_rule;
    const char *stats_path;          /* tessera stats file: the climatology */
    size_t nboot;                    /* bootstrap resamples; 0: no intervals */
    uint64_t seed;
    const char *out_dir;             /* scorecard.csv and scorecard.jsonl go here */
    FILE *table;                     /* where the table is printed; NULL: nowhere */
} ts_score_opts;

/* Score every channel (and ws10, wv<level>) of systems[0] for every lead,
 * with persistence and climatology baselines and the other systems, and
 * write the scorecard. On success *rows_out and *nrows_out (when not NULL)
 * receive the rows (free with free()). Returns 0 or -1 with one line in err. */
int ts_score_run(const ts_score_opts *opts, ts_score_row **rows_out, size_t *nrows_out, char *err, size_t errcap);

#endif
