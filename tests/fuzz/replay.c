/* A main for the fuzzing harnesses in builds without libFuzzer (release,
 * sanitizers): runs LLVMFuzzerTestOneInput once on every file named, and on
 * every file in every folder named (not recursively), so the seeds and the
 * inputs a campaign once crashed on (regressions/) stay tests everywhere.
 * Exits 0 when every input returned, 1 when none was found; a finding
 * aborts, as under libFuzzer. */
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        exit(1);
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (!buf) {
        fprintf(stderr, "replay: out of memory reading %s\n", path);
        exit(1);
    }
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    return 1;
}

int main(int argc, char **argv) {
    size_t ran = 0;
    for (int a = 1; a < argc; a++) {
        struct stat st;
        if (stat(argv[a], &st) != 0) {
            fprintf(stderr, "replay: %s does not exist\n", argv[a]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            ran += run_file(argv[a]);
            continue;
        }
        DIR *d = opendir(argv[a]);
        if (!d) return fprintf(stderr, "replay: cannot list %s\n", argv[a]), 1;
        for (struct dirent *e; (e = readdir(d));) {
            if (e->d_name[0] == '.') continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[a], e->d_name);
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) ran += run_file(path);
        }
        closedir(d);
    }
    printf("replay: %zu inputs, no finding\n", ran);
    return ran ? 0 : 1;
}
