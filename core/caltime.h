/* Calendar arithmetic on unix seconds (proleptic Gregorian, UTC), without
 * the C library's time zone machinery. */
#ifndef TESSERA_CORE_CALTIME_H
#define TESSERA_CORE_CALTIME_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int year, month, day, hour, minute, second;
} ts_datetime;

/* Days since 1970-01-01 of a civil date, and back (H. Hinnant's algorithms). */
int64_t ts_days_from_civil(int year, int month, int day);
void ts_civil_from_days(int64_t days, int *year, int *month, int *day);

int64_t ts_unix_from_datetime(const ts_datetime *dt);
ts_datetime ts_datetime_from_unix(int64_t t);
/* Day of the year, 1..366 (1 January = 1; 31 December = 366 in leap years). */
int ts_day_of_year(int64_t t);

/* "YYYY-MM-DD", "YYYY-MM-DDTHH", "YYYY-MM-DDTHH:MM" or "YYYY-MM-DD HH:MM:SS"
 * (UTC). Returns 0 with *t set, or -1 when the text is not such a date or
 * names an impossible one (2021-02-29). */
int ts_parse_datetime(const char *text, int64_t *t);
/* "YYYY-MM-DDTHH:MM:SS" into buf (at least 20 bytes). */
void ts_format_datetime(int64_t t, char *buf, size_t cap);

#endif
