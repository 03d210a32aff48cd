/* SPDX-License-Identifier: MIT */
/* Fuzz target: the PAM service-file parser and stack walk of the mfa.pam_stack check. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "compliance.h"
#include "fuzz.h"

/* The input is up to four files separated by NUL bytes: the service "svc", then "a", "b", "c"
 * (what include/substack/@include lines in the seeds name). */
struct files {
	const char *name[4];
	const uint8_t *data[4];
	size_t len[4];
	size_t n;
};

static int load(void *userdata, const char *name, char **ret, size_t *ret_len)
{
	const struct files *f = userdata;

	for (size_t i = 0; i < f->n; i++) {
		if (strcmp(f->name[i], name) != 0)
			continue;
		char *copy = malloc(f->len[i] + 1);
		if (!copy)
			return -ENOMEM;
		memcpy(copy, f->data[i], f->len[i]);
		copy[f->len[i]] = '\0';
		*ret = copy;
		*ret_len = f->len[i];
		return 0;
	}
	return -ENOENT;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = {"svc", "a", "b", "c"};
	struct files f = {0};
	char detail[COMPLIANCE_DETAIL_MAX];
	size_t start = 0;

	if (size > COMPLIANCE_PAM_FILE_MAX)
		return 0;
	for (size_t i = 0; i <= size && f.n < 4; i++) {
		if (i < size && data[i] != '\0')
			continue;
		f.name[f.n] = names[f.n];
		f.data[f.n] = data + start;
		f.len[f.n] = i - start;
		f.n++;
		start = i + 1;
	}
	(void)compliance_pam_service("svc", load, &f, detail, sizeof(detail));
	if (!memchr(detail, '\0', sizeof(detail)))
		abort();
	return 0;
}
