/* SPDX-License-Identifier: MIT */
/* Online backup and restore of the collector's SQLite database (SQLite's backup API).
 * See mynaguard-collector(8), BACKUP AND RESTORE, and docs/install.md. */
#pragma once

#include <stddef.h>

#define BACKUP_ERROR_MAX 512

struct backup_info {
	int pages;	/* pages copied */
	int schema;	/* the copy's schema version (PRAGMA user_version) */
	long long rows; /* events in the copy */
};

/* Copy the database at db_path into dest, consistently, while the collector may be running and
 * writing (one read transaction on a connection of its own; WAL lets the writer go on). The copy
 * is written to a temporary file next to dest (mode 0600), checked (quick_check, schema), synced
 * and renamed over dest; nothing is left behind on failure. Returns 0, or -errno with err set. */
int collector_backup(const char *db_path, const char *dest, struct backup_info *info,
		     char err[static BACKUP_ERROR_MAX]);

/* Put the backup src back as the database db_path (created when missing). Refuses while another
 * connection has the database open (a running collector): the restore takes SQLite's exclusive
 * lock first. src is checked (quick_check, a schema this version knows) before anything changes;
 * the copy goes in through the backup API in one transaction, so a failure leaves the old
 * database as it was. As root, the files get the owner of the database's directory. */
int collector_restore(const char *db_path, const char *src, struct backup_info *info,
		      char err[static BACKUP_ERROR_MAX]);
