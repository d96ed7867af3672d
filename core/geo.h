/* Geometry of latitude-longitude grids. */
#ifndef TESSERA_CORE_GEO_H
#define TESSERA_CORE_GEO_H

#include <stddef.h>

/* WeatherBench-2 latitude weights: each row's cell area sin(upper) -
 * sin(lower), bounds at the midpoints between neighbouring latitudes and
 * +-90 at the ends, normalised to mean 1. Latitudes may be stored in either
 * order (they are sorted for the bounds, so the weights are never
 * negative); w[i] belongs to lat[i]. Returns -1 when fewer than 2 rows or a
 * latitude repeats or lies outside [-90, 90]. */
int ts_lat_area_weights(const double *lat, size_t n, double *w);

#endif
