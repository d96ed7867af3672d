#include "core/params.h"
#include "core/log.h"

#include <stdlib.h>
#include <string.h>

void ts_params_init(ts_params *p) { memset(p, 0, sizeof *p); }

int ts_params_add(ts_params *p, const char *name, int ndim, const int64_t *shape) {
    if (p->data) ts_fatal("parameter '%s' declared after the block was allocated", name);
    if (ndim < 1 || ndim > TS_PARAM_MAX_DIMS) ts_fatal("parameter '%s' has %d dims", name, ndim);
    if (strlen(name) >= TS_PARAM_NAME_MAX) ts_fatal("parameter name '%s' is too long", name);
    if (ts_params_index(p, name) >= 0) ts_fatal("parameter '%s' declared twice", name);
    if (p->count == p->capacity) {
        p->capacity = p->capacity ? 2 * p->capacity : 64;
        p->entries = realloc(p->entries, sizeof(ts_param_entry) * (size_t)p->capacity);
        if (!p->entries) ts_fatal("out of memory growing the parameter table");
    }
    ts_param_entry *e = &p->entries[p->count];
    memset(e, 0, sizeof *e);
    strcpy(e->name, name);
    e->ndim = ndim;
    e->numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 1) ts_fatal("parameter '%s' has dimension %d of size %lld", name, d, (long long)shape[d]);
        e->shape[d] = shape[d];
        e->numel *= (size_t)shape[d];
    }
    e->offset = p->total;
    size_t a = TS_PARAM_ALIGN_FLOATS;
    p->total += (e->numel + a - 1) / a * a;
    return p->count++;
}

void ts_params_alloc(ts_params *p, const ts_backend *be) {
    if (p->data) ts_fatal("parameter block allocated twice");
    p->be = be;
    p->data = be->alloc(sizeof(float) * (p->total ? p->total : 1));
}

void ts_params_alloc_like(ts_params *dst, const ts_params *src) {
    ts_params_init(dst);
    dst->count = dst->capacity = src->count;
    dst->entries = ts_malloc(sizeof(ts_param_entry) * (size_t)(src->count ? src->count : 1));
    memcpy(dst->entries, src->entries, sizeof(ts_param_entry) * (size_t)src->count);
    dst->total = src->total;
    ts_params_alloc(dst, src->be);
}

void ts_params_free(ts_params *p) {
    if (p->data) p->be->free(p->data);
    free(p->entries);
    ts_params_init(p);
}

int ts_params_index(const ts_params *p, const char *name) {
    for (int i = 0; i < p->count; i++)
        if (strcmp(p->entries[i].name, name) == 0) return i;
    return -1;
}

float *ts_params_ptr(const ts_params *p, int index) {
    if (index < 0 || index >= p->count || !p->data) ts_fatal("bad parameter index %d", index);
    return p->data + p->entries[index].offset;
}

size_t ts_params_count(const ts_params *p) {
    size_t n = 0;
    for (int i = 0; i < p->count; i++) n += p->entries[i].numel;
    return n;
}

void ts_arena_measure(ts_arena *a) { memset(a, 0, sizeof *a); }

void ts_arena_alloc(ts_arena *a, const ts_backend *be, size_t bytes) {
    memset(a, 0, sizeof *a);
    a->be = be;
    a->capacity = bytes;
    a->base = be->alloc(bytes ? bytes : 256);
}

float *ts_arena_take(ts_arena *a, size_t n, const char *what) {
    size_t bytes = (sizeof(float) * n + 255) / 256 * 256;
    if (a->base && a->used + bytes > a->capacity)
        ts_fatal("activation arena full taking '%s' (%zu of %zu bytes used, %zu more wanted): "
                 "the arena was sized for another shape",
                 what, a->used, a->capacity, bytes);
    float *p = a->base ? (float *)(a->base + a->used) : NULL;
    a->used += bytes;
    if (a->used > a->peak) a->peak = a->used;
    return p;
}

void ts_arena_reset(ts_arena *a) { a->used = 0; }

void ts_arena_free(ts_arena *a) {
    if (a->base) a->be->free(a->base);
    memset(a, 0, sizeof *a);
}
