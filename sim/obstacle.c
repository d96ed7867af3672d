/* Obstacle shapes: inside test and size (sim/obstacle.h). */
#include "sim/obstacle.h"

#include <math.h>

const char *ts_obstacle_name(ts_obstacle_kind kind) {
    switch (kind) {
    case TS_OBSTACLE_CIRCLE: return "circle";
    case TS_OBSTACLE_ELLIPSE: return "ellipse";
    case TS_OBSTACLE_ROUNDED_RECT: return "rounded rectangle";
    default: return "?";
    }
}

int ts_obstacle_inside(const ts_obstacle *o, double x, double y) {
    /* into the shape's own axes */
    double c = cos(o->angle), s = sin(o->angle);
    double dx = x - o->cx, dy = y - o->cy;
    double u = c * dx + s * dy, v = -s * dx + c * dy;
    switch (o->kind) {
    case TS_OBSTACLE_CIRCLE: return u * u + v * v <= o->a * o->a;
    case TS_OBSTACLE_ELLIPSE: return (u * u) / (o->a * o->a) + (v * v) / (o->b * o->b) <= 1.0;
    case TS_OBSTACLE_ROUNDED_RECT: {
        /* a rectangle shrunk by the corner radius, then grown by it */
        double qx = fabs(u) - (o->a - o->corner), qy = fabs(v) - (o->b - o->corner);
        double ox = qx > 0 ? qx : 0, oy = qy > 0 ? qy : 0;
        return ox * ox + oy * oy <= o->corner * o->corner;
    }
    default: return 0;
    }
}

double ts_obstacle_height(const ts_obstacle *o) {
    double c = fabs(cos(o->angle)), s = fabs(sin(o->angle));
    switch (o->kind) {
    case TS_OBSTACLE_CIRCLE: return 2 * o->a;
    case TS_OBSTACLE_ELLIPSE: return 2 * sqrt(o->a * o->a * s * s + o->b * o->b * c * c);
    case TS_OBSTACLE_ROUNDED_RECT: return 2 * ((o->a - o->corner) * s + (o->b - o->corner) * c + o->corner);
    default: return 0;
    }
}

ts_obstacle ts_obstacle_scaled(const ts_obstacle *o, double s) {
    ts_obstacle r = *o;
    r.cx *= s, r.cy *= s, r.a *= s, r.b *= s, r.corner *= s;
    return r;
}
