/* The rollout driver (forecast/rollout.h). */
#include "forecast/rollout.h"

#include <stdio.h>

#include "core/log.h"
#include "core/stop.h"
#include "parallel/collective.h"

/* " (72 h)" for a step of known length, else "". */
static void hours_of(const ts_rollout *r, int64_t s, char *buf, size_t cap) {
    if (r->step_seconds > 0)
        snprintf(buf, cap, " (%lld h)", (long long)(s * r->step_seconds / 3600));
    else
        buf[0] = 0;
}

int ts_rollout_run(const ts_layout *layout, const ts_rollout *r) {
    char when[32], fields[256];
    if (r->done > 0) {
        hours_of(r, r->done, when, sizeof when);
        ts_info("resuming %s after %s %lld%s of %lld", r->path, r->unit, (long long)r->done, when, (long long)r->total);
    }
    const int64_t every = r->report_every > 0 ? r->report_every : (r->total >= 20 ? r->total / 20 : 1);
    ts_stop_on_signals(); /* a batch system's warning: finish the step, keep the output resumable, exit cleanly */
    const double t0 = ts_now();
    for (int64_t s = r->done + 1; s <= r->total; s++) {
        r->step(r->self, s);
        if (s % every == 0 || s == r->total) {
            double el = ts_now() - t0, rate = (double)(s - r->done) * r->work_per_step / el;
            hours_of(r, s, when, sizeof when);
            ts_info("%s %lld/%lld%s done: %.3g %s, ETA %.0f s", r->unit, (long long)s, (long long)r->total, when, rate,
                    r->rate_unit, el / (double)(s - r->done) * (double)(r->total - s));
            int n = snprintf(fields, sizeof fields, "\"%s\":%lld,", r->unit, (long long)s);
            if (r->step_seconds > 0)
                n += snprintf(fields + n, sizeof fields - (size_t)n, "\"%s_hours\":%lld,", r->unit,
                              (long long)(s * r->step_seconds / 3600));
            n += snprintf(fields + n, sizeof fields - (size_t)n, "\"%s\":%.4g", r->rate_key, rate);
            ts_par_peak_rss_fields(layout, fields + n, sizeof fields - (size_t)n);
            ts_log_event(r->event, fields);
        }
        if (ts_par_any(layout, ts_stop_signal()) && s < r->total) {
            ts_info("signal %d: stopped after %s %lld of %lld; %s.part is kept, rerun the same command to resume",
                    ts_stop_signal(), r->unit, (long long)s, (long long)r->total, r->path);
            return 1;
        }
    }
    return 0;
}
