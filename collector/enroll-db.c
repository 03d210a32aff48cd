/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: the enrollment database: token hashes and terminals' certificates. */
#include "enroll-db.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "secmem.h"

#define PREFIX	   "mge1-"
#define SECRET_LEN 32 /* hex digits */

struct enroll_db {
	sqlite3 *db;
};

static const char schema[] = "CREATE TABLE IF NOT EXISTS tokens ("
			     " id TEXT PRIMARY KEY,"
			     " hash BLOB NOT NULL,"
			     " created INTEGER NOT NULL,"
			     " expires INTEGER NOT NULL,"
			     " terminal TEXT,"
			     " used_at INTEGER,"
			     " used_by TEXT);"
			     "CREATE TABLE IF NOT EXISTS certs ("
			     " terminal TEXT PRIMARY KEY,"
			     " serial TEXT NOT NULL,"
			     " not_after INTEGER NOT NULL,"
			     " seen INTEGER NOT NULL);";

const char *enroll_refusal_name(enum enroll_refusal r)
{
	switch (r) {
	case ENROLL_OK:
		return "ok";
	case ENROLL_MALFORMED:
		return "malformed";
	case ENROLL_UNKNOWN:
		return "unknown";
	case ENROLL_USED:
		return "used";
	case ENROLL_EXPIRED:
		return "expired";
	case ENROLL_WRONG_TERMINAL:
		return "wrong_terminal";
	}
	return "?";
}

static int sql_err(int rc)
{
	switch (rc) {
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_CANTOPEN:
		return -EACCES;
	default:
		return -EIO;
	}
}

int enroll_db_open(const char *path, bool create, struct enroll_db **ret)
{
	struct enroll_db *e;
	int rc;

	if (create) {
		/* the file is made 0600 by us, not by SQLite's default 0644 */
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			return negative_errno();
		close(fd);
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	rc = sqlite3_open_v2(path, &e->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_busy_timeout(e->db, 5000);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(e->db, schema, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		int r = sql_err(rc);
		enroll_db_close(e);
		return r;
	}
	*ret = e;
	return 0;
}

void enroll_db_close(struct enroll_db *e)
{
	if (!e)
		return;
	sqlite3_close(e->db);
	free(e);
}

static void hash_secret(const char *secret, unsigned char out[32])
{
	unsigned int n = 32;
	EVP_Digest(secret, strlen(secret), out, &n, EVP_sha256(), NULL);
}

static void hex(const unsigned char *b, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[b[i] >> 4];
		out[2 * i + 1] = d[b[i] & 15];
	}
	out[2 * n] = 0;
}

int enroll_token_create(struct enroll_db *e, int64_t now, int64_t expires, const char *terminal,
			char ret_token[static ENROLL_TOKEN_LEN + 1])
{
	unsigned char rnd[8 + 16], hash[32];
	char id[ENROLL_ID_LEN + 1], secret[SECRET_LEN + 1];
	sqlite3_stmt *st = NULL;
	int rc;

	if (terminal && !event_terminal_id_valid(terminal))
		return -EINVAL;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -EIO;
	hex(rnd, 8, id);
	hex(rnd + 8, 16, secret);
	hash_secret(secret, hash);
	rc = sqlite3_prepare_v2(e->db,
				"INSERT INTO tokens (id, hash, created, expires, terminal) "
				"VALUES (?, ?, ?, ?, ?)",
				-1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_blob(st, 2, hash, sizeof(hash), SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, now);
		sqlite3_bind_int64(st, 4, expires);
		if (terminal)
			sqlite3_bind_text(st, 5, terminal, -1, SQLITE_STATIC);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(e->db);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_OK) {
		secmem_wipe(secret, sizeof(secret));
		secmem_wipe(rnd, sizeof(rnd));
		return sql_err(rc);
	}
	snprintf(ret_token, ENROLL_TOKEN_LEN + 1, PREFIX "%s-%s", id, secret);
	secmem_wipe(secret, sizeof(secret));
	secmem_wipe(rnd, sizeof(rnd));
	return 0;
}

static bool lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

int enroll_token_consume(struct enroll_db *e, const char *token, const char *terminal, int64_t now,
			 enum enroll_refusal *ret_why, char *ret_id)
{
	static const unsigned char zero[32];
	char id[ENROLL_ID_LEN + 1], secret[SECRET_LEN + 1];
	unsigned char want[32], got[32];
	const void *blob;
	sqlite3_stmt *st = NULL;
	enum enroll_refusal why = ENROLL_UNKNOWN;
	bool found = false;
	int rc, r;

	*ret_why = ENROLL_MALFORMED;
	if (strlen(token) != ENROLL_TOKEN_LEN || strncmp(token, PREFIX, 5) != 0 ||
	    token[5 + ENROLL_ID_LEN] != '-' || !lower_hex(token + 5, ENROLL_ID_LEN) ||
	    !lower_hex(token + 6 + ENROLL_ID_LEN, SECRET_LEN))
		return -EACCES;
	memcpy(id, token + 5, ENROLL_ID_LEN);
	id[ENROLL_ID_LEN] = 0;
	memcpy(secret, token + 6 + ENROLL_ID_LEN, SECRET_LEN + 1);
	hash_secret(secret, got);
	secmem_wipe(secret, sizeof(secret));
	if (ret_id)
		memcpy(ret_id, id, ENROLL_ID_LEN + 1);

	rc = sqlite3_exec(e->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return sql_err(rc);
	rc = sqlite3_prepare_v2(e->db,
				"SELECT hash, expires, terminal, used_at FROM tokens WHERE id = ?",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		goto fault;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	memcpy(want, zero, sizeof(want));
	if (rc == SQLITE_ROW) {
		blob = sqlite3_column_blob(st, 0);
		if (blob && sqlite3_column_bytes(st, 0) == 32) {
			memcpy(want, blob, 32);
			found = true;
		}
	} else if (rc != SQLITE_DONE)
		goto fault;
	/* compared even when the id is unknown, so both take the same time */
	if (!CRYPTO_memcmp(want, got, 32) && found) {
		const char *t = (const char *)sqlite3_column_text(st, 2);
		if (sqlite3_column_type(st, 3) != SQLITE_NULL)
			why = ENROLL_USED;
		else if (sqlite3_column_int64(st, 1) <= now)
			why = ENROLL_EXPIRED;
		else if (t && strcmp(t, terminal) != 0)
			why = ENROLL_WRONG_TERMINAL;
		else
			why = ENROLL_OK;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (why != ENROLL_OK) {
		sqlite3_exec(e->db, "ROLLBACK", NULL, NULL, NULL);
		*ret_why = why;
		return -EACCES;
	}
	rc = sqlite3_prepare_v2(e->db,
				"UPDATE tokens SET used_at = ?, used_by = ? "
				"WHERE id = ? AND used_at IS NULL",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		goto fault;
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_text(st, 2, terminal, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		goto fault;
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_changes(e->db) != 1) {
		sqlite3_exec(e->db, "ROLLBACK", NULL, NULL, NULL);
		*ret_why = ENROLL_USED;
		return -EACCES;
	}
	rc = sqlite3_exec(e->db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		goto fault;
	*ret_why = ENROLL_OK;
	return 0;
fault:
	r = sql_err(rc == SQLITE_ROW || rc == SQLITE_DONE ? sqlite3_errcode(e->db) : rc);
	sqlite3_finalize(st);
	sqlite3_exec(e->db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

static int exec_id(struct enroll_db *e, const char *sql, const char *id, int64_t now)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(e->db, sql, -1, &st, NULL);

	if (rc != SQLITE_OK)
		return sql_err(rc);
	if (id)
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(st, 1, now);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return sql_err(rc);
	return sqlite3_changes(e->db);
}

int enroll_token_restore(struct enroll_db *e, const char *id)
{
	return exec_id(e, "UPDATE tokens SET used_at = NULL, used_by = NULL WHERE id = ?", id, 0);
}

int enroll_token_delete(struct enroll_db *e, const char *id, int64_t now)
{
	if (id)
		return exec_id(e, "DELETE FROM tokens WHERE id = ?", id, 0);
	return exec_id(e, "DELETE FROM tokens WHERE used_at IS NULL AND expires <= ?", NULL, now);
}

static void fmt_time(int64_t t, char *out, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int enroll_token_list(struct enroll_db *e, int64_t now, FILE *out)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(
	    e->db,
	    "SELECT id, expires, terminal, used_at, used_by FROM tokens ORDER BY created, id", -1,
	    &st, NULL);

	if (rc != SQLITE_OK)
		return sql_err(rc);
	fprintf(out, "%-16s  %-8s  %-20s  %s\n", "ID", "STATE", "EXPIRES", "TERMINAL");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		char exp[32];
		const char *t = (const char *)sqlite3_column_text(st, 2);
		const char *by = (const char *)sqlite3_column_text(st, 4);
		bool used = sqlite3_column_type(st, 3) != SQLITE_NULL;
		int64_t x = sqlite3_column_int64(st, 1);
		fmt_time(x, exp, sizeof(exp));
		fprintf(out, "%-16s  %-8s  %-20s  %s\n", sqlite3_column_text(st, 0),
			used	   ? "used"
			: x <= now ? "expired"
				   : "valid",
			exp,
			used && by ? by
			: t	   ? t
				   : "(any)");
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : sql_err(rc);
}

int enroll_cert_note(struct enroll_db *e, const char *terminal, const char *serial,
		     int64_t not_after, int64_t now)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(
	    e->db,
	    "INSERT INTO certs (terminal, serial, not_after, seen) VALUES (?, ?, ?, ?) "
	    "ON CONFLICT (terminal) DO UPDATE SET serial = excluded.serial, "
	    "not_after = excluded.not_after, seen = excluded.seen "
	    "WHERE excluded.not_after >= certs.not_after",
	    -1, &st, NULL);

	if (rc != SQLITE_OK)
		return sql_err(rc);
	sqlite3_bind_text(st, 1, terminal, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, serial, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, not_after);
	sqlite3_bind_int64(st, 4, now);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : sql_err(rc);
}

int enroll_cert_each(struct enroll_db *e,
		     void (*fn)(const char *terminal, const char *serial, int64_t not_after,
				void *arg),
		     void *arg)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(e->db, "SELECT terminal, serial, not_after FROM certs", -1, &st,
				    NULL);

	if (rc != SQLITE_OK)
		return sql_err(rc);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		fn((const char *)sqlite3_column_text(st, 0),
		   (const char *)sqlite3_column_text(st, 1), sqlite3_column_int64(st, 2), arg);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : sql_err(rc);
}
