/* tessera demo: what a fresh installation can show. For now the compute
 * self-check and a small benchmark; it grows into the whole
 * synth -> stats -> train -> forecast -> score -> plot chain. */
#include <stdio.h>

#include "core/bench.h"
#include "core/log.h"
#include "core/selfcheck.h"
#include "forecast/commands.h"

int cmd_demo(const ts_command_ctx *ctx) {
    if (ctx->layout->rank != 0) return 0;
    int failures = ts_selfcheck(stdout);
    if (failures) {
        ts_log(TS_LOG_ERROR, "self-check failed (%d checks): this build computes wrong results", failures);
        return TS_EXIT_FAILURE;
    }
    /* A small Swin block shape so the demo takes seconds on two cores. */
    ts_bench_shape s = {128, 4, 512, 8, 32, 64, 1, 3, 512, "all"};
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s/bench.jsonl", ctx->out);
    FILE *jsonl = fopen(path, "a");
    if (!jsonl) ts_fatal("cannot open '%s' for writing", path);
    printf("\n");
    int rc = ts_bench_run(ts_backend_cpu(), &s, stdout, jsonl, NULL, err, sizeof err);
    fclose(jsonl);
    if (rc) ts_fatal("demo benchmark: %s", err);
    printf("\nBenchmark rows (JSON lines) are in %s. Larger shapes: tessera bench --help\n", path);
    return 0;
}
