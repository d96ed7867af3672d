/* libFuzzer harness: the configuration JSON stored in a checkpoint (the
 * `config` attribute), as train (resume), forecast and score read it back
 * with ts_config_apply_json. A damaged or hostile checkpoint must give an
 * error line, never a crash or undefined behaviour. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *json = malloc(size + 1);
    if (!json) return 0;
    memcpy(json, data, size);
    json[size] = '\0';
    static const char *const prefixes[] = {"model.", "mesh.", "train.step_hours", "data.", "forecast."};
    ts_config *cfg = ts_config_new();
    char err[1024];
    (void)ts_config_apply_json(cfg, json, prefixes, sizeof prefixes / sizeof prefixes[0], "fuzz.h5", err, sizeof err);
    ts_config_free(cfg);
    free(json);
    return 0;
}
