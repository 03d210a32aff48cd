/* SPDX-License-Identifier: MIT */
/* Fuzz target: the media ledger's CSV import (fleet_ledger_csv_parse). Whatever parses is
 * written back with fleet_ledger_csv_write and must parse again to the same rows. */
#include <stdlib.h>
#include <string.h>

#include "fleet.h"
#include "fuzz.h"

static int same(const struct fleet_ledger_row *a, const struct fleet_ledger_row *b)
{
	return strcmp(a->number, b->number) == 0 && strcmp(a->holder, b->holder) == 0 &&
	       strcmp(a->department, b->department) == 0 && strcmp(a->model, b->model) == 0 &&
	       strcmp(a->vendor, b->vendor) == 0 && strcmp(a->product, b->product) == 0 &&
	       strcmp(a->serial, b->serial) == 0 && a->encrypted == b->encrypted &&
	       strcmp(a->lent, b->lent) == 0 && strcmp(a->returned, b->returned) == 0 &&
	       strcmp(a->note, b->note) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fleet_ledger_row *rows = NULL, *again = NULL;
	size_t n = 0, n2 = 0, len = 0;
	char err[FLEET_LEDGER_ERR_MAX];
	char *text = NULL;

	if (fleet_ledger_csv_parse((const char *)data, size, &rows, &n, err, sizeof(err)) < 0)
		return 0;
	if (fleet_ledger_csv_write(rows, n, &text, &len) == 0) {
		if (fleet_ledger_csv_parse(text, len, &again, &n2, err, sizeof(err)) < 0 || n2 != n)
			abort();
		for (size_t i = 0; i < n; i++)
			if (!same(&rows[i], &again[i]))
				abort();
		fleet_ledger_rows_free(again, n2);
		free(text);
	}
	fleet_ledger_rows_free(rows, n);
	return 0;
}
