/* SPDX-License-Identifier: MIT */
/* Secret handling: wipe that the compiler keeps, compare in constant time. libc only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Overwrite n bytes at p with zeros; never optimized away. Accepts NULL. */
void secmem_wipe(void *p, size_t n);

/* Wipe a NUL-terminated string in place (its whole length). Accepts NULL. */
void secmem_wipe_string(char *s);

/* Wipe then free a NUL-terminated string. Accepts NULL. */
void secmem_free_string(char *s);

/* true when a and b hold the same n bytes; time depends only on n. */
bool secmem_equal(const void *a, const void *b, size_t n);

/* Same for two strings: time depends only on the lengths, never on where they differ. */
bool secmem_streq(const char *a, const char *b);

static inline void secmem_free_stringp(char **p)
{
	secmem_free_string(*p);
}
#define _cleanup_secret_ __attribute__((cleanup(secmem_free_stringp)))
