/* SPDX-License-Identifier: MIT */
/* Strings that come from a USB device: UTF-8 validation, log escaping, event sanitizing. libc only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* True when s[0..len) is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
bool usb_str_valid_utf8(const char *s, size_t len);

/* Write s as a double-quoted log token into buf: escape_text() (base/escape.h) with quotes and
 * no input limit, so valid UTF-8 stays readable, '"' and '\\' become \" and \\, control bytes
 * and invalid UTF-8 \xHH, cut with "..." on a character boundary when it does not fit. NULL is
 * written as - (no quotes). Returns buf ("" when size is 0). */
const char *usb_str_escape(const char *s, char *buf, size_t size);

/* A copy of s for an event: at most max bytes of valid UTF-8 (cut at a character boundary),
 * each invalid byte and each control character replaced by U+FFFD. NULL for NULL or on ENOMEM. */
char *usb_str_sanitize(const char *s, size_t max);
