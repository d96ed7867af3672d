/* tessera-bench: `tessera bench` without MPI, NetCDF or HDF5, for the
 * core-only build on a bare GPU machine. Takes the same bench.*, device,
 * threads and out keys, as key=value arguments. */
#include <stdio.h>
#include <string.h>

#include "core/bench.h"
#include "core/config.h"
#include "core/log.h"
#include "core/omp_policy.h"
#include "models/bench_model.h"

#ifdef _OPENMP
#include <omp.h>
#endif

int main(int argc, char **argv) {
    ts_omp_prefer_passive(argv);
    ts_config *cfg = ts_config_new();
    char err[512];
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: tessera-bench [key=value ...]\n\nOp throughput beside the GEMM ceiling of the same "
                   "device.\n\nkeys:\n");
            ts_config_help(stdout, "bench.,device,threads,out");
            ts_config_free(cfg);
            return 0;
        }
        if (ts_config_apply_override(cfg, argv[i], err, sizeof err)) ts_usage_error("%s", err);
    }
#ifdef _OPENMP
    if (ts_config_int(cfg, "threads") > 0) omp_set_num_threads((int)ts_config_int(cfg, "threads"));
#endif
    const char *why = NULL;
    const ts_backend *be = ts_backend_get(ts_config_str(cfg, "device"), &why);
    if (!be) ts_fatal("device=%s is not available: %s", ts_config_str(cfg, "device"), why);
    ts_bench_shape s = {(int)ts_config_int(cfg, "bench.dim"),     (int)ts_config_int(cfg, "bench.heads"),
                        (int)ts_config_int(cfg, "bench.hidden"),  (int)ts_config_int(cfg, "bench.window"),
                        (int)ts_config_int(cfg, "bench.grid_h"),  (int)ts_config_int(cfg, "bench.grid_w"),
                        (int)ts_config_int(cfg, "bench.batch"),   (int)ts_config_int(cfg, "bench.reps"),
                        (int)ts_config_int(cfg, "bench.ceiling_n"), ts_config_str(cfg, "bench.ops")};
    char path[4096];
    snprintf(path, sizeof path, "%s/bench.jsonl", ts_config_str(cfg, "out"));
    FILE *jsonl = fopen(path, "a");
    if (!jsonl) ts_fatal("cannot open '%s' for writing", path);
    double ceiling = 0;
    if (ts_bench_run(be, &s, stdout, jsonl, &ceiling, err, sizeof err)) ts_usage_error("%s", err);
    if (ts_config_int(cfg, "bench.depth") > 0) ts_bench_model(be, &s, (int)ts_config_int(cfg, "bench.depth"), ceiling, jsonl);
    fclose(jsonl);
    ts_config_free(cfg);
    return 0;
}
