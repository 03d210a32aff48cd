/* SPDX-License-Identifier: MIT */
/* Fuzz target: mynaguard-signer decoding a request from the collector (which a memory bug in the
 * network-facing process may have handed to an attacker), and the collector decoding the
 * signer's answer. Both decoders must accept only what the encoders produce. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "signer-proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct signer_request req;
	static struct signer_answer ans;
	static uint8_t out[SIGNER_ANSWER_MAX];
	uint8_t *buf = malloc(size ? size : 1);
	size_t len;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	if (signer_request_decode(buf, size, &req) == 0) {
		if (req.csr_len == 0 || req.csr_len > SIGNER_CSR_MAX ||
		    strlen(req.terminal) > EVENT_TERMINAL_MAX ||
		    !event_terminal_id_valid(req.terminal) ||
		    strcmp(req.terminal, "mynaguard-collector") == 0)
			abort();
		/* what decodes encodes back to the same bytes */
		if (signer_request_encode(&req, out, sizeof(out), &len) != 0 || len != size ||
		    memcmp(out, buf, size) != 0)
			abort();
	}
	if (signer_answer_decode(buf, size, &ans) == 0) {
		if (ans.cert_len > SIGNER_CERT_MAX || (ans.status == 0) != (ans.cert_len > 0) ||
		    ans.status > 0)
			abort();
		if (signer_answer_encode(&ans, out, sizeof(out), &len) != 0 || len != size ||
		    memcmp(out, buf, size) != 0)
			abort();
	}
	free(buf);
	return 0;
}
