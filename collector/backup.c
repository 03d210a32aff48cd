/* SPDX-License-Identifier: MIT */
/* Online backup and restore of the collector's database with SQLite's backup API. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup.h"
#include "store-pg.h"
#include "macro.h"
#include "store.h"

static int fail(char *err, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, int r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, BACKUP_ERROR_MAX, fmt, ap);
	va_end(ap);
	return r;
}

static int sqlite_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	case SQLITE_PERM:
	case SQLITE_READONLY:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
		return -EBADMSG;
	default:
		return -EIO;
	}
}

static int exec_int(sqlite3 *db, const char *sql, long long *ret)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*ret = sqlite3_column_int64(st, 0);
			rc = SQLITE_OK;
		}
	}
	sqlite3_finalize(st);
	return rc;
}

/* quick_check, schema version and event count of an open database. */
static int check_copy(sqlite3 *db, const char *what, struct backup_info *info, char *err)
{
	sqlite3_stmt *st = NULL;
	const char *res = NULL;
	long long v = -1;
	int rc = sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL);
	if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		res = (const char *)sqlite3_column_text(st, 0);
	if (!res || strcmp(res, "ok") != 0) {
		int r = fail(err, -EBADMSG, "%s fails SQLite's quick_check: %s", what,
			     res ? res : sqlite3_errmsg(db));
		sqlite3_finalize(st);
		return r;
	}
	sqlite3_finalize(st);
	if (exec_int(db, "PRAGMA user_version", &v) != SQLITE_OK)
		return fail(err, -EIO, "%s: cannot read its schema version", what);
	if (v < 1 || v > STORE_SCHEMA_VERSION)
		return fail(err, -EPROTO,
			    "%s has schema %lld; this mynaguard-collector knows 1..%d%s", what, v,
			    STORE_SCHEMA_VERSION,
			    v > STORE_SCHEMA_VERSION ? " (made by a newer version)" : "");
	info->schema = (int)v;
	info->rows = 0;
	if (exec_int(db, "SELECT count(*) FROM events", &info->rows) != SQLITE_OK)
		return fail(err, -EBADMSG, "%s has no events table: not a collector database",
			    what);
	return 0;
}

/* As root: give path the owner uid:gid when it exists with another one. */
static void chown_if(const char *path, uid_t uid, gid_t gid)
{
	struct stat st;
	if (geteuid() == 0 && lstat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	    (st.st_uid != uid || st.st_gid != gid))
		if (chown(path, uid, gid) < 0)
			return; /* the next start reports it: nothing more to do here */
}

static void chown_db_files(const char *db_path, uid_t uid, gid_t gid)
{
	char p[PATH_MAX];
	chown_if(db_path, uid, gid);
	snprintf(p, sizeof p, "%s-wal", db_path);
	chown_if(p, uid, gid);
	snprintf(p, sizeof p, "%s-shm", db_path);
	chown_if(p, uid, gid);
}

int collector_backup(const char *db_path, const char *dest, struct backup_info *info,
		     char err[static BACKUP_ERROR_MAX])
{
	sqlite3 *src = NULL, *dst = NULL;
	char tmp[PATH_MAX];
	struct stat dbst;
	int r = 0, rc, fd;

	if (store_pg_location(db_path)) {
		snprintf(err, BACKUP_ERROR_MAX,
			 "the store is PostgreSQL: back it up with pg_dump or pg_basebackup "
			 "(docs/postgresql.md)");
		return -EOPNOTSUPP;
	}
	*info = (struct backup_info){0};
	if (stat(db_path, &dbst) < 0)
		return fail(err, -errno, "database %s: %s", db_path, strerror(errno));
	if (snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", dest) >= (int)sizeof tmp)
		return fail(err, -ENAMETOOLONG, "%s: name too long", dest);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return fail(err, -errno, "cannot create a file next to %s: %s", dest,
			    strerror(errno));
	(void)fchmod(fd, 0600);
	close(fd);

	/* Its own connection, read-only in effect; the running collector's WAL and shared memory
	 * are used as they are (no new files when it runs). */
	rc = sqlite3_open_v2(db_path, &src, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(src, "PRAGMA query_only = ON", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		r = fail(err, sqlite_errno(rc), "database %s: %s", db_path,
			 src ? sqlite3_errmsg(src) : sqlite3_errstr(rc));
		goto out;
	}
	sqlite3_busy_timeout(src, 10000);
	rc = sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		r = fail(err, sqlite_errno(rc), "%s: %s", tmp,
			 dst ? sqlite3_errmsg(dst) : sqlite3_errstr(rc));
		goto out;
	}
	/* One step for all pages: one read transaction, so the copy is one consistent state;
	 * in WAL mode the collector keeps writing meanwhile. */
	sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
	if (!b) {
		r = fail(err, -EIO, "backup: %s", sqlite3_errmsg(dst));
		goto out;
	}
	do {
		rc = sqlite3_backup_step(b, -1);
		if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
			sqlite3_sleep(50);
	} while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
	info->pages = sqlite3_backup_pagecount(b);
	sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE) {
		r = fail(err, sqlite_errno(rc), "backup of %s: %s", db_path, sqlite3_errstr(rc));
		goto out;
	}
	/* The copy alone: no WAL file beside it. */
	rc = sqlite3_exec(dst, "PRAGMA journal_mode = DELETE", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		r = fail(err, sqlite_errno(rc), "%s: %s", tmp, sqlite3_errmsg(dst));
		goto out;
	}
	r = check_copy(dst, "the copy", info, err);
	if (r < 0)
		goto out;
	sqlite3_close_v2(dst);
	dst = NULL;
	fd = open(tmp, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0) {
		r = fail(err, -errno, "%s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	close(fd);
	if (rename(tmp, dest) < 0) {
		r = fail(err, -errno, "rename to %s: %s", dest, strerror(errno));
		goto out;
	}
	{
		char d[PATH_MAX];
		snprintf(d, sizeof d, "%s", dest);
		fd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0) {
			(void)fsync(fd);
			close(fd);
		}
	}
out:
	if (dst)
		sqlite3_close_v2(dst);
	if (src)
		sqlite3_close_v2(src);
	if (r < 0)
		unlink(tmp);
	/* As root with the collector stopped, our connection may have made WAL files. */
	chown_db_files(db_path, dbst.st_uid, dbst.st_gid);
	return r;
}

int collector_restore(const char *db_path, const char *src_path, struct backup_info *info,
		      char err[static BACKUP_ERROR_MAX])
{
	sqlite3 *src = NULL, *dst = NULL;
	struct stat dirst;
	char d[PATH_MAX];
	int r = 0, rc;

	if (store_pg_location(db_path)) {
		snprintf(err, BACKUP_ERROR_MAX,
			 "the store is PostgreSQL: back it up with pg_dump or pg_basebackup "
			 "(docs/postgresql.md)");
		return -EOPNOTSUPP;
	}
	*info = (struct backup_info){0};
	snprintf(d, sizeof d, "%s", db_path);
	if (stat(dirname(d), &dirst) < 0)
		return fail(err, -errno, "%s: %s", d, strerror(errno));
	rc = sqlite3_open_v2(src_path, &src, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		r = fail(err, sqlite_errno(rc), "backup %s: %s", src_path,
			 src ? sqlite3_errmsg(src) : sqlite3_errstr(rc));
		goto out;
	}
	r = check_copy(src, "the backup", info, err);
	if (r < 0)
		goto out;
	rc = sqlite3_open_v2(
	    db_path, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		r = fail(err, sqlite_errno(rc), "database %s: %s", db_path,
			 dst ? sqlite3_errmsg(dst) : sqlite3_errstr(rc));
		goto out;
	}
	/* Exclusive: fails at once while any other connection (a running collector) has it open. */
	rc = sqlite3_exec(dst, "PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; COMMIT", NULL,
			  NULL, NULL);
	if (rc != SQLITE_OK) {
		r = fail(err, -EBUSY,
			 "database %s is in use (%s): stop the collector first "
			 "(systemctl stop mynaguard-collector)",
			 db_path, sqlite3_errmsg(dst));
		goto out;
	}
	sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
	if (!b) {
		r = fail(err, -EIO, "restore: %s", sqlite3_errmsg(dst));
		goto out;
	}
	rc = sqlite3_backup_step(b, -1);
	info->pages = sqlite3_backup_pagecount(b);
	sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE) {
		r = fail(err, sqlite_errno(rc), "restore into %s: %s", db_path, sqlite3_errstr(rc));
		goto out;
	}
	/* The collector's own mode again (store_open sets it too). */
	rc = sqlite3_exec(dst, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		r = fail(err, sqlite_errno(rc), "%s: %s", db_path, sqlite3_errmsg(dst));
		goto out;
	}
	r = check_copy(dst, "the restored database", info, err);
out:
	if (dst)
		sqlite3_close_v2(dst);
	if (src)
		sqlite3_close_v2(src);
	chown_db_files(db_path, dirst.st_uid, dirst.st_gid);
	return r;
}
