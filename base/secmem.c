/* SPDX-License-Identifier: MIT */
/* Secret handling: wipe that the compiler keeps, compare in constant time. libc only. */
#include "secmem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void secmem_wipe(void *p, size_t n)
{
	if (!p || n == 0)
		return;
	explicit_bzero(p, n);
}

void secmem_wipe_string(char *s)
{
	if (s)
		secmem_wipe(s, strlen(s));
}

void secmem_free_string(char *s)
{
	secmem_wipe_string(s);
	free(s);
}

bool secmem_equal(const void *a, const void *b, size_t n)
{
	const volatile uint8_t *x = a, *y = b;
	uint8_t d = 0;

	for (size_t i = 0; i < n; i++)
		d |= x[i] ^ y[i];
	return d == 0;
}

bool secmem_streq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	const volatile uint8_t *x = (const uint8_t *)a, *y = (const uint8_t *)b;
	uint8_t d = la != lb;
	size_t n = la > lb ? la : lb;

	/* Walk the longer length; indexes past the shorter string read its NUL. */
	for (size_t i = 0; i < n; i++)
		d |= (i < la ? x[i] : 0) ^ (i < lb ? y[i] : 0);
	return d == 0;
}
