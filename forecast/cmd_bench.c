/* tessera bench: op throughput beside the GEMM ceiling of the same device,
 * then the whole Swin model on the same shape: forward and training-step
 * GFLOP/s (FLOPs as REFERENCE.md counts them), its memory, and where a
 * training step's time goes, op by op. */
#include <stdio.h>
#include <string.h>

#include "core/backend.h"
#include "core/bench.h"
#include "core/log.h"
#include "forecast/commands.h"
#include "models/bench_mesh.h"
#include "models/bench_model.h"

int cmd_bench(const ts_command_ctx *ctx) {
    const ts_config *cfg = ctx->cfg;
    const char *why = NULL;
    const ts_backend *be = ts_backend_get(ts_config_str(cfg, "device"), &why);
    if (!be) ts_usage_error("device=%s is not available: %s", ts_config_str(cfg, "device"), why);
    ts_bench_shape s = {(int)ts_config_int(cfg, "bench.dim"),     (int)ts_config_int(cfg, "bench.heads"),
                        (int)ts_config_int(cfg, "bench.hidden"),  (int)ts_config_int(cfg, "bench.window"),
                        (int)ts_config_int(cfg, "bench.grid_h"),  (int)ts_config_int(cfg, "bench.grid_w"),
                        (int)ts_config_int(cfg, "bench.batch"),   (int)ts_config_int(cfg, "bench.reps"),
                        (int)ts_config_int(cfg, "bench.ceiling_n"), ts_config_str(cfg, "bench.ops")};
    /* Every rank runs the benchmark (a per-rank figure under contention);
     * rank 0 reports its own. */
    int rank0 = ctx->layout->rank == 0;
    FILE *jsonl = NULL;
    char path[4096];
    if (rank0) {
        snprintf(path, sizeof path, "%s/bench.jsonl", ctx->out);
        jsonl = fopen(path, "a");
        if (!jsonl) ts_fatal("cannot open '%s' for writing", path);
    }
    char err[512];
    if (strcmp(ts_config_str(cfg, "model.kind"), "mesh") == 0) {
        ts_bench_mesh_shape ms = {ts_config_int(cfg, "bench.mesh_nodes"), ts_config_int(cfg, "bench.mesh_edges"),
                                  s.dim, s.heads, s.hidden, (int)ts_config_int(cfg, "bench.depth"),
                                  (int)ts_config_int(cfg, "mesh.globals"), s.reps, s.ceiling_n};
        if (ts_bench_mesh(be, &ms, rank0 ? jsonl : NULL, err, sizeof err)) ts_usage_error("%s", err);
        if (rank0) {
            fclose(jsonl);
            ts_info("bench rows appended to %s", path);
        }
        return 0;
    }
    double ceiling = 0;
    if (ts_bench_run(be, &s, rank0 ? stdout : NULL, jsonl, &ceiling, err, sizeof err)) ts_usage_error("%s", err);
    int depth = (int)ts_config_int(cfg, "bench.depth");
    if (depth > 0 && rank0) ts_bench_model(be, &s, depth, ceiling, jsonl);
    if (rank0) {
        fclose(jsonl);
        ts_info("bench rows appended to %s", path);
    }
    return 0;
}
