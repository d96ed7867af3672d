#include "core/solar.h"

#include <math.h>

static const double PI = 3.14159265358979323846;
static const double DEG = 3.14159265358979323846 / 180.0;
static const double J2000 = 946728000.0; /* 2000-01-01 12:00 UTC */

ts_sun ts_sun_at(double t) {
    double n = (t - J2000) / 86400.0;             /* days from J2000 */
    double L = fmod(280.460 + 0.9856474 * n, 360.0); /* mean longitude, deg */
    double g = fmod(357.528 + 0.9856003 * n, 360.0) * DEG; /* mean anomaly */
    double lambda = (L + 1.915 * sin(g) + 0.020 * sin(2 * g)) * DEG; /* ecliptic longitude */
    double eps = (23.439 - 0.0000004 * n) * DEG;  /* obliquity */
    double ra = atan2(cos(eps) * sin(lambda), cos(lambda));
    double r = 1.00014 - 0.01671 * cos(g) - 0.00014 * cos(2 * g); /* AU */
    double eot = L * DEG - ra;                    /* mean minus true right ascension */
    eot = remainder(eot, 2 * PI);
    ts_sun s = {asin(sin(eps) * sin(lambda)), eot, TS_SOLAR_CONSTANT / (r * r)};
    return s;
}

/* Hour angle (radians) of the sun at a longitude: 0 at local solar noon. */
static double hour_angle(double t, double lon_deg, const ts_sun *s) {
    double utc_hours = fmod(t / 3600.0, 24.0);
    if (utc_hours < 0) utc_hours += 24.0;
    return (utc_hours - 12.0) * 15.0 * DEG + lon_deg * DEG + s->eot;
}

double ts_solar_cos_zenith(double t, double lat_deg, double lon_deg) {
    ts_sun s = ts_sun_at(t);
    double phi = lat_deg * DEG;
    return sin(phi) * sin(s.declination) + cos(phi) * cos(s.declination) * cos(hour_angle(t, lon_deg, &s));
}

double ts_solar_toa_flux(double t, double lat_deg, double lon_deg) {
    double mu = ts_solar_cos_zenith(t, lat_deg, lon_deg);
    return mu > 0 ? ts_sun_at(t).irradiance * mu : 0.0;
}

/* G(h) = integral from -pi to h of max(A + B cos x, 0) dx, for any h
 * (periodic increments), B >= 0. */
static double clipped_primitive(double A, double B, double h) {
    double k = floor((h + PI) / (2 * PI));
    double x = h - 2 * PI * k; /* in [-pi, pi) */
    double hs, full;
    if (A >= B) { /* sun up all day */
        hs = PI;
    } else if (A <= -B) { /* polar night */
        return 0.0;
    } else {
        hs = acos(-A / B);
    }
    full = 2 * (A * hs + B * sin(hs));
    double part;
    if (x <= -hs) part = 0.0;
    else if (x >= hs) part = full;
    else part = A * (x + hs) + B * (sin(x) + sin(hs));
    return k * full + part;
}

static double tisr_with_sun(double t, double lat_deg, double lon_deg, const ts_sun *s) {
    const double omega = 2 * PI / 86400.0; /* hour angle rate, rad s^-1 */
    double phi = lat_deg * DEG;
    double A = sin(phi) * sin(s->declination), B = cos(phi) * cos(s->declination);
    if (B < 0) B = 0; /* cos(phi) at +-90 rounds to tiny negatives */
    double h1 = hour_angle(t, lon_deg, s), h0 = h1 - 3600.0 * omega;
    return s->irradiance / omega * (clipped_primitive(A, B, h1) - clipped_primitive(A, B, h0));
}

double ts_solar_tisr(double t, double lat_deg, double lon_deg) {
    ts_sun s = ts_sun_at(t - 1800.0);
    return tisr_with_sun(t, lat_deg, lon_deg, &s);
}

void ts_solar_tisr_field(double t, const double *lat_deg, size_t nlat, const double *lon_deg, size_t nlon,
                         float *out) {
    ts_sun s = ts_sun_at(t - 1800.0);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < nlat; i++)
        for (size_t j = 0; j < nlon; j++) out[i * nlon + j] = (float)tisr_with_sun(t, lat_deg[i], lon_deg[j], &s);
}
