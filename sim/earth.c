#include "sim/earth.h"

#include <math.h>

/* An ellipse in degrees: centre, half-widths, rotation (degrees,
 * counter-clockwise from east). */
typedef struct {
    double lon, lat, half_lon, half_lat, angle;
} blob;

/* Continents, roughly. Longitudes east of Greenwich, -180..180. */
static const blob LAND[] = {
    {85, 52, 62, 16, 0},     /* northern Eurasia */
    {15, 50, 20, 11, 0},     /* Europe */
    {100, 33, 32, 13, 0},    /* China, Tibet */
    {48, 26, 14, 9, 0},      /* Arabia */
    {78, 20, 8, 11, 0},      /* India */
    {103, 14, 7, 9, 0},      /* Indochina */
    {10, 16, 27, 13, 0},     /* North Africa, Sahara */
    {25, -8, 14, 22, 0},     /* central and southern Africa */
    {-100, 50, 30, 16, 0},   /* North America */
    {-152, 64, 14, 7, 0},    /* Alaska */
    {-85, 68, 25, 8, 0},     /* Canadian Arctic */
    {-98, 25, 10, 8, -35},   /* Mexico */
    {-41, 73, 12, 10, 0},    /* Greenland */
    {-60, -8, 18, 15, 0},    /* Amazonia, Brazil */
    {-66, -33, 7, 20, 0},    /* southern South America */
    {134, -25, 17, 10, 0},   /* Australia */
};

/* Mountain ranges: Gaussian ridges of peak height (m) on the land. */
typedef struct {
    blob shape;
    double height;
} range;

static const range RANGES[] = {
    {{88, 33, 12, 5, 0}, 4500},     /* Tibetan plateau */
    {{-112, 42, 6, 14, -15}, 2200}, /* Rocky Mountains */
    {{-69, -22, 3, 22, 0}, 3200},   /* Andes */
    {{-41, 73, 9, 7, 0}, 2200},     /* Greenland ice sheet */
    {{35, -5, 6, 12, 0}, 1200},     /* East African highlands */
    {{10, 46, 5, 2, 0}, 1300},      /* Alps */
    {{60, 50, 30, 8, 0}, 400},      /* steppe and Siberian uplands */
    {{45, -80, 80, 12, 0}, 3000},   /* East Antarctica */
    {{-100, -80, 60, 10, 0}, 1800}, /* West Antarctica */
};

static const double DEG = 3.14159265358979323846 / 180.0;

/* Squared normalized distance from a blob's centre (1 on its edge),
 * longitudes wrapped to the nearest copy and scaled by cos(latitude) of the
 * centre so that shapes keep their size on the sphere. */
static double blob_r2(const blob *b, double lat, double lon) {
    double dx = remainder(lon - b->lon, 360.0), dy = lat - b->lat;
    double c = cos(b->angle * DEG), s = sin(b->angle * DEG);
    double u = (c * dx + s * dy) / b->half_lon, v = (-s * dx + c * dy) / b->half_lat;
    return u * u + v * v;
}

/* A smooth step from 1 inside to 0 outside, about `width` (in units of the
 * blob radius) wide. */
static double soft_inside(double r2, double width) {
    double r = sqrt(r2);
    return 0.5 * (1.0 - tanh((r - 1.0) / width));
}

double ts_earth_land(double lat, double lon) {
    double land = 0.0;
    for (size_t i = 0; i < sizeof LAND / sizeof LAND[0]; i++) {
        double l = soft_inside(blob_r2(&LAND[i], lat, lon), 0.08);
        if (l > land) land = l;
    }
    /* Antarctica: everything south of about 70 S. */
    double ant = 0.5 * (1.0 - tanh((lat + 70.0) / 1.5));
    if (ant > land) land = ant;
    return land < 1e-3 ? 0.0 : land; /* the tails of the coasts: open sea is exactly 0 */
}

double ts_earth_height(double lat, double lon) {
    double land = ts_earth_land(lat, lon);
    if (land == 0.0) return 0.0;
    double h = 250.0; /* lowlands */
    for (size_t i = 0; i < sizeof RANGES / sizeof RANGES[0]; i++)
        h += RANGES[i].height * exp(-blob_r2(&RANGES[i].shape, lat, lon));
    return land * h;
}

void ts_earth_cells(const double *lat, size_t nlat, double dlat, const double *lon, size_t nlon, double dlon,
                    int sub, double *land, double *height) {
    for (size_t i = 0; i < nlat; i++)
        for (size_t j = 0; j < nlon; j++) {
            double sl = 0.0, sh = 0.0;
            for (int a = 0; a < sub; a++)
                for (int b = 0; b < sub; b++) {
                    double la = lat[i] + dlat * ((a + 0.5) / sub - 0.5);
                    double lo = lon[j] + dlon * ((b + 0.5) / sub - 0.5);
                    if (land) sl += ts_earth_land(la, lo);
                    if (height) sh += ts_earth_height(la, lo);
                }
            if (land) land[i * nlon + j] = sl / (sub * sub);
            if (height) height[i * nlon + j] = sh / (sub * sub);
        }
}
