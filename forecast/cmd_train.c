/* tessera train: the model of model.kind trained by the one trainer
 * (forecast/trainer.h) on the data of the configuration. */
#include <string.h>

#include "forecast/commands.h"
#include "forecast/trainer.h"

int cmd_train(const ts_command_ctx *ctx) {
    int mesh = strcmp(ts_config_str(ctx->cfg, "model.kind"), "mesh") == 0;
    return ts_trainer_run(mesh ? ts_mesh_task_create(ctx) : ts_swin_task_create(ctx), ctx);
}
