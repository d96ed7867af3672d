/* Maps and score-vs-lead charts as PNG, drawn with cairo (plot.h).
 *
 * Map pixels are computed here, one by one, as the cell that holds each
 * pixel's centre: cairo's image scaling would blend neighbouring cells at
 * fractional edges and could not follow irregular latitudes. Everything
 * else (graticule, axes, text, lines) is cairo vector drawing on top.
 */
#include "eval/plot.h"

#include <cairo.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

#define DEG "\xc2\xb0" /* the degree sign in UTF-8, which cairo's text API takes */
#define FONT "sans-serif"
#define PI 3.14159265358979323846 /* M_PI is not in strict C11 */

/* ---- colour maps ---------------------------------------------------------------------- */

/* matplotlib's viridis (CC0, van der Walt & Smith), every 8th of its 256
 * entries plus the last; linear interpolation between these anchors stays
 * within 1.7/255 of the full table. */
static const ts_rgb VIRIDIS[] = {
    {68, 1, 84},    {71, 13, 96},   {72, 24, 106},  {72, 35, 116},  {71, 45, 123},  {69, 55, 129},  {66, 64, 134},
    {62, 73, 137},  {59, 82, 139},  {55, 91, 141},  {51, 99, 141},  {47, 107, 142}, {44, 114, 142}, {41, 122, 142},
    {38, 130, 142}, {35, 137, 142}, {33, 145, 140}, {31, 151, 139}, {31, 159, 136}, {33, 166, 133}, {39, 173, 129},
    {49, 181, 123}, {61, 188, 116}, {76, 194, 108}, {92, 200, 99},  {110, 206, 88}, {129, 211, 77}, {149, 216, 64},
    {170, 220, 50}, {192, 223, 37}, {213, 226, 26}, {234, 229, 26}, {253, 231, 37}};

/* ColorBrewer RdBu (11 classes) reversed, so negative is blue; the middle
 * anchor (#f7f7f7) sits exactly at t = 0.5, i.e. at zero on a symmetric range. */
static const ts_rgb DIVERGING[] = {{5, 48, 97},    {33, 102, 172}, {67, 147, 195}, {146, 197, 222},
                                   {209, 229, 240}, {247, 247, 247}, {253, 219, 199}, {244, 165, 130},
                                   {214, 96, 77},   {178, 24, 43},   {103, 0, 31}};

/* ColorBrewer YlOrRd (9 classes): lightness falls monotonically. */
static const ts_rgb SEQUENTIAL[] = {{255, 255, 204}, {255, 237, 160}, {254, 217, 118}, {254, 178, 76}, {253, 141, 60},
                                    {252, 78, 42},   {227, 26, 28},   {189, 0, 38},    {128, 0, 38}};

ts_rgb ts_colormap_rgb(ts_colormap cmap, double t) {
    const ts_rgb *a = VIRIDIS;
    size_t n = sizeof VIRIDIS / sizeof VIRIDIS[0];
    if (cmap == TS_CMAP_DIVERGING) a = DIVERGING, n = sizeof DIVERGING / sizeof DIVERGING[0];
    if (cmap == TS_CMAP_SEQUENTIAL) a = SEQUENTIAL, n = sizeof SEQUENTIAL / sizeof SEQUENTIAL[0];
    if (!(t > 0)) t = 0; /* NaN too: callers draw NaN grey before asking */
    if (t > 1) t = 1;
    double s = t * (double)(n - 1);
    size_t k = (size_t)s;
    if (k >= n - 1) return a[n - 1];
    double f = s - (double)k;
    ts_rgb c = {(unsigned char)lround(a[k].r + f * (a[k + 1].r - a[k].r)),
                (unsigned char)lround(a[k].g + f * (a[k + 1].g - a[k].g)),
                (unsigned char)lround(a[k].b + f * (a[k + 1].b - a[k].b))};
    return c;
}

ts_rgb ts_plot_series_colour(size_t i) {
    /* Okabe-Ito without its yellow, which vanishes on white. */
    static const ts_rgb OKABE_ITO[] = {{0, 114, 178}, {230, 159, 0},  {0, 158, 115}, {204, 121, 167},
                                       {213, 94, 0},  {86, 180, 233}, {0, 0, 0}};
    return OKABE_ITO[i % (sizeof OKABE_ITO / sizeof OKABE_ITO[0])];
}

/* ---- ticks ------------------------------------------------------------------------------ */

/* The 1, 2, 2.5, 5 x 10^k step nearest above `raw`. */
static double nice_step(double raw) {
    if (!(raw > 0) || !isfinite(raw)) return 1;
    double p = pow(10, floor(log10(raw)));
    double f = raw / p;
    double m = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10;
    return m * p;
}

/* Spacing of about six ticks over [lo, hi]: colour bars and y axes. */
double ts_plot_tick_step(double lo, double hi) { return nice_step((hi - lo) / 6); }

void ts_plot_nice_range(double lo, double hi, int symmetric, double *out_lo, double *out_hi) {
    if (!isfinite(lo) || !isfinite(hi)) lo = 0, hi = 1;
    if (lo > hi) {
        double t = lo;
        lo = hi, hi = t;
    }
    if (symmetric) {
        double m = fmax(fabs(lo), fabs(hi));
        lo = -(m > 0 ? m : 1), hi = -lo;
    }
    if (hi - lo <= 1e-9 * fmax(1, fabs(lo))) {
        double d = lo != 0 ? 0.01 * fabs(lo) : 1; /* a constant field still gets a readable bar */
        lo -= d, hi += d;
    }
    /* Round out to the tick step of the rounded range itself (tick_step),
     * so both ends carry a tick label; widening can raise the step, so
     * repeat until it settles (twice at most in practice). fmin/fmax: a
     * bound already on a step (0.7 = 14 x 0.05) stays itself, not
     * 0.7000000000000001, so the range always holds the data. */
    double step = ts_plot_tick_step(lo, hi), a = lo, b = hi;
    for (int it = 0; it < 8; it++) {
        a = fmin(floor(lo / step + 1e-9) * step, lo);
        b = fmax(ceil(hi / step - 1e-9) * step, hi);
        double again = ts_plot_tick_step(a, b);
        if (again <= step) break;
        step = again;
    }
    *out_lo = a, *out_hi = b;
}

/* Decimals that show every multiple of `step` exactly (0.25 -> 2, 20 -> 0). */
static int step_decimals(double step) {
    double e = floor(log10(step) + 1e-9);
    double mant = step / pow(10, e);
    int d = (int)-e + (fabs(mant - 2.5) < 1e-6 ? 1 : 0);
    return d > 0 ? d : 0;
}

static void format_tick(double v, double step, double vmax_abs, char *buf, size_t cap) {
    if (fabs(v) < 1e-9 * step) v = 0; /* never "-0" */
    int d = step_decimals(step);
    if (d <= 4 && vmax_abs < 1e7)
        snprintf(buf, cap, "%.*f", d, v);
    else
        snprintf(buf, cap, "%.3g", v);
}

/* ---- drawing helpers ---------------------------------------------------------------------- */

static void set_rgb(cairo_t *cr, ts_rgb c) { cairo_set_source_rgb(cr, c.r / 255.0, c.g / 255.0, c.b / 255.0); }

static void set_font(cairo_t *cr, double size, int bold) {
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

/* Text anchored at (x, y): halign 0 left .. 1 right, valign 0 top .. 1
 * bottom of the font's ascent + descent, so labels of a row share a baseline. */
static void draw_text(cairo_t *cr, double x, double y, double halign, double valign, const char *s) {
    cairo_text_extents_t te;
    cairo_font_extents_t fe;
    cairo_text_extents(cr, s, &te);
    cairo_font_extents(cr, &fe);
    cairo_move_to(cr, x - halign * te.x_advance, y + fe.ascent - valign * (fe.ascent + fe.descent));
    cairo_show_text(cr, s);
}

/* The same, turned a quarter anticlockwise (y-axis labels). */
static void draw_text_vertical(cairo_t *cr, double x, double y, const char *s) {
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_rotate(cr, -PI / 2);
    draw_text(cr, 0, 0, 0.5, 0.5, s);
    cairo_restore(cr);
}

static double text_width(cairo_t *cr, const char *s) {
    cairo_text_extents_t te;
    cairo_text_extents(cr, s, &te);
    return te.x_advance;
}

static void draw_titles(cairo_t *cr, double x, const char *title, const char *subtitle) {
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    set_font(cr, 17, 1);
    if (title) draw_text(cr, x, 12, 0, 0, title);
    set_font(cr, 13, 0);
    if (subtitle) draw_text(cr, x, 35, 0, 0, subtitle);
}

/* Write the surface to path + ".tmp", then rename: a PNG with the final
 * name is always whole. */
static int write_png(cairo_surface_t *surface, const char *path, char *err, size_t errcap) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return TS_FAIL(err, errcap, "%s: path too long", path);
    cairo_status_t st = cairo_surface_status(surface);
    if (st != CAIRO_STATUS_SUCCESS) return TS_FAIL(err, errcap, "%s: cannot draw: %s", path, cairo_status_to_string(st));
    st = cairo_surface_write_to_png(surface, tmp);
    if (st != CAIRO_STATUS_SUCCESS) {
        unlink(tmp);
        return TS_FAIL(err, errcap, "%s: cannot write the PNG: %s", tmp, cairo_status_to_string(st));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return TS_FAIL(err, errcap, "%s: cannot rename %s to it: %s", path, tmp, strerror(e));
    }
    return 0;
}

/* A white canvas and its context; NULL surface on failure. */
static cairo_t *new_canvas(int width, int height, cairo_surface_t **surface) {
    *surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, width, height);
    cairo_t *cr = cairo_create(*surface);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    return cr;
}

/* Finish drawing, write, free both. */
static int finish_png(cairo_t *cr, cairo_surface_t *surface, const char *path, char *err, size_t errcap) {
    cairo_status_t st = cairo_status(cr);
    cairo_destroy(cr);
    int rc = st == CAIRO_STATUS_SUCCESS ? write_png(surface, path, err, errcap)
                                        : TS_FAIL(err, errcap, "%s: cannot draw: %s", path, cairo_status_to_string(st));
    cairo_surface_destroy(surface);
    return rc;
}

/* ---- maps ------------------------------------------------------------------------------------ */

enum {
    MAP_MAX_W = 960,  /* the map's largest width and height, pixels, ... */
    MAP_MAX_H = 640,
    MAP_CAP_W = 2048, /* ... widened up to one pixel per column for fine grids (0.25 deg: 1440) */
    MAP_LEFT = 70,    /* room for latitude labels */
    MAP_TOP = 64,     /* title and subtitle */
    MAP_BOTTOM = 44,  /* longitude labels */
    MAP_RIGHT = 160,  /* colour bar, its labels and units */
    BAR_GAP = 22,
    BAR_W = 22
};

static int check_map_grid(const ts_map_spec *s, char *err, size_t errcap) {
    if (!s->field || !s->lat || !s->lon) return TS_FAIL(err, errcap, "map '%s': no field or coordinates given", s->title ? s->title : "");
    if (s->nlat < 2 || s->nlon < 2) return TS_FAIL(err, errcap, "map '%s': the grid needs at least 2 x 2 points, has %zu x %zu", s->title ? s->title : "", s->nlat, s->nlon);
    for (size_t i = 1; i < s->nlat; i++)
        if (!(s->lat[i] < s->lat[i - 1])) return TS_FAIL(err, errcap, "map: latitudes must decrease strictly (row %zu)", i);
    double d = (s->lon[s->nlon - 1] - s->lon[0]) / (double)(s->nlon - 1);
    for (size_t j = 1; j < s->nlon; j++)
        if (!(fabs(s->lon[j] - s->lon[j - 1] - d) <= 1e-6 * fabs(d) + 1e-9) || !(d > 0))
            return TS_FAIL(err, errcap, "map: longitudes must increase with one spacing (column %zu)", j);
    if (!(s->vmin < s->vmax)) return TS_FAIL(err, errcap, "map: colour range %g..%g is empty", s->vmin, s->vmax);
    return 0;
}

int ts_map_frame_for(const ts_map_spec *s, ts_map_frame *f, char *err, size_t errcap) {
    if (check_map_grid(s, err, errcap)) return -1;
    size_t n = s->nlat;
    double dlon = (s->lon[s->nlon - 1] - s->lon[0]) / (double)(s->nlon - 1);
    f->lon_west = s->lon[0] - dlon / 2;
    f->lon_east = s->lon[s->nlon - 1] + dlon / 2;
    f->lat_north = s->lat[0] + (s->lat[0] - s->lat[1]) / 2;
    f->lat_south = s->lat[n - 1] - (s->lat[n - 2] - s->lat[n - 1]) / 2;
    /* equirectangular: one scale for both axes, the largest that fits */
    double lon_span = f->lon_east - f->lon_west, lat_span = f->lat_north - f->lat_south;
    double max_w = fmax(MAP_MAX_W, fmin((double)s->nlon, MAP_CAP_W));
    double px_per_deg = fmin(max_w / lon_span, max_w * (double)MAP_MAX_H / MAP_MAX_W / lat_span);
    double w = round(lon_span * px_per_deg), h = round(lat_span * px_per_deg);
    f->map = (ts_plot_rect){MAP_LEFT, MAP_TOP, w, h};
    f->colorbar = (ts_plot_rect){MAP_LEFT + w + BAR_GAP, MAP_TOP, BAR_W, h};
    f->width = (int)(MAP_LEFT + w + MAP_RIGHT);
    f->height = (int)(MAP_TOP + h + MAP_BOTTOM);
    return 0;
}

/* Grid column of each map pixel column. */
static void pixel_columns(const ts_map_spec *s, const ts_map_frame *f, size_t *col) {
    double dlon = (f->lon_east - f->lon_west) / (double)s->nlon;
    for (int px = 0; px < (int)f->map.w; px++) {
        double lon = f->lon_west + (px + 0.5) / f->map.w * (f->lon_east - f->lon_west);
        double j = floor((lon - f->lon_west) / dlon);
        col[px] = j < 0 ? 0 : j >= (double)s->nlon ? s->nlon - 1 : (size_t)j;
    }
}

/* Grid row of each map pixel row: the row whose cell (edges halfway between
 * neighbouring latitudes) holds the pixel centre's latitude. */
static void pixel_rows(const ts_map_spec *s, const ts_map_frame *f, size_t *row) {
    size_t i = 0;
    for (int py = 0; py < (int)f->map.h; py++) {
        double lat = f->lat_north - (py + 0.5) / f->map.h * (f->lat_north - f->lat_south);
        while (i + 1 < s->nlat && lat < 0.5 * (s->lat[i] + s->lat[i + 1])) i++;
        row[py] = i;
    }
}

static uint32_t argb(ts_rgb c) { return 0xff000000u | (uint32_t)c.r << 16 | (uint32_t)c.g << 8 | c.b; }

static uint32_t value_pixel(const ts_map_spec *s, float v) {
    if (isnan(v)) {
        ts_rgb grey = {TS_PLOT_NAN_GREY, TS_PLOT_NAN_GREY, TS_PLOT_NAN_GREY};
        return argb(grey);
    }
    return argb(ts_colormap_rgb(s->cmap, ((double)v - s->vmin) / (s->vmax - s->vmin)));
}

/* The field's cells and the colour bar's gradient, written as pixels
 * (ARGB32 is native-endian 0xAARRGGBB, opaque, so no premultiplication). */
static void paint_pixels(cairo_surface_t *surface, const ts_map_spec *s, const ts_map_frame *f) {
    cairo_surface_flush(surface);
    unsigned char *data = cairo_image_surface_get_data(surface);
    int stride = cairo_image_surface_get_stride(surface);
    size_t *col = ts_malloc(sizeof(size_t) * (size_t)f->map.w); /* (map width) */
    size_t *row = ts_malloc(sizeof(size_t) * (size_t)f->map.h); /* (map height) */
    pixel_columns(s, f, col);
    pixel_rows(s, f, row);
    for (int py = 0; py < (int)f->map.h; py++) {
        uint32_t *line = (uint32_t *)(data + (size_t)(f->map.y + py) * (size_t)stride) + (int)f->map.x;
        const float *frow = s->field + row[py] * s->nlon;
        for (int px = 0; px < (int)f->map.w; px++) line[px] = value_pixel(s, frow[col[px]]);
    }
    for (int py = 0; py < (int)f->colorbar.h; py++) {
        double t = 1.0 - (py + 0.5) / f->colorbar.h; /* vmax at the top */
        uint32_t c = argb(ts_colormap_rgb(s->cmap, t));
        uint32_t *line = (uint32_t *)(data + (size_t)(f->colorbar.y + py) * (size_t)stride) + (int)f->colorbar.x;
        for (int px = 0; px < (int)f->colorbar.w; px++) line[px] = c;
    }
    cairo_surface_mark_dirty(surface);
    free(col), free(row);
}

static void format_lon(double lon, char *buf, size_t cap) {
    double l = fmod(fmod(lon, 360) + 360, 360);
    if (fabs(l) < 1e-9 || fabs(l - 180) < 1e-9)
        snprintf(buf, cap, "%.0f" DEG, l);
    else if (l < 180)
        snprintf(buf, cap, "%.0f" DEG "E", l);
    else
        snprintf(buf, cap, "%.0f" DEG "W", 360 - l);
}

static void format_lat(double lat, char *buf, size_t cap) {
    if (fabs(lat) < 1e-9)
        snprintf(buf, cap, "0" DEG);
    else
        snprintf(buf, cap, "%.0f" DEG "%s", fabs(lat), lat > 0 ? "N" : "S");
}

/* Degrees between labelled meridians: 30 when the labels fit, else more. */
static double label_every(double px_per_deg) {
    static const double STEPS[] = {30, 60, 90, 180};
    for (size_t i = 0; i < 4; i++)
        if (STEPS[i] * px_per_deg >= 56) return STEPS[i];
    return 360;
}

/* Light lines every 30 degrees (no coastline data ships with tessera) and
 * the labels of the lines on the map's edges. */
static void draw_graticule(cairo_t *cr, const ts_map_frame *f) {
    const ts_plot_rect *m = &f->map;
    double sx = m->w / (f->lon_east - f->lon_west), sy = m->h / (f->lat_north - f->lat_south);
    char buf[32];
    cairo_set_line_width(cr, 1);
    set_font(cr, 12, 0);
    double every = label_every(sx);
    for (double lon = ceil(f->lon_west / 30) * 30; lon <= f->lon_east + 1e-9; lon += 30) {
        double x = floor(m->x + (lon - f->lon_west) * sx) + 0.5; /* on a pixel centre: crisp */
        cairo_set_source_rgba(cr, 0, 0, 0, 0.22);
        cairo_move_to(cr, x, m->y), cairo_line_to(cr, x, m->y + m->h), cairo_stroke(cr);
        if (fabs(fmod(lon, every)) > 1e-9) continue;
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        cairo_move_to(cr, x, m->y + m->h), cairo_line_to(cr, x, m->y + m->h + 5), cairo_stroke(cr);
        format_lon(lon, buf, sizeof buf);
        draw_text(cr, x, m->y + m->h + 8, 0.5, 0, buf);
    }
    for (double lat = floor(f->lat_north / 30) * 30; lat >= f->lat_south - 1e-9; lat -= 30) {
        double y = floor(m->y + (f->lat_north - lat) * sy) + 0.5;
        cairo_set_source_rgba(cr, 0, 0, 0, 0.22);
        cairo_move_to(cr, m->x, y), cairo_line_to(cr, m->x + m->w, y), cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        cairo_move_to(cr, m->x - 5, y), cairo_line_to(cr, m->x, y), cairo_stroke(cr);
        format_lat(lat, buf, sizeof buf);
        draw_text(cr, m->x - 8, y, 1, 0.5, buf);
    }
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_rectangle(cr, m->x - 0.5, m->y - 0.5, m->w + 1, m->h + 1);
    cairo_stroke(cr);
}

/* Ticks and labels of the colour bar, units turned along its right side. */
static void draw_colorbar_axis(cairo_t *cr, const ts_map_spec *s, const ts_map_frame *f) {
    const ts_plot_rect *b = &f->colorbar;
    double step = ts_plot_tick_step(s->vmin, s->vmax);
    double vabs = fmax(fabs(s->vmin), fabs(s->vmax));
    char buf[48];
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, b->x - 0.5, b->y - 0.5, b->w + 1, b->h + 1);
    cairo_stroke(cr);
    set_font(cr, 12, 0);
    double widest = 0;
    for (double k = ceil(s->vmin / step - 1e-9); k * step <= s->vmax + 1e-9 * step; k++) {
        double v = k * step;
        double y = floor(b->y + b->h - (v - s->vmin) / (s->vmax - s->vmin) * b->h) + 0.5;
        cairo_move_to(cr, b->x + b->w, y), cairo_line_to(cr, b->x + b->w + 5, y), cairo_stroke(cr);
        format_tick(v, step, vabs, buf, sizeof buf);
        draw_text(cr, b->x + b->w + 8, y, 0, 0.5, buf);
        widest = fmax(widest, text_width(cr, buf));
    }
    if (s->units && *s->units) {
        set_font(cr, 13, 0);
        draw_text_vertical(cr, b->x + b->w + 8 + widest + 16, b->y + b->h / 2, s->units);
    }
}

int ts_plot_map(const char *path, const ts_map_spec *s, char *err, size_t errcap) {
    ts_map_frame f;
    if (ts_map_frame_for(s, &f, err, errcap)) return -1;
    cairo_surface_t *surface;
    cairo_t *cr = new_canvas(f.width, f.height, &surface);
    if (cairo_status(cr) == CAIRO_STATUS_SUCCESS) paint_pixels(surface, s, &f);
    draw_graticule(cr, &f);
    draw_colorbar_axis(cr, s, &f);
    draw_titles(cr, f.map.x, s->title, s->subtitle);
    return finish_png(cr, surface, path, err, errcap);
}

/* ---- charts ------------------------------------------------------------------------------------ */

enum {
    CHART_W = 980,
    CHART_H = 560,
    CHART_LEFT = 86,    /* y tick labels and the y label */
    CHART_TOP = 64,
    CHART_BOTTOM = 62,  /* x tick labels and the x label */
    CHART_RIGHT = 200   /* the legend */
};

/* Hours between lead ticks: the first of these giving at most 8 intervals
 * (daily ticks up to 8 days, two-daily up to 16). */
static double lead_step(double span) {
    static const double STEPS[] = {1, 2, 3, 6, 12, 24, 48, 72, 120, 168, 240, 360, 720, 1440, 2880, 8760};
    for (size_t i = 0; i < sizeof STEPS / sizeof STEPS[0]; i++)
        if (span / STEPS[i] <= 8) return STEPS[i];
    return nice_step(span / 8);
}

/* Min and max of every finite x, or y with its interval, over all series. */
static void data_bounds(const ts_chart_spec *s, double *xlo, double *xhi, double *ylo, double *yhi) {
    *xlo = *ylo = INFINITY, *xhi = *yhi = -INFINITY;
    for (size_t k = 0; k < s->nseries; k++) {
        const ts_chart_series *c = &s->series[k];
        for (size_t i = 0; i < c->n; i++) {
            if (!isfinite(c->x[i]) || !isfinite(c->y[i])) continue;
            *xlo = fmin(*xlo, c->x[i]), *xhi = fmax(*xhi, c->x[i]);
            double lo = c->y[i], hi = c->y[i];
            if (c->lo && isfinite(c->lo[i])) lo = fmin(lo, c->lo[i]);
            if (c->hi && isfinite(c->hi[i])) hi = fmax(hi, c->hi[i]);
            *ylo = fmin(*ylo, lo), *yhi = fmax(*yhi, hi);
        }
    }
}

int ts_chart_frame_for(const ts_chart_spec *s, ts_chart_frame *f, char *err, size_t errcap) {
    for (size_t k = 0; k < s->nseries; k++)
        if (s->series[k].n && (!s->series[k].x || !s->series[k].y))
            return TS_FAIL(err, errcap, "chart '%s': series %zu has no data arrays", s->title ? s->title : "", k);
    double xlo, xhi, ylo, yhi;
    data_bounds(s, &xlo, &xhi, &ylo, &yhi);
    if (!isfinite(xlo)) xlo = 0, xhi = 1, ylo = 0, yhi = 1; /* nothing to draw: empty axes */
    if (isfinite(s->ref_y)) ylo = fmin(ylo, s->ref_y), yhi = fmax(yhi, s->ref_y);
    if (s->y_from_zero) ylo = fmin(ylo, 0);
    xlo = fmin(xlo, 0); /* leads count from the initial time */
    f->xstep = lead_step(xhi - xlo);
    double xtop = ceil(xhi / f->xstep - 1e-9) * f->xstep;
    if (xtop <= xlo) xtop = xlo + f->xstep;
    /* a little room so the end markers do not sit on the axes */
    f->xmin = xlo - 0.03 * (xtop - xlo), f->xmax = xtop + 0.03 * (xtop - xlo);
    ts_plot_nice_range(ylo, yhi, 0, &f->ymin, &f->ymax);
    f->ystep = ts_plot_tick_step(f->ymin, f->ymax);
    f->width = CHART_W, f->height = CHART_H;
    f->plot = (ts_plot_rect){CHART_LEFT, CHART_TOP, CHART_W - CHART_LEFT - CHART_RIGHT, CHART_H - CHART_TOP - CHART_BOTTOM};
    return 0;
}

double ts_chart_x(const ts_chart_frame *f, double x) { return f->plot.x + (x - f->xmin) / (f->xmax - f->xmin) * f->plot.w; }

double ts_chart_dodge(size_t k, size_t nseries) { return ((double)k - 0.5 * (double)(nseries - 1)) * 5.0; }
double ts_chart_y(const ts_chart_frame *f, double y) {
    return f->plot.y + f->plot.h - (y - f->ymin) / (f->ymax - f->ymin) * f->plot.h;
}

/* Axes box, grid lines at the y ticks, tick labels, axis labels. */
static void draw_chart_axes(cairo_t *cr, const ts_chart_spec *s, const ts_chart_frame *f) {
    const ts_plot_rect *p = &f->plot;
    char buf[48];
    cairo_set_line_width(cr, 1);
    set_font(cr, 12, 0);
    double vabs = fmax(fabs(f->ymin), fabs(f->ymax));
    for (double k = ceil(f->ymin / f->ystep - 1e-9); k * f->ystep <= f->ymax + 1e-9 * f->ystep; k++) {
        double y = floor(ts_chart_y(f, k * f->ystep)) + 0.5;
        cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
        cairo_move_to(cr, p->x, y), cairo_line_to(cr, p->x + p->w, y), cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        cairo_move_to(cr, p->x - 5, y), cairo_line_to(cr, p->x, y), cairo_stroke(cr);
        format_tick(k * f->ystep, f->ystep, vabs, buf, sizeof buf);
        draw_text(cr, p->x - 8, y, 1, 0.5, buf);
    }
    for (double k = ceil(f->xmin / f->xstep - 1e-9); k * f->xstep <= f->xmax + 1e-9; k++) {
        double x = floor(ts_chart_x(f, k * f->xstep)) + 0.5;
        cairo_move_to(cr, x, p->y + p->h), cairo_line_to(cr, x, p->y + p->h + 5), cairo_stroke(cr);
        snprintf(buf, sizeof buf, "%.0f", k * f->xstep + 0.0); /* + 0.0: -0 prints as 0 */
        draw_text(cr, x, p->y + p->h + 8, 0.5, 0, buf);
    }
    cairo_rectangle(cr, p->x - 0.5, p->y - 0.5, p->w + 1, p->h + 1);
    cairo_stroke(cr);
    set_font(cr, 13, 0);
    if (s->xlabel) draw_text(cr, p->x + p->w / 2, p->y + p->h + 32, 0.5, 0, s->xlabel);
    if (s->ylabel) draw_text_vertical(cr, 22, p->y + p->h / 2, s->ylabel);
}

static void draw_ref_line(cairo_t *cr, const ts_chart_spec *s, const ts_chart_frame *f) {
    if (!isfinite(s->ref_y)) return;
    double y = floor(ts_chart_y(f, s->ref_y)) + 0.5, dash[] = {6, 4};
    cairo_save(cr);
    cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
    cairo_set_line_width(cr, 1.2);
    cairo_set_dash(cr, dash, 2, 0);
    cairo_move_to(cr, f->plot.x, y), cairo_line_to(cr, f->plot.x + f->plot.w, y), cairo_stroke(cr);
    cairo_restore(cr);
}

/* Whiskers with caps, lo..hi at each lead. */
static void draw_intervals(cairo_t *cr, const ts_chart_series *c, double dodge, const ts_chart_frame *f) {
    if (!c->lo || !c->hi) return;
    set_rgb(cr, c->colour);
    cairo_set_line_width(cr, 2);
    for (size_t i = 0; i < c->n; i++) {
        if (!isfinite(c->x[i]) || !isfinite(c->lo[i]) || !isfinite(c->hi[i])) continue;
        double x = ts_chart_x(f, c->x[i]) + dodge, ylo = ts_chart_y(f, c->lo[i]), yhi = ts_chart_y(f, c->hi[i]);
        cairo_move_to(cr, x, ylo), cairo_line_to(cr, x, yhi);
        cairo_move_to(cr, x - 5, ylo), cairo_line_to(cr, x + 5, ylo);
        cairo_move_to(cr, x - 5, yhi), cairo_line_to(cr, x + 5, yhi);
        cairo_stroke(cr);
    }
}

/* A line through consecutive finite points; a missing point breaks it. */
static void draw_line(cairo_t *cr, const ts_chart_series *c, double dodge, const ts_chart_frame *f) {
    set_rgb(cr, c->colour);
    cairo_set_line_width(cr, 2.5);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    int pen_down = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (!isfinite(c->x[i]) || !isfinite(c->y[i])) {
            pen_down = 0;
            continue;
        }
        double x = ts_chart_x(f, c->x[i]) + dodge, y = ts_chart_y(f, c->y[i]);
        if (pen_down)
            cairo_line_to(cr, x, y);
        else
            cairo_move_to(cr, x, y);
        pen_down = 1;
    }
    cairo_stroke(cr);
}

/* Marker `shape` (0 circle, 1 square, 2 triangle, 3 diamond) centred on
 * (x, y), filled with the series colour and edged in white so overlapping
 * markers stay apart. */
static void draw_marker(cairo_t *cr, double x, double y, int shape, ts_rgb colour) {
    const double r = 5.5;
    switch (shape % 4) {
    case 0: cairo_arc(cr, x, y, r, 0, 2 * PI); break;
    case 1: cairo_rectangle(cr, x - r * 0.85, y - r * 0.85, 1.7 * r, 1.7 * r); break;
    case 2:
        cairo_move_to(cr, x, y - 1.2 * r), cairo_line_to(cr, x + 1.1 * r, y + 0.8 * r);
        cairo_line_to(cr, x - 1.1 * r, y + 0.8 * r), cairo_close_path(cr);
        break;
    default:
        cairo_move_to(cr, x, y - 1.3 * r), cairo_line_to(cr, x + 1.05 * r, y);
        cairo_line_to(cr, x, y + 1.3 * r), cairo_line_to(cr, x - 1.05 * r, y), cairo_close_path(cr);
    }
    set_rgb(cr, colour);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_set_line_width(cr, 1);
    cairo_stroke(cr);
}

static void draw_markers(cairo_t *cr, const ts_chart_series *c, double dodge, const ts_chart_frame *f) {
    for (size_t i = 0; i < c->n; i++)
        if (isfinite(c->x[i]) && isfinite(c->y[i]))
            draw_marker(cr, ts_chart_x(f, c->x[i]) + dodge, ts_chart_y(f, c->y[i]), c->marker, c->colour);
}

/* Outside the plot, to its right, so it never hides data. */
static void draw_legend(cairo_t *cr, const ts_chart_spec *s, const ts_chart_frame *f) {
    double x = f->plot.x + f->plot.w + 18, y = f->plot.y + 8;
    set_font(cr, 13, 0);
    for (size_t k = 0; k < s->nseries; k++, y += 24) {
        const ts_chart_series *c = &s->series[k];
        set_rgb(cr, c->colour);
        cairo_set_line_width(cr, 2.5);
        cairo_move_to(cr, x, y), cairo_line_to(cr, x + 30, y), cairo_stroke(cr);
        draw_marker(cr, x + 15, y, c->marker, c->colour);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        draw_text(cr, x + 40, y, 0, 0.5, c->name ? c->name : "");
    }
    if (isfinite(s->ref_y) && s->ref_label) {
        double dash[] = {6, 4};
        cairo_save(cr);
        cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
        cairo_set_line_width(cr, 1.2);
        cairo_set_dash(cr, dash, 2, 0);
        cairo_move_to(cr, x, y), cairo_line_to(cr, x + 30, y), cairo_stroke(cr);
        cairo_restore(cr);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        draw_text(cr, x + 40, y, 0, 0.5, s->ref_label);
        y += 24;
    }
    if (!s->note) return;
    set_font(cr, 11, 0);
    cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
    char line[256];
    for (const char *p = s->note; *p; y += 15) { /* one text line per '\n' */
        size_t len = strcspn(p, "\n");
        snprintf(line, sizeof line, "%.*s", (int)len, p);
        draw_text(cr, x, y + 4, 0, 0, line);
        p += len + (p[len] == '\n');
    }
}

int ts_plot_chart(const char *path, const ts_chart_spec *s, char *err, size_t errcap) {
    ts_chart_frame f;
    if (ts_chart_frame_for(s, &f, err, errcap)) return -1;
    cairo_surface_t *surface;
    cairo_t *cr = new_canvas(f.width, f.height, &surface);
    draw_chart_axes(cr, s, &f);
    draw_ref_line(cr, s, &f);
    size_t n = s->nseries;
    for (size_t k = 0; k < n; k++) draw_intervals(cr, &s->series[k], ts_chart_dodge(k, n), &f);
    for (size_t k = 0; k < n; k++) draw_line(cr, &s->series[k], ts_chart_dodge(k, n), &f);
    for (size_t k = 0; k < n; k++) draw_markers(cr, &s->series[k], ts_chart_dodge(k, n), &f);
    draw_legend(cr, s, &f);
    draw_titles(cr, f.plot.x, s->title, NULL);
    return finish_png(cr, surface, path, err, errcap);
}
