/* An invented, smooth Earth for the reference simulator: continents as a
 * union of ellipses in (longitude, latitude) with soft coasts, and
 * orography as Gaussian ranges on them (zero over the sea). They are
 * shaped roughly like the real continents so that the land-sea contrast,
 * stationary waves and monsoon-like heating fall where a user expects
 * them, but they are not the Earth: docs/sim.md lists the shapes.
 */
#ifndef TESSERA_SIM_EARTH_H
#define TESSERA_SIM_EARTH_H

#include <stddef.h>

/* Land fraction in [0, 1] at a point (a soft coast about 2 degrees wide). */
double ts_earth_land(double lat_deg, double lon_deg);
/* Surface height above sea level, m (0 over the sea). */
double ts_earth_height(double lat_deg, double lon_deg);

/* Cell averages over an sub x sub sample of each cell of a regular grid
 * whose cells are centred on lat[i], lon[j] with widths dlat, dlon:
 * land (nlat, nlon) in [0, 1] and height (nlat, nlon) in m; either may be
 * NULL. */
void ts_earth_cells(const double *lat, size_t nlat, double dlat, const double *lon, size_t nlon, double dlon,
                    int sub, double *land, double *height);

#endif
