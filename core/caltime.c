#include "core/caltime.h"

#include <stdio.h>
#include <string.h>

int64_t ts_days_from_civil(int year, int month, int day) {
    int64_t y = year - (month <= 2);
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void ts_civil_from_days(int64_t z, int *year, int *month, int *day) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int d = (int)(doy - (153 * mp + 2) / 5 + 1);
    int m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *year = (int)(yoe + era * 400 + (m <= 2)), *month = m, *day = d;
}

static int64_t floor_div(int64_t a, int64_t b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }

int64_t ts_unix_from_datetime(const ts_datetime *dt) {
    return ts_days_from_civil(dt->year, dt->month, dt->day) * 86400 + dt->hour * 3600 + dt->minute * 60 + dt->second;
}

ts_datetime ts_datetime_from_unix(int64_t t) {
    ts_datetime dt;
    int64_t days = floor_div(t, 86400), rest = t - days * 86400;
    ts_civil_from_days(days, &dt.year, &dt.month, &dt.day);
    dt.hour = (int)(rest / 3600), dt.minute = (int)(rest % 3600 / 60), dt.second = (int)(rest % 60);
    return dt;
}

int ts_day_of_year(int64_t t) {
    ts_datetime dt = ts_datetime_from_unix(t);
    return (int)(ts_days_from_civil(dt.year, dt.month, dt.day) - ts_days_from_civil(dt.year, 1, 1)) + 1;
}

static int days_in_month(int y, int m) {
    static const int DAYS[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return DAYS[m - 1] + (m == 2 && leap);
}

int ts_parse_datetime(const char *text, int64_t *t) {
    ts_datetime dt = {0, 0, 0, 0, 0, 0};
    char sep = 0;
    int n = 0, used = 0;
    n = sscanf(text, "%4d-%2d-%2d%n", &dt.year, &dt.month, &dt.day, &used);
    if (n != 3 || used != 10) return -1;
    const char *rest = text + used;
    if (*rest) {
        int used2 = 0;
        sep = rest[0];
        if (sep != 'T' && sep != ' ') return -1;
        rest++;
        if (sscanf(rest, "%2d:%2d:%2d%n", &dt.hour, &dt.minute, &dt.second, &used2) == 3 && used2 == 8) rest += used2;
        else if (used2 = 0, sscanf(rest, "%2d:%2d%n", &dt.hour, &dt.minute, &used2) == 2 && used2 == 5) rest += used2;
        else if (used2 = 0, sscanf(rest, "%2d%n", &dt.hour, &used2) == 1 && used2 == 2) rest += used2;
        else return -1;
        if (*rest) return -1;
    }
    if (dt.month < 1 || dt.month > 12 || dt.day < 1 || dt.day > days_in_month(dt.year, dt.month) || dt.hour > 23 ||
        dt.hour < 0 || dt.minute < 0 || dt.minute > 59 || dt.second < 0 || dt.second > 59)
        return -1;
    *t = ts_unix_from_datetime(&dt);
    return 0;
}

void ts_format_datetime(int64_t t, char *buf, size_t cap) {
    ts_datetime dt = ts_datetime_from_unix(t);
    snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d", dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second);
}
