/* SPDX-License-Identifier: MIT */
/* Fuzz target: the hardware-token seed file parser (totp_seeds_parse, `mynaguardctl totp
 * import`). Whatever it accepts must make valid hardware-token records that parse back to the
 * same secret; whatever it refuses must come with at least one error and no entries. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "totp_record.h"
#include "totp_seeds.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct totp_seed_error errs[8];
	struct totp_seed *seeds = NULL;
	size_t n = 0, nerrs = 0;
	int r;

	r = totp_seeds_parse((const char *)data, size, &seeds, &n, errs, 8, &nerrs);
	if (r < 0) {
		if (seeds || n != 0 || (r == -EBADMSG && nerrs == 0))
			abort();
		for (size_t i = 0; i < nerrs && i < 8; i++)
			if (errs[i].line == 0 ||
			    strnlen(errs[i].what, sizeof(errs[i].what)) == sizeof(errs[i].what))
				abort();
		return 0;
	}
	if (!seeds || n == 0 || nerrs != 0)
		abort();
	for (size_t i = 0; i < n; i++) {
		struct totp_record rec = {.kind = TOTP_KIND_HARDWARE, .enrolled = 1}, back;
		char buf[TOTP_RECORD_MAX_SIZE];
		size_t len;

		if (!totp_user_valid(seeds[i].user) ||
		    !totp_serial_valid(seeds[i].serial, strlen(seeds[i].serial)))
			abort();
		memcpy(rec.serial, seeds[i].serial, sizeof(rec.serial));
		memcpy(rec.secret, seeds[i].secret, sizeof(rec.secret));
		rec.secret_len = seeds[i].secret_len;
		rec.digits = seeds[i].digits;
		rec.period = seeds[i].period;
		if (totp_record_format(&rec, buf, sizeof(buf), &len) < 0)
			abort();
		if (totp_record_parse(buf, len, &back) < 0 || back.secret_len != rec.secret_len ||
		    memcmp(back.secret, rec.secret, rec.secret_len) != 0 ||
		    back.kind != TOTP_KIND_HARDWARE || strcmp(back.serial, rec.serial) != 0 ||
		    back.verified != 0)
			abort();
		for (size_t j = 0; j < i; j++)
			if (strcmp(seeds[i].user, seeds[j].user) == 0 ||
			    strcmp(seeds[i].serial, seeds[j].serial) == 0)
				abort();
	}
	totp_seeds_free(seeds, n);
	return 0;
}
