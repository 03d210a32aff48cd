/* SPDX-License-Identifier: MIT */
/* Fuzz target: the install manifest parser of agent.integrity (sha256sum lines). */
#include <stdlib.h>
#include <string.h>

#include "compliance.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct compliance_manifest m = {0};
	unsigned line = 0;

	if (compliance_manifest_parse((const char *)data, size, &m, &line) == 0) {
		for (size_t i = 0; i < m.n; i++) {
			if (strlen(m.entries[i].hex) != 64 || m.entries[i].path[0] != '/')
				abort();
			if (compliance_manifest_find(&m, m.entries[i].path) == NULL)
				abort();
		}
	}
	compliance_manifest_clear(&m);
	return 0;
}
