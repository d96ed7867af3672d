/* libFuzzer harness: a configuration file (YAML) as `tessera train FILE`
 * reads it. Any input must give 0 or one error line, never a crash, a leak
 * or undefined behaviour; an accepted one must survive the checkpoint's
 * JSON round trip (roundtrip.h). */
#include <stddef.h>
#include <stdint.h>

#include "io/config_yaml.h"
#include "tests/fuzz/roundtrip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ts_config *cfg = ts_config_new();
    char err[1024];
    if (ts_config_load_yaml_text(cfg, (const char *)data, size, "fuzz.yaml", err, sizeof err) == 0)
        fuzz_check_roundtrip(cfg);
    ts_config_free(cfg);
    return 0;
}
