/* libFuzzer harness: command-line overrides (`key.sub=value`), one per
 * line of the input, applied in turn as `tessera CMD key=value ...` does.
 * Refused ones leave the configuration as it was; what is accepted must
 * survive the checkpoint's JSON round trip (roundtrip.h). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "tests/fuzz/roundtrip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    ts_config *cfg = ts_config_new();
    char err[1024];
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        (void)ts_config_apply_override(cfg, line, err, sizeof err);
    }
    fuzz_check_roundtrip(cfg);
    ts_config_free(cfg);
    free(text);
    return 0;
}
