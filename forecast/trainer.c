/* The trainer every model family shares (forecast/trainer.h).
 *
 * Checkpoints hold the whole state a bit-identical resume needs. The RNG is
 * stateless (every draw is keyed by the step and global indices), so the
 * step is all of its state; the data order is keyed by the step too, so
 * data_position = step. Rank 0 writes (every rank holds the same weights).
 */
#include "forecast/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/config.h"
#include "core/log.h"
#include "core/stop.h"
#include "parallel/collective.h"

typedef struct {
    ts_train_task *task;
    const ts_config *cfg;
    const ts_layout *layout;
    const char *out_dir;
    uint64_t seed;
    long steps;
    ts_params m, v, ema; /* AdamW moments, EMA weights */
    ts_optim_config optim;
} trainer;

void ts_train_optim_config(const ts_config *cfg, long steps, ts_optim_config *o) {
    *o = (ts_optim_config){.lr = ts_config_float(cfg, "train.lr"),
                           .lr_min = ts_config_float(cfg, "train.lr_min"),
                           .warmup = (int)ts_config_int(cfg, "train.warmup"),
                           .total = (int)steps,
                           .beta1 = ts_config_float(cfg, "train.beta1"),
                           .beta2 = ts_config_float(cfg, "train.beta2"),
                           .eps = 1e-8,
                           .weight_decay = ts_config_float(cfg, "train.weight_decay"),
                           .clip = ts_config_float(cfg, "train.clip"),
                           .ema_decay = ts_config_float(cfg, "train.ema")};
}

void ts_train_basics_get(const ts_command_ctx *ctx, ts_train_basics *b) {
    const ts_config *cfg = ctx->cfg;
    const char *why = NULL;
    b->be = ts_backend_get(ts_config_str(cfg, "device"), &why);
    if (!b->be) ts_usage_error("device=%s is not available: %s", ts_config_str(cfg, "device"), why);
    b->seed = (uint64_t)ts_config_int(cfg, "seed");
    b->steps = ts_config_int(cfg, "train.steps");
    b->batch = (int)ts_config_int(cfg, "train.batch");
    b->dp = ctx->layout->size[TS_AXIS_DP];
    if (b->batch % b->dp)
        ts_usage_error("train.batch = %d does not divide over parallel.dp = %d replicas", b->batch, b->dp);
    b->local_batch = b->batch / b->dp;
}

void ts_check_finite_block(const ts_params *layout, const float *h, const char *path, const char *group) {
    for (int i = 0; i < layout->count; i++) {
        const ts_param_entry *e = &layout->entries[i];
        for (size_t k = 0; k < e->numel; k++)
            if (!isfinite(h[e->offset + k]))
                ts_fatal("%s: %s/%s holds %g at element %zu: a damaged checkpoint", path, group, e->name,
                         h[e->offset + k], k);
    }
}

/* ---- checkpoints ------------------------------------------------------------------------ */

static void checkpoint_path(const trainer *tr, char *buf, size_t cap) {
    const char *want = ts_config_str(tr->cfg, "train.checkpoint");
    if (*want)
        snprintf(buf, cap, "%s", want);
    else
        snprintf(buf, cap, "%s/checkpoint.h5", tr->out_dir);
}

/* A host view of a parameter block: the block itself on the CPU, a download
 * elsewhere (drop_view frees it). */
static float *host_view(const ts_backend *be, const ts_params *p) {
    if (be->kind == TS_BACKEND_CPU) return p->data;
    float *h = ts_malloc(sizeof(float) * p->total);
    be->sync();
    be->download(h, p->data, sizeof(float) * p->total);
    return h;
}

static void drop_view(const ts_params *p, float *h) {
    if (h != p->data) free(h);
}

static void write_checkpoint(trainer *tr, long step) {
    ts_train_task *task = tr->task;
    if (tr->layout->rank == 0) {
        char path[4096], err[1024];
        checkpoint_path(tr, path, sizeof path);
        double t0 = ts_now();
        int need = ts_config_to_json(tr->cfg, NULL, 0);
        char *json = ts_malloc((size_t)need + 1);
        ts_config_to_json(tr->cfg, json, (size_t)need + 1);
        ts_ckpt_meta meta = {.model_kind = task->kind,
                             .config_json = json,
                             .step = step,
                             .optimizer_step = step,
                             .data_position = step,
                             .rng_seed = tr->seed};
        float *p = host_view(task->be, task->params), *e = host_view(task->be, &tr->ema);
        float *m = host_view(task->be, &tr->m), *v = host_view(task->be, &tr->v);
        ts_ckpt_contents c = {.layout = task->params, .params = p, .ema = e, .adam_m = m, .adam_v = v};
        if (task->checkpoint_extras) task->checkpoint_extras(task->self, &c);
        if (ts_ckpt_write(path, &meta, &c, err, sizeof err)) ts_fatal("%s", err);
        drop_view(task->params, p), drop_view(&tr->ema, e), drop_view(&tr->m, m), drop_view(&tr->v, v);
        free(json);
        ts_info("checkpoint of step %ld written to %s (%.2f s)", step, path, ts_now() - t0);
        char fields[4200];
        snprintf(fields, sizeof fields, "\"step\":%ld,\"path\":\"%s\"", step, path);
        ts_log_event("checkpoint", fields);
    }
    /* no rank runs ahead of a checkpoint that a signal asked for */
    ts_par_barrier(tr->layout);
}

static int resume_key(const char *const *keys, const char *name) {
    for (; *keys; keys++) {
        size_t n = strlen(*keys);
        if ((*keys)[n - 1] == '.' ? strncmp(name, *keys, n) == 0 : strcmp(name, *keys) == 0) return 1;
    }
    return 0;
}

/* A resumed run must build the model the checkpoint holds: name the first
 * key of task->resume_keys that differs rather than the first array of
 * another shape. */
static void check_same_setup(const trainer *tr, const char *json, const char *path) {
    static const char *const PREFIX[] = {"model.", "mesh."};
    char err[1024];
    ts_config *saved = ts_config_new();
    if (ts_config_apply_json(saved, json, PREFIX, 2, path, err, sizeof err)) ts_fatal("%s", err);
    for (size_t i = 0; i < ts_config_key_count(); i++) {
        const ts_config_key *k = ts_config_key_at(i);
        if (!resume_key(tr->task->resume_keys, k->name)) continue;
        char was[256], now[256];
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
            ts_usage_error("%s was trained with %s = %s, this run has %s = %s: resuming needs the same model "
                           "(use another train.checkpoint for a new run)",
                           path, k->name, was, k->name, now);
    }
    ts_config_free(saved);
}

static void load_block(const trainer *tr, ts_ckpt *ck, const char *group, ts_params *dst, const char *path) {
    char err[1024];
    const ts_backend *be = tr->task->be;
    if (!ts_ckpt_has(ck, group)) ts_fatal("%s lacks the '%s' group a training run needs to resume", path, group);
    float *h = be->kind == TS_BACKEND_CPU ? dst->data : ts_malloc(sizeof(float) * dst->total);
    if (ts_ckpt_read_params(ck, group, tr->task->params, h, err, sizeof err)) ts_fatal("%s", err);
    ts_check_finite_block(tr->task->params, h, path, group);
    if (h != dst->data) {
        be->upload(dst->data, h, sizeof(float) * dst->total);
        free(h);
    }
}

/* The step the checkpoint at train.checkpoint holds, its state loaded; 0
 * when there is none yet (then the checkpoint's folder must exist, so that
 * a wrong path fails now and not train.checkpoint_every steps later). */
static long resume(trainer *tr) {
    ts_train_task *task = tr->task;
    char path[4096], err[1024];
    checkpoint_path(tr, path, sizeof path);
    struct stat st;
    if (stat(path, &st) != 0) {
        char dir[4096];
        const char *slash = strrchr(path, '/');
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
        if (tr->layout->rank == 0 && dir[0] && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)))
            ts_fatal("%s: cannot write the checkpoint there: %s is not a folder", path, dir);
        return 0;
    }
    ts_ckpt *ck = ts_ckpt_open(path, task->kind, err, sizeof err);
    if (!ck) ts_fatal("%s", err);
    const ts_ckpt_meta *meta = ts_ckpt_get_meta(ck);
    if (meta->rng_seed != tr->seed)
        ts_usage_error("%s was trained with seed = %llu, this run has seed = %llu: resuming would not continue the "
                       "same run (use another train.checkpoint for a new run)",
                       path, (unsigned long long)meta->rng_seed, (unsigned long long)tr->seed);
    check_same_setup(tr, meta->config_json, path);
    if (task->resume_extras) task->resume_extras(task->self, ck, path);
    load_block(tr, ck, TS_CKPT_PARAMS, task->params, path);
    load_block(tr, ck, TS_CKPT_EMA, &tr->ema, path);
    load_block(tr, ck, TS_CKPT_ADAM_M, &tr->m, path);
    load_block(tr, ck, TS_CKPT_ADAM_V, &tr->v, path);
    long step = (long)meta->step;
    ts_ckpt_close(ck);
    ts_info("resuming from %s at step %ld", path, step);
    return step;
}

/* ---- the loop ------------------------------------------------------------------------ */

static void format_eta(double seconds, char *buf, size_t cap) {
    if (seconds < 120)
        snprintf(buf, cap, "%.0f s", seconds);
    else if (seconds < 7200)
        snprintf(buf, cap, "%.1f min", seconds / 60);
    else
        snprintf(buf, cap, "%.1f h", seconds / 3600);
}

/* One optimizer step over the global batch; returns the global mean loss. */
static double train_step(trainer *tr, long step, double *grad_norm) {
    ts_train_task *task = tr->task;
    double loss = task->loss_and_grad(task->self, step);
    ts_par_sum_grads(tr->layout, task->be, task->grads);
    ts_par_sum_doubles(tr->layout, &loss, 1);
    *grad_norm = sqrt(task->be->sumsq(task->grads->data, task->grads->total));
    ts_optim_step(&tr->optim, step, task->params, task->grads, &tr->m, &tr->v, &tr->ema, *grad_norm);
    return loss;
}

/* The step-0 point of the curves: the initial weights' validation. */
static void validate_initial(trainer *tr) {
    char text[512] = "", json[1024] = "", fields[1280];
    double val0 = tr->task->validate(tr->task->self, text, sizeof text, json, sizeof json);
    snprintf(fields, sizeof fields, "\"step\":0,\"val_loss\":%.8g%s", val0, json);
    ts_info("step 0  val %.5f%s (the initial weights)", val0, text);
    ts_log_event("validation", fields);
}

static void log_step(trainer *tr, long step, double loss, double gnorm, double val, const char *valtext,
                     const char *valjson, double dt) {
    ts_train_task *task = tr->task;
    char eta[32], flops[64] = "", flopsjson[64] = "", extra[1024] = "", fields[3072];
    format_eta(dt * (double)(tr->steps - step), eta, sizeof eta);
    if (task->flops_per_step > 0) {
        snprintf(flops, sizeof flops, "  %.2f GFLOP/s", task->flops_per_step / dt * 1e-9);
        snprintf(flopsjson, sizeof flopsjson, ",\"gflops\":%.4g", task->flops_per_step / dt * 1e-9);
    }
    char valpart[640] = "";
    if (!isnan(val)) snprintf(valpart, sizeof valpart, "  val %.5f%s", val, valtext);
    ts_info("step %ld/%ld  loss %.5f%s  lr %.2e  |g| %.3g  %.2f samples/s%s  ETA %s", step, tr->steps, loss, valpart,
            ts_optim_lr(&tr->optim, step), gnorm, task->batch / dt, flops, eta);
    if (task->log_fields) task->log_fields(task->self, extra, sizeof extra);
    char rss[128];
    ts_par_peak_rss_fields(tr->layout, rss, sizeof rss);
    snprintf(fields, sizeof fields,
             "\"step\":%ld,\"loss\":%.8g,\"val_loss\":%s%.8g%s,\"lr\":%.6g,\"grad_norm\":%.6g,\"samples_per_s\":%.4g%s%"
             "s%s%s",
             step, loss, isnan(val) ? "\"" : "", isnan(val) ? 0.0 : val, isnan(val) ? "\"" : "",
             ts_optim_lr(&tr->optim, step), gnorm, task->batch / dt, flopsjson, extra, rss, isnan(val) ? "" : valjson);
    ts_log_event("train_step", fields);
}

int ts_trainer_run(ts_train_task *task, const ts_command_ctx *ctx) {
    trainer tr = {.task = task, .cfg = ctx->cfg, .layout = ctx->layout, .out_dir = ctx->out};
    tr.seed = (uint64_t)ts_config_int(ctx->cfg, "seed");
    tr.steps = ts_config_int(ctx->cfg, "train.steps");
    ts_params_alloc_like(&tr.m, task->params);
    ts_params_alloc_like(&tr.v, task->params);
    ts_params_alloc_like(&tr.ema, task->params);
    task->be->copy(tr.ema.data, task->params->data, sizeof(float) * task->params->total);
    ts_train_optim_config(ctx->cfg, tr.steps, &tr.optim);
    ts_stop_on_signals();
    long first = resume(&tr) + 1;
    const long every_log = ts_config_int(ctx->cfg, "train.log_every");
    const long every_val = ts_config_int(ctx->cfg, "train.val_every");
    const long every_ckpt = ts_config_int(ctx->cfg, "train.checkpoint_every");
    ts_info("training %zu parameters of the %s model on %d rank%s %s, steps %ld..%ld", ts_params_count(task->params),
            task->kind, ctx->layout->world, ctx->layout->world > 1 ? "s" : "", task->summary, first, tr.steps);
    char begin[64];
    snprintf(begin, sizeof begin, "\"first_step\":%ld", first);
    ts_log_event("train_begin", begin);
    double t0 = ts_now(), t_last = t0;
    long last_step = first - 1;
    int stopped = 0;
    if (first == 1 && task->has_validation && task->validate_at_start) {
        validate_initial(&tr);
        t_last = ts_now(); /* the first step's rate leaves the validation out */
    }
    for (long step = first; step <= tr.steps; step++) {
        double gnorm, loss = train_step(&tr, step, &gnorm);
        if (!isfinite(loss)) ts_fatal("the loss became %g at step %ld: lower train.lr or check the data", loss, step);
        int stop = ts_par_any(ctx->layout, ts_stop_signal());
        double val = NAN;
        char valtext[512] = "", valjson[1024] = "";
        if (task->has_validation && (step % every_val == 0 || step == tr.steps))
            val = task->validate(task->self, valtext, sizeof valtext, valjson, sizeof valjson);
        if (step % every_log == 0 || step == first || step == tr.steps || !isnan(val) || stop) {
            double now = ts_now();
            log_step(&tr, step, loss, gnorm, val, valtext, valjson, (now - t_last) / (double)(step - last_step));
            t_last = now, last_step = step;
        }
        if (step % every_ckpt == 0 || step == tr.steps || stop) write_checkpoint(&tr, step);
        if (stop) {
            ts_info("stopping at step %ld on signal %d: checkpoint written, rerun the same command to resume", step,
                    ts_stop_signal());
            stopped = 1;
            break;
        }
    }
    if (!stopped) ts_info("training done: %ld steps in %.1f s", tr.steps - first + 1, ts_now() - t0);
    task->free(task->self);
    ts_params_free(&tr.m), ts_params_free(&tr.v), ts_params_free(&tr.ema);
    return 0;
}
