/* The perfect-model ensemble: the reference simulator (sim/qg.h) rerun from
 * the states it saved at the initial times of a tessera forecast, with
 * small random PV perturbations, written in the forecast layout
 * (io/forecast_write.h) so that `tessera score` scores it as one more
 * system, `perfect_model` (docs/score.md, "The perfect-model baseline").
 *
 * It is the analogue of a physics ensemble such as IFS ENS on a world where
 * the model is exactly right: its error is initial-condition error grown by
 * the chaos of the flow, the floor a learned model of this simulator can
 * approach but not beat at the same initial uncertainty.
 *
 * The output copies the tessera file's structure: members, initial times,
 * steps, variables, levels and grid; level slots that are all NaN in the
 * tessera file (levels it never forecast) are NaN here too.
 */
#ifndef TESSERA_EVAL_PERFECT_MODEL_H
#define TESSERA_EVAL_PERFECT_MODEL_H

#include <stddef.h>
#include <stdint.h>

/* Default perturbation: random PV anomalies of this fraction of each
 * layer's PV-anomaly rms, white over the model's retained modes
 * (ts_qg_perturb), one shared by the members of an initial time (the
 * analysis error) and one per member. Chosen so that the z500 spread at
 * 24 h is near that of IFS ENS (about 40 m^2 s^-2); docs/score.md gives
 * the measured spread. */
#define TS_PERFECT_MODEL_AMPLITUDE 0.03

typedef struct {
    const char *forecast_path; /* the tessera forecast whose structure is copied */
    const char *restart_dir;   /* folder of OUT/restart_YYYY-MM-DDTHH.nc (docs/sim.md) */
    const char *out_path;      /* the perfect-model forecast written */
    double amplitude;          /* relative PV perturbation; 0 reruns the truth itself */
    uint64_t seed;             /* perturbation draws are keyed by (seed, initial time, member) */
} ts_perfect_model_opts;

/* Write o->out_path. Returns 0, or -1 with one line in err (a missing
 * restart file names the initial time and the file expected). */
int ts_perfect_model_forecast(const ts_perfect_model_opts *o, char *err, size_t errcap);

/* The ts_qg_perturb member index of (initial time, member): distinct for
 * every pair, and below the streams of the simulator's own initial anomaly.
 * Member 65535 is the shared analysis error, so members are 0..65534. */
uint64_t ts_perfect_model_member_key(int64_t init_time, size_t member);

#endif
