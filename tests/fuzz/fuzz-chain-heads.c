/* SPDX-License-Identifier: MIT */
/* Fuzz target: the collector's signed chain heads text (evidence_heads_parse). Whatever parses
 * is written back with evidence_heads_text and must come out byte for byte the same. */
#include <stdlib.h>
#include <string.h>

#include "evidence.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store_head *heads = NULL;
	char *body = malloc(size + 1), *text = NULL;
	size_t n = 0, len = 0;
	int64_t at;

	if (!body)
		return 0;
	memcpy(body, data, size);
	body[size] = '\0';
	if (evidence_heads_parse(body, &heads, &n, &at) == 0) {
		if (evidence_heads_text(heads, n, at, &text, &len) < 0)
			abort();
		if (len != strlen(body) || memcmp(text, body, len) != 0)
			abort();
		free(text);
		free(heads);
	}
	free(body);
	return 0;
}
