/* libFuzzer harness: a mesh dataset's meta JSON (MeshGraphNets' meta.json),
 * parsed and checked as the mesh reader does before it opens the HDF5 file
 * (ts_mesh_meta_check). Any input must give 0 or one error line, never a
 * crash, a hang or undefined behaviour. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/mesh_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char err[1024];
    (void)ts_mesh_meta_check(text, "fuzz.json", err, sizeof err);
    free(text);
    return 0;
}
