#include "core/geo.h"

#include <math.h>
#include <stdlib.h>

typedef struct {
    double lat;
    size_t index;
} row;

static int by_lat(const void *a, const void *b) {
    double x = ((const row *)a)->lat, y = ((const row *)b)->lat;
    return (x > y) - (x < y);
}

int ts_lat_area_weights(const double *lat, size_t n, double *w) {
    if (n < 2) return -1;
    row *r = malloc(sizeof(row) * n);
    if (!r) return -1;
    for (size_t i = 0; i < n; i++) {
        if (!(lat[i] >= -90.0 && lat[i] <= 90.0)) {
            free(r);
            return -1;
        }
        r[i].lat = lat[i], r[i].index = i;
    }
    qsort(r, n, sizeof(row), by_lat);
    const double deg = 3.14159265358979323846 / 180.0;
    double total = 0;
    for (size_t k = 0; k < n; k++) {
        if (k && r[k].lat == r[k - 1].lat) {
            free(r);
            return -1;
        }
        double lo = k == 0 ? -90.0 : 0.5 * (r[k - 1].lat + r[k].lat);
        double hi = k + 1 == n ? 90.0 : 0.5 * (r[k].lat + r[k + 1].lat);
        w[r[k].index] = sin(hi * deg) - sin(lo * deg);
        total += w[r[k].index];
    }
    for (size_t i = 0; i < n; i++) w[i] *= (double)n / total;
    free(r);
    return 0;
}
