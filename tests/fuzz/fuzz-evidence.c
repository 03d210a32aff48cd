/* SPDX-License-Identifier: MIT */
/* Fuzz target: the offline check of an evidence bundle (evidence_verify with the fixed root
 * test key of fuzz-bundle-keys.h, which signs the seeds, and the same checks without the
 * signature so that mutations reach the line and manifest parsers). */
#include <openssl/evp.h>
#include <stdlib.h>

#include "evidence-verify.h"
#include "fuzz-bundle-keys.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t pub[32];
	static int have;
	struct evidence_summary sum;
	char err[EVIDENCE_ERR_MAX];

	if (!have) {
		EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, fuzz_root_seed,
							   sizeof(fuzz_root_seed));
		size_t n = sizeof(pub);
		if (!k || EVP_PKEY_get_raw_public_key(k, pub, &n) != 1)
			abort();
		EVP_PKEY_free(k);
		have = 1;
	}
	if (evidence_bundle_verify(data, size, pub, &sum, err, sizeof(err)) == 0 &&
	    evidence_check_unsigned(data, size, NULL, err, sizeof(err)) != 0)
		abort(); /* what verifies signed must check unsigned */
	evidence_check_unsigned(data, size, &sum, err, sizeof(err));
	return 0;
}
