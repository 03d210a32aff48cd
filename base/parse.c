/* SPDX-License-Identifier: MIT */
/* Whole-string, range-checked parsing of numbers, durations, sizes and booleans. libc only. */
#include "parse.h"

#include <errno.h>
#include <stddef.h>
#include <strings.h>

static int digits_to_u64(const char *s, const char **end, uint64_t *ret)
{
	uint64_t v = 0;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*end = p;
	*ret = v;
	return 0;
}

int parse_uint64(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	const char *end;
	uint64_t v;
	int r;

	if (!s)
		return -EINVAL;
	r = digits_to_u64(s, &end, &v);
	if (r < 0)
		return r;
	if (*end != '\0')
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

int parse_uint(const char *s, unsigned min, unsigned max, unsigned *ret)
{
	uint64_t v;
	int r = parse_uint64(s, min, max, &v);

	if (r < 0)
		return r;
	*ret = (unsigned)v;
	return 0;
}

int parse_int64(const char *s, int64_t min, int64_t max, int64_t *ret)
{
	bool neg = false;
	uint64_t v;
	const char *end;
	int64_t out;
	int r;

	if (!s)
		return -EINVAL;
	if (*s == '-') {
		neg = true;
		s++;
	}
	r = digits_to_u64(s, &end, &v);
	if (r < 0)
		return r;
	if (*end != '\0')
		return -EINVAL;
	if (neg) {
		if (v > (uint64_t)INT64_MAX + 1)
			return -ERANGE;
		out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	} else {
		if (v > (uint64_t)INT64_MAX)
			return -ERANGE;
		out = (int64_t)v;
	}
	if (out < min || out > max)
		return -ERANGE;
	*ret = out;
	return 0;
}

int parse_hex(const char *s, uint64_t max, uint64_t *ret)
{
	uint64_t v = 0;
	size_t n = 0;

	if (!s)
		return -EINVAL;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	for (; *s; s++, n++) {
		unsigned d;
		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (*s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else if (*s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A' + 10);
		else
			return -EINVAL;
		if (n >= 16)
			return -ERANGE;
		v = (v << 4) | d;
	}
	if (n == 0)
		return -EINVAL;
	if (v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

static int parse_with_suffix(const char *s, uint64_t min, uint64_t max, uint64_t *ret,
			     const char *suffixes, const uint64_t *factors)
{
	const char *end;
	uint64_t v, f = factors[0];
	int r;

	if (!s)
		return -EINVAL;
	r = digits_to_u64(s, &end, &v);
	if (r < 0)
		return r;
	if (*end != '\0') {
		bool found = false;
		if (end[1] != '\0')
			return -EINVAL;
		for (size_t i = 0; suffixes[i]; i++)
			if (suffixes[i] == *end) {
				f = factors[i + 1];
				found = true;
				break;
			}
		if (!found)
			return -EINVAL;
	}
	if (f != 0 && v > UINT64_MAX / f)
		return -ERANGE;
	v *= f;
	if (v < min || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

int parse_duration(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	static const uint64_t factors[] = {1, 1, 60, 3600, 86400, 365 * 86400};
	return parse_with_suffix(s, min, max, ret, "smhdy", factors);
}

int parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	static const uint64_t factors[] = {1, 1024, 1024 * 1024, 1024 * 1024 * 1024};
	return parse_with_suffix(s, min, max, ret, "KMG", factors);
}

int parse_bool(const char *s, bool *ret)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};

	if (!s)
		return -EINVAL;
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*ret = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*ret = false;
			return 0;
		}
	}
	return -EINVAL;
}
