/* SPDX-License-Identifier: MIT */
/* Fuzz target: a central TOTP secret sealed to a terminal (docs/fleet.md, "Central TOTP
 * enrollment"), what the agent's monitor opens: the framing (bundle_sealed_decode), the opening
 * with a fixed terminal key and ids (bundle_totp_open: X25519, HKDF, AES-256-GCM, then the
 * plaintext) and the plaintext decoder on the raw input (bundle_totp_secret_decode). Whatever
 * decodes must encode back to the same bytes. The seed valid-clerk1 opens (written by
 * tests/fuzz/gen-totp-sealed-corpus.py with an independent implementation). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "fuzz.h"

#define FUZZ_TERMINAL "fuzz-terminal"
#define FUZZ_USER     "clerk1"
#define FUZZ_GEN      1

static void round_trip(const uint8_t *data, size_t size, const struct bundle_totp_secret *s)
{
	uint8_t buf[BUNDLE_TOTP_PLAIN_MAX];
	size_t n = 0;

	if (bundle_totp_secret_encode(s, buf, &n) < 0 || n != size || memcmp(buf, data, n) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t priv[BUNDLE_X25519_LEN] = {
	    0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
	    0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
	    0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
	};
	struct bundle_sealed_frame f;
	struct bundle_totp_secret s;
	int r;

	if (bundle_totp_secret_decode(data, size, &s) == 0)
		round_trip(data, size, &s);
	if (bundle_sealed_decode(data, size, &f) == 0) {
		if (f.ct + f.ct_len != f.tag || f.tag + BUNDLE_SEAL_TAG_LEN != data + size)
			abort();
	}
	r = bundle_totp_open(priv, FUZZ_TERMINAL, FUZZ_USER, FUZZ_GEN, data, size, &s);
	if (r == 0) {
		uint8_t pub[BUNDLE_X25519_LEN], *again = NULL;
		struct bundle_totp_secret back;
		size_t len = 0;

		if (s.digits < 6 || s.digits > 8 || s.secret_len < BUNDLE_TOTP_SECRET_MIN)
			abort();
		/* another user or generation must not open it */
		if (bundle_totp_open(priv, FUZZ_TERMINAL, FUZZ_USER, FUZZ_GEN + 1, data, size,
				     &back) != -EBADMSG)
			abort();
		if (bundle_x25519_public(priv, pub) < 0 ||
		    bundle_totp_seal(pub, FUZZ_TERMINAL, FUZZ_USER, FUZZ_GEN, &s, &again, &len) <
			0 ||
		    bundle_totp_open(priv, FUZZ_TERMINAL, FUZZ_USER, FUZZ_GEN, again, len, &back) <
			0 ||
		    back.secret_len != s.secret_len ||
		    memcmp(back.secret, s.secret, s.secret_len) != 0)
			abort();
		free(again);
	} else if (r != -EBADMSG && r != -ENOMEM) {
		abort();
	}
	return 0;
}
