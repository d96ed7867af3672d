#include "core/omp_policy.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void ts_omp_prefer_passive(char **argv) {
    if (getenv("OMP_WAIT_POLICY")) return;
    const char *keep = getenv("TESSERA_KEEP_OMP_POLICY");
    if (keep && strcmp(keep, "1") == 0) return;
    if (setenv("OMP_WAIT_POLICY", "PASSIVE", 1) != 0) return;
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc): carry on with the policy already loaded */
}
