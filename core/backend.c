#include "core/backend.h"

#include <string.h>

#ifndef TESSERA_HAVE_CUDA
const ts_backend *ts_backend_cuda(const char **why) {
    if (why) *why = "tessera was built without CUDA (TESSERA_CUDA=OFF or no nvcc found)";
    return NULL;
}
#endif

const ts_backend *ts_backend_get(const char *name, const char **why) {
    if (strcmp(name, "cpu") == 0) return ts_backend_cpu();
    if (strcmp(name, "cuda") == 0) return ts_backend_cuda(why);
    if (why) *why = "unknown backend (choose cpu or cuda)";
    return NULL;
}
