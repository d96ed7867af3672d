/* A dataset's metadata as bytes and back (io/era5_read.h): so that one rank
 * opens and parses every file and the others, given its bytes, serve their
 * blocks without opening a file for metadata (they open files only to read
 * their hyperslabs, through the reader's open-file cache). The bytes hold
 * every file's axes and variable list, the channels bound to the files
 * (variable ids, scale, offset, missing values, time segments), the time
 * axis, the source areas, the regridding weights and the exposed grid, in
 * this machine's representation: they are for ranks of one job. */
#include "io/era5_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PACK_MAGIC UINT64_C(0x7465737365726135) /* "tessera5" */

typedef struct {
    unsigned char *p;
    size_t n, cap;
} wbuf;

static void put(wbuf *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n) cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) ts_fatal("out of memory packing the ERA5 metadata (%zu bytes)", cap);
        b->p = p, b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void put_u64(wbuf *b, uint64_t v) { put(b, &v, sizeof v); }
static void put_str(wbuf *b, const char *s) { /* NULL as UINT64_MAX */
    uint64_t n = s ? (uint64_t)strlen(s) : UINT64_MAX;
    put_u64(b, n);
    if (s) put(b, s, (size_t)n);
}

typedef struct {
    const unsigned char *p;
    size_t n, at;
    int bad;
} rbuf;

static void get(rbuf *b, void *dst, size_t n) {
    if (b->bad || n > b->n - b->at) {
        b->bad = 1;
        if (n) memset(dst, 0, n);
        return;
    }
    if (n) memcpy(dst, b->p + b->at, n);
    b->at += n;
}
static uint64_t get_u64(rbuf *b) {
    uint64_t v = 0;
    get(b, &v, sizeof v);
    return v;
}
/* A count of items of `size` bytes that must fit in what is left. */
static size_t get_count(rbuf *b, size_t size) {
    uint64_t n = get_u64(b);
    if (size && n > (b->n - b->at) / size) b->bad = 1;
    return b->bad ? 0 : (size_t)n;
}
static void *get_array(rbuf *b, size_t n, size_t size) {
    void *a = ts_calloc(n ? n : 1, size);
    get(b, a, n * size);
    return a;
}
static char *get_str(rbuf *b) {
    uint64_t n = get_u64(b);
    if (n == UINT64_MAX || b->bad) return NULL;
    if (n > b->n - b->at) {
        b->bad = 1;
        return NULL;
    }
    char *s = ts_malloc((size_t)n + 1);
    get(b, s, (size_t)n);
    s[n] = '\0';
    return s;
}

static void put_overlaps(wbuf *b, const overlap *o, size_t n) {
    for (size_t i = 0; i < n; i++) {
        put(b, &o[i].first, sizeof o[i].first);
        put_u64(b, o[i].n);
        put(b, o[i].w, o[i].n * sizeof *o[i].w);
        put(b, &o[i].wsum, sizeof o[i].wsum);
    }
}
static overlap *get_overlaps(rbuf *b, size_t n) {
    overlap *o = ts_calloc(n ? n : 1, sizeof *o);
    for (size_t i = 0; i < n; i++) {
        get(b, &o[i].first, sizeof o[i].first);
        o[i].n = get_count(b, sizeof *o[i].w);
        o[i].w = get_array(b, o[i].n, sizeof *o[i].w);
        get(b, &o[i].wsum, sizeof o[i].wsum);
    }
    return o;
}

int ts_era5_pack(const ts_era5_dataset *ds, void **bytes, size_t *nbytes) {
    wbuf b = {0};
    put_u64(&b, PACK_MAGIC);
    put_u64(&b, ds->nfiles);
    for (size_t i = 0; i < ds->nfiles; i++) {
        const src_file *f = &ds->file[i];
        put_str(&b, f->path);
        put_u64(&b, f->nlat), put_u64(&b, f->nlon), put(&b, &f->flip, sizeof f->flip);
        int dims[4] = {f->time_dim, f->lev_dim, f->lat_dim, f->lon_dim};
        put(&b, dims, sizeof dims);
        put_u64(&b, f->ntime), put(&b, f->time, f->ntime * sizeof *f->time);
        put_u64(&b, f->nlev), put(&b, f->lev, f->nlev * sizeof *f->lev);
        put(&b, f->lat, f->nlat * sizeof *f->lat), put(&b, f->lon, f->nlon * sizeof *f->lon);
        put(&b, f->col, f->nlon * sizeof *f->col);
        put_u64(&b, f->nvars);
        for (size_t v = 0; v < f->nvars; v++) put_str(&b, f->vname[v]);
        put(&b, f->vlev, f->nvars);
    }
    put_u64(&b, ds->nstate), put_u64(&b, ds->nforcing);
    for (size_t i = 0; i < ds->nstate + ds->nforcing; i++) {
        const channel *c = &ds->ch[i];
        put(&b, &c->pub.level_hpa, sizeof c->pub.level_hpa), put(&b, &c->pub.is_static, sizeof c->pub.is_static);
        put(&b, c->spec, sizeof c->spec), put(&b, c->var, sizeof c->var);
        put_str(&b, c->units), put_str(&b, c->long_name), put_str(&b, c->standard_name);
        put(&b, &c->on_levels, sizeof c->on_levels);
        put(&b, c->in, ds->nfiles * sizeof *c->in); /* plain values: ids, scale, offset, missing values */
        put_u64(&b, c->nseg), put(&b, c->seg, c->nseg * sizeof *c->seg);
        put_u64(&b, c->static_file);
    }
    put_u64(&b, ds->ntime), put(&b, ds->time, ds->ntime * sizeof *ds->time);
    put(&b, &ds->fill, sizeof ds->fill);
    put_u64(&b, ds->nfiles ? ds->file[0].nlat : 0);
    put(&b, ds->src_area, (ds->nfiles ? ds->file[0].nlat : 0) * sizeof *ds->src_area);
    put_u64(&b, ds->rg != NULL);
    if (ds->rg) {
        put_u64(&b, ds->rg->nrow), put_u64(&b, ds->rg->ncol);
        put_overlaps(&b, ds->rg->row, ds->rg->nrow);
        put_overlaps(&b, ds->rg->col, ds->rg->ncol);
    }
    const ts_era5_grid *g = &ds->grid;
    put_u64(&b, g->nlat), put_u64(&b, g->nlon), put_u64(&b, g->nlat_data), put_u64(&b, g->nlat_file);
    put_u64(&b, g->nlon_file), put(&b, &g->dropped_south, sizeof g->dropped_south);
    put(&b, ds->lat, g->nlat * sizeof *ds->lat), put(&b, ds->lon, g->nlon * sizeof *ds->lon);
    put(&b, ds->mask, g->nlat);
    put_u64(&b, PACK_MAGIC);
    *bytes = b.p, *nbytes = b.n;
    return 0;
}

ts_era5_dataset *ts_era5_unpack(const void *bytes, size_t nbytes, char *err, size_t errcap) {
    rbuf b = {bytes, nbytes, 0, 0};
    ts_era5_dataset *ds = ts_calloc(1, sizeof *ds);
    ds->err = err, ds->errcap = errcap;
    if (get_u64(&b) != PACK_MAGIC) b.bad = 1;
    ds->nfiles = get_count(&b, 1);
    ds->file = ts_calloc(ds->nfiles ? ds->nfiles : 1, sizeof *ds->file);
    for (size_t i = 0; i < ds->nfiles; i++) ds->file[i].ncid = -1; /* opened on the first read */
    for (size_t i = 0; i < ds->nfiles && !b.bad; i++) {
        src_file *f = &ds->file[i];
        f->path = get_str(&b);
        f->nlat = (size_t)get_u64(&b), f->nlon = (size_t)get_u64(&b);
        get(&b, &f->flip, sizeof f->flip);
        int dims[4];
        get(&b, dims, sizeof dims);
        f->time_dim = dims[0], f->lev_dim = dims[1], f->lat_dim = dims[2], f->lon_dim = dims[3];
        f->ntime = get_count(&b, sizeof *f->time), f->time = get_array(&b, f->ntime, sizeof *f->time);
        f->nlev = get_count(&b, sizeof *f->lev), f->lev = get_array(&b, f->nlev, sizeof *f->lev);
        if (f->nlat > (b.n - b.at) / sizeof(double) || f->nlon > (b.n - b.at) / sizeof(double)) b.bad = 1;
        f->lat = get_array(&b, b.bad ? 0 : f->nlat, sizeof *f->lat);
        f->lon = get_array(&b, b.bad ? 0 : f->nlon, sizeof *f->lon);
        f->col = get_array(&b, b.bad ? 0 : f->nlon, sizeof *f->col);
        f->nvars = get_count(&b, sizeof(uint64_t));
        f->vname = ts_calloc(f->nvars ? f->nvars : 1, sizeof *f->vname);
        for (size_t v = 0; v < f->nvars; v++) f->vname[v] = get_str(&b);
        f->vlev = get_array(&b, f->nvars, 1);
    }
    ds->nstate = get_count(&b, 0), ds->nforcing = get_count(&b, 0);
    if (ds->nstate + ds->nforcing > b.n) b.bad = 1;
    if (b.bad) ds->nstate = ds->nforcing = 0; /* nothing allocated for them: close must not walk them */
    const size_t nch = ds->nstate + ds->nforcing;
    ds->ch = ts_calloc(nch ? nch : 1, sizeof *ds->ch);
    for (size_t i = 0; i < nch && !b.bad; i++) {
        channel *c = &ds->ch[i];
        get(&b, &c->pub.level_hpa, sizeof c->pub.level_hpa), get(&b, &c->pub.is_static, sizeof c->pub.is_static);
        get(&b, c->spec, sizeof c->spec), get(&b, c->var, sizeof c->var);
        c->spec[NAME_CAP - 1] = c->var[NAME_CAP - 1] = '\0';
        c->units = get_str(&b), c->long_name = get_str(&b), c->standard_name = get_str(&b);
        get(&b, &c->on_levels, sizeof c->on_levels);
        c->in = get_array(&b, ds->nfiles, sizeof *c->in);
        c->nseg = get_count(&b, sizeof *c->seg), c->seg = get_array(&b, c->nseg, sizeof *c->seg);
        c->static_file = (size_t)get_u64(&b);
        for (size_t s = 0; s < c->nseg; s++)
            if (c->seg[s].file >= ds->nfiles) b.bad = 1;
        if (c->pub.is_static && c->static_file >= ds->nfiles) b.bad = 1;
    }
    ds->ntime = get_count(&b, sizeof *ds->time), ds->time = get_array(&b, ds->ntime, sizeof *ds->time);
    get(&b, &ds->fill, sizeof ds->fill);
    size_t nsrc = get_count(&b, sizeof *ds->src_area);
    if (ds->nfiles && nsrc != ds->file[0].nlat) b.bad = 1;
    ds->src_area = get_array(&b, nsrc, sizeof *ds->src_area);
    if (get_u64(&b) && !b.bad) {
        ds->rg = ts_calloc(1, sizeof *ds->rg);
        ds->rg->nrow = get_count(&b, sizeof(uint64_t)), ds->rg->ncol = get_count(&b, sizeof(uint64_t));
        ds->rg->row = get_overlaps(&b, ds->rg->nrow);
        ds->rg->col = get_overlaps(&b, ds->rg->ncol);
    }
    ts_era5_grid *g = &ds->grid;
    g->nlat = get_count(&b, sizeof(double)), g->nlon = get_count(&b, sizeof(double));
    g->nlat_data = (size_t)get_u64(&b), g->nlat_file = (size_t)get_u64(&b), g->nlon_file = (size_t)get_u64(&b);
    get(&b, &g->dropped_south, sizeof g->dropped_south);
    ds->lat = get_array(&b, g->nlat, sizeof *ds->lat), ds->lon = get_array(&b, g->nlon, sizeof *ds->lon);
    ds->mask = get_array(&b, g->nlat, 1);
    g->lat = ds->lat, g->lon = ds->lon, g->row_mask = ds->mask;
    if (get_u64(&b) != PACK_MAGIC || b.at != b.n || !ds->nfiles || !ds->nstate) b.bad = 1;
    if (b.bad) {
        ts_era5_dataset_close(ds);
        TS_FAIL(err, errcap, "ERA5 metadata received from another rank is damaged (%zu bytes)", nbytes);
        return NULL;
    }
    era5_publish_channels(ds);
    return ds;
}
