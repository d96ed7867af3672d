/* tessera synth-mesh: check the synth_mesh.* keys, then run the CFD
 * reference simulator (sim/synth_mesh.h) on rank 0. */
#include <stdio.h>
#include <stdlib.h>

#include "core/config.h"
#include "core/log.h"
#include "core/rng.h"
#include "forecast/commands.h"
#include "sim/synth_mesh.h"

int cmd_synth_mesh(const ts_command_ctx *ctx) {
    if (ctx->layout->rank != 0) return 0; /* one simulator, one writer */
    const ts_config *cfg = ctx->cfg;
    ts_synth_mesh_opts o = {0};
    o.trajectories = (size_t)ts_config_int(cfg, "synth_mesh.trajectories");
    o.steps = (size_t)ts_config_int(cfg, "synth_mesh.steps");
    o.dt = ts_config_float(cfg, "synth_mesh.dt");
    o.re_min = ts_config_float(cfg, "synth_mesh.re_min");
    o.re_max = ts_config_float(cfg, "synth_mesh.re_max");
    o.lattice = (size_t)ts_config_int(cfg, "synth_mesh.lattice");
    o.mesh_size = ts_config_float(cfg, "synth_mesh.mesh_size");
    o.refine = ts_config_float(cfg, "synth_mesh.refine");
    o.spinup = ts_config_float(cfg, "synth_mesh.spinup");
    if (o.re_min > o.re_max)
        ts_usage_error("synth_mesh.re_min=%g exceeds synth_mesh.re_max=%g", o.re_min, o.re_max);
    size_t need = ts_synth_mesh_min_lattice(o.re_max);
    if (o.lattice < need)
        ts_usage_error("synth_mesh.lattice=%zu is too coarse for synth_mesh.re_max=%g: the smallest obstacle must span "
                       "Re/17 cells; use synth_mesh.lattice >= %zu or a lower re_max",
                       o.lattice, o.re_max, need);
    int64_t seed = ts_config_int(cfg, "seed");
    if (seed < 0 || (uint64_t)seed > TS_RNG_SEED_MAX)
        ts_usage_error("seed=%lld is outside 0..2^56-1, the range of the counter RNG", (long long)seed);
    o.seed = (uint64_t)seed;
    char path[4096];
    snprintf(path, sizeof path, "%s/synth_mesh.h5", ctx->out);
    o.path = path;
    int need_json = ts_config_to_json(cfg, NULL, 0);
    char *history = ts_malloc((size_t)need_json + 64);
    int head = snprintf(history, 64, "tessera %s synth-mesh ", TESSERA_VERSION);
    ts_config_to_json(cfg, history + head, (size_t)need_json + 1);
    o.history = history;
    char err[2048];
    double t0 = ts_now();
    int rc = ts_synth_mesh_run(&o, err, sizeof err);
    free(history);
    if (rc) ts_fatal("%s", err);
    ts_info("synth-mesh: done in %.1f s; %s and its meta JSON", ts_now() - t0, path);
    return 0;
}
