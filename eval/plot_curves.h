/* Learning curves of training runs (tessera plot plot.logs=...). */
#ifndef TESSERA_EVAL_PLOT_CURVES_H
#define TESSERA_EVAL_PLOT_CURVES_H

#include <stddef.h>

/* logs (nlogs paths of tessera.jsonl, at most 16) and their legend names
 * (labels may be NULL, and an entry NULL or empty: the log's folder name
 * stands in). Draws dir/curve_<field>.png for every numeric "val_*" field
 * of the logs' train_step and validation events against wall-clock minutes
 * since each log's first train_begin event; calls written(path) for each
 * PNG. Returns 0, or -1 with one line in err naming the log or file. */
int ts_plot_learning_curves(const char *const *logs, const char *const *labels, size_t nlogs, const char *dir,
                            void (*written)(const char *path), char *err, size_t cap);

#endif
