/* SPDX-License-Identifier: MIT */
/* Fuzz target: the bundle framing (bundle_decode, bundle_decode_base), the install checks with a
 * fixed root key (bundle_check_install: signatures, base INI, ids, versions), and the exceptions
 * JSON (bundle_exceptions_parse, the limits, the matcher, the encoder's round trip), both behind
 * valid signatures and on the raw input. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "bundle.h"
#include "fuzz-bundle-keys.h"
#include "fuzz.h"

static uint8_t root_pub[BUNDLE_PUBKEY_LEN];

static void derive_root_pub(void)
{
	static bool done;
	EVP_PKEY *k;
	size_t n = BUNDLE_PUBKEY_LEN;

	if (done)
		return;
	k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, fuzz_root_seed,
					 sizeof(fuzz_root_seed));
	if (!k || EVP_PKEY_get_raw_public_key(k, root_pub, &n) != 1)
		abort();
	EVP_PKEY_free(k);
	done = true;
}

static void check_err(const char *err)
{
	if (strnlen(err, BUNDLE_ERR_MAX) == BUNDLE_ERR_MAX)
		abort();
}

static void exercise_exceptions(const char *json, size_t len, const struct policy *base)
{
	struct bundle_exceptions ex = {0}, again = {0};
	char err[BUNDLE_ERR_MAX] = "";
	char *text = NULL, *text2 = NULL;
	int r;

	r = bundle_exceptions_parse(json, len, &ex, err, sizeof(err));
	check_err(err);
	if (r < 0) {
		if (ex.items || ex.n)
			abort();
		return;
	}
	if (ex.n > BUNDLE_MAX_EXCEPTIONS)
		abort();
	for (size_t i = 0; i < ex.n; i++) {
		const struct bundle_exception *e = &ex.items[i];
		struct policy_usb_device dev = {.vendor = e->vendor,
						.product = e->product,
						.serial = e->serial,
						.descriptor_hash = e->descriptor_hash};
		char code[9];
		if (e->from >= e->until || e->n_users > BUNDLE_MAX_USERS)
			abort();
		if (!bundle_exception_matches(e, &dev, e->from) ||
		    bundle_exception_matches(e, &dev, e->until))
			abort();
		bundle_request_code(FUZZ_TERMINAL_ID, e->vendor, e->product, e->serial, code);
		if (strlen(code) != 8)
			abort();
	}
	if (base) {
		err[0] = '\0';
		(void)bundle_check_limits(base, &ex, err, sizeof(err));
		check_err(err);
	}
	/* The canonical text parses back to the same canonical text. */
	if (bundle_exceptions_to_json(&ex, &text) < 0)
		abort();
	if (bundle_exceptions_parse(text, strlen(text), &again, err, sizeof(err)) < 0)
		abort();
	if (bundle_exceptions_to_json(&again, &text2) < 0 || strcmp(text, text2) != 0)
		abort();
	free(text);
	free(text2);
	bundle_exceptions_free(&again);
	bundle_exceptions_free(&ex);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bundle_frame f;
	struct policy *base = NULL;
	char err[BUNDLE_ERR_MAX] = "";
	int r;

	derive_root_pub();

	r = bundle_decode(data, size, &f, err, sizeof(err));
	check_err(err);
	if (r == 0) {
		if (!f.body || (size_t)(f.grant_sig - data) + BUNDLE_SIG_LEN != size ||
		    f.terminal_id_len < 1 || f.terminal_id_len > POLICY_TERMINAL_ID_MAX)
			abort();
		err[0] = '\0';
		r = bundle_check_install(&f, root_pub, FUZZ_TERMINAL_ID, 0, 0, &base, err,
					 sizeof(err));
		check_err(err);
		if (r == 0) {
			char *text = NULL;
			size_t len = 0;
			if (!base || !base->fleet || !policy_fleet_covers(base, FUZZ_TERMINAL_ID))
				abort();
			/* What the monitor writes as the policy file parses with the id. */
			if (policy_install_text((const char *)f.base, f.base_len, FUZZ_TERMINAL_ID,
						&text, &len) < 0)
				abort();
			free(text);
			exercise_exceptions(f.json, f.json_len, base);
			/* The same bundle again is never newer. */
			if (bundle_check_install(&f, root_pub, FUZZ_TERMINAL_ID, f.version, 0, NULL,
						 err, sizeof(err)) != -ESTALE)
				abort();
			policy_free(base);
		} else if (base) {
			abort();
		}
	} else if (r != -EBADMSG && r != -EFBIG) {
		abort();
	}

	err[0] = '\0';
	r = bundle_decode_base(data, size, &f, err, sizeof(err));
	check_err(err);
	if (r == 0) {
		if (f.body || (size_t)(f.root_sig - data) + BUNDLE_SIG_LEN != size)
			abort();
		(void)bundle_verify_root(&f, root_pub);
	}

	/* The JSON parser on its own: the signatures keep the fuzzer from reaching it above. */
	exercise_exceptions((const char *)data, size, NULL);
	return 0;
}
