/* Learning curves from training logs (tessera.jsonl): every numeric
 * "val_*" field of the train_step and validation events (validation loss, validation
 * skill per channel, mesh rollout errors) against wall-clock minutes since
 * the log's first train_begin event, one PNG per field, one line
 * per log. */
#include "eval/plot_curves.h"
#include "eval/plot.h"
#include "core/log.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_LOGS = 16, MAX_METRICS = 32, NAME_CAP = 64, LABEL_CAP = 128 };

typedef struct {
    char label[LABEL_CAP];
    size_t n, cap;
    double *minutes;        /* (n) */
    double *value;          /* (n, MAX_METRICS), NaN where a row lacks the field */
} run_log;

typedef struct {
    char name[MAX_METRICS][NAME_CAP];
    size_t n;
} metric_set;

static int metric_index(metric_set *m, const char *name, size_t len) {
    for (size_t i = 0; i < m->n; i++)
        if (strlen(m->name[i]) == len && strncmp(m->name[i], name, len) == 0) return (int)i;
    if (m->n == MAX_METRICS || len >= NAME_CAP) return -1;
    snprintf(m->name[m->n], NAME_CAP, "%.*s", (int)len, name);
    return (int)m->n++;
}

/* The number after "key": in line, or NaN when absent or not a number. */
static double number_field(const char *line, const char *key) {
    char pat[NAME_CAP + 4];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    if (!p) return NAN;
    p += strlen(pat);
    char *end;
    double v = strtod(p, &end);
    return end == p ? NAN : v;
}

static void add_row(run_log *r, double minutes) {
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 64;
        r->minutes = realloc(r->minutes, sizeof(double) * r->cap);
        r->value = realloc(r->value, sizeof(double) * r->cap * MAX_METRICS);
        if (!r->minutes || !r->value) ts_fatal("out of memory reading a training log");
    }
    r->minutes[r->n] = minutes;
    for (int k = 0; k < MAX_METRICS; k++) r->value[r->n * MAX_METRICS + (size_t)k] = NAN;
    r->n++;
}

static int read_log(const char *path, run_log *r, metric_set *m, char *err, size_t cap) {
    FILE *f = fopen(path, "r");
    if (!f) {
        return TS_FAIL(err, cap, "%s: cannot open the training log", path);
    }
    char *line = NULL;
    size_t lcap = 0;
    double t0 = NAN;
    int started = 0;
    size_t lines = 0, values = 0;
    while (getline(&line, &lcap, f) > 0) {
        lines++;
        double t = number_field(line, "t");
        /* minutes count from the first training loop's start (a log may
         * hold stats or a demo's other stages before it) */
        if (!started && !isnan(t) && strstr(line, "\"event\":\"train_begin\""))
            t0 = t, started = 1;
        if (isnan(t0) && !isnan(t)) t0 = t;
        if (!strstr(line, "\"event\":\"train_step\"") && !strstr(line, "\"event\":\"validation\"")) continue;
        int any = 0;
        for (const char *p = strstr(line, "\"val_"); p; p = strstr(p + 1, "\"val_")) {
            const char *name = p + 1, *q = strchr(name, '"');
            if (!q || q[1] != ':') continue;
            char *end;
            double v = strtod(q + 2, &end);
            if (end == q + 2 || !isfinite(v)) continue; /* "val_loss":"0" marks a step without validation */
            int k = metric_index(m, name, (size_t)(q - name));
            if (k < 0) continue;
            if (!any) add_row(r, (t - t0) / 60.0), any = 1;
            r->value[(r->n - 1) * MAX_METRICS + (size_t)k] = v;
            values++;
        }
    }
    free(line);
    fclose(f);
    if (lines == 0 || isnan(t0)) {
        return TS_FAIL(err, cap, "%s: not a tessera JSON-lines log (no line with a time)", path);
    }
    if (values == 0) {
        return TS_FAIL(err, cap, "%s: no validation in this log (train with train.val_start, or mesh validation trajectories)",
                 path);
    }
    return 0;
}

/* A log's default label: the folder it lies in. */
static void folder_label(const char *path, char *buf, size_t cap) {
    const char *slash = strrchr(path, '/');
    const char *start = slash ? slash : path + strlen(path);
    const char *end = start;
    while (start > path && start[-1] != '/') start--;
    if (start == end) start = path, end = path + strlen(path); /* "tessera.jsonl" alone: the file name */
    size_t n = (size_t)(end - start);
    if (n >= cap) n = cap - 1;
    memcpy(buf, start, n);
    buf[n] = '\0';
}

static void describe(const char *metric, char *title, size_t tcap, char *ylabel, size_t ycap, double *ref) {
    *ref = NAN;
    if (strcmp(metric, "val_loss") == 0) {
        snprintf(title, tcap, "validation loss");
        snprintf(ylabel, ycap, "loss (objective's own units)");
    } else if (strncmp(metric, "val_skill", 9) == 0) {
        const char *ch = metric[9] == '_' ? metric + 10 : "mean over channels";
        snprintf(title, tcap, "one-step validation forecast, %s", ch);
        snprintf(ylabel, ycap, "RMSE / persistence RMSE");
        *ref = 1.0;
    } else if (strcmp(metric, "val_rollout") == 0) {
        snprintf(title, tcap, "validation rollout (mesh.val_rollout steps)");
        snprintf(ylabel, ycap, "RMSE / persistence RMSE");
        *ref = 1.0;
    } else {
        snprintf(title, tcap, "%s", metric);
        snprintf(ylabel, ycap, "%s", metric);
    }
}

int ts_plot_learning_curves(const char *const *logs, const char *const *labels, size_t nlogs, const char *dir,
                            void (*written)(const char *path), char *err, size_t cap) {
    run_log runs[MAX_LOGS];
    metric_set m = {.n = 0};
    size_t nruns = 0;
    int rc = 0;
    memset(runs, 0, sizeof runs);
    if (nlogs == 0 || nlogs > MAX_LOGS) {
        return TS_FAIL(err, cap, "plot.logs names %zu logs: give 1 to %d", nlogs, MAX_LOGS);
    }
    for (; nruns < nlogs; nruns++) {
        run_log *r = &runs[nruns];
        if (read_log(logs[nruns], r, &m, err, cap)) {
            rc = -1;
            nruns++;
            goto done;
        }
        if (labels && labels[nruns] && labels[nruns][0]) snprintf(r->label, LABEL_CAP, "%s", labels[nruns]);
        else folder_label(logs[nruns], r->label, LABEL_CAP);
    }
    for (size_t k = 0; k < m.n && rc == 0; k++) {
        ts_chart_series series[MAX_LOGS];
        double *xs[MAX_LOGS] = {0}, *ys[MAX_LOGS] = {0};
        size_t ns = 0;
        for (size_t i = 0; i < nruns; i++) {
            const run_log *r = &runs[i];
            size_t n = 0;
            xs[ns] = malloc(sizeof(double) * (r->n ? r->n : 1)), ys[ns] = malloc(sizeof(double) * (r->n ? r->n : 1));
            for (size_t j = 0; j < r->n; j++) {
                double v = r->value[j * MAX_METRICS + k];
                if (isnan(v)) continue;
                xs[ns][n] = r->minutes[j], ys[ns][n] = v, n++;
            }
            if (n == 0) {
                free(xs[ns]), free(ys[ns]);
                continue;
            }
            series[ns] = (ts_chart_series){r->label, ts_plot_series_colour(i), (int)(i % 4), n, xs[ns], ys[ns], NULL, NULL};
            ns++;
        }
        char title[160], ylabel[96], file[4200];
        double ref;
        describe(m.name[k], title, sizeof title, ylabel, sizeof ylabel, &ref);
        ts_chart_spec spec = {title, "wall-clock training time (minutes)", ylabel, ns, series, 0, ref,
                              isnan(ref) ? NULL : "persistence", NULL};
        snprintf(file, sizeof file, "%s/curve_%s.png", dir, m.name[k]);
        if (ts_plot_chart(file, &spec, err, cap)) rc = -1;
        else if (written) written(file);
        for (size_t i = 0; i < ns; i++) free(xs[i]), free(ys[i]);
    }
done:
    for (size_t i = 0; i < nruns; i++) free(runs[i].minutes), free(runs[i].value);
    return rc;
}
