/* The property every configuration harness checks after a successful load:
 * the resolved configuration written as the JSON a checkpoint stores
 * (ts_config_to_json) and read back into a fresh configuration
 * (ts_config_apply_json, every key wanted) gives the same JSON again. A
 * difference means a resumed run or a forecast would not see the
 * configuration it was trained with. Aborts (a finding) on a difference. */
#ifndef TESSERA_TESTS_FUZZ_ROUNDTRIP_H
#define TESSERA_TESTS_FUZZ_ROUNDTRIP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"

static char *fuzz_config_json(const ts_config *cfg) {
    int n = ts_config_to_json(cfg, NULL, 0);
    if (n < 0) abort();
    char *buf = malloc((size_t)n + 1);
    if (!buf) abort();
    if (ts_config_to_json(cfg, buf, (size_t)n + 1) != n) abort();
    return buf;
}

static void fuzz_check_roundtrip(const ts_config *cfg) {
    size_t nkeys = ts_config_key_count();
    const char **names = malloc(nkeys * sizeof *names);
    if (!names) abort();
    for (size_t i = 0; i < nkeys; i++) names[i] = ts_config_key_at(i)->name;
    char *json = fuzz_config_json(cfg);
    ts_config *back = ts_config_new();
    char err[1024];
    if (ts_config_apply_json(back, json, names, nkeys, "roundtrip", err, sizeof err)) {
        fprintf(stderr, "round trip: the configuration's own JSON is refused: %s\n", err);
        abort();
    }
    char *again = fuzz_config_json(back);
    if (strcmp(json, again) != 0) {
        size_t k = 0;
        while (json[k] && json[k] == again[k]) k++;
        size_t from = k > 60 ? k - 60 : 0;
        fprintf(stderr, "round trip: the JSON differs at offset %zu:\n  first: %.120s\n  again: %.120s\n", k,
                json + from, again + from);
        abort();
    }
    free(again);
    ts_config_free(back);
    free(json);
    free(names);
}

#endif
