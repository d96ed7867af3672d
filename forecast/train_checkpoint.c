/* Checkpoints of a training run: the whole state a bit-identical resume
 * needs. The RNG is stateless (every draw is keyed by step and global
 * indices), so the step is all of its state; the data order is keyed by the
 * step too, so data_position = step. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/config.h"
#include "core/log.h"
#include "forecast/train.h"
#include "forecast/train_common.h"
#include "io/checkpoint.h"
#include "parallel/mpi_env.h"

static void checkpoint_path(const ts_trainer *tr, char *buf, size_t cap) {
    const char *want = ts_config_str(tr->cfg, "train.checkpoint");
    if (*want) snprintf(buf, cap, "%s", want);
    else snprintf(buf, cap, "%s/checkpoint.h5", tr->out_dir);
}

/* A host view of a parameter block: the block itself on the CPU, a download
 * elsewhere. */
static float *host_view(const ts_trainer *tr, const ts_params *p) {
    if (tr->be->kind == TS_BACKEND_CPU) return p->data;
    float *h = ts_malloc(sizeof(float) * p->total);
    tr->be->sync();
    tr->be->download(h, p->data, sizeof(float) * p->total);
    return h;
}

static void drop_view(const ts_trainer *tr, const ts_params *p, float *h) {
    if (h != p->data) free(h);
    (void)tr;
}

void ts_train_checkpoint(ts_trainer *tr, long step) {
    if (tr->layout->rank == 0) {
        char path[4096], err[1024];
        checkpoint_path(tr, path, sizeof path);
        double t0 = ts_now();
        int need = ts_config_to_json(tr->cfg, NULL, 0);
        char *json = ts_malloc((size_t)need + 1);
        ts_config_to_json(tr->cfg, json, (size_t)need + 1);
        ts_ckpt_meta meta = {.model_kind = "swin", .config_json = json, .step = step, .optimizer_step = step,
                             .data_position = step, .rng_seed = tr->seed};
        float *p = host_view(tr, &tr->model.params), *e = host_view(tr, &tr->ema);
        float *m = host_view(tr, &tr->m), *v = host_view(tr, &tr->v);
        /* the grid the model learned on, so a forecast on another is refused */
        ts_ckpt_named grid[2] = {{.name = "grid.latitude", .ndim = 1, .shape = {(int64_t)tr->grid->nlat_data},
                                  .data = (double *)tr->grid->lat},
                                 {.name = "grid.longitude", .ndim = 1, .shape = {(int64_t)tr->grid->nlon},
                                  .data = (double *)tr->grid->lon}};
        ts_ckpt_contents c = {.layout = &tr->model.params, .params = p, .ema = e, .adam_m = m, .adam_v = v,
                              .stats = &tr->stats, .normalizers = grid, .nnormalizers = 2};
        if (ts_ckpt_write(path, &meta, &c, err, sizeof err)) ts_fatal("%s", err);
        drop_view(tr, &tr->model.params, p), drop_view(tr, &tr->ema, e), drop_view(tr, &tr->m, m);
        drop_view(tr, &tr->v, v);
        free(json);
        ts_info("checkpoint of step %ld written to %s (%.2f s)", step, path, ts_now() - t0);
        char fields[4200];
        snprintf(fields, sizeof fields, "\"step\":%ld,\"path\":\"%s\"", step, path);
        ts_log_event("checkpoint", fields);
    }
    /* no rank runs ahead of a checkpoint that a signal asked for */
    if (tr->layout->world > 1) TS_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
}

static void load_block(ts_trainer *tr, ts_ckpt *ck, const char *group, ts_params *dst, const char *path) {
    char err[1024];
    float *h = tr->be->kind == TS_BACKEND_CPU ? dst->data : ts_malloc(sizeof(float) * dst->total);
    if (ts_ckpt_read_params(ck, group, &tr->model.params, h, err, sizeof err)) ts_fatal("%s", err);
    ts_check_finite_block(&tr->model.params, h, path, group);
    if (h != dst->data) {
        tr->be->upload(dst->data, h, sizeof(float) * dst->total);
        free(h);
    }
}

/* A resumed run must build the model the checkpoint holds: name the first
 * model.* key that differs rather than the first array of another shape. */
static void check_same_model(const ts_trainer *tr, const char *json, const char *path) {
    static const char *const PREFIX[] = {"model."};
    char err[1024];
    ts_config *saved = ts_config_new();
    if (ts_config_apply_json(saved, json, PREFIX, 1, path, err, sizeof err)) ts_fatal("%s", err);
    for (size_t i = 0; i < ts_config_key_count(); i++) {
        const ts_config_key *k = ts_config_key_at(i);
        if (strncmp(k->name, "model.", 6) != 0) continue;
        char was[64], now[64];
        if (k->type == TS_CFG_INT) {
            snprintf(was, sizeof was, "%lld", (long long)ts_config_int(saved, k->name));
            snprintf(now, sizeof now, "%lld", (long long)ts_config_int(tr->cfg, k->name));
        } else if (k->type == TS_CFG_STRING || k->type == TS_CFG_ENUM) {
            snprintf(was, sizeof was, "%s", ts_config_str(saved, k->name));
            snprintf(now, sizeof now, "%s", ts_config_str(tr->cfg, k->name));
        } else {
            continue;
        }
        if (strcmp(was, now) != 0)
            ts_usage_error("%s was trained with %s = %s, this run has %s = %s: resuming needs the same model.* "
                           "(use another train.checkpoint for a new run)",
                           path, k->name, was, k->name, now);
    }
    ts_config_free(saved);
}

long ts_train_resume(ts_trainer *tr) {
    char path[4096], err[1024];
    checkpoint_path(tr, path, sizeof path);
    struct stat st;
    if (stat(path, &st) != 0) {
        /* No checkpoint yet: make sure one can be written before training
         * for train.checkpoint_every steps. */
        char dir[4096];
        const char *slash = strrchr(path, '/');
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
        if (tr->layout->rank == 0 && dir[0] && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)))
            ts_fatal("%s: cannot write the checkpoint there: %s is not a folder", path, dir);
        return 0;
    }
    ts_ckpt *ck = ts_ckpt_open(path, "swin", err, sizeof err);
    if (!ck) ts_fatal("%s", err);
    const ts_ckpt_meta *meta = ts_ckpt_get_meta(ck);
    if (meta->rng_seed != tr->seed)
        ts_usage_error("%s was trained with seed = %llu, this run has seed = %llu: resuming would not continue the "
                       "same run (use another train.checkpoint for a new run)",
                       path, (unsigned long long)meta->rng_seed, (unsigned long long)tr->seed);
    check_same_model(tr, meta->config_json, path);
    load_block(tr, ck, TS_CKPT_PARAMS, &tr->model.params, path);
    if (!ts_ckpt_has(ck, TS_CKPT_EMA) || !ts_ckpt_has(ck, TS_CKPT_ADAM_M) || !ts_ckpt_has(ck, TS_CKPT_ADAM_V))
        ts_fatal("%s lacks the EMA or optimizer moments a training run needs to resume", path);
    load_block(tr, ck, TS_CKPT_EMA, &tr->ema, path);
    load_block(tr, ck, TS_CKPT_ADAM_M, &tr->m, path);
    load_block(tr, ck, TS_CKPT_ADAM_V, &tr->v, path);
    /* Normalise with the statistics the run started with, whatever the
     * statistics file holds now. */
    ts_stats saved;
    if (ts_ckpt_read_stats(ck, &saved, err, sizeof err)) ts_fatal("%s", err);
    ts_stats_free(&tr->stats);
    tr->stats = saved;
    free(tr->mean), free(tr->std), free(tr->res_mean), free(tr->res_std);
    ts_train_bind_stats(tr, path);
    long step = (long)meta->step;
    ts_ckpt_close(ck);
    ts_info("resuming from %s at step %ld", path, step);
    return step;
}
