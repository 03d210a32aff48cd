/* SPDX-License-Identifier: MIT */
/* The hardware-token seed file: strict parser (see totp_seeds.h). Pure; never logs. */
#include "totp_seeds.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "secmem.h"

struct errlist {
	struct totp_seed_error *v;
	size_t max, n;
};

_printf_(3, 4) static void add_error(struct errlist *e, unsigned line, const char *fmt, ...)
{
	va_list ap;

	if (e->n < e->max) {
		e->v[e->n].line = line;
		va_start(ap, fmt);
		vsnprintf(e->v[e->n].what, sizeof(e->v[e->n].what), fmt, ap);
		va_end(ap);
	}
	e->n++;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool all_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (hexval(s[i]) < 0)
			return false;
	return true;
}

/* Returns bytes decoded, -EINVAL (not hex/base32), -E2BIG (too long). */
static int decode_secret(const char *s, size_t n, uint8_t *out)
{
	char norm[TOTP_SECRET_B32_MAX + 8];
	size_t k = 0;
	bool hex;
	int r;

	if (n > 4 && memcmp(s, "hex:", 4) == 0) {
		hex = true;
		s += 4;
		n -= 4;
	} else if (n > 7 && memcmp(s, "base32:", 7) == 0) {
		hex = false;
		s += 7;
		n -= 7;
	} else
		hex = n % 2 == 0 && all_hex(s, n);
	if (hex) {
		if (n % 2 != 0 || !all_hex(s, n))
			return -EINVAL;
		if (n / 2 > TOTP_SECRET_MAX_BYTES)
			return -E2BIG;
		for (size_t i = 0; i < n; i += 2)
			out[i / 2] = (uint8_t)(hexval(s[i]) << 4 | hexval(s[i + 1]));
		return (int)(n / 2);
	}
	/* base32: either case, trailing '=' padding */
	while (n > 0 && s[n - 1] == '=')
		n--;
	if (n == 0)
		return -EINVAL;
	if (n > sizeof(norm))
		return -E2BIG;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		norm[k++] = c;
	}
	r = totp_base32_decode(norm, k, out, TOTP_SECRET_MAX_BYTES);
	secmem_wipe(norm, sizeof(norm));
	if (r == -ENOBUFS)
		return -E2BIG;
	return r < 0 ? -EINVAL : r;
}

static bool number(const char *s, size_t n, unsigned min, unsigned max, unsigned *ret)
{
	unsigned v = 0;

	if (n == 0 || n > 3 || (s[0] == '0'))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v < min || v > max)
		return false;
	*ret = v;
	return true;
}

/* One data line (no line end). Fills *seed or adds errors. */
static bool parse_line(const char *s, size_t n, unsigned lineno, struct totp_seed *seed,
		       struct errlist *e)
{
	const char *f[6];
	size_t fl[6], nf = 0, start = 0;
	char user[TOTP_USER_MAX + 1];
	bool ok = true;
	int r;

	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == ',') {
			if (nf == 6) {
				nf++;
				break;
			}
			f[nf] = s + start;
			fl[nf] = i - start;
			nf++;
			start = i + 1;
		}
	}
	if (nf < 3 || nf > 5) {
		add_error(e, lineno, "expected user,serial,secret[,digits[,period]] (%zu fields)",
			  nf);
		return false;
	}
	if (fl[0] > TOTP_USER_MAX) {
		add_error(e, lineno, "user name too long");
		ok = false;
	} else {
		memcpy(user, f[0], fl[0]);
		user[fl[0]] = '\0';
		if (!totp_user_valid(user) || strlen(user) != fl[0]) {
			add_error(
			    e, lineno,
			    "not a valid user name (1-%d of A-Z a-z 0-9 . _ @ -, not starting "
			    "with . or -)",
			    TOTP_USER_MAX);
			ok = false;
		} else
			memcpy(seed->user, user, fl[0] + 1);
	}
	if (!totp_serial_valid(f[1], fl[1])) {
		add_error(e, lineno,
			  "not a valid serial (1-%d of A-Z a-z 0-9 . _ : -, starting with a letter "
			  "or digit)",
			  TOTP_SERIAL_MAX);
		ok = false;
	} else {
		memcpy(seed->serial, f[1], fl[1]);
		seed->serial[fl[1]] = '\0';
	}
	r = decode_secret(f[2], fl[2], seed->secret);
	if (r < 0 || r < TOTP_SECRET_MIN_BYTES) {
		add_error(e, lineno, "the secret must be hex or base32 of %d to %d bytes (%s)",
			  TOTP_SECRET_MIN_BYTES, TOTP_SECRET_MAX_BYTES,
			  r == -E2BIG ? "too long"
			  : r >= 0    ? "too short"
				      : "neither hex nor base32");
		ok = false;
	} else
		seed->secret_len = (size_t)r;
	seed->digits = 6;
	seed->period = 30;
	if (nf >= 4 && !number(f[3], fl[3], 6, 8, &seed->digits)) {
		add_error(e, lineno, "digits must be 6, 7 or 8");
		ok = false;
	}
	if (nf == 5 && !number(f[4], fl[4], TOTP_PERIOD_MIN, TOTP_PERIOD_MAX, &seed->period)) {
		add_error(e, lineno, "period must be %d to %d seconds", TOTP_PERIOD_MIN,
			  TOTP_PERIOD_MAX);
		ok = false;
	}
	seed->line = lineno;
	return ok;
}

void totp_seeds_free(struct totp_seed *seeds, size_t n)
{
	if (!seeds)
		return;
	secmem_wipe(seeds, n * sizeof(*seeds));
	free(seeds);
}

int totp_seeds_parse(const char *text, size_t len, struct totp_seed **ret, size_t *ret_n,
		     struct totp_seed_error *errs, size_t max_errs, size_t *ret_nerrs)
{
	struct errlist e = {.v = errs, .max = errs ? max_errs : 0};
	struct totp_seed *seeds = NULL;
	size_t n = 0, cap = 0, pos = 0;
	unsigned lineno = 0;

	*ret = NULL;
	*ret_n = 0;
	*ret_nerrs = 0;
	if (len > TOTP_SEEDS_MAX_BYTES)
		return -EFBIG;
	/* A spreadsheet's UTF-8 byte order mark. */
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		pos = 3;
	while (pos < len) {
		const char *s = text + pos, *nl = memchr(s, '\n', len - pos);
		size_t l = nl ? (size_t)(nl - s) : len - pos;
		bool bad_byte = false;

		pos += l + (nl ? 1 : 0);
		lineno++;
		if (l > 0 && s[l - 1] == '\r')
			l--;
		if (l == 0 || s[0] == '#')
			continue;
		if (l > TOTP_SEEDS_MAX_LINE) {
			add_error(&e, lineno, "line longer than %d bytes", TOTP_SEEDS_MAX_LINE);
			continue;
		}
		for (size_t i = 0; i < l; i++)
			if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f ||
			    (unsigned char)s[i] >= 0x80)
				bad_byte = true;
		if (bad_byte) {
			add_error(&e, lineno,
				  "control or non-ASCII bytes (spaces, tabs and quotes are not "
				  "allowed either)");
			continue;
		}
		if (memchr(s, ' ', l) || memchr(s, '"', l)) {
			add_error(&e, lineno, "spaces and quotes are not allowed");
			continue;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct totp_seed *nv;
			if (n >= TOTP_SEEDS_MAX) {
				totp_seeds_free(seeds, cap);
				return -EFBIG;
			}
			/* Not realloc: the old block holds secrets and must be wiped. */
			nv = calloc(ncap, sizeof(*nv));
			if (!nv) {
				totp_seeds_free(seeds, cap);
				return -ENOMEM;
			}
			if (seeds)
				memcpy(nv, seeds, n * sizeof(*seeds));
			totp_seeds_free(seeds, cap);
			seeds = nv;
			cap = ncap;
		}
		if (!parse_line(s, l, lineno, &seeds[n], &e)) {
			secmem_wipe(&seeds[n], sizeof(seeds[n]));
			continue;
		}
		for (size_t i = 0; i < n; i++) {
			if (strcmp(seeds[i].user, seeds[n].user) == 0) {
				add_error(&e, lineno, "user %s already on line %u", seeds[n].user,
					  seeds[i].line);
				break;
			}
			if (strcmp(seeds[i].serial, seeds[n].serial) == 0) {
				add_error(&e, lineno, "serial %s already on line %u",
					  seeds[n].serial, seeds[i].line);
				break;
			}
		}
		n++;
	}
	*ret_nerrs = e.n;
	if (e.n > 0) {
		totp_seeds_free(seeds, cap);
		return -EBADMSG;
	}
	if (n == 0) {
		totp_seeds_free(seeds, cap);
		return -ENODATA;
	}
	*ret = seeds;
	*ret_n = n;
	return 0;
}
