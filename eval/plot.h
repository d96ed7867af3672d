/* PNG figures drawn with cairo: maps of a latitude-longitude field and
 * score-vs-lead charts (docs/plot.md shows them). Drawing only: the caller
 * reads the data (forecast/cmd_plot.c) and passes plain arrays.
 *
 * Every PNG is written to "<path>.tmp" and renamed to <path>, so a file with
 * the final name is always complete; on an error the temporary file is
 * removed. Functions return 0, or -1 with one line in err naming the file.
 */
#ifndef TESSERA_EVAL_PLOT_H
#define TESSERA_EVAL_PLOT_H

#include <stddef.h>

/* ---- colour maps --------------------------------------------------------------------- */

typedef struct {
    unsigned char r, g, b;
} ts_rgb;

typedef enum {
    TS_CMAP_VIRIDIS = 0, /* fields: matplotlib's viridis, perceptually uniform */
    TS_CMAP_DIVERGING,   /* errors and anomalies: ColorBrewer RdBu reversed, blue < 0 < red, white at 0.5 */
    TS_CMAP_SEQUENTIAL   /* spread (>= 0): ColorBrewer YlOrRd, pale = small, dark red = large */
} ts_colormap;

/* The colour at t in [0, 1] (clamped), linear between the map's anchors. */
ts_rgb ts_colormap_rgb(ts_colormap cmap, double t);

/* Missing values (NaN) are drawn in this grey, which none of the maps holds. */
#define TS_PLOT_NAN_GREY 128

/* A range with "nice" ends (multiples of a 1, 2, 2.5 or 5 x 10^k step,
 * about 5 to 10 steps) that holds [lo, hi]; lo == hi gets a small range
 * around it, non-finite ends give [0, 1]. symmetric: -m..m about zero, for
 * errors on the diverging map. */
void ts_plot_nice_range(double lo, double hi, int symmetric, double *out_lo, double *out_hi);
/* The tick spacing of an axis or colour bar over [lo, hi]: about six ticks,
 * a step of 1, 2, 2.5 or 5 times a power of ten. */
double ts_plot_tick_step(double lo, double hi);

/* ---- maps ---------------------------------------------------------------------------- */

typedef struct {
    double x, y, w, h; /* pixels, y down */
} ts_plot_rect;

typedef struct {
    const float *field; /* (nlat, nlon): row 0 northernmost, NaN = missing */
    size_t nlat, nlon;
    const double *lat;  /* (nlat) degrees north, strictly decreasing (regular or not) */
    const double *lon;  /* (nlon) degrees east, increasing, regularly spaced (0..360 for a global grid) */
    ts_colormap cmap;
    double vmin, vmax;  /* colour range, vmin < vmax; values outside take the end colours */
    const char *title;    /* first line above the map */
    const char *subtitle; /* second line (times, member), or NULL */
    const char *units;    /* beside the colour bar, or NULL */
} ts_map_spec;

/* Where a map's parts fall in its PNG. The map is equirectangular: x is
 * linear in longitude over [lon_west, lon_east], y linear in latitude over
 * [lat_north, lat_south]; cell edges lie halfway between grid points. Each
 * map pixel shows the cell holding its centre. The colour bar runs from
 * vmin at its bottom edge to vmax at its top edge. */
typedef struct {
    int width, height;
    ts_plot_rect map, colorbar;
    double lon_west, lon_east, lat_north, lat_south;
} ts_map_frame;

int ts_map_frame_for(const ts_map_spec *spec, ts_map_frame *frame, char *err, size_t errcap);
/* A graticule every 30 degrees (no coastline data is shipped), latitude and
 * longitude labels, the colour bar with ticks and units, title. */
int ts_plot_map(const char *path, const ts_map_spec *spec, char *err, size_t errcap);

/* ---- score-vs-lead charts -------------------------------------------------------------- */

typedef struct {
    const char *name;     /* legend entry */
    ts_rgb colour;
    int marker;           /* 0 circle, 1 square, 2 triangle, 3 diamond */
    size_t n;
    const double *x;      /* (n) lead hours, increasing */
    const double *y;      /* (n) score; NaN = no point */
    const double *lo, *hi;/* (n) interval ends, or NULL for none; NaN = none at that lead */
} ts_chart_series;

typedef struct {
    const char *title, *xlabel, *ylabel;
    size_t nseries;
    const ts_chart_series *series;
    int y_from_zero;      /* 1: the y axis starts at 0 (errors, which are >= 0) */
    double ref_y;         /* a dashed reference line (1 for spread-skill), NaN for none */
    const char *ref_label;/* its label, or NULL */
    const char *note;     /* small text under the legend ('\n' breaks lines), or NULL */
} ts_chart_spec;

/* The plot area (inside the axes) and the data range it spans: x maps
 * linearly onto [plot.x, plot.x + plot.w], y onto [plot.y + plot.h, plot.y]. */
typedef struct {
    int width, height;
    ts_plot_rect plot;
    double xmin, xmax, ymin, ymax;
    double xstep, ystep; /* tick spacing */
} ts_chart_frame;

int ts_chart_frame_for(const ts_chart_spec *spec, ts_chart_frame *frame, char *err, size_t errcap);
/* The pixel column of data x, and the pixel row of data y, in frame f. */
double ts_chart_x(const ts_chart_frame *f, double x);
double ts_chart_y(const ts_chart_frame *f, double y);
/* Series k of n is drawn this many pixels right of its x (-7.5, -2.5, 2.5,
 * 7.5 for four), so series with equal values stay visible side by side. */
double ts_chart_dodge(size_t k, size_t nseries);
/* One line per series with its markers (dodged), whiskers with caps for the
 * intervals, grid lines at the y ticks, axis labels, a legend to the right
 * of the plot, the title. */
int ts_plot_chart(const char *path, const ts_chart_spec *spec, char *err, size_t errcap);

/* Okabe-Ito colours, distinguishable with the common colour-vision
 * deficiencies: series i takes colour i modulo 7. */
ts_rgb ts_plot_series_colour(size_t i);

#endif
