/* One rollout driver for every model family: the step loop of `tessera
 * forecast` around a family's own step. The family (cmd_forecast.c for the
 * Swin ensemble, mesh_rollout.c for a mesh trajectory) opens its output,
 * finds how many steps it already holds (a killed or stopped rollout
 * resumes there) and restores its state; the driver then takes the steps
 * that remain, reports progress (stderr and tessera.jsonl) and stops
 * politely on SIGUSR1/SIGTERM after the step in progress, leaving the
 * output resumable. */
#ifndef TESSERA_FORECAST_ROLLOUT_H
#define TESSERA_FORECAST_ROLLOUT_H

#include <stdint.h>

#include "parallel/layout.h"

typedef struct {
    void *self; /* the family's state, passed to step */
    /* Advance every state of the rollout to step s (1-based), write it and
     * mark it complete in the output (collective). A state that turns
     * non-finite or leaves physical bounds is the family's fatal error. */
    void (*step)(void *self, int64_t s);
    int64_t total, done;   /* steps of the rollout; complete in the output already */
    const char *unit;      /* what a step is called: "lead", "step" */
    int64_t step_seconds;  /* > 0: a step's length, shown in hours ("lead 3/10 (72 h)") */
    double work_per_step;  /* units of rate_unit a step: members x initial times, or 1 */
    const char *rate_unit; /* "member-leads/s", "steps/s" */
    const char *rate_key;  /* its name in the log record: "member_leads_per_s", "steps_per_s" */
    const char *event;     /* the log record of a step: "forecast_lead", "rollout_step" */
    int64_t report_every;  /* a progress line every this many steps; 0: about 20 lines */
    const char *path;      /* the output, for messages */
} ts_rollout;

/* Take steps done+1 .. total. Returns 1 when a signal stopped the rollout
 * before its last step (the output stays resumable; every rank returns
 * alike), 0 when every step is written. */
int ts_rollout_run(const ts_layout *layout, const ts_rollout *r);

#endif
