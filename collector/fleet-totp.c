/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: central TOTP enrollment (docs/fleet.md, "Central TOTP enrollment"). The
 * secret is made here, shown once (the enrollment's answer), kept encrypted under [fleet]
 * totp_key, and sealed into each bundle for the X25519 key of the terminal it goes to. Never
 * logs a secret. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "at-rest.h"
#include "claim.h"
#include "fleet-internal.h"
#include "totp_verify.h"
#include "macro.h"
#include "secmem.h"
#include "server.h"

#define AT_REST_CONTEXT "mynaguard-collector-totp-v1"

int fleet_totp_encrypt(struct fleet *f, const char *user, uint64_t gen,
		       const struct bundle_totp_secret *s, uint8_t **ret, size_t *ret_len)
{
	uint8_t plain[BUNDLE_TOTP_PLAIN_MAX];
	size_t plen;
	int r;

	if (!f->have_totp_key)
		return -EINVAL;
	r = bundle_totp_secret_encode(s, plain, &plen);
	if (r >= 0)
		r = at_rest_seal(f->totp_key, AT_REST_CONTEXT, user, gen, plain, plen, ret,
				 ret_len);
	secmem_wipe(plain, sizeof(plain));
	return r;
}

static int decrypt(struct fleet *f, const char *user, uint64_t gen, const void *blob, size_t len,
		   struct bundle_totp_secret *ret)
{
	uint8_t plain[BUNDLE_TOTP_PLAIN_MAX + 16];
	size_t plen = 0;
	int r = f->have_totp_key ? 0 : -EINVAL;

	if (r >= 0)
		r = at_rest_open(f->totp_key, AT_REST_CONTEXT, user, gen, blob, len, plain,
				 sizeof(plain), &plen);
	if (r >= 0)
		r = bundle_totp_secret_decode(plain, plen, ret);
	secmem_wipe(plain, sizeof(plain));
	return r;
}

int fleet_terminal_key_note(struct fleet *f, const char *terminal,
			    const uint8_t pub[BUNDLE_X25519_LEN], int64_t now)
{
	_cleanup_(fleet_db_finalize) struct sqldb_stmt *st = fleet_db_prepare(
	    f, "INSERT INTO fleet_terminal_keys (terminal, x25519, updated_at) VALUES (?, ?, ?)"
	       " ON CONFLICT (terminal) DO UPDATE SET x25519 = excluded.x25519,"
	       " updated_at = excluded.updated_at WHERE fleet_terminal_keys.x25519 IS DISTINCT FROM"
	       " excluded.x25519");

	if (!st)
		return -EIO;
	sqldb_bind_text(st, 1, terminal);
	sqldb_bind_blob(st, 2, pub, BUNDLE_X25519_LEN);
	sqldb_bind_int64(st, 3, now);
	return sqldb_step(st) == SQLDB_DONE ? 0 : -EIO;
}

static int terminal_key(struct fleet *f, const char *terminal, uint8_t pub[BUNDLE_X25519_LEN])
{
	_cleanup_(fleet_db_finalize) struct sqldb_stmt *st =
	    fleet_db_prepare(f, "SELECT x25519 FROM fleet_terminal_keys WHERE terminal = ?");
	const void *blob;
	size_t blen;
	int rc;

	if (!st)
		return -EIO;
	sqldb_bind_text(st, 1, terminal);
	rc = sqldb_step(st);
	if (rc == SQLDB_DONE)
		return -ENOENT;
	if (rc != SQLDB_ROW)
		return -EIO;
	blob = sqldb_column_blob(st, 0, &blen);
	if (!blob || blen != BUNDLE_X25519_LEN)
		return -EIO;
	memcpy(pub, blob, BUNDLE_X25519_LEN);
	return 0;
}

/* group ?1 is in the JSON array of group names col (SQLite, PostgreSQL) */
#define IN_GROUPS(col) "EXISTS (SELECT 1 FROM json_each(" col ") WHERE value = ?1)"
#define IN_GROUPS_PG(col)                                                                          \
	"EXISTS (SELECT 1 FROM jsonb_array_elements_text((" col ")::jsonb) g(v) WHERE g.v = ?1)"
/* The enrollments in force (verified, not revoked) for a terminal of group: user, gen, secret. */
#define ACTIVE_FOR_GROUP(in)                                                                       \
	"SELECT \"user\", gen, secret FROM fleet_totp WHERE secret IS NOT NULL"                    \
	" AND verified_at IS NOT NULL AND " in(                                                    \
	    "fleet_totp.groups") " AND ?2 = ?2 ORDER BY \"user\""
/* The recovery codes not yet over for the users enrolled (or revoked) for group: user, rid,
 * secret, until. */
#define RECOVERY_FOR_GROUP(in)                                                                     \
	"SELECT r.\"user\", r.rid, r.secret, r.until FROM fleet_totp_recovery r JOIN fleet_totp t" \
	" ON t.\"user\" = r.\"user\" WHERE r.until > ?2 AND " in(                                  \
	    "t.groups") " ORDER BY r.\"user\""

static struct sqldb_stmt *query(struct fleet *f, int k, const char *group, int64_t now)
{
	static const char *const sql[2][2] = {
	    {ACTIVE_FOR_GROUP(IN_GROUPS), ACTIVE_FOR_GROUP(IN_GROUPS_PG)},
	    {RECOVERY_FOR_GROUP(IN_GROUPS), RECOVERY_FOR_GROUP(IN_GROUPS_PG)},
	};
	struct sqldb_stmt *st = fleet_db_prepare_pg(f, sql[k][0], sql[k][1]);

	if (st) {
		sqldb_bind_text(st, 1, group);
		sqldb_bind_int64(st, 2, now);
	}
	return st;
}

int fleet_totp_describe(struct fleet *f, const char *terminal, const char *group, int64_t now,
			char **ret)
{
	uint8_t pub[BUNDLE_X25519_LEN];
	char *text = NULL;
	size_t size = 0;
	bool first = true;
	FILE *m;
	int rc = SQLDB_DONE, r;

	*ret = NULL;
	r = f->have_totp_key ? terminal_key(f, terminal, pub) : -ENOENT;
	if (r == -ENOENT)
		return (*ret = strdup("")) ? 0 : -ENOMEM;
	if (r < 0)
		return r;
	m = open_memstream(&text, &size);
	if (!m)
		return -ENOMEM;
	for (int k = 0; k < 2 && rc == SQLDB_DONE; k++) {
		_cleanup_(fleet_db_finalize) struct sqldb_stmt *st = query(f, k, group, now);
		if (!st) {
			rc = -EIO;
			break;
		}
		while ((rc = sqldb_step(st)) == SQLDB_ROW) {
			if (first) {
				first = false;
				fputs("key=", m);
				for (size_t i = 0; i < sizeof(pub); i++)
					fprintf(m, "%02x", pub[i]);
			}
			fprintf(m, ";%s%s:%" PRId64, k ? "R:" : "", fleet_col_text(st, 0),
				(int64_t)sqldb_column_int64(st, 1));
		}
	}
	if (fclose(m) != 0 || !text)
		return -ENOMEM;
	if (rc != SQLDB_DONE) {
		free(text);
		return -EIO;
	}
	*ret = text;
	return 0;
}

/* Seal the rows of st (user, gen or rid, secret) into *items; recovery: rid → gen space. */
static int seal_rows(struct fleet *f, struct sqldb_stmt *st, const char *terminal,
		     const uint8_t pub[BUNDLE_X25519_LEN], bool recovery,
		     struct bundle_totp **items, size_t *n)
{
	int rc, r;

	while ((rc = sqldb_step(st)) == SQLDB_ROW && *n < BUNDLE_MAX_TOTP) {
		const char *user = fleet_col_text(st, 0);
		uint64_t gen = (uint64_t)sqldb_column_int64(st, 1);
		uint64_t aad_gen = recovery ? BUNDLE_RECOVERY_GEN + gen : gen;
		struct bundle_totp_secret s;
		struct bundle_totp *t, *more = realloc(*items, (*n + 1) * sizeof(*t));

		if (!more)
			return -ENOMEM;
		*items = more;
		t = &more[*n];
		*t = (struct bundle_totp){.gen = gen};
		snprintf(t->user, sizeof(t->user), "%s", user);
		{
			size_t blen;
			const void *blob = sqldb_column_blob(st, 2, &blen);
			r = decrypt(f, user, aad_gen, blob, blen, &s);
		}
		if (r < 0) {
			server_log(
			    LOG_ERR,
			    "fleet: the TOTP %s of %s does not decrypt with [fleet] totp_key; "
			    "left out of the bundle for %s",
			    recovery ? "recovery code" : "secret", user, terminal);
			continue;
		}
		r = bundle_totp_seal(pub, terminal, user, aad_gen, &s, &t->sealed, &t->sealed_len);
		secmem_wipe(&s, sizeof(s));
		if (r < 0)
			return r;
		(*n)++;
	}
	return rc == SQLDB_ROW || rc == SQLDB_DONE ? 0 : -EIO;
}

int fleet_totp_seal_for(struct fleet *f, const char *terminal, const char *group, int64_t now,
			struct bundle_exceptions *ex)
{
	_cleanup_(fleet_db_finalize) struct sqldb_stmt *st = NULL, *rst = NULL;
	uint8_t pub[BUNDLE_X25519_LEN];
	int r = terminal_key(f, terminal, pub);

	if (r < 0)
		return r;
	st = query(f, 0, group, now);
	rst = query(f, 1, group, now);
	if (!st || !rst)
		return -EIO;
	r = seal_rows(f, st, terminal, pub, false, &ex->totp, &ex->n_totp);
	if (r >= 0)
		r = seal_rows(f, rst, terminal, pub, true, &ex->recovery, &ex->n_recovery);
	return r;
}

int fleet_totp_recovery_new(struct fleet *f, const char *user, int64_t now, int64_t seconds,
			    const char *by, uint64_t *ret_rid, char code[17])
{
	struct bundle_totp_secret s = {.secret_len = 16, .digits = 6, .period = 30};
	_cleanup_free_ uint8_t *blob = NULL;
	uint64_t rid = 1;
	size_t blen = 0;
	int rc, r = 0;

	{
		_cleanup_(fleet_db_finalize) struct sqldb_stmt *st = fleet_db_prepare(
		    f, "SELECT (SELECT 1 FROM fleet_totp WHERE \"user\" = ?),"
		       " (SELECT coalesce(max(rid), 0) + 1 FROM fleet_totp_recovery)");
		if (!st)
			return -EIO;
		sqldb_bind_text(st, 1, user);
		rc = sqldb_step(st);
		if (rc != SQLDB_ROW)
			return -EIO;
		if (sqldb_column_is_null(st, 0))
			return -ENOENT;
		rid = (uint64_t)sqldb_column_int64(st, 1);
	}
	/* 16 uniform decimal digits (rejection sampling: bytes below 250) */
	for (size_t n = 0; n < 16 && r >= 0;) {
		uint8_t b[32];
		if (RAND_priv_bytes(b, sizeof(b)) != 1)
			r = -EIO;
		for (size_t i = 0; r >= 0 && i < sizeof(b) && n < 16; i++)
			if (b[i] < 250)
				s.secret[n++] = (uint8_t)('0' + b[i] % 10);
		secmem_wipe(b, sizeof(b));
	}
	s.enrolled = now + seconds;
	if (r >= 0)
		r = fleet_totp_encrypt(f, user, BUNDLE_RECOVERY_GEN + rid, &s, &blob, &blen);
	if (r >= 0) {
		_cleanup_(fleet_db_finalize) struct sqldb_stmt *st = fleet_db_prepare(
		    f, "INSERT INTO fleet_totp_recovery (\"user\", rid, secret, until, issued_at,"
		       " issued_by) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (\"user\") DO UPDATE SET"
		       " rid = excluded.rid, secret = excluded.secret, until = excluded.until,"
		       " issued_at = excluded.issued_at, issued_by = excluded.issued_by");
		if (st) {
			sqldb_bind_text(st, 1, user);
			sqldb_bind_int64(st, 2, (int64_t)rid);
			sqldb_bind_blob(st, 3, blob, blen);
			sqldb_bind_int64(st, 4, now + seconds);
			sqldb_bind_int64(st, 5, now);
			sqldb_bind_text(st, 6, by);
		}
		r = st && sqldb_step(st) == SQLDB_DONE ? 0 : -EIO;
	}
	if (r >= 0) {
		memcpy(code, s.secret, 16);
		code[16] = 0;
		*ret_rid = rid;
	}
	secmem_wipe(&s, sizeof(s));
	return r;
}

int fleet_totp_new_secret(struct bundle_totp_secret *s, unsigned digits, unsigned period,
			  int64_t now)
{
	memset(s, 0, sizeof(*s));
	s->secret_len = 20;
	s->digits = digits;
	s->period = period;
	s->enrolled = now;
	return RAND_priv_bytes(s->secret, (int)s->secret_len) == 1 ? 0 : -EIO;
}

int fleet_totp_claim(struct fleet *f, const char *user, uint64_t step, const char *terminal,
		     int64_t now, enum fleet_claim *ret)
{
	int rc;

	if (step >= CLAIM_RECOVERY_STEP) {
		/* a recovery code's use: claimed while the code is the user's current one */
		_cleanup_(fleet_db_finalize) struct sqldb_stmt *st = fleet_db_prepare(
		    f, "SELECT 1 FROM fleet_totp_recovery WHERE \"user\" = ? AND rid = ?");
		if (!st)
			return -EIO;
		sqldb_bind_text(st, 1, user);
		sqldb_bind_int64(st, 2, (int64_t)(step - CLAIM_RECOVERY_STEP));
		rc = sqldb_step(st);
		if (rc == SQLDB_DONE) {
			*ret = FLEET_CLAIM_UNKNOWN;
			return 0;
		}
		if (rc != SQLDB_ROW)
			return -EIO;
	} else {
		_cleanup_(fleet_db_finalize) struct sqldb_stmt *st = fleet_db_prepare(
		    f, "SELECT secret IS NOT NULL FROM fleet_totp WHERE \"user\" = ?");
		if (!st)
			return -EIO;
		sqldb_bind_text(st, 1, user);
		rc = sqldb_step(st);
		if (rc == SQLDB_DONE) {
			*ret = FLEET_CLAIM_UNKNOWN;
			return 0;
		}
		if (rc != SQLDB_ROW)
			return -EIO;
		if (!(int)sqldb_column_int64(st, 0)) {
			*ret = FLEET_CLAIM_REVOKED;
			return 0;
		}
	}
	{
		_cleanup_(fleet_db_finalize) struct sqldb_stmt *st = fleet_db_prepare(
		    f,
		    "INSERT INTO fleet_totp_claims (\"user\", step, terminal, at) VALUES (?, ?, ?, ?)"
		    " ON CONFLICT (\"user\", step) DO NOTHING");
		if (!st)
			return -EIO;
		sqldb_bind_text(st, 1, user);
		sqldb_bind_int64(st, 2, (int64_t)step);
		sqldb_bind_text(st, 3, terminal);
		sqldb_bind_int64(st, 4, now);
		if (sqldb_step(st) != SQLDB_DONE)
			return -EIO;
		if (sqldb_changes(st) == 1) {
			*ret = FLEET_CLAIM_OK;
			return 0;
		}
	}
	{
		_cleanup_(fleet_db_finalize) struct sqldb_stmt *st = fleet_db_prepare(
		    f, "SELECT terminal FROM fleet_totp_claims WHERE \"user\" = ? AND step = ?");
		if (!st)
			return -EIO;
		sqldb_bind_text(st, 1, user);
		sqldb_bind_int64(st, 2, (int64_t)step);
		if (sqldb_step(st) != SQLDB_ROW)
			return -EIO;
		*ret = strcmp(fleet_col_text(st, 0), terminal) == 0 ? FLEET_CLAIM_OK
								    : FLEET_CLAIM_USED;
	}
	return 0;
}

void fleet_totp_note_success(struct fleet *f, const struct event *e)
{
	json_t *step = json_object_get(e->data, "step");
	const char *user = json_string_value(json_object_get(e->data, "user"));
	const char *claim = json_string_value(json_object_get(e->data, "claim"));
	enum fleet_claim res;
	char first[80] = "";

	if (!json_is_integer(step) || json_integer_value(step) < 1 || !user || !claim ||
	    strcmp(claim, "offline") != 0 || !bundle_totp_user_valid(user, strlen(user)))
		return;
	if (fleet_totp_claim(f, user, (uint64_t)json_integer_value(step), e->terminal,
			     e->ts_ms / 1000, &res) < 0 ||
	    res != FLEET_CLAIM_USED)
		return;
	{
		_cleanup_(fleet_db_finalize) struct sqldb_stmt *st = fleet_db_prepare(
		    f, "SELECT terminal FROM fleet_totp_claims WHERE \"user\" = ? AND step = ?");
		if (st) {
			sqldb_bind_text(st, 1, user);
			sqldb_bind_int64(st, 2, (int64_t)json_integer_value(step));
			if (sqldb_step(st) == SQLDB_ROW)
				snprintf(first, sizeof(first), "%s", fleet_col_text(st, 0));
		}
	}
	server_log(LOG_WARNING,
		   "fleet: TOTP code of %s (step %" JSON_INTEGER_FORMAT
		   ") accepted on %s and, offline, on %s",
		   user, json_integer_value(step), first, e->terminal);
	fleet_emit(f, EVENT_FLEET_TOTP,
		   json_pack("{s:s,s:s,s:I,s:[s,s],s:s}", "action", "double_use", "user", user,
			     "step", json_integer_value(step), "terminals", first, e->terminal,
			     "problem", "a one-time code was accepted on two terminals"));
}

int fleet_totp_verify(struct fleet *f, const char *user, const char *code, int64_t now,
		      enum fleet_verify *ret, unsigned *ret_failures, int64_t *ret_verified)
{
	const struct totp_params p = {.window = FLEET_TOTP_VERIFY_WINDOW,
				      .max_failures = TOTP_FAILURES_MAX};
	struct bundle_totp_secret s;
	struct totp_record rec = {.version = TOTP_RECORD_VERSION, .kind = TOTP_KIND_APP};
	enum totp_result res = TOTP_WRONG;
	uint64_t gen;
	int changed = 0, rc, r;

	*ret_failures = 0;
	*ret_verified = 0;
	{
		_cleanup_(fleet_db_finalize) struct sqldb_stmt *st = fleet_db_prepare(
		    f, "SELECT gen, secret, verified_at, verify_failures FROM fleet_totp"
		       " WHERE \"user\" = ? AND secret IS NOT NULL");
		if (!st)
			return -EIO;
		sqldb_bind_text(st, 1, user);
		rc = sqldb_step(st);
		if (rc == SQLDB_DONE) {
			*ret = FLEET_VERIFY_NONE;
			return 0;
		}
		if (rc != SQLDB_ROW)
			return -EIO;
		gen = (uint64_t)sqldb_column_int64(st, 0);
		*ret_failures = (unsigned)(int)sqldb_column_int64(st, 3);
		if (!sqldb_column_is_null(st, 2)) {
			*ret_verified = sqldb_column_int64(st, 2);
			*ret = FLEET_VERIFY_ALREADY;
			return 0;
		}
		if (*ret_failures >= FLEET_TOTP_VERIFY_MAX_FAILURES) {
			*ret = FLEET_VERIFY_LOCKED;
			return 0;
		}
		{
			size_t blen;
			const void *blob = sqldb_column_blob(st, 1, &blen);
			r = decrypt(f, user, gen, blob, blen, &s);
		}
		if (r < 0)
			return r;
	}
	/* the same rules as a login on a terminal (pam_module/totp_verify.c), on a record that
	 * has used no step yet: the one-time part is the claim below */
	memcpy(rec.secret, s.secret, s.secret_len);
	rec.secret_len = s.secret_len;
	rec.digits = s.digits;
	rec.period = s.period;
	rec.enrolled = s.enrolled;
	rec.verified = s.enrolled;
	secmem_wipe(&s, sizeof(s));
	r = totp_verify(&rec, code, now, &p, &res, &changed);
	if (r >= 0 && res == TOTP_SUCCESS) {
		enum fleet_claim claim = FLEET_CLAIM_USED;
		r = fleet_totp_claim(f, user, rec.last_step, FLEET_TOTP_VERIFY_CLAIMANT, now,
				     &claim);
		/* the verify's own earlier claim counts as used too: one code proves once */
		if (r >= 0 && (claim != FLEET_CLAIM_OK || sqldb_last_changes(f->db) != 1))
			res = TOTP_REPLAY;
	}
	totp_record_wipe(&rec);
	if (r < 0)
		return r;
	if (res == TOTP_SUCCESS) {
		_cleanup_(fleet_db_finalize) struct sqldb_stmt *st = fleet_db_prepare(
		    f, "UPDATE fleet_totp SET verified_at = ? WHERE \"user\" = ? AND gen = ?");
		if (!st)
			return -EIO;
		sqldb_bind_int64(st, 1, now);
		sqldb_bind_text(st, 2, user);
		sqldb_bind_int64(st, 3, (int64_t)gen);
		if (sqldb_step(st) != SQLDB_DONE)
			return -EIO;
		*ret_verified = now;
		*ret = FLEET_VERIFY_OK;
		return 0;
	}
	if (res == TOTP_REPLAY) {
		*ret = FLEET_VERIFY_USED;
		return 0;
	}
	{
		_cleanup_(fleet_db_finalize) struct sqldb_stmt *st = fleet_db_prepare(
		    f, "UPDATE fleet_totp SET verify_failures = verify_failures + 1"
		       " WHERE \"user\" = ? AND gen = ?");
		if (!st)
			return -EIO;
		sqldb_bind_text(st, 1, user);
		sqldb_bind_int64(st, 2, (int64_t)gen);
		if (sqldb_step(st) != SQLDB_DONE)
			return -EIO;
	}
	(*ret_failures)++;
	*ret = FLEET_VERIFY_WRONG;
	return 0;
}
