/* The subcommands of `tessera`, one function each. */
#ifndef TESSERA_FORECAST_COMMANDS_H
#define TESSERA_FORECAST_COMMANDS_H

#include "core/config.h"
#include "parallel/layout.h"

/* What every command receives: the resolved configuration (a command may
 * complete it, e.g. from a checkpoint's stored configuration), the rank
 * layout (already checked against the MPI size) and the output folder.
 * Returns the process exit code. */
typedef struct {
    ts_config *cfg;
    const ts_layout *layout;
    const char *out;
} ts_command_ctx;

int cmd_bench(const ts_command_ctx *ctx);
int cmd_demo(const ts_command_ctx *ctx);
int cmd_config(const ts_command_ctx *ctx);
int cmd_stats(const ts_command_ctx *ctx);
int cmd_synth_era5(const ts_command_ctx *ctx);
int cmd_synth_mesh(const ts_command_ctx *ctx);
int cmd_train(const ts_command_ctx *ctx);
int cmd_score(const ts_command_ctx *ctx);
int cmd_plot(const ts_command_ctx *ctx);
int cmd_forecast(const ts_command_ctx *ctx);

#endif
