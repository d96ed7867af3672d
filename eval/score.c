/* WeatherBench-2 metrics over arrays, their aggregation and bootstrap over
 * initial times, and the scorecard files and table. See score.h and
 * docs/score.md. */
#include "eval/score.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/rng.h"

const char *const TS_METRIC_NAMES[TS_METRIC_COUNT] = {"rmse", "acc", "crps", "spread_skill"};

/* ---- per initial time ------------------------------------------------------------------- */

/* One field's arrays, as the row functions below see them. */
typedef struct {
    const float *ens; /* (m, nlat, nlon) */
    size_t m, nlat, nlon;
    const float *truth; /* (nlat, nlon) */
    const float *clim;  /* (nlat, nlon), ACC only */
} field_view;

/* A row's sums: row i of v into out[0..width), with scratch of max(nlon, m) doubles. */
typedef void (*row_fn)(const field_view *v, size_t i, double *scratch, double *out);

/* Rows in parallel, each into its own slot of rows (nlat, width); the
 * caller combines the slots in row order, so a result does not depend on
 * the thread count. */
static void for_rows(row_fn fn, const field_view *v, double *rows, size_t width) {
    size_t cap = v->nlon > v->m ? v->nlon : v->m;
    /* Small fields cost less than waking the threads. */
    int parallel = v->nlat * v->nlon * v->m > 65536;
#pragma omp parallel if (parallel)
    {
        double *scratch = ts_malloc(cap * sizeof *scratch); /* (max(nlon, m)) */
#pragma omp for schedule(static)
        for (size_t i = 0; i < v->nlat; i++) fn(v, i, scratch, rows + i * width);
        free(scratch);
    }
}

/* sum_i w_i row_sum_i / (nlat nlon), rows (nlat, width) read at column col. */
static double weighted_total(const double *rows, size_t width, size_t col, const double *w, size_t nlat, size_t nlon) {
    double s = 0;
    for (size_t i = 0; i < nlat; i++) s += w[i] * rows[i * width + col];
    return s / ((double)nlat * (double)nlon);
}

/* Ensemble mean of row i into mean (nlon). Members outer, so each member's
 * row is read contiguously. */
static void row_mean(const field_view *v, size_t i, double *mean) {
    for (size_t j = 0; j < v->nlon; j++) mean[j] = 0;
    for (size_t k = 0; k < v->m; k++) {
        const float *x = v->ens + (k * v->nlat + i) * v->nlon;
        for (size_t j = 0; j < v->nlon; j++) mean[j] += x[j];
    }
    for (size_t j = 0; j < v->nlon; j++) mean[j] /= (double)v->m;
}

static void mse_row(const field_view *v, size_t i, double *mean, double *out) {
    row_mean(v, i, mean);
    const float *y = v->truth + i * v->nlon;
    double s = 0;
    for (size_t j = 0; j < v->nlon; j++) s += (mean[j] - y[j]) * (mean[j] - y[j]);
    out[0] = s;
}

/* out: sum f'o', sum f'^2, sum o'^2 */
static void acc_row(const field_view *v, size_t i, double *mean, double *out) {
    row_mean(v, i, mean);
    const float *y = v->truth + i * v->nlon, *c = v->clim + i * v->nlon;
    double fo = 0, ff = 0, oo = 0;
    for (size_t j = 0; j < v->nlon; j++) {
        double f = mean[j] - c[j], o = y[j] - c[j];
        fo += f * o, ff += f * f, oo += o * o;
    }
    out[0] = fo, out[1] = ff, out[2] = oo;
}

/* Insertion sort: ensembles are small, and this is allocation-free. */
static void sort_small(double *x, size_t n) {
    for (size_t i = 1; i < n; i++) {
        double v = x[i];
        size_t k = i;
        while (k > 0 && x[k - 1] > v) x[k] = x[k - 1], k--;
        x[k] = v;
    }
}

/* Fair CRPS at one point from its m members x (sorted in place). For sorted
 * x, sum_{i<j} (x_j - x_i) = sum_k x_k (2k - m + 1), so the spread term costs
 * a sort instead of m^2 differences; sum_{i != j} is twice that. */
static double crps_point(double *x, size_t m, double y) {
    double skill = 0;
    for (size_t k = 0; k < m; k++) skill += fabs(x[k] - y);
    skill /= (double)m;
    if (m < 2) return skill;
    sort_small(x, m);
    double pairs = 0;
    for (size_t k = 0; k < m; k++) pairs += x[k] * (2.0 * (double)k - (double)m + 1.0);
    return skill - pairs / ((double)m * (double)(m - 1));
}

static void crps_row(const field_view *v, size_t i, double *x, double *out) {
    size_t npix = v->nlat * v->nlon;
    double s = 0;
    for (size_t j = 0; j < v->nlon; j++) {
        size_t p = i * v->nlon + j;
        for (size_t k = 0; k < v->m; k++) x[k] = v->ens[k * npix + p];
        s += crps_point(x, v->m, v->truth[p]);
    }
    out[0] = s;
}

static void var_row(const field_view *v, size_t i, double *mean, double *out) {
    row_mean(v, i, mean);
    double s = 0;
    for (size_t k = 0; k < v->m; k++) {
        const float *x = v->ens + (k * v->nlat + i) * v->nlon;
        for (size_t j = 0; j < v->nlon; j++) s += (x[j] - mean[j]) * (x[j] - mean[j]);
    }
    out[0] = s / (double)(v->m - 1);
}

/* The weighted spatial mean of a one-number-per-row function. */
static double weighted_mean_of(row_fn fn, const field_view *v, const double *w) {
    double *rows = ts_malloc(v->nlat * sizeof *rows); /* (nlat) */
    for_rows(fn, v, rows, 1);
    double mean = weighted_total(rows, 1, 0, w, v->nlat, v->nlon);
    free(rows);
    return mean;
}

double ts_score_mse(const float *ens, size_t m, const float *truth, const double *w, size_t nlat, size_t nlon) {
    field_view v = {ens, m, nlat, nlon, truth, NULL};
    return weighted_mean_of(mse_row, &v, w);
}

double ts_score_vector_mse(const float *ens_u, const float *ens_v, size_t m, const float *truth_u, const float *truth_v,
                           const double *w, size_t nlat, size_t nlon) {
    /* The mean of du^2 + dv^2 is the sum of the two components' MSEs. */
    return ts_score_mse(ens_u, m, truth_u, w, nlat, nlon) + ts_score_mse(ens_v, m, truth_v, w, nlat, nlon);
}

double ts_score_acc(const float *ens, size_t m, const float *truth, const float *clim, const double *w, size_t nlat,
                    size_t nlon) {
    field_view v = {ens, m, nlat, nlon, truth, clim};
    double *rows = ts_malloc(3 * nlat * sizeof *rows); /* (nlat, 3) */
    for_rows(acc_row, &v, rows, 3);
    double fo = weighted_total(rows, 3, 0, w, nlat, nlon), ff = weighted_total(rows, 3, 1, w, nlat, nlon);
    double oo = weighted_total(rows, 3, 2, w, nlat, nlon);
    free(rows);
    if (!(ff > 0) || !(oo > 0)) return NAN;
    return fo / sqrt(ff * oo);
}

double ts_score_crps(const float *ens, size_t m, const float *truth, const double *w, size_t nlat, size_t nlon) {
    field_view v = {ens, m, nlat, nlon, truth, NULL};
    return weighted_mean_of(crps_row, &v, w);
}

double ts_score_ens_var(const float *ens, size_t m, const double *w, size_t nlat, size_t nlon) {
    if (m < 2) return NAN;
    field_view v = {ens, m, nlat, nlon, NULL, NULL};
    return weighted_mean_of(var_row, &v, w);
}

void ts_wind_speed(const float *u, const float *v, size_t n, float *speed) {
    for (size_t k = 0; k < n; k++) speed[k] = (float)sqrt((double)u[k] * u[k] + (double)v[k] * v[k]);
}

/* ---- over initial times ------------------------------------------------------------------- */

static double mean_over(const double *a, const size_t *idx, size_t n) {
    double s = 0;
    for (size_t k = 0; k < n; k++) s += a[idx ? idx[k] : k];
    return s / (double)n;
}

double ts_score_aggregate(ts_metric metric, const double *a, const double *b, const size_t *idx, size_t n) {
    if (n == 0) return NAN;
    switch (metric) {
    case TS_METRIC_RMSE: return sqrt(mean_over(a, idx, n));
    case TS_METRIC_ACC:
    case TS_METRIC_CRPS: return mean_over(a, idx, n);
    case TS_METRIC_SPREAD_SKILL: return sqrt(mean_over(b, idx, n)) / sqrt(mean_over(a, idx, n));
    default: return NAN;
    }
}

void ts_bootstrap_indices(uint64_t seed, size_t nboot, size_t n, size_t *idx) {
    ts_rng_key key = ts_rng_key_make(seed, TS_SCORE_RNG_PURPOSE);
    for (size_t r = 0; r < nboot; r++)
        for (size_t k = 0; k < n; k++) {
            /* u < 1 always, so floor(n u) < n; the min guards the float product. */
            size_t i = (size_t)((double)ts_rng_uniform1(key, r, k) * (double)n);
            idx[r * n + k] = i < n ? i : n - 1;
        }
}

double ts_percentile(const double *sorted, size_t n, double p) {
    if (n == 0) return NAN;
    double h = (double)(n - 1) * p / 100.0;
    size_t lo = (size_t)floor(h);
    if (lo + 1 >= n) return sorted[n - 1];
    return sorted[lo] + (h - (double)lo) * (sorted[lo + 1] - sorted[lo]);
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

void ts_bootstrap_interval(ts_metric metric, const double *a, const double *b, size_t n, const size_t *idx,
                           size_t nboot, double *lo, double *hi) {
    *lo = *hi = NAN;
    if (nboot == 0 || n == 0) return;
    double *stat = ts_malloc(nboot * sizeof *stat); /* (nboot) */
    for (size_t r = 0; r < nboot; r++) stat[r] = ts_score_aggregate(metric, a, b, idx + r * n, n);
    for (size_t r = 0; r < nboot; r++)
        if (isnan(stat[r])) {
            free(stat);
            return;
        }
    qsort(stat, nboot, sizeof *stat, cmp_double);
    *lo = ts_percentile(stat, nboot, 2.5);
    *hi = ts_percentile(stat, nboot, 97.5);
    free(stat);
}

/* ---- the scorecard files ------------------------------------------------------------------ */

static int card_fail(char *err, size_t errcap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int card_fail(char *err, size_t errcap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (err && errcap) vsnprintf(err, errcap, fmt, ap);
    va_end(ap);
    return -1;
}

/* A number as the CSV writes it: 10 significant digits, "" for NaN. */
static void csv_number(char *buf, size_t cap, double x) {
    if (isnan(x))
        buf[0] = '\0';
    else
        snprintf(buf, cap, "%.10g", x);
}

static void json_number(char *buf, size_t cap, double x) {
    if (!isfinite(x))
        snprintf(buf, cap, "null");
    else
        snprintf(buf, cap, "%.10g", x);
}

/* Written to path + ".part" and renamed, so a reader never sees half a scorecard. */
static int finish_file(FILE *f, const char *tmp, const char *path, char *err, size_t errcap) {
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        remove(tmp);
        return card_fail(err, errcap, "%s: write failed: %s", tmp, strerror(errno));
    }
    if (rename(tmp, path) != 0)
        return card_fail(err, errcap, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
    return 0;
}

int ts_scorecard_write_csv(const char *path, const ts_score_row *rows, size_t n, char *err, size_t errcap) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.part", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return card_fail(err, errcap, "%s: cannot write the scorecard: %s", tmp, strerror(errno));
    fprintf(f, "variable,level,lead_hours,metric,system,value,ci_low,ci_high\n");
    for (size_t k = 0; k < n; k++) {
        const ts_score_row *r = &rows[k];
        char lev[32], lead[32], v[32], lo[32], hi[32];
        csv_number(lev, sizeof lev, r->level);
        snprintf(lead, sizeof lead, "%.10g", r->lead_hours);
        csv_number(v, sizeof v, r->value), csv_number(lo, sizeof lo, r->ci_low), csv_number(hi, sizeof hi, r->ci_high);
        fprintf(f, "%s,%s,%s,%s,%s,%s,%s,%s\n", r->variable, lev, lead, TS_METRIC_NAMES[r->metric], r->system, v, lo,
                hi);
    }
    return finish_file(f, tmp, path, err, errcap);
}

int ts_scorecard_write_jsonl(const char *path, const ts_score_row *rows, size_t n, char *err, size_t errcap) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.part", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return card_fail(err, errcap, "%s: cannot write the scorecard: %s", tmp, strerror(errno));
    for (size_t k = 0; k < n; k++) {
        const ts_score_row *r = &rows[k];
        char var[96], sys[192], lev[32], v[32], lo[32], hi[32];
        ts_json_escape(var, sizeof var, r->variable);
        ts_json_escape(sys, sizeof sys, r->system);
        json_number(lev, sizeof lev, r->level);
        json_number(v, sizeof v, r->value), json_number(lo, sizeof lo, r->ci_low),
            json_number(hi, sizeof hi, r->ci_high);
        fprintf(f,
                "{\"variable\":\"%s\",\"level\":%s,\"lead_hours\":%.10g,\"metric\":\"%s\",\"system\":\"%s\","
                "\"value\":%s,\"ci_low\":%s,\"ci_high\":%s}\n",
                var, lev, r->lead_hours, TS_METRIC_NAMES[r->metric], sys, v, lo, hi);
    }
    return finish_file(f, tmp, path, err, errcap);
}

/* ---- the table ---------------------------------------------------------------------------- */

/* REFERENCE.md's headline variables, by the labels the driver gives them. */
static const char *const HEADLINE[] = {"z500", "t850", "q700", "wv850", "t2m", "ws10", "msl"};
enum { NHEADLINE = sizeof HEADLINE / sizeof HEADLINE[0] };

static const ts_score_row *find_row(const ts_score_row *rows, size_t n, const char *label, double lead,
                                    ts_metric metric, const char *system) {
    for (size_t k = 0; k < n; k++)
        if (rows[k].metric == metric && rows[k].lead_hours == lead && strcmp(rows[k].label, label) == 0 &&
            strcmp(rows[k].system, system) == 0)
            return &rows[k];
    return NULL;
}

static int has_label(const ts_score_row *rows, size_t n, const char *label) {
    for (size_t k = 0; k < n; k++)
        if (strcmp(rows[k].label, label) == 0) return 1;
    return 0;
}

/* "-12.3%", or "n/a" where the baseline has no such row or is 0, or (for
 * ACC) is not positive: dividing by a negative correlation would flip the
 * sign convention, positive = better. */
static void relative(char *buf, size_t cap, const ts_score_row *sys, const ts_score_row *base) {
    if (!base || !(fabs(base->value) > 0) || !isfinite(sys->value) || !isfinite(base->value) ||
        (sys->metric == TS_METRIC_ACC && !(base->value > 0)))
        snprintf(buf, cap, "n/a");
    else if (sys->metric == TS_METRIC_SPREAD_SKILL) /* nearer 1 is better, not lower: show the ratio itself */
        snprintf(buf, cap, "(%.3g)", base->value);
    else
        snprintf(buf, cap, "%+.1f%%", 100.0 * (sys->value - base->value) / base->value);
}

static void print_header(FILE *f, const char *system, const char *const *baselines, size_t nb) {
    fprintf(f,
            "\nScorecard of %s: value [95%% bootstrap interval over initial times] and relative skill\n"
            "100 * (%s - baseline) / baseline. RMSE, CRPS: negative is better. ACC: positive is better\n"
            "(n/a where the baseline's ACC is not positive). spread_skill: the raw ratio, nearer 1 is\n"
            "better (a calibrated M-member ensemble expects sqrt(M/(M+1)), 0.94 for M = 8), and the\n"
            "baseline columns show the baseline's own ratio in parentheses. Formulas: docs/score.md.\n\n",
            system, system);
    fprintf(f, "%-8s %7s %-12s %-36s", "variable", "lead_h", "metric", system);
    for (size_t b = 0; b < nb; b++) fprintf(f, " %16.16s", baselines[b]);
    fprintf(f, "\n");
}

static void print_row(FILE *f, const ts_score_row *r, const ts_score_row *rows, size_t n, const char *const *baselines,
                      size_t nb) {
    char val[64];
    if (isnan(r->ci_low))
        snprintf(val, sizeof val, "%.5g", r->value);
    else
        snprintf(val, sizeof val, "%.5g [%.5g, %.5g]", r->value, r->ci_low, r->ci_high);
    fprintf(f, "%-8s %7g %-12s %-36s", r->label, r->lead_hours, TS_METRIC_NAMES[r->metric], val);
    for (size_t b = 0; b < nb; b++) {
        char rel[32];
        relative(rel, sizeof rel, r, find_row(rows, n, r->label, r->lead_hours, r->metric, baselines[b]));
        fprintf(f, " %16s", rel);
    }
    fprintf(f, "\n");
}

/* Every row of `system` with this label, in scorecard order (lead, metric). */
static void print_label(FILE *f, const char *label, const ts_score_row *rows, size_t n, const char *system,
                        const char *const *baselines, size_t nb) {
    for (size_t k = 0; k < n; k++)
        if (strcmp(rows[k].label, label) == 0 && strcmp(rows[k].system, system) == 0)
            print_row(f, &rows[k], rows, n, baselines, nb);
}

void ts_scorecard_print(FILE *f, const ts_score_row *rows, size_t n, const char *system, const char *const *baselines,
                        size_t nbaselines) {
    print_header(f, system, baselines, nbaselines);
    int any = 0;
    for (size_t h = 0; h < NHEADLINE; h++)
        if (has_label(rows, n, HEADLINE[h])) {
            print_label(f, HEADLINE[h], rows, n, system, baselines, nbaselines);
            any = 1;
        }
    if (!any) /* no headline variable: every label, in order of first appearance */
        for (size_t k = 0; k < n; k++) {
            int seen = 0;
            for (size_t q = 0; q < k && !seen; q++) seen = strcmp(rows[q].label, rows[k].label) == 0;
            if (!seen) print_label(f, rows[k].label, rows, n, system, baselines, nbaselines);
        }
    fprintf(f, "\n%zu rows in all (every variable, level, lead, metric and system) are in the scorecard files.\n", n);
}
