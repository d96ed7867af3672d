/* The PNG renderers of eval/plot.c: maps and score-vs-lead charts,
 * checked by reading the written PNG back with cairo and sampling pixels
 * where the data says something must be.
 *
 *   test_plot          run the suite
 *   test_plot DIR      write sample PNGs into DIR to look at, run nothing
 */
#include "eval/plot.h"
#include "tests/cunit_run.h"

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <cairo.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* 8-bit colours of matplotlib's published viridis table (_cm_listed.py):
 * entries 0, 128 and 255. Independent of our anchors. */
static const ts_rgb MPL_VIRIDIS_0 = {68, 1, 84};      /* #440154 */
static const ts_rgb MPL_VIRIDIS_128 = {33, 145, 140}; /* 0.127568, 0.566949, 0.550556 */
static const ts_rgb MPL_VIRIDIS_255 = {253, 231, 37}; /* #fde725 */

static char tmpdir[64];

static int close_rgb(ts_rgb a, ts_rgb b, int tol) {
    return abs(a.r - b.r) <= tol && abs(a.g - b.g) <= tol && abs(a.b - b.b) <= tol;
}

/* ---- a PNG read back -------------------------------------------------------------------- */

typedef struct {
    cairo_surface_t *s;
    int w, h, stride;
    const unsigned char *data;
} png_image;

static int png_load(png_image *img, const char *path) {
    memset(img, 0, sizeof *img);
    img->s = cairo_image_surface_create_from_png(path);
    if (cairo_surface_status(img->s) != CAIRO_STATUS_SUCCESS) return -1;
    img->w = cairo_image_surface_get_width(img->s);
    img->h = cairo_image_surface_get_height(img->s);
    img->stride = cairo_image_surface_get_stride(img->s);
    img->data = cairo_image_surface_get_data(img->s);
    return 0;
}

static ts_rgb png_pixel(const png_image *img, double x, double y) {
    int px = (int)floor(x), py = (int)floor(y);
    ts_rgb c = {0, 0, 0};
    if (px < 0 || py < 0 || px >= img->w || py >= img->h) return c;
    uint32_t p = ((const uint32_t *)(img->data + (size_t)py * (size_t)img->stride))[px];
    c.r = (unsigned char)(p >> 16), c.g = (unsigned char)(p >> 8), c.b = (unsigned char)p;
    return c;
}

static void png_free(png_image *img) { cairo_surface_destroy(img->s); }

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- fields ------------------------------------------------------------------------------- */

/* WeatherBench's 5.625 degree grid: 32 x 64, latitudes +-87.1875, decreasing. */
enum { NLAT = 32, NLON = 64 };
static double LAT[NLAT], LON[NLON];

static void grid_init(void) {
    for (int i = 0; i < NLAT; i++) LAT[i] = 87.1875 - 5.625 * i;
    for (int j = 0; j < NLON; j++) LON[j] = 5.625 * j;
}

/* Pixel at the centre of cell (row i, column j), by the frame's mapping. */
static void cell_centre(const ts_map_frame *f, int i, int j, double *x, double *y) {
    *x = f->map.x + (LON[j] - f->lon_west) / (f->lon_east - f->lon_west) * f->map.w;
    *y = f->map.y + (f->lat_north - LAT[i]) / (f->lat_north - f->lat_south) * f->map.h;
}

/* ---- tests: colour maps ------------------------------------------------------------------- */

static void test_colormaps_match_published_values(void) {
    /* Our viridis anchors against matplotlib's own table: exact at the ends,
     * within 1 level in the middle (8-bit rounding of an interpolation). */
    CU_ASSERT(close_rgb(ts_colormap_rgb(TS_CMAP_VIRIDIS, 0), MPL_VIRIDIS_0, 0));
    CU_ASSERT(close_rgb(ts_colormap_rgb(TS_CMAP_VIRIDIS, 128.0 / 255.0), MPL_VIRIDIS_128, 1));
    CU_ASSERT(close_rgb(ts_colormap_rgb(TS_CMAP_VIRIDIS, 1), MPL_VIRIDIS_255, 0));
    /* Diverging: ColorBrewer RdBu's white (#f7f7f7) at the centre, blue
     * below, red above. */
    ts_rgb mid = ts_colormap_rgb(TS_CMAP_DIVERGING, 0.5), lo = ts_colormap_rgb(TS_CMAP_DIVERGING, 0.1),
           hi = ts_colormap_rgb(TS_CMAP_DIVERGING, 0.9);
    CU_ASSERT(mid.r == 247 && mid.g == 247 && mid.b == 247);
    CU_ASSERT(lo.b > lo.r + 60);
    CU_ASSERT(hi.r > hi.b + 60);
    /* Sequential: luminance falls as the value (spread) rises. */
    double last = 1e9;
    for (int k = 0; k <= 20; k++) {
        ts_rgb c = ts_colormap_rgb(TS_CMAP_SEQUENTIAL, k / 20.0);
        double lum = 0.2126 * c.r + 0.7152 * c.g + 0.0722 * c.b;
        CU_ASSERT(lum < last);
        last = lum;
    }
    /* NaN grey is none of the maps' colours (the maps are sampled finely). */
    ts_rgb grey = {TS_PLOT_NAN_GREY, TS_PLOT_NAN_GREY, TS_PLOT_NAN_GREY};
    for (int m = 0; m < 3; m++)
        for (int k = 0; k <= 200; k++) CU_ASSERT(!close_rgb(ts_colormap_rgb((ts_colormap)m, k / 200.0), grey, 12));
}

/* Both ends of a nice range carry a tick of the colour bar or y axis. */
static void check_ends_on_ticks(double lo, double hi) {
    double step = ts_plot_tick_step(lo, hi);
    CU_ASSERT_DOUBLE_EQUAL(lo / step, round(lo / step), 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(hi / step, round(hi / step), 1e-9);
}

static void test_nice_range(void) {
    double lo, hi;
    ts_plot_nice_range(0.31, 9.7, 0, &lo, &hi);
    CU_ASSERT(lo <= 0.31 && hi >= 9.7);
    CU_ASSERT(lo >= -2 && hi <= 12); /* not wastefully wide */
    check_ends_on_ticks(lo, hi);
    ts_plot_nice_range(46400, 59300, 0, &lo, &hi); /* z500 in m2 s-2 */
    CU_ASSERT(lo <= 46400 && hi >= 59300 && hi - lo <= 20000);
    check_ends_on_ticks(lo, hi);
    ts_plot_nice_range(-3.2, 1.1, 1, &lo, &hi);
    CU_ASSERT(lo == -hi && hi >= 3.2 && hi <= 5);
    check_ends_on_ticks(lo, hi);
    ts_plot_nice_range(250, 250, 0, &lo, &hi); /* a constant field */
    CU_ASSERT(lo < 250 && hi > 250);
    ts_plot_nice_range(NAN, 1, 0, &lo, &hi);
    CU_ASSERT(lo == 0 && hi == 1);
}

/* ---- tests: maps ----------------------------------------------------------------------------- */

/* Longitude itself as the field, one NaN cell, drawn on 0..360. */
static void lon_field(float *field, int nan_i, int nan_j) {
    for (int i = 0; i < NLAT; i++)
        for (int j = 0; j < NLON; j++) field[i * NLON + j] = (float)LON[j];
    field[nan_i * NLON + nan_j] = NAN;
}

static void test_map_cells_colours_and_nan(void) {
    static float field[NLAT * NLON];
    enum { NAN_I = 5, NAN_J = 40 };
    lon_field(field, NAN_I, NAN_J);
    ts_map_spec spec = {field, NLAT, NLON, LAT, LON, TS_CMAP_VIRIDIS, 0, 360, "longitude", "a test field", "degrees"};
    char path[128], err[512];
    snprintf(path, sizeof path, "%s/map.png", tmpdir);
    CU_ASSERT_FATAL(ts_plot_map(path, &spec, err, sizeof err) == 0);
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CU_ASSERT(file_exists(path) && !file_exists(tmp)); /* renamed, not left behind */
    ts_map_frame f;
    CU_ASSERT_FATAL(ts_map_frame_for(&spec, &f, err, sizeof err) == 0);
    png_image img;
    CU_ASSERT_FATAL(png_load(&img, path) == 0);
    CU_ASSERT(img.w == f.width && img.h == f.height);
    /* equirectangular: a global grid is twice as wide as it is high, and
     * spans exactly 360 x 180 degrees (5.625 degree cells, edges at +-90) */
    CU_ASSERT_DOUBLE_EQUAL(f.map.w / f.map.h, 2.0, 0.01);
    CU_ASSERT_DOUBLE_EQUAL(f.lon_east - f.lon_west, 360, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(f.lat_north, 90, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(f.lat_south, -90, 1e-9);

    /* Cells away from the 30-degree graticule show the colour of their value;
     * a neighbouring column differs by 1/64 of the range (several levels), so
     * a tolerance of 1 level also checks that the right cell is drawn. */
    static const int CELLS[][2] = {{2, 2}, {10, 7}, {20, 23}, {27, 34}, {15, 50}, {30, 62}};
    for (size_t k = 0; k < sizeof CELLS / sizeof CELLS[0]; k++) {
        double x, y;
        cell_centre(&f, CELLS[k][0], CELLS[k][1], &x, &y);
        ts_rgb want = ts_colormap_rgb(TS_CMAP_VIRIDIS, LON[CELLS[k][1]] / 360.0);
        CU_ASSERT(close_rgb(png_pixel(&img, x, y), want, 1));
    }
    /* The independent anchors: lon 0 is viridis' first colour; lon 180 is
     * half-way (matplotlib's entry 128 within 2 levels: 180/360 = 127.5/255). */
    double x, y;
    cell_centre(&f, 16, 0, &x, &y);
    CU_ASSERT(close_rgb(png_pixel(&img, x + 3, y), MPL_VIRIDIS_0, 1));
    cell_centre(&f, 16, 32, &x, &y);
    CU_ASSERT(close_rgb(png_pixel(&img, x + 3, y + 3), MPL_VIRIDIS_128, 2));
    /* NaN is grey, exactly in its cell: its neighbours are not. */
    ts_rgb grey = {TS_PLOT_NAN_GREY, TS_PLOT_NAN_GREY, TS_PLOT_NAN_GREY};
    cell_centre(&f, NAN_I, NAN_J, &x, &y);
    CU_ASSERT(close_rgb(png_pixel(&img, x, y), grey, 0));
    double cw = f.map.w / NLON, ch = f.map.h / NLAT;
    CU_ASSERT(!close_rgb(png_pixel(&img, x + cw, y), grey, 12));
    CU_ASSERT(!close_rgb(png_pixel(&img, x - cw, y), grey, 12));
    CU_ASSERT(!close_rgb(png_pixel(&img, x, y + ch), grey, 12));
    CU_ASSERT(!close_rgb(png_pixel(&img, x, y - ch), grey, 12));
    png_free(&img);
    unlink(path);
}

static void test_map_colour_bar(void) {
    static float field[NLAT * NLON];
    lon_field(field, 0, 0);
    ts_map_spec spec = {field, NLAT, NLON, LAT, LON, TS_CMAP_VIRIDIS, 0, 360, "bar", NULL, "degrees"};
    char path[128], err[512];
    snprintf(path, sizeof path, "%s/bar.png", tmpdir);
    CU_ASSERT_FATAL(ts_plot_map(path, &spec, err, sizeof err) == 0);
    ts_map_frame f;
    ts_map_frame_for(&spec, &f, err, sizeof err);
    png_image img;
    CU_ASSERT_FATAL(png_load(&img, path) == 0);
    const ts_plot_rect *b = &f.colorbar;
    double xc = b->x + b->w / 2;
    /* vmax at the top, vmin at the bottom, the middle half-way: 2 pixels in
     * from the ends the colour has moved by 2/h of the range, under 3 levels */
    CU_ASSERT(close_rgb(png_pixel(&img, xc, b->y + 1), MPL_VIRIDIS_255, 3));
    CU_ASSERT(close_rgb(png_pixel(&img, xc, b->y + b->h - 2), MPL_VIRIDIS_0, 3));
    CU_ASSERT(close_rgb(png_pixel(&img, xc, b->y + b->h / 2), MPL_VIRIDIS_128, 3));
    /* it is a bar of its own: white between it and the map */
    ts_rgb white = {255, 255, 255};
    CU_ASSERT(close_rgb(png_pixel(&img, (f.map.x + f.map.w + b->x) / 2, b->y + b->h / 2), white, 0));
    /* tick labels: dark text pixels right of the bar */
    int dark = 0;
    for (int y = (int)b->y; y < (int)(b->y + b->h); y++)
        for (int x = (int)(b->x + b->w + 8); x < (int)(b->x + b->w + 60); x++) {
            ts_rgb c = png_pixel(&img, x, y);
            dark += c.r < 100 && c.g < 100 && c.b < 100;
        }
    CU_ASSERT(dark > 100);
    png_free(&img);
    unlink(path);
}

static void test_map_diverging_zero_is_white(void) {
    static float field[NLAT * NLON];
    for (int i = 0; i < NLAT; i++)
        for (int j = 0; j < NLON; j++) field[i * NLON + j] = (float)(j - 32); /* -32 .. 31 */
    ts_map_spec spec = {field, NLAT, NLON, LAT, LON, TS_CMAP_DIVERGING, -32, 32, "error", NULL, "K"};
    char path[128], err[512];
    snprintf(path, sizeof path, "%s/div.png", tmpdir);
    CU_ASSERT_FATAL(ts_plot_map(path, &spec, err, sizeof err) == 0);
    ts_map_frame f;
    ts_map_frame_for(&spec, &f, err, sizeof err);
    png_image img;
    CU_ASSERT_FATAL(png_load(&img, path) == 0);
    double x, y;
    cell_centre(&f, 12, 32, &x, &y); /* value 0 */
    ts_rgb c = png_pixel(&img, x + 3, y);
    CU_ASSERT(c.r == 247 && c.g == 247 && c.b == 247);
    cell_centre(&f, 12, 4, &x, &y); /* -28: blue */
    c = png_pixel(&img, x, y);
    CU_ASSERT(c.b > c.r + 60);
    cell_centre(&f, 12, 60, &x, &y); /* +28: red */
    c = png_pixel(&img, x, y);
    CU_ASSERT(c.r > c.b + 60);
    png_free(&img);
    unlink(path);
}

static void test_map_errors_leave_no_file(void) {
    static float field[NLAT * NLON];
    lon_field(field, 0, 0);
    double bad_lat[NLAT];
    for (int i = 0; i < NLAT; i++) bad_lat[i] = -LAT[i]; /* increasing: not the ERA5 order */
    ts_map_spec spec = {field, NLAT, NLON, bad_lat, LON, TS_CMAP_VIRIDIS, 0, 360, "bad", NULL, NULL};
    char path[128], err[512] = "";
    snprintf(path, sizeof path, "%s/bad.png", tmpdir);
    CU_ASSERT(ts_plot_map(path, &spec, err, sizeof err) == -1);
    CU_ASSERT(strstr(err, "latitudes") != NULL);
    CU_ASSERT(!file_exists(path));
    /* an unwritable place: one error line naming the file, no .tmp left */
    spec.lat = LAT;
    snprintf(path, sizeof path, "%s/no/such/dir/x.png", tmpdir);
    CU_ASSERT(ts_plot_map(path, &spec, err, sizeof err) == -1);
    CU_ASSERT(strstr(err, "x.png") != NULL);
    CU_ASSERT(strchr(err, '\n') == NULL);
    spec.vmin = spec.vmax = 1;
    CU_ASSERT(ts_plot_map(path, &spec, err, sizeof err) == -1);
}

/* ---- tests: charts ----------------------------------------------------------------------------- */

static const double LEADS[] = {24, 48, 72, 96, 120};
static const double RISING[] = {100, 200, 300, 400, 500};
static const double RISING_LO[] = {80, 170, 260, 350, 440};
static const double RISING_HI[] = {120, 230, 340, 450, 560};
static const double FLAT[] = {650, 650, NAN, 650, 650}; /* a missing lead */

static void test_chart_points_lines_and_intervals(void) {
    ts_chart_series series[2] = {
        {"tessera", ts_plot_series_colour(0), 0, 5, LEADS, RISING, RISING_LO, RISING_HI},
        {"persistence", ts_plot_series_colour(1), 1, 5, LEADS, FLAT, NULL, NULL},
    };
    ts_chart_spec spec = {"RMSE of z500", "lead time (hours)", "RMSE", 2, series, 1, NAN, NULL, "bars: intervals"};
    char path[128], err[512];
    snprintf(path, sizeof path, "%s/chart.png", tmpdir);
    CU_ASSERT_FATAL(ts_plot_chart(path, &spec, err, sizeof err) == 0);
    ts_chart_frame f;
    CU_ASSERT_FATAL(ts_chart_frame_for(&spec, &f, err, sizeof err) == 0);
    /* the axes hold every point and interval, from 0 (y_from_zero) */
    CU_ASSERT(f.ymin == 0 && f.ymax >= 650 && f.ymax < 1000);
    CU_ASSERT(f.xmin <= 0 && f.xmax >= 120);
    CU_ASSERT(f.xstep == 24); /* leads in days */
    png_image img;
    CU_ASSERT_FATAL(png_load(&img, path) == 0);
    CU_ASSERT(img.w == f.width && img.h == f.height);
    ts_rgb blue = series[0].colour, orange = series[1].colour, white = {255, 255, 255};
    double d0 = ts_chart_dodge(0, 2), d1 = ts_chart_dodge(1, 2); /* side by side, a few pixels apart */
    CU_ASSERT(d0 < 0 && d1 > 0 && d1 - d0 < 10);
    for (int i = 0; i < 5; i++) {
        /* a filled marker at each data point: its centre pixel is the series colour */
        double x = ts_chart_x(&f, LEADS[i]) + d0, y = ts_chart_y(&f, RISING[i]);
        CU_ASSERT(close_rgb(png_pixel(&img, x, y), blue, 0));
        /* the whisker between the marker and ci_high, and nothing past its cap */
        double yhi = ts_chart_y(&f, RISING_HI[i]);
        CU_ASSERT(close_rgb(png_pixel(&img, x, (y - 9 + yhi) / 2), blue, 0));
        CU_ASSERT(!close_rgb(png_pixel(&img, x, yhi - 6), blue, 40));
        if (i != 2) CU_ASSERT(close_rgb(png_pixel(&img, ts_chart_x(&f, LEADS[i]) + d1, ts_chart_y(&f, 650)), orange, 0));
    }
    /* the flat line between two present points; none across the missing lead */
    double y650 = ts_chart_y(&f, 650);
    CU_ASSERT(close_rgb(png_pixel(&img, (ts_chart_x(&f, 96) + ts_chart_x(&f, 120)) / 2, y650), orange, 0));
    CU_ASSERT(close_rgb(png_pixel(&img, ts_chart_x(&f, 72) + d1, y650), white, 0));
    /* the rising line between markers lies on the segment */
    double xm = (ts_chart_x(&f, 24) + ts_chart_x(&f, 48)) / 2 + d0, ym = (ts_chart_y(&f, 100) + ts_chart_y(&f, 200)) / 2;
    CU_ASSERT(close_rgb(png_pixel(&img, xm, ym), blue, 10));
    /* a legend right of the plot shows both colours */
    int has_blue = 0, has_orange = 0;
    for (int y = (int)f.plot.y; y < (int)(f.plot.y + 80); y++)
        for (int x = (int)(f.plot.x + f.plot.w + 10); x < f.width; x++) {
            has_blue |= close_rgb(png_pixel(&img, x, y), blue, 0);
            has_orange |= close_rgb(png_pixel(&img, x, y), orange, 0);
        }
    CU_ASSERT(has_blue && has_orange);
    png_free(&img);
    unlink(path);
}

static void test_chart_reference_line_and_ticks(void) {
    static const double SS[] = {0.7, 0.8, 0.85, 0.9, 0.92};
    ts_chart_series series[1] = {{"tessera", ts_plot_series_colour(0), 0, 5, LEADS, SS, NULL, NULL}};
    ts_chart_spec spec = {"spread-skill", "lead time (hours)", "ratio", 1, series, 0, 1.0, "1 = calibrated", NULL};
    char err[512];
    ts_chart_frame f;
    CU_ASSERT_FATAL(ts_chart_frame_for(&spec, &f, err, sizeof err) == 0);
    CU_ASSERT(f.ymax >= 1.0 && f.ymin <= 0.7 && f.ymin > 0); /* the reference line is in view */
    double nt = (f.ymax - f.ymin) / f.ystep;
    CU_ASSERT(nt >= 3 && nt <= 10); /* a readable number of ticks */
    /* 10 days of 6-hourly leads: ticks a day or two apart, not every 6 h */
    double leads[40], vals[40];
    for (int i = 0; i < 40; i++) leads[i] = 6.0 * (i + 1), vals[i] = i;
    ts_chart_series s2 = {"x", ts_plot_series_colour(0), 0, 40, leads, vals, NULL, NULL};
    spec.series = &s2;
    CU_ASSERT_FATAL(ts_chart_frame_for(&spec, &f, err, sizeof err) == 0);
    CU_ASSERT(f.xstep == 24 || f.xstep == 48);
}

/* ---- sample PNGs to look at ----------------------------------------------------------------------- */

/* A smooth planetary-wave pattern like T850 (K) on the 5.625 grid. */
static float t850_like(int i, int j, double phase) {
    double la = LAT[i] * 3.14159265358979 / 180, lo = LON[j] * 3.14159265358979 / 180;
    return (float)(255 + 28 * cos(la) * cos(la) + 6 * sin(3 * lo + phase) * cos(la) + 3 * sin(2 * la) * cos(lo));
}

static int write_samples(const char *dir) {
    static float truth[NLAT * NLON], mean[NLAT * NLON], error[NLAT * NLON], spread[NLAT * NLON];
    for (int i = 0; i < NLAT; i++)
        for (int j = 0; j < NLON; j++) {
            size_t k = (size_t)i * NLON + j;
            truth[k] = t850_like(i, j, 0), mean[k] = t850_like(i, j, 0.25);
            error[k] = mean[k] - truth[k];
            spread[k] = (float)(0.5 + 1.5 * fabs(sin(LAT[i] * 3.14159265358979 / 90)) * (1 + 0.3 * cos(LON[j] / 30)));
        }
    truth[3 * NLON + 10] = NAN;
    char path[1024], err[512];
    double lo, hi;
    ts_plot_nice_range(230, 287, 0, &lo, &hi);
    ts_map_spec m = {truth, NLAT, NLON, LAT, LON, TS_CMAP_VIRIDIS, lo, hi, "t850 truth",
                     "valid 2020-01-03T00:00:00 (init 2020-01-02T00:00:00 + 24 h)", "K"};
    snprintf(path, sizeof path, "%s/sample_map_truth.png", dir);
    if (ts_plot_map(path, &m, err, sizeof err)) return fprintf(stderr, "%s\n", err), 1;
    ts_plot_nice_range(-6, 6, 1, &m.vmin, &m.vmax);
    m.field = error, m.cmap = TS_CMAP_DIVERGING, m.title = "t850 error: ensemble mean - truth";
    snprintf(path, sizeof path, "%s/sample_map_error.png", dir);
    if (ts_plot_map(path, &m, err, sizeof err)) return fprintf(stderr, "%s\n", err), 1;
    ts_plot_nice_range(0, 2.6, 0, &m.vmin, &m.vmax);
    m.field = spread, m.cmap = TS_CMAP_SEQUENTIAL, m.title = "t850 ensemble spread (std over 8 members)";
    snprintf(path, sizeof path, "%s/sample_map_spread.png", dir);
    if (ts_plot_map(path, &m, err, sizeof err)) return fprintf(stderr, "%s\n", err), 1;

    static const double PERS[] = {160, 320, 420, 500, 560}, CLIM[] = {640, 640, 640, 640, 640};
    static const double CLO[] = {610, 612, 611, 609, 611}, CHI[] = {670, 668, 669, 671, 669};
    static const double PM[] = {60, 150, 250, 330, 410}, PMLO[] = {50, 135, 228, 300, 370}, PMHI[] = {70, 165, 272, 360, 450};
    ts_chart_series series[4] = {
        {"tessera", ts_plot_series_colour(0), 0, 5, LEADS, RISING, RISING_LO, RISING_HI},
        {"persistence", ts_plot_series_colour(1), 1, 5, LEADS, PERS, NULL, NULL},
        {"climatology", ts_plot_series_colour(2), 2, 5, LEADS, CLIM, CLO, CHI},
        {"perfect_model", ts_plot_series_colour(3), 3, 5, LEADS, PM, PMLO, PMHI},
    };
    ts_chart_spec c = {"RMSE of z500", "lead time (hours)", "RMSE (m**2 s**-2)", 4, series, 1, NAN, NULL,
                       "bars: bootstrap interval over\ninitial times (ci_low..ci_high)"};
    snprintf(path, sizeof path, "%s/sample_chart.png", dir);
    if (ts_plot_chart(path, &c, err, sizeof err)) return fprintf(stderr, "%s\n", err), 1;
    printf("wrote sample_map_truth.png, sample_map_error.png, sample_map_spread.png, sample_chart.png to %s\n", dir);
    return 0;
}

int main(int argc, char **argv) {
    grid_init();
    if (argc > 1) return write_samples(argv[1]);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_plot.XXXXXX");
    if (!mkdtemp(tmpdir)) return perror("mkdtemp"), 1;
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("plot", NULL, NULL);
    CU_add_test(s, "colour maps match their published values", test_colormaps_match_published_values);
    CU_add_test(s, "nice ranges", test_nice_range);
    CU_add_test(s, "map cells, colours and NaN", test_map_cells_colours_and_nan);
    CU_add_test(s, "map colour bar", test_map_colour_bar);
    CU_add_test(s, "diverging map: zero is white", test_map_diverging_zero_is_white);
    CU_add_test(s, "map errors leave no file", test_map_errors_leave_no_file);
    CU_add_test(s, "chart points, lines and intervals", test_chart_points_lines_and_intervals);
    CU_add_test(s, "chart reference line and ticks", test_chart_reference_line_and_ticks);
    int rc = ts_cunit_run();
    rmdir(tmpdir);
    return rc;
}
