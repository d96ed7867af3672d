/* Solar geometry and top-of-atmosphere insolation: the one function the
 * simulator writes `tisr` with and the forecast computes future forcings
 * with, so both agree to rounding.
 *
 * Sun position from the low-precision formulas of the Astronomical Almanac
 * (declination and equation of time good to about 0.01 degree, 1800-2200),
 * total solar irradiance 1361 W m^-2 scaled by the inverse square of the
 * Earth-Sun distance. Times are seconds since 1970-01-01 00:00 UTC.
 */
#ifndef TESSERA_CORE_SOLAR_H
#define TESSERA_CORE_SOLAR_H

#include <stddef.h>

#define TS_SOLAR_CONSTANT 1361.0 /* W m^-2 at 1 AU */

typedef struct {
    double declination;    /* radians */
    double eot;            /* equation of time, radians of hour angle */
    double irradiance;     /* W m^-2 at the top of the atmosphere, normal incidence */
} ts_sun;

ts_sun ts_sun_at(double unix_seconds);

/* Cosine of the solar zenith angle (may be negative: night). */
double ts_solar_cos_zenith(double unix_seconds, double lat_deg, double lon_deg);
/* Instantaneous TOA incident flux, W m^-2 (0 at night). */
double ts_solar_toa_flux(double unix_seconds, double lat_deg, double lon_deg);
/* ERA5's tisr: TOA incident solar energy accumulated over the hour ending at
 * `unix_seconds`, J m^-2. Integrated exactly over the hour angle (sunrise and
 * sunset inside the hour included) with the sun's declination, distance and
 * equation of time taken at the middle of the hour. */
double ts_solar_tisr(double unix_seconds, double lat_deg, double lon_deg);
/* The same on a grid: out (nlat, nlon), row-major. */
void ts_solar_tisr_field(double unix_seconds, const double *lat_deg, size_t nlat, const double *lon_deg,
                         size_t nlon, float *out);

#endif
