/* Calendar arithmetic and ISO 8601, independent of TZ. */
#include "util/time.h"

#include <stdio.h>

#include <ctype.h>
#include <string.h>

int64_t otr_time_days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

int otr_time_parse_iso8601(const char *s, int64_t *out)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    size_t len = strlen(s), i = 16;
    int y, mo, d, h, mi, sec = 0, tz = 0;
    if (len < 16 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || s[10] != 'T' || !digits(s + 11, 2, &h) || s[13] != ':' ||
        !digits(s + 14, 2, &mi))
        return -1;
    if (i < len && s[i] == ':') {
        if (len < i + 3 || !digits(s + i + 1, 2, &sec))
            return -1;
        i += 3;
        if (i < len && s[i] == '.') {
            size_t j = i + 1;
            while (j < len && isdigit((unsigned char)s[j]))
                j++;
            if (j == i + 1)
                return -1;
            i = j;
        }
    }
    if (i < len && s[i] == 'Z') {
        i++;
    } else if (i < len && (s[i] == '+' || s[i] == '-')) {
        int th, tm;
        if (len < i + 6 || !digits(s + i + 1, 2, &th) || s[i + 3] != ':' ||
            !digits(s + i + 4, 2, &tm) || th > 23 || tm > 59)
            return -1;
        tz = (th * 60 + tm) * (s[i] == '-' ? -1 : 1);
        i += 6;
    }
    if (i != len || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 ||
        sec > 59)
        return -1;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo == 2 && d == 29 && !leap)
        return -1;
    *out = otr_time_days_from_civil(y, mo, d) * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 + sec -
           (int64_t)tz * 60;
    return 0;
}

char *otr_time_now_iso8601(void)
{
    char buf[21];
    otr_time_format_iso8601(buf, time(NULL));
    return strdup(buf);
}

int64_t otr_time_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void otr_time_format_iso8601(char out[21], time_t t)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int otr_time_parse_duration(const char *s, int64_t *seconds)
{
    static const struct {
        char unit;
        int64_t size;
    } units[] = {{'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}};
    size_t next = 0; /* units come in this order, each at most once */
    int64_t total = 0;
    if (!s || !*s)
        return -1;
    while (*s) {
        int64_t n = 0;
        const char *start = s;
        while (*s >= '0' && *s <= '9') {
            n = n * 10 + (*s++ - '0');
            if (n > OTR_TIME_MAX_DURATION)
                return -1;
        }
        if (s == start)
            return -1;
        while (next < 4 && units[next].unit != *s)
            next++;
        if (next == 4)
            return -1;
        total += n * units[next++].size;
        if (total > OTR_TIME_MAX_DURATION)
            return -1;
        s++;
    }
    *seconds = total;
    return 0;
}

void otr_time_format_duration(char out[32], int64_t seconds)
{
    static const struct {
        char unit;
        int64_t size;
    } units[] = {{'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}};
    size_t len = 0;
    out[0] = '\0';
    if (seconds <= 0) {
        snprintf(out, 32, "0s");
        return;
    }
    for (size_t i = 0; i < 4 && len < 31; i++) {
        int64_t n = seconds / units[i].size;
        seconds %= units[i].size;
        if (n)
            len += (size_t)snprintf(out + len, 32 - len, "%lld%c", (long long)n, units[i].unit);
    }
}
