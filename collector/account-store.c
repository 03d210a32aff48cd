/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: the dashboard's personal accounts, sessions and script tokens in the
 * collector's database, SQLite or PostgreSQL (account-store.h, through sqldb.h). Run by the
 * dashboard thread and by the --account-* admin commands. */
#include "account-store.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "at-rest.h"
#include "macro.h"
#include "secmem.h"
#include "sqldb.h"
#include "totp_record.h"
#include "totp_verify.h"

#define SALT_BYTES   16
#define HASH_BYTES   32
#define PASSWORD_TXT 160 /* "pbkdf2-sha256$" ITER "$" 32 hex "$" 64 hex */
#define ISSUER	     "mynaguard-dashboard"
/* accounts.totp_secret = at_rest_seal under [accounts] secret_key, AAD this "\0" name "\0" 0;
 * a value of exactly ACCOUNT_SECRET_BYTES is a clear secret of schema 6, sealed on open */
#define AT_REST_CONTEXT "mynaguard-collector-account-totp-v1"
#define SEALED_LEN	(12 + ACCOUNT_SECRET_BYTES + 16)

struct account_store {
	struct sqldb *db;
	uint8_t key[AT_REST_KEY_LEN];
};

#define finalizep sqldb_finalizep
typedef struct sqldb_stmt stmt_t;

static stmt_t *prepare(struct account_store *s, const char *sql)
{
	stmt_t *st = NULL;
	return sqldb_prepare(s->db, sql, NULL, &st) < 0 ? NULL : st;
}

#define step_done sqldb_step_done

static int seal_secret(struct account_store *s, const char *name, const uint8_t *secret,
		       uint8_t **ret, size_t *ret_len)
{
	return at_rest_seal(s->key, AT_REST_CONTEXT, name, 0, secret, ACCOUNT_SECRET_BYTES, ret,
			    ret_len);
}

static int open_secret(struct account_store *s, const char *name, const void *blob, size_t len,
		       uint8_t secret[ACCOUNT_SECRET_BYTES])
{
	uint8_t out[SEALED_LEN];
	size_t n = 0;
	/* a clear value is never taken for a secret (the open seals them all) */
	int r = len == SEALED_LEN ? at_rest_open(s->key, AT_REST_CONTEXT, name, 0, blob, len, out,
						 sizeof(out), &n)
				  : -EBADMSG;

	if (r >= 0 && n != ACCOUNT_SECRET_BYTES)
		r = -EBADMSG;
	if (r >= 0)
		memcpy(secret, out, ACCOUNT_SECRET_BYTES);
	secmem_wipe(out, sizeof(out));
	return r == -EBADMSG ? -EKEYREJECTED : r;
}

/* Counts the rows sealed already and, with check, opens one of them. */
static int sealed_rows(struct account_store *s, bool check, int64_t *ret, char *err, size_t errsz)
{
	_cleanup_(finalizep) stmt_t *st =
	    prepare(s, "SELECT name, totp_secret, (SELECT count(*) FROM accounts WHERE"
		       " length(totp_secret) != ?1) FROM accounts WHERE length(totp_secret) != ?1"
		       " LIMIT 1");
	uint8_t secret[ACCOUNT_SECRET_BYTES];
	const char *name;
	const void *blob;
	size_t len;
	int rc, r;

	*ret = 0;
	if (!st)
		return -EIO;
	sqldb_bind_int64(st, 1, ACCOUNT_SECRET_BYTES);
	rc = sqldb_step(st);
	if (rc == SQLDB_DONE)
		return 0;
	if (rc != SQLDB_ROW)
		return rc;
	*ret = sqldb_column_int64(st, 2);
	if (!check)
		return 0;
	name = sqldb_column_text(st, 0);
	blob = sqldb_column_blob(st, 1, &len);
	r = open_secret(s, name ? name : "", blob, len, secret);
	secmem_wipe(secret, sizeof(secret));
	if (r < 0)
		snprintf(err, errsz,
			 "it does not open the TOTP secret of account %s (not the key the "
			 "secrets were sealed with)",
			 name ? name : "?");
	return r;
}

/* Schema 6 kept the secrets in the clear: sealed here, in place, once. */
static int seal_clear_rows(struct account_store *s, int64_t *ret_n)
{
	/* one row per query: no update runs under an open cursor of the same table */
	_cleanup_(finalizep) stmt_t *sel = prepare(
	    s, "SELECT name, totp_secret FROM accounts WHERE length(totp_secret) = ?1 LIMIT 1");
	_cleanup_(finalizep) stmt_t *upd =
	    prepare(s, "UPDATE accounts SET totp_secret = ?2 WHERE name = ?1");
	int rc, r = 0;

	*ret_n = 0;
	if (!sel || !upd)
		return -EIO;
	sqldb_bind_int64(sel, 1, ACCOUNT_SECRET_BYTES);
	while (r >= 0 && (rc = sqldb_step(sel)) == SQLDB_ROW) {
		const char *name = sqldb_column_text(sel, 0);
		uint8_t *sealed = NULL;
		size_t len = 0;
		const void *clear = sqldb_column_blob(sel, 1, &len);

		/* the query picked rows of exactly ACCOUNT_SECRET_BYTES */
		r = name && clear && len == ACCOUNT_SECRET_BYTES
			? seal_secret(s, name, clear, &sealed, &len)
			: -EBADMSG;
		if (r >= 0) {
			sqldb_bind_text(upd, 1, name);
			sqldb_bind_blob(upd, 2, sealed, len);
			sqldb_reset(sel);
			r = step_done(upd);
			sqldb_reset(upd);
		}
		free(sealed);
		(*ret_n)++;
	}
	if (r >= 0 && rc != SQLDB_DONE)
		r = rc;
	return r;
}

/* Under the write lock, so that two processes never make two keys: loads the key, or makes it
 * when it is missing and nothing is sealed with it yet; checks it opens what is sealed; seals
 * what is not. */
static int key_setup(struct account_store *s, const char *db_path, const char *key_path,
		     bool strict, char *err, size_t errsz)
{
	char why[200] = "";
	int64_t sealed = 0, n = 0;
	int r;

	r = at_rest_key_load(key_path, s->key, why, sizeof(why));
	if (r == -ENOENT) {
		r = sealed_rows(s, false, &sealed, why, sizeof(why));
		if (r >= 0 && sealed > 0) {
			snprintf(
			    why, sizeof(why),
			    "missing, and %" PRId64 " account(s) have TOTP secrets sealed "
			    "with it (restore it, or make a new one with openssl rand -hex 32, "
			    "mode 0600, and --account-reset each account)",
			    sealed);
			r = -ENOKEY;
		} else if (r >= 0) {
			struct stat dbst;
			char dir[PATH_MAX];
			const char *slash = strrchr(key_path, '/');
			bool root;
			/* on PostgreSQL the key's directory (the state directory) tells the owner */
			if (!slash)
				snprintf(dir, sizeof(dir), ".");
			else
				snprintf(dir, sizeof(dir), "%.*s",
					 slash == key_path ? 1 : (int)(slash - key_path), key_path);
			root =
			    geteuid() == 0 && stat(sqldb_is_pg(s->db) ? dir : db_path, &dbst) == 0;
			/* the collector's own user must read it even when root ran the command */
			r = at_rest_key_create(key_path, root ? dbst.st_uid : (uid_t)-1,
					       root ? dbst.st_gid : (gid_t)-1, s->key, why,
					       sizeof(why));
		}
	}
	if (r >= 0)
		r = sealed_rows(s, true, &sealed, why, sizeof(why));
	/* the admin commands go on: --account-reset is how a new key gets its secrets */
	if (r == -EKEYREJECTED && !strict) {
		snprintf(err, errsz, "[accounts] secret_key %s: %s; --account-reset each account",
			 key_path, why);
		why[0] = 0;
		r = 0;
	}
	if (r >= 0) {
		r = seal_clear_rows(s, &n);
		if (r < 0)
			snprintf(why, sizeof(why), "cannot seal the clear TOTP secrets: %s",
				 strerror(-r));
	}
	if (r < 0)
		snprintf(err, errsz, "[accounts] secret_key %s: %s", key_path,
			 why[0] ? why : strerror(-r));
	return r < 0 ? r : (int)(n > 0);
}

int account_store_open(const char *path, const char *key_path, bool strict,
		       struct account_store **ret, char *err, size_t errsz)
{
	struct account_store *s = calloc(1, sizeof(*s));
	stmt_t *st = NULL;
	int version = -1, r;

	if (errsz)
		err[0] = 0;
	if (!s)
		return -ENOMEM;
	/* PostgreSQL: the connection creates or migrates the schema (store-pg.c), accounts
	 * included */
	r = sqldb_open(path, &s->db);
	if (r < 0) {
		account_store_close(s);
		return r;
	}
	if (!sqldb_is_pg(s->db)) {
		st = prepare(s, "PRAGMA user_version");
		if (st && sqldb_step(st) == SQLDB_ROW)
			version = (int)sqldb_column_int64(st, 0);
		sqldb_finalize(st);
		/* the accounts came with schema 4; an older store has not been migrated yet. What
		 * a change frees (an old secret) is overwritten with zeros, not left in a free
		 * page. */
		if (version < 4 || sqldb_exec(s->db, "PRAGMA synchronous = FULL") < 0 ||
		    sqldb_exec(s->db, "PRAGMA secure_delete = ON") < 0) {
			account_store_close(s);
			return -EPROTO;
		}
	}
	if (!key_path) {
		snprintf(err, errsz, "[accounts] secret_key: not set");
		account_store_close(s);
		return -EINVAL;
	}
	r = sqldb_begin(s->db);
	if (r >= 0) {
		r = key_setup(s, path, key_path, strict, err, errsz);
		if (r >= 0 && sqldb_commit(s->db) < 0)
			r = -EIO;
		if (r < 0)
			sqldb_rollback(s->db);
	}
	/* the clear secrets were in the main file (and maybe the WAL): both rewritten now */
	if (r > 0 && !sqldb_is_pg(s->db))
		(void)sqldb_exec(s->db, "PRAGMA wal_checkpoint(TRUNCATE)");
	if (r < 0) {
		account_store_close(s);
		return r;
	}
	*ret = s;
	return 0;
}

void account_store_close(struct account_store *s)
{
	if (!s)
		return;
	sqldb_close(s->db);
	secmem_wipe(s, sizeof(*s));
	free(s);
}

bool account_name_valid(const char *name)
{
	return name && name[0] != '.' && name[0] != '-' && totp_user_valid(name) &&
	       strlen(name) <= ACCOUNT_NAME_MAX;
}

const char *account_role_name(enum auth_role r)
{
	switch (r) {
	case AUTH_AUDITOR:
		return "auditor";
	case AUTH_APPROVER:
		return "approver";
	case AUTH_ADMIN:
		return "admin";
	}
	return NULL;
}

int account_role_from_name(const char *s, enum auth_role *ret)
{
	if (!s)
		return -EINVAL;
	if (strcmp(s, "auditor") == 0 || strcmp(s, "read") == 0)
		*ret = AUTH_AUDITOR;
	else if (strcmp(s, "approver") == 0 || strcmp(s, "approve") == 0)
		*ret = AUTH_APPROVER;
	else if (strcmp(s, "admin") == 0 || strcmp(s, "administrator") == 0)
		*ret = AUTH_ADMIN;
	else
		return -EINVAL;
	return 0;
}

static bool role_valid(int r)
{
	return r >= AUTH_AUDITOR && r <= AUTH_ADMIN;
}

static void hex(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = 0;
}

static int unhex(const char *s, size_t n, uint8_t *out)
{
	if (strlen(s) != 2 * n)
		return -EINVAL;
	for (size_t i = 0; i < 2 * n; i++) {
		char c = s[i];
		int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (v < 0)
			return -EINVAL;
		out[i / 2] = (uint8_t)(i % 2 ? (out[i / 2] << 4) | v : v);
	}
	return 0;
}

static void sha256_hex(const char *text, char out[static ACCOUNT_ID_HEX + 1])
{
	uint8_t md[32] = {0};
	unsigned len = 0;

	EVP_Digest(text, strlen(text), md, &len, EVP_sha256(), NULL);
	hex(md, sizeof(md), out);
}

static int random_hex(char out[static ACCOUNT_ID_HEX + 1])
{
	uint8_t b[ACCOUNT_ID_HEX / 2];

	if (RAND_bytes(b, sizeof(b)) != 1)
		return -EIO;
	hex(b, sizeof(b), out);
	secmem_wipe(b, sizeof(b));
	return 0;
}

/* ---- passwords ---- */

static bool password_valid(const char *pw)
{
	size_t n = pw ? strlen(pw) : 0;
	return n >= ACCOUNT_PASSWORD_MIN && n <= ACCOUNT_PASSWORD_MAX;
}

static int pbkdf2(const char *pw, const uint8_t *salt, unsigned iter, uint8_t out[HASH_BYTES])
{
	return PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt, SALT_BYTES, (int)iter, EVP_sha256(),
				 HASH_BYTES, out) == 1
		   ? 0
		   : -EIO;
}

static int password_hash(const char *pw, char out[static PASSWORD_TXT])
{
	uint8_t salt[SALT_BYTES], h[HASH_BYTES];
	char salt_hex[2 * SALT_BYTES + 1], h_hex[2 * HASH_BYTES + 1];

	if (RAND_bytes(salt, sizeof(salt)) != 1 || pbkdf2(pw, salt, ACCOUNT_PBKDF2_ITER, h) < 0)
		return -EIO;
	hex(salt, sizeof(salt), salt_hex);
	hex(h, sizeof(h), h_hex);
	snprintf(out, PASSWORD_TXT, "pbkdf2-sha256$%u$%s$%s", ACCOUNT_PBKDF2_ITER, salt_hex, h_hex);
	secmem_wipe(h, sizeof(h));
	secmem_wipe(h_hex, sizeof(h_hex));
	return 0;
}

/* Constant time in the password; a stored value of another shape never matches. */
static bool password_check(const char *pw, const char *stored)
{
	uint8_t salt[SALT_BYTES], want[HASH_BYTES], got[HASH_BYTES];
	char copy[PASSWORD_TXT], *save = NULL;
	char *scheme, *iter, *salt_hex, *h_hex;
	unsigned long n;
	bool ok;

	if (!stored || strlen(stored) >= sizeof(copy))
		return false;
	snprintf(copy, sizeof(copy), "%s", stored);
	scheme = strtok_r(copy, "$", &save);
	iter = strtok_r(NULL, "$", &save);
	salt_hex = strtok_r(NULL, "$", &save);
	h_hex = strtok_r(NULL, "$", &save);
	if (!scheme || !iter || !salt_hex || !h_hex || strcmp(scheme, "pbkdf2-sha256") != 0)
		return false;
	n = strtoul(iter, NULL, 10);
	if (n < 1000 || n > 100000000 || unhex(salt_hex, SALT_BYTES, salt) < 0 ||
	    unhex(h_hex, HASH_BYTES, want) < 0)
		return false;
	ok = pbkdf2(pw, salt, (unsigned)n, got) >= 0 && CRYPTO_memcmp(got, want, HASH_BYTES) == 0;
	secmem_wipe(got, sizeof(got));
	secmem_wipe(want, sizeof(want));
	return ok;
}

/* ---- accounts ---- */

static int otpauth_uri(const char *name, const uint8_t *secret, char *out, size_t sz)
{
	char b32[ACCOUNT_SECRET_B32_MAX];
	char label[3 * ACCOUNT_NAME_MAX + 1];
	size_t j = 0;
	int n;

	if (totp_base32_encode(secret, ACCOUNT_SECRET_BYTES, b32, sizeof(b32)) < 0)
		return -EINVAL;
	/* a valid name is [A-Za-z0-9._@-]: only '@' needs escaping in the label */
	for (const char *p = name; *p && j + 4 < sizeof(label); p++) {
		if (*p == '@') {
			memcpy(label + j, "%40", 3);
			j += 3;
		} else
			label[j++] = *p;
	}
	label[j] = 0;
	n = snprintf(out, sz,
		     "otpauth://totp/" ISSUER ":%s?secret=%s&issuer=" ISSUER
		     "&algorithm=SHA1&digits=%d&period=%d",
		     label, b32, ACCOUNT_TOTP_DIGITS, ACCOUNT_TOTP_PERIOD);
	secmem_wipe(b32, sizeof(b32));
	if (n < 0 || (size_t)n >= sz) {
		secmem_wipe(out, sz);
		return -ENOBUFS;
	}
	return 0;
}

static int set_credentials(struct account_store *s, const char *sql, const char *name, int role,
			   bool hide, const char *password, int64_t now, char *ret_uri,
			   size_t urisz)
{
	_cleanup_(finalizep) stmt_t *st = NULL;
	uint8_t secret[ACCOUNT_SECRET_BYTES];
	_cleanup_free_ uint8_t *sealed = NULL;
	size_t sealed_len = 0;
	char pw[PASSWORD_TXT];
	int r;

	if (!account_name_valid(name) || !password_valid(password))
		return -EINVAL;
	if (RAND_bytes(secret, sizeof(secret)) != 1)
		return -EIO;
	r = password_hash(password, pw);
	if (r >= 0)
		r = seal_secret(s, name, secret, &sealed, &sealed_len);
	if (r >= 0)
		r = otpauth_uri(name, secret, ret_uri, urisz);
	st = r >= 0 ? prepare(s, sql) : NULL;
	if (r >= 0 && !st)
		r = -EIO;
	if (r >= 0) {
		sqldb_bind_text(st, 1, name);
		sqldb_bind_text(st, 2, pw);
		sqldb_bind_blob(st, 3, sealed, sealed_len);
		sqldb_bind_int64(st, 4, now);
		sqldb_bind_int64(st, 5, role);
		sqldb_bind_int64(st, 6, hide);
		r = step_done(st);
		if (r >= 0 && sqldb_changes(st) == 0)
			r = -ENOENT;
	}
	secmem_wipe(secret, sizeof(secret));
	secmem_wipe(pw, sizeof(pw));
	if (r < 0)
		secmem_wipe(ret_uri, urisz);
	return r;
}

int account_create(struct account_store *s, const char *name, enum auth_role role,
		   bool hide_personal, const char *password, int64_t now, char *ret_uri,
		   size_t urisz)
{
	if (!role_valid((int)role))
		return -EINVAL;
	return set_credentials(s,
			       "INSERT INTO accounts (name, password, totp_secret, created, role,"
			       " hide_personal) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
			       name, (int)role, hide_personal, password, now, ret_uri, urisz);
}

int account_reset(struct account_store *s, const char *name, const char *password, int64_t now,
		  char *ret_uri, size_t urisz)
{
	_cleanup_(finalizep) stmt_t *del = NULL;
	int r;

	r = sqldb_begin(s->db);
	if (r < 0)
		return r;
	/* binding ?4..?6 fails harmlessly here: the account keeps its role and creation time */
	r = set_credentials(
	    s,
	    "UPDATE accounts SET password = ?2, totp_secret = ?3, totp_last_step = 0,"
	    " failures = 0, locked_until = 0, disabled = 0 WHERE name = ?1",
	    name, 0, false, password, now, ret_uri, urisz);
	del = r >= 0 ? prepare(s, "DELETE FROM account_sessions WHERE name = ?1") : NULL;
	if (r >= 0 && !del)
		r = -EIO;
	if (r >= 0) {
		sqldb_bind_text(del, 1, name);
		r = step_done(del);
	}
	if (r >= 0)
		r = sqldb_commit(s->db);
	if (r < 0) {
		sqldb_rollback(s->db);
		secmem_wipe(ret_uri, urisz);
	}
	return r;
}

int account_disable(struct account_store *s, const char *name)
{
	_cleanup_(finalizep) stmt_t *st =
	    prepare(s, "UPDATE accounts SET disabled = 1 WHERE name = ?1");
	_cleanup_(finalizep) stmt_t *del =
	    prepare(s, "DELETE FROM account_sessions WHERE name = ?1");
	int r;

	if (!st || !del)
		return -EIO;
	sqldb_bind_text(st, 1, name);
	r = step_done(st);
	if (r < 0)
		return r;
	if (sqldb_changes(st) == 0)
		return -ENOENT;
	sqldb_bind_text(del, 1, name);
	return step_done(del);
}

static int account_get(struct account_store *s, const char *name, struct account *ret)
{
	_cleanup_(finalizep) stmt_t *st =
	    prepare(s, "SELECT role, hide_personal, disabled FROM accounts WHERE name = ?1");
	int rc;

	if (!st)
		return -EIO;
	sqldb_bind_text(st, 1, name);
	rc = sqldb_step(st);
	if (rc == SQLDB_DONE)
		return -ENOENT;
	if (rc != SQLDB_ROW)
		return rc;
	if (!role_valid((int)sqldb_column_int64(st, 0)))
		return -EBADMSG;
	*ret = (struct account){
	    .role = (enum auth_role)(int)sqldb_column_int64(st, 0),
	    .hide_personal = (int)sqldb_column_int64(st, 1) != 0,
	    .disabled = (int)sqldb_column_int64(st, 2) != 0,
	};
	snprintf(ret->name, sizeof(ret->name), "%s", name);
	return 0;
}

int account_token_create(struct account_store *s, const char *name, enum auth_role scope,
			 int64_t now, char ret[static ACCOUNT_TOKEN_LEN + 1])
{
	_cleanup_(finalizep) stmt_t *st = NULL;
	struct account a;
	char id[ACCOUNT_ID_HEX + 1], h[ACCOUNT_ID_HEX + 1], token[ACCOUNT_TOKEN_LEN + 1];
	int r;

	if (!role_valid((int)scope))
		return -EINVAL;
	r = account_get(s, name, &a);
	if (r < 0)
		return r;
	if (a.disabled)
		return -ENOENT;
	if (scope > a.role)
		return -EPERM;
	r = random_hex(id);
	if (r < 0)
		return r;
	snprintf(token, sizeof(token), ACCOUNT_TOKEN_PREFIX "%s", id);
	secmem_wipe(id, sizeof(id));
	sha256_hex(token, h);
	st = prepare(s, "INSERT INTO account_tokens (id_sha256, name, scope, created)"
			" VALUES (?1, ?2, ?3, ?4)");
	if (!st) {
		secmem_wipe(token, sizeof(token));
		return -EIO;
	}
	sqldb_bind_text(st, 1, h);
	sqldb_bind_text(st, 2, name);
	sqldb_bind_int64(st, 3, (int)scope);
	sqldb_bind_int64(st, 4, now);
	r = step_done(st);
	if (r >= 0)
		memcpy(ret, token, sizeof(token));
	secmem_wipe(token, sizeof(token));
	return r;
}

int account_list_json(struct account_store *s, json_t **ret)
{
	_cleanup_(finalizep) stmt_t *st =
	    prepare(s, "SELECT name, role, hide_personal, disabled, locked_until, created,"
		       " (SELECT count(*) FROM account_tokens t WHERE t.name = a.name)"
		       " FROM accounts a ORDER BY name");
	json_t *list = json_array();
	int rc;

	if (!st || !list) {
		json_decref(list);
		return -EIO;
	}
	while ((rc = sqldb_step(st)) == SQLDB_ROW) {
		const char *role =
		    account_role_name((enum auth_role)(int)sqldb_column_int64(st, 1));
		json_array_append_new(
		    list, json_pack("{s:s, s:s?, s:b, s:b, s:I, s:I, s:I}", "name",
				    sqldb_column_text(st, 0), "role", role, "hide_personal",
				    (int)sqldb_column_int64(st, 2), "disabled",
				    (int)sqldb_column_int64(st, 3), "locked_until",
				    (json_int_t)sqldb_column_int64(st, 4), "created",
				    (json_int_t)sqldb_column_int64(st, 5), "tokens",
				    (json_int_t)sqldb_column_int64(st, 6)));
	}
	if (rc != SQLDB_DONE) {
		json_decref(list);
		return rc;
	}
	*ret = list;
	return 0;
}

/* ---- login ---- */

struct login_row {
	char password[PASSWORD_TXT];
	uint8_t secret[ACCOUNT_SECRET_BYTES];
	uint64_t last_step;
	unsigned failures;
	int64_t locked_until;
};

static void login_row_wipe(struct login_row *lr)
{
	secmem_wipe(lr, sizeof(*lr));
}

static int login_row_get(struct account_store *s, const char *name, struct login_row *ret)
{
	_cleanup_(finalizep) stmt_t *st =
	    prepare(s, "SELECT password, totp_secret, totp_last_step, failures, locked_until"
		       " FROM accounts WHERE name = ?1 AND disabled = 0");
	const char *pw;
	const void *blob;
	size_t blob_len;
	int rc;

	if (!st)
		return -EIO;
	sqldb_bind_text(st, 1, name);
	rc = sqldb_step(st);
	if (rc == SQLDB_DONE)
		return -ENOENT;
	if (rc != SQLDB_ROW)
		return rc;
	pw = sqldb_column_text(st, 0);
	if (!pw || strlen(pw) >= sizeof(ret->password))
		return -EBADMSG;
	blob = sqldb_column_blob(st, 1, &blob_len);
	rc = open_secret(s, name, blob, blob_len, ret->secret);
	if (rc < 0)
		return rc;
	snprintf(ret->password, sizeof(ret->password), "%s", pw);
	ret->last_step = (uint64_t)sqldb_column_int64(st, 2);
	ret->failures = (unsigned)(int)sqldb_column_int64(st, 3);
	ret->locked_until = sqldb_column_int64(st, 4);
	return 0;
}

static int login_row_put(struct account_store *s, const char *name, const struct login_row *lr)
{
	_cleanup_(finalizep) stmt_t *st =
	    prepare(s, "UPDATE accounts SET totp_last_step = ?2, failures = ?3, locked_until = ?4"
		       " WHERE name = ?1");
	if (!st)
		return -EIO;
	sqldb_bind_text(st, 1, name);
	sqldb_bind_int64(st, 2, (int64_t)lr->last_step);
	sqldb_bind_int64(st, 3, (int)lr->failures);
	sqldb_bind_int64(st, 4, lr->locked_until);
	return step_done(st);
}

/* The decision on the record read under the write lock: the PAM module's totp_verify, with a
 * wrong password counted like a wrong code. */
static int login_decide(struct login_row *lr, bool password_ok, const char *code, int64_t now,
			enum account_login_result *ret)
{
	static const struct totp_params p = {
	    .window = ACCOUNT_TOTP_WINDOW,
	    .max_failures = ACCOUNT_MAX_FAILURES,
	    .lockout_sec = ACCOUNT_LOCKOUT_SEC,
	};
	struct totp_record rec = {
	    .version = TOTP_RECORD_VERSION,
	    .kind = TOTP_KIND_APP,
	    .verified = 1,
	    .secret_len = ACCOUNT_SECRET_BYTES,
	    .digits = ACCOUNT_TOTP_DIGITS,
	    .period = ACCOUNT_TOTP_PERIOD,
	    .last_step = lr->last_step,
	    .failures = lr->failures,
	    .locked_until = lr->locked_until,
	};
	enum totp_result res;
	int changed = 0, r;

	memcpy(rec.secret, lr->secret, ACCOUNT_SECRET_BYTES);
	/* a wrong password is checked as an impossible code: same counting, same lock */
	r = totp_verify(&rec, password_ok ? code : "", now, &p, &res, &changed);
	lr->last_step = rec.last_step;
	lr->failures = rec.failures;
	lr->locked_until = rec.locked_until;
	totp_record_wipe(&rec);
	if (r < 0)
		return r;
	switch (res) {
	case TOTP_SUCCESS:
		*ret = ACCOUNT_LOGIN_OK;
		break;
	case TOTP_REPLAY:
		*ret = ACCOUNT_LOGIN_REPLAY;
		break;
	case TOTP_LOCKED:
		*ret = ACCOUNT_LOGIN_LOCKED;
		break;
	case TOTP_WRONG:
	case TOTP_PENDING:
		*ret = ACCOUNT_LOGIN_WRONG;
		break;
	}
	return 0;
}

/* A password hash of the same cost for an unknown name: the answer's time does not tell
 * which names exist. */
static const char dummy_hash[] = "pbkdf2-sha256$600000$00000000000000000000000000000000$"
				 "0000000000000000000000000000000000000000000000000000000000000000";

int account_login(struct account_store *s, const char *name, const char *password, const char *code,
		  int64_t now, enum account_login_result *ret, struct account *ret_account)
{
	struct login_row before, lr;
	struct account a;
	bool pw_ok;
	int r;

	if (!account_name_valid(name) || !password || !code ||
	    strlen(password) > ACCOUNT_PASSWORD_MAX) {
		*ret = ACCOUNT_LOGIN_WRONG;
		return 0;
	}
	r = login_row_get(s, name, &before);
	if (r == -ENOENT) {
		(void)password_check(password, dummy_hash);
		*ret = ACCOUNT_LOGIN_WRONG;
		if (account_get(s, name, &a) >= 0) /* disabled: the event names it */
			*ret_account = a;
		return 0;
	}
	if (r < 0)
		return r;
	/* locked: nothing is looked at (the PAM module does the same) */
	pw_ok = before.locked_until != 0 && now < before.locked_until
		    ? false
		    : password_check(password, before.password);

	r = sqldb_begin(s->db);
	if (r < 0) {
		login_row_wipe(&before);
		return r;
	}
	r = login_row_get(s, name, &lr);
	/* a reset between the two reads: the password checked was the old one */
	if (r >= 0 && strcmp(lr.password, before.password) != 0)
		pw_ok = false;
	login_row_wipe(&before);
	if (r >= 0)
		r = login_decide(&lr, pw_ok, code, now, ret);
	if (r >= 0)
		r = login_row_put(s, name, &lr);
	login_row_wipe(&lr);
	if (r >= 0)
		r = account_get(s, name, &a);
	if (r >= 0)
		r = sqldb_commit(s->db);
	if (r < 0) {
		sqldb_rollback(s->db);
		return r;
	}
	*ret_account = a;
	return 0;
}

/* ---- sessions and tokens ---- */

int account_session_create(struct account_store *s, const char *name, int64_t now,
			   char ret_id[static ACCOUNT_ID_HEX + 1],
			   char ret_csrf[static ACCOUNT_ID_HEX + 1])
{
	_cleanup_(finalizep) stmt_t *st =
	    prepare(s, "INSERT INTO account_sessions (id_sha256, name, csrf, created, last_used)"
		       " VALUES (?1, ?2, ?3, ?4, ?4)");
	_cleanup_(finalizep) stmt_t *old = prepare(
	    s, "DELETE FROM account_sessions WHERE name = ?1 AND id_sha256 NOT IN (SELECT id_sha256"
	       " FROM account_sessions WHERE name = ?1 ORDER BY created DESC LIMIT ?2)");
	char id[ACCOUNT_ID_HEX + 1], csrf[ACCOUNT_ID_HEX + 1], h[ACCOUNT_ID_HEX + 1];
	int r;

	if (!st || !old)
		return -EIO;
	r = random_hex(id);
	if (r >= 0)
		r = random_hex(csrf);
	if (r < 0)
		return r;
	sha256_hex(id, h);
	sqldb_bind_text(st, 1, h);
	sqldb_bind_text(st, 2, name);
	sqldb_bind_text(st, 3, csrf);
	sqldb_bind_int64(st, 4, now);
	r = step_done(st);
	if (r >= 0) {
		sqldb_bind_text(old, 1, name);
		sqldb_bind_int64(old, 2, ACCOUNT_SESSIONS_MAX);
		r = step_done(old);
	}
	if (r >= 0) {
		memcpy(ret_id, id, sizeof(id));
		memcpy(ret_csrf, csrf, sizeof(csrf));
	}
	secmem_wipe(id, sizeof(id));
	secmem_wipe(csrf, sizeof(csrf));
	return r;
}

int account_session_delete(struct account_store *s, const char *id)
{
	_cleanup_(finalizep) stmt_t *st =
	    prepare(s, "DELETE FROM account_sessions WHERE id_sha256 = ?1");
	char h[ACCOUNT_ID_HEX + 1];

	if (!st)
		return -EIO;
	sha256_hex(id, h);
	sqldb_bind_text(st, 1, h);
	return step_done(st);
}

int account_session_find(struct account_store *s, const char *id, int64_t now, int64_t idle,
			 int64_t max, struct account *ret, char ret_csrf[static ACCOUNT_ID_HEX + 1])
{
	_cleanup_(finalizep) stmt_t *st =
	    prepare(s, "SELECT s.name, s.csrf, s.created, s.last_used FROM account_sessions s"
		       " JOIN accounts a ON a.name = s.name WHERE s.id_sha256 = ?1"
		       " AND a.disabled = 0");
	char h[ACCOUNT_ID_HEX + 1], name[ACCOUNT_NAME_MAX + 1];
	const char *n, *csrf;
	int64_t created, last;
	int rc, r;

	if (!st)
		return -EIO;
	sha256_hex(id, h);
	sqldb_bind_text(st, 1, h);
	rc = sqldb_step(st);
	if (rc == SQLDB_DONE)
		return -ENOENT;
	if (rc != SQLDB_ROW)
		return rc;
	n = sqldb_column_text(st, 0);
	csrf = sqldb_column_text(st, 1);
	created = sqldb_column_int64(st, 2);
	last = sqldb_column_int64(st, 3);
	if (!n || !csrf || strlen(n) > ACCOUNT_NAME_MAX || strlen(csrf) != ACCOUNT_ID_HEX)
		return -EBADMSG;
	snprintf(name, sizeof(name), "%s", n);
	if (now - last > idle || now - created > max || now < created) {
		finalizep(&st);
		account_session_delete(s, id);
		return -ENOENT;
	}
	memcpy(ret_csrf, csrf, ACCOUNT_ID_HEX + 1);
	finalizep(&st);
	r = account_get(s, name, ret);
	if (r < 0)
		return r;
	if (now > last) {
		_cleanup_(finalizep) stmt_t *up =
		    prepare(s, "UPDATE account_sessions SET last_used = ?2 WHERE id_sha256 = ?1");
		if (!up)
			return -EIO;
		sqldb_bind_text(up, 1, h);
		sqldb_bind_int64(up, 2, now);
		return step_done(up);
	}
	return 0;
}

int account_token_find(struct account_store *s, const char *token, struct account *ret,
		       enum auth_role *ret_scope)
{
	_cleanup_(finalizep) stmt_t *st =
	    prepare(s, "SELECT name, scope FROM account_tokens WHERE id_sha256 = ?1");
	char h[ACCOUNT_ID_HEX + 1], name[ACCOUNT_NAME_MAX + 1];
	const char *n;
	struct account a;
	int scope, rc, r;

	if (!st)
		return -EIO;
	if (strlen(token) != ACCOUNT_TOKEN_LEN ||
	    strncmp(token, ACCOUNT_TOKEN_PREFIX, strlen(ACCOUNT_TOKEN_PREFIX)) != 0)
		return -ENOENT;
	sha256_hex(token, h);
	sqldb_bind_text(st, 1, h);
	rc = sqldb_step(st);
	if (rc == SQLDB_DONE)
		return -ENOENT;
	if (rc != SQLDB_ROW)
		return rc;
	n = sqldb_column_text(st, 0);
	scope = (int)sqldb_column_int64(st, 1);
	if (!n || strlen(n) > ACCOUNT_NAME_MAX || !role_valid(scope))
		return -EBADMSG;
	snprintf(name, sizeof(name), "%s", n);
	finalizep(&st);
	r = account_get(s, name, &a);
	if (r < 0)
		return r;
	if (a.disabled)
		return -ENOENT;
	/* a token never reaches above its account's role, even after a demotion */
	*ret_scope = (enum auth_role)scope < a.role ? (enum auth_role)scope : a.role;
	*ret = a;
	return 0;
}

/* ---- outbox ---- */

int account_outbox_add(struct account_store *s, const char *kind, json_t *data)
{
	_cleanup_(finalizep) stmt_t *st =
	    prepare(s, "INSERT INTO account_outbox (kind, data) VALUES (?1, ?2)");
	_cleanup_free_ char *text = data ? json_dumps(data, JSON_COMPACT) : NULL;

	json_decref(data);
	if (!st || !text)
		return -ENOMEM;
	sqldb_bind_text(st, 1, kind);
	sqldb_bind_text(st, 2, text);
	return step_done(st);
}

int account_outbox_drain(struct account_store *s,
			 void (*fn)(const char *kind, json_t *data, void *userdata), void *userdata)
{
	_cleanup_(json_decrefp) json_t *batch = json_array();
	json_t *item;
	size_t i;
	int rc, r;

	if (!batch)
		return -ENOMEM;
	/* the write lock first: a read that turns into a write can fail at once in WAL mode when
	 * the collector's writer committed in between */
	r = sqldb_begin(s->db);
	if (r < 0)
		return r;
	{
		_cleanup_(finalizep) stmt_t *sel =
		    prepare(s, "SELECT kind, data FROM account_outbox ORDER BY id LIMIT 1000");
		if (!sel) {
			sqldb_rollback(s->db);
			return -EIO;
		}
		while ((rc = sqldb_step(sel)) == SQLDB_ROW) {
			const char *kind = sqldb_column_text(sel, 0);
			const char *text = sqldb_column_text(sel, 1);
			json_t *data = text ? json_loads(text, 0, NULL) : NULL;
			if (kind && json_is_object(data))
				json_array_append_new(batch, json_pack("[s, o]", kind, data));
			else
				json_decref(data);
		}
		r = rc == SQLDB_DONE ? 0 : rc;
	}
	if (r >= 0)
		r = sqldb_exec(
		    s->db, "DELETE FROM account_outbox WHERE id IN (SELECT id FROM account_outbox"
			   " ORDER BY id LIMIT 1000)");
	if (r >= 0)
		r = sqldb_commit(s->db);
	if (r < 0) {
		sqldb_rollback(s->db);
		return r;
	}
	json_array_foreach(batch, i, item)
	{
		fn(json_string_value(json_array_get(item, 0)), json_incref(json_array_get(item, 1)),
		   userdata);
	}
	return 0;
}
