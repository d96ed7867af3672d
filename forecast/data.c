#include "forecast/data.h"
#include "core/caltime.h"
#include "core/log.h"
#include "parallel/collective.h"

#include <stdlib.h>
#include <string.h>

enum { OPENED = 0, BAD_FILES = 1, BAD_CONFIG = 2 };

/* Open here; NULL with err and what went wrong (BAD_CONFIG, BAD_FILES). */
static ts_era5_dataset *open_here(const ts_config *cfg, size_t row_multiple, char *err, size_t cap, int *why) {
    const char *files = ts_config_str(cfg, "data.files");
    *why = BAD_CONFIG;
    if (!*files) return TS_FAIL(err, cap, "data.files is empty: name the ERA5 NetCDF files (globs allowed)"), NULL;
    char **paths;
    size_t npaths;
    if (ts_era5_expand_files(files, &paths, &npaths, err, cap)) return NULL;
    ts_era5_open_opts opts;
    ts_era5_opts_from_config(cfg, &opts);
    opts.row_multiple = row_multiple;
    ts_era5_dataset *ds = ts_era5_open((const char *const *)paths, npaths, &opts, err, cap);
    ts_era5_free_paths(paths, npaths);
    /* The row rule's refusal (model.window against the grid's rows) is the
     * configuration's fault, like a window that does not divide the columns;
     * every other failure is the files'. */
    *why = ds ? OPENED : strncmp(err, "data.row_rule=", strlen("data.row_rule=")) == 0 ? BAD_CONFIG : BAD_FILES;
    return ds;
}

ts_era5_dataset *ts_open_data(const ts_config *cfg, size_t row_multiple, const ts_layout *lay) {
    char err[1024] = "";
    int why = OPENED;
    const int root = !lay || lay->rank == 0, shared = lay && lay->world > 1;
    ts_era5_dataset *ds = root ? open_here(cfg, row_multiple, err, sizeof err, &why) : NULL;
    if (shared) { /* rank 0's outcome, and its metadata, to every rank */
        int64_t head[2] = {why, 0};
        void *bytes = NULL;
        size_t n = 0;
        if (root && ds) ts_era5_pack(ds, &bytes, &n);
        head[1] = (int64_t)n;
        ts_par_bcast_i64(lay, head, 2);
        ts_par_bcast_bytes(lay, err, sizeof err);
        why = (int)head[0], n = (size_t)head[1];
        if (why == OPENED) {
            if (!root) bytes = ts_malloc(n);
            ts_par_bcast_bytes(lay, bytes, n);
            if (!root && !(ds = ts_era5_unpack(bytes, n, err, sizeof err))) ts_fatal("%s", err);
        }
        free(bytes);
    }
    if (why == BAD_CONFIG) ts_usage_error("%s", err);
    if (why == BAD_FILES) ts_fatal("%s", err);
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

ts_swin_wp ts_swin_wp_of(const ts_layout *lay) {
    return (ts_swin_wp){.comm = lay->wp,
                        .wp_y = lay->size[TS_AXIS_WP_Y],
                        .wp_x = lay->size[TS_AXIS_WP_X],
                        .py = lay->coord[TS_AXIS_WP_Y],
                        .px = lay->coord[TS_AXIS_WP_X],
                        .sp_comm = lay->axis[TS_AXIS_SP],
                        .sp = lay->size[TS_AXIS_SP],
                        .sp_rank = lay->coord[TS_AXIS_SP],
                        .pp_comm = lay->axis[TS_AXIS_PP],
                        .pp = lay->size[TS_AXIS_PP],
                        .pp_rank = lay->coord[TS_AXIS_PP]};
}

int64_t ts_config_time(const ts_config *cfg, const char *key, int64_t fallback) {
    const char *text = ts_config_str(cfg, key);
    int64_t t;
    if (!*text) return fallback;
    if (ts_parse_datetime(text, &t)) ts_usage_error("%s = '%s' is not a date (YYYY-MM-DD[THH])", key, text);
    return t;
}
