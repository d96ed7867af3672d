#include "forecast/data.h"
#include "core/caltime.h"
#include "core/log.h"

#include <string.h>

ts_era5_dataset *ts_open_data(const ts_config *cfg, size_t row_multiple) {
    char err[1024];
    const char *files = ts_config_str(cfg, "data.files");
    if (!*files) ts_usage_error("data.files is empty: name the ERA5 NetCDF files (globs allowed)");
    char **paths;
    size_t npaths;
    if (ts_era5_expand_files(files, &paths, &npaths, err, sizeof err)) ts_usage_error("%s", err);
    ts_era5_open_opts opts;
    ts_era5_opts_from_config(cfg, &opts);
    opts.row_multiple = row_multiple;
    ts_era5_dataset *ds = ts_era5_open((const char *const *)paths, npaths, &opts, err, sizeof err);
    ts_era5_free_paths(paths, npaths);
    /* The row rule's refusal (model.window against the grid's rows) is the
     * configuration's fault, like a window that does not divide the columns;
     * every other failure is the files'. */
    if (!ds && strncmp(err, "data.row_rule=", strlen("data.row_rule=")) == 0) ts_usage_error("%s", err);
    if (!ds) ts_fatal("%s", err);
    return ds;
}

void ts_swin_config_from(const ts_config *cfg, int H, int W, int c_in, int c_out, ts_swin_config *mc) {
    *mc = (ts_swin_config){.H = H,
                           .W = W,
                           .window = (int)ts_config_int(cfg, "model.window"),
                           .c_in = c_in,
                           .c_out = c_out,
                           .dim = (int)ts_config_int(cfg, "model.dim"),
                           .heads = (int)ts_config_int(cfg, "model.heads"),
                           .hidden = (int)ts_config_int(cfg, "model.hidden"),
                           .depth = (int)ts_config_int(cfg, "model.depth"),
                           .t_freq = (int)ts_config_int(cfg, "model.t_freq"),
                           .shift_group = strcmp(ts_config_str(cfg, "model.shift"), "stage") == 0
                                              ? (int)ts_config_int(cfg, "model.shift_every")
                                              : 1};
}

int64_t ts_config_time(const ts_config *cfg, const char *key, int64_t fallback) {
    const char *text = ts_config_str(cfg, key);
    int64_t t;
    if (!*text) return fallback;
    if (ts_parse_datetime(text, &t)) ts_usage_error("%s = '%s' is not a date (YYYY-MM-DD[THH])", key, text);
    return t;
}
