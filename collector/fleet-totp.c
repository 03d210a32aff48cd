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
	_cleanup_(fleet_db_finalize) sqlite3_stmt *st = fleet_db_prepare(
	    f, "INSERT INTO fleet_terminal_keys (terminal, x25519, updated_at) VALUES (?, ?, ?)"
	       " ON CONFLICT (terminal) DO UPDATE SET x25519 = excluded.x25519,"
	       " updated_at = excluded.updated_at WHERE x25519 IS NOT excluded.x25519");

	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, terminal, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, pub, BUNDLE_X25519_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now);
	return sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
}

static int terminal_key(struct fleet *f, const char *terminal, uint8_t pub[BUNDLE_X25519_LEN])
{
	_cleanup_(fleet_db_finalize) sqlite3_stmt *st =
	    fleet_db_prepare(f, "SELECT x25519 FROM fleet_terminal_keys WHERE terminal = ?");
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, terminal, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW || sqlite3_column_bytes(st, 0) != BUNDLE_X25519_LEN)
		return -EIO;
	memcpy(pub, sqlite3_column_blob(st, 0), BUNDLE_X25519_LEN);
	return 0;
}

/* The enrollments in force (verified, not revoked) for a terminal of group: user, gen, secret. */
#define ACTIVE_FOR_GROUP                                                                           \
	"SELECT user, gen, secret FROM fleet_totp WHERE secret IS NOT NULL"                        \
	" AND verified_at IS NOT NULL AND EXISTS"                                                  \
	" (SELECT 1 FROM json_each(fleet_totp.groups) WHERE value = ?1) AND ?2 = ?2 ORDER BY user"
/* The recovery codes not yet over for the users enrolled (or revoked) for group: user, rid,
 * secret, until. */
#define RECOVERY_FOR_GROUP                                                                         \
	"SELECT r.user, r.rid, r.secret, r.until FROM fleet_totp_recovery r JOIN fleet_totp t"     \
	" ON t.user = r.user WHERE r.until > ?2 AND EXISTS"                                        \
	" (SELECT 1 FROM json_each(t.groups) WHERE value = ?1) ORDER BY r.user"

static sqlite3_stmt *query(struct fleet *f, const char *sql, const char *group, int64_t now)
{
	sqlite3_stmt *st = fleet_db_prepare(f, sql);

	if (st) {
		sqlite3_bind_text(st, 1, group, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, now);
	}
	return st;
}

int fleet_totp_describe(struct fleet *f, const char *terminal, const char *group, int64_t now,
			char **ret)
{
	static const char *const sql[2] = {ACTIVE_FOR_GROUP, RECOVERY_FOR_GROUP};
	uint8_t pub[BUNDLE_X25519_LEN];
	char *text = NULL;
	size_t size = 0;
	bool first = true;
	FILE *m;
	int rc = SQLITE_DONE, r;

	*ret = NULL;
	r = f->have_totp_key ? terminal_key(f, terminal, pub) : -ENOENT;
	if (r == -ENOENT)
		return (*ret = strdup("")) ? 0 : -ENOMEM;
	if (r < 0)
		return r;
	m = open_memstream(&text, &size);
	if (!m)
		return -ENOMEM;
	for (int k = 0; k < 2 && rc == SQLITE_DONE; k++) {
		_cleanup_(fleet_db_finalize) sqlite3_stmt *st = query(f, sql[k], group, now);
		if (!st) {
			rc = SQLITE_ERROR;
			break;
		}
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			if (first) {
				first = false;
				fputs("key=", m);
				for (size_t i = 0; i < sizeof(pub); i++)
					fprintf(m, "%02x", pub[i]);
			}
			fprintf(m, ";%s%s:%" PRId64, k ? "R:" : "", fleet_col_text(st, 0),
				(int64_t)sqlite3_column_int64(st, 1));
		}
	}
	if (fclose(m) != 0 || !text)
		return -ENOMEM;
	if (rc != SQLITE_DONE) {
		free(text);
		return -EIO;
	}
	*ret = text;
	return 0;
}

/* Seal the rows of st (user, gen or rid, secret) into *items; recovery: rid → gen space. */
static int seal_rows(struct fleet *f, sqlite3_stmt *st, const char *terminal,
		     const uint8_t pub[BUNDLE_X25519_LEN], bool recovery,
		     struct bundle_totp **items, size_t *n)
{
	int rc, r;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < BUNDLE_MAX_TOTP) {
		const char *user = fleet_col_text(st, 0);
		uint64_t gen = (uint64_t)sqlite3_column_int64(st, 1);
		uint64_t aad_gen = recovery ? BUNDLE_RECOVERY_GEN + gen : gen;
		struct bundle_totp_secret s;
		struct bundle_totp *t, *more = realloc(*items, (*n + 1) * sizeof(*t));

		if (!more)
			return -ENOMEM;
		*items = more;
		t = &more[*n];
		*t = (struct bundle_totp){.gen = gen};
		snprintf(t->user, sizeof(t->user), "%s", user);
		r = decrypt(f, user, aad_gen, sqlite3_column_blob(st, 2),
			    (size_t)sqlite3_column_bytes(st, 2), &s);
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
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -EIO;
}

int fleet_totp_seal_for(struct fleet *f, const char *terminal, const char *group, int64_t now,
			struct bundle_exceptions *ex)
{
	_cleanup_(fleet_db_finalize) sqlite3_stmt *st = NULL, *rst = NULL;
	uint8_t pub[BUNDLE_X25519_LEN];
	int r = terminal_key(f, terminal, pub);

	if (r < 0)
		return r;
	st = query(f, ACTIVE_FOR_GROUP, group, now);
	rst = query(f, RECOVERY_FOR_GROUP, group, now);
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
		_cleanup_(fleet_db_finalize) sqlite3_stmt *st = fleet_db_prepare(
		    f, "SELECT (SELECT 1 FROM fleet_totp WHERE user = ?),"
		       " (SELECT coalesce(max(rid), 0) + 1 FROM fleet_totp_recovery)");
		if (!st)
			return -EIO;
		sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc != SQLITE_ROW)
			return -EIO;
		if (sqlite3_column_type(st, 0) == SQLITE_NULL)
			return -ENOENT;
		rid = (uint64_t)sqlite3_column_int64(st, 1);
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
		_cleanup_(fleet_db_finalize) sqlite3_stmt *st = fleet_db_prepare(
		    f, "INSERT INTO fleet_totp_recovery (user, rid, secret, until, issued_at,"
		       " issued_by) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user) DO UPDATE SET"
		       " rid = excluded.rid, secret = excluded.secret, until = excluded.until,"
		       " issued_at = excluded.issued_at, issued_by = excluded.issued_by");
		if (st) {
			sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, (int64_t)rid);
			sqlite3_bind_blob(st, 3, blob, (int)blen, SQLITE_STATIC);
			sqlite3_bind_int64(st, 4, now + seconds);
			sqlite3_bind_int64(st, 5, now);
			sqlite3_bind_text(st, 6, by, -1, SQLITE_STATIC);
		}
		r = st && sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
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
		_cleanup_(fleet_db_finalize) sqlite3_stmt *st = fleet_db_prepare(
		    f, "SELECT 1 FROM fleet_totp_recovery WHERE user = ? AND rid = ?");
		if (!st)
			return -EIO;
		sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (int64_t)(step - CLAIM_RECOVERY_STEP));
		rc = sqlite3_step(st);
		if (rc == SQLITE_DONE) {
			*ret = FLEET_CLAIM_UNKNOWN;
			return 0;
		}
		if (rc != SQLITE_ROW)
			return -EIO;
	} else {
		_cleanup_(fleet_db_finalize) sqlite3_stmt *st =
		    fleet_db_prepare(f, "SELECT secret IS NOT NULL FROM fleet_totp WHERE user = ?");
		if (!st)
			return -EIO;
		sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_DONE) {
			*ret = FLEET_CLAIM_UNKNOWN;
			return 0;
		}
		if (rc != SQLITE_ROW)
			return -EIO;
		if (!sqlite3_column_int(st, 0)) {
			*ret = FLEET_CLAIM_REVOKED;
			return 0;
		}
	}
	{
		_cleanup_(fleet_db_finalize) sqlite3_stmt *st = fleet_db_prepare(
		    f,
		    "INSERT INTO fleet_totp_claims (user, step, terminal, at) VALUES (?, ?, ?, ?)"
		    " ON CONFLICT (user, step) DO NOTHING");
		if (!st)
			return -EIO;
		sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (int64_t)step);
		sqlite3_bind_text(st, 3, terminal, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, now);
		if (sqlite3_step(st) != SQLITE_DONE)
			return -EIO;
		if (sqlite3_changes(f->db) == 1) {
			*ret = FLEET_CLAIM_OK;
			return 0;
		}
	}
	{
		_cleanup_(fleet_db_finalize) sqlite3_stmt *st = fleet_db_prepare(
		    f, "SELECT terminal FROM fleet_totp_claims WHERE user = ? AND step = ?");
		if (!st)
			return -EIO;
		sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (int64_t)step);
		if (sqlite3_step(st) != SQLITE_ROW)
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
		_cleanup_(fleet_db_finalize) sqlite3_stmt *st = fleet_db_prepare(
		    f, "SELECT terminal FROM fleet_totp_claims WHERE user = ? AND step = ?");
		if (st) {
			sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, (int64_t)json_integer_value(step));
			if (sqlite3_step(st) == SQLITE_ROW)
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
		_cleanup_(fleet_db_finalize) sqlite3_stmt *st = fleet_db_prepare(
		    f, "SELECT gen, secret, verified_at, verify_failures FROM fleet_totp"
		       " WHERE user = ? AND secret IS NOT NULL");
		if (!st)
			return -EIO;
		sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_DONE) {
			*ret = FLEET_VERIFY_NONE;
			return 0;
		}
		if (rc != SQLITE_ROW)
			return -EIO;
		gen = (uint64_t)sqlite3_column_int64(st, 0);
		*ret_failures = (unsigned)sqlite3_column_int(st, 3);
		if (sqlite3_column_type(st, 2) != SQLITE_NULL) {
			*ret_verified = sqlite3_column_int64(st, 2);
			*ret = FLEET_VERIFY_ALREADY;
			return 0;
		}
		if (*ret_failures >= FLEET_TOTP_VERIFY_MAX_FAILURES) {
			*ret = FLEET_VERIFY_LOCKED;
			return 0;
		}
		r = decrypt(f, user, gen, sqlite3_column_blob(st, 1),
			    (size_t)sqlite3_column_bytes(st, 1), &s);
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
		if (r >= 0 && (claim != FLEET_CLAIM_OK || sqlite3_changes(f->db) != 1))
			res = TOTP_REPLAY;
	}
	totp_record_wipe(&rec);
	if (r < 0)
		return r;
	if (res == TOTP_SUCCESS) {
		_cleanup_(fleet_db_finalize) sqlite3_stmt *st = fleet_db_prepare(
		    f, "UPDATE fleet_totp SET verified_at = ? WHERE user = ? AND gen = ?");
		if (!st)
			return -EIO;
		sqlite3_bind_int64(st, 1, now);
		sqlite3_bind_text(st, 2, user, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, (int64_t)gen);
		if (sqlite3_step(st) != SQLITE_DONE)
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
		_cleanup_(fleet_db_finalize) sqlite3_stmt *st = fleet_db_prepare(
		    f, "UPDATE fleet_totp SET verify_failures = verify_failures + 1"
		       " WHERE user = ? AND gen = ?");
		if (!st)
			return -EIO;
		sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (int64_t)gen);
		if (sqlite3_step(st) != SQLITE_DONE)
			return -EIO;
	}
	(*ret_failures)++;
	*ret = FLEET_VERIFY_WRONG;
	return 0;
}
