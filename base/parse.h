/* SPDX-License-Identifier: MIT */
/* Whole-string, range-checked parsing of numbers, durations, sizes and booleans. libc only. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Each returns 0 and writes *ret only on success. Errors:
 *   -EINVAL  empty, sign where none allowed, trailing garbage, not a number
 *   -ERANGE  outside [min, max] or overflow */

/* Decimal unsigned integer; no sign, no leading/trailing space. */
int parse_uint64(const char *s, uint64_t min, uint64_t max, uint64_t *ret);
int parse_uint(const char *s, unsigned min, unsigned max, unsigned *ret);
/* Decimal signed integer; optional leading '-'. */
int parse_int64(const char *s, int64_t min, int64_t max, int64_t *ret);
/* Hexadecimal, exactly 1..16 digits, optional "0x"; used for USB ids and classes. */
int parse_hex(const char *s, uint64_t max, uint64_t *ret);
/* Duration "90", "90s", "15m", "2h", "1d", "5y" (365 days) → seconds. */
int parse_duration(const char *s, uint64_t min, uint64_t max, uint64_t *ret);
/* Size "1048576", "512K", "64M", "1G" (powers of 1024) → bytes. */
int parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *ret);
/* yes/no, true/false, on/off, 1/0 (case-insensitive). */
int parse_bool(const char *s, bool *ret);
