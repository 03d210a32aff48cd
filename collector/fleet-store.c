/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: the fleet's tables (in the collector's database, created idempotently,
 * beside the store's own schema), the per-terminal bundles, and what ingested events add
 * (requests, ledger sightings). One connection, behind one lock: the dashboard thread, the
 * ingest workers (GET /v1/policy) and the writer thread share it. */
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "at-rest.h"
#include "bundle.h"
#include "fleet-internal.h"
#include "ingest.h"
#include "macro.h"
#include "secmem.h"
#include "server.h"

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS fleet_groups ("
    "  name TEXT PRIMARY KEY,"
    "  created_at INTEGER NOT NULL,"
    "  base BLOB," /* the signed base file (MYNABAS1) */
    "  base_version INTEGER,"
    "  base_issued INTEGER,"
    "  base_sha256 TEXT,"
    "  base_uploaded_at INTEGER);"
    "CREATE TABLE IF NOT EXISTS fleet_members ("
    "  terminal TEXT PRIMARY KEY,"
    "  grp TEXT NOT NULL,"
    "  added_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS fleet_exceptions ("
    "  id TEXT PRIMARY KEY,"
    "  year INTEGER NOT NULL,"
    "  num INTEGER NOT NULL,"
    "  scope TEXT NOT NULL," /* terminal | group */
    "  grp TEXT NOT NULL,"
    "  terminal TEXT,"
    "  vendor INTEGER NOT NULL,"
    "  product INTEGER NOT NULL,"
    "  serial TEXT NOT NULL,"
    "  hash TEXT,"
    "  class TEXT NOT NULL,"
    "  users TEXT NOT NULL," /* JSON array */
    "  valid_from INTEGER NOT NULL,"
    "  valid_until INTEGER NOT NULL,"
    "  purpose TEXT NOT NULL,"
    "  approved_by TEXT NOT NULL,"
    "  ledger TEXT,"
    "  request TEXT,"
    "  state TEXT NOT NULL," /* active | revoked */
    "  created_at INTEGER NOT NULL,"
    "  created_by TEXT NOT NULL,"
    "  revoked_at INTEGER,"
    "  revoked_by TEXT,"
    "  revoke_reason TEXT);"
    "CREATE TABLE IF NOT EXISTS fleet_requests ("
    "  terminal TEXT NOT NULL,"
    "  code TEXT NOT NULL,"
    "  vendor INTEGER NOT NULL,"
    "  product INTEGER NOT NULL,"
    "  serial TEXT,"
    "  hash TEXT,"
    "  class TEXT," /* the interface class of the event, e.g. "08:06:50" */
    "  rule TEXT,"  /* the decision, e.g. "block mass_storage (08)" */
    "  manufacturer TEXT,"
    "  product_name TEXT,"
    "  first_seen INTEGER NOT NULL,"
    "  last_seen INTEGER NOT NULL,"
    "  count INTEGER NOT NULL,"
    "  state TEXT NOT NULL," /* pending | granted | refused */
    "  exception TEXT,"
    "  reason TEXT,"
    "  decided_by TEXT,"
    "  decided_at INTEGER,"
    "  PRIMARY KEY (terminal, code));"
    "CREATE TABLE IF NOT EXISTS fleet_ledger ("
    "  number TEXT PRIMARY KEY,"
    "  holder TEXT NOT NULL,"
    "  department TEXT NOT NULL,"
    "  model TEXT NOT NULL,"
    "  vendor TEXT NOT NULL,"
    "  product TEXT NOT NULL,"
    "  serial TEXT NOT NULL,"
    "  encrypted INTEGER NOT NULL,"
    "  lent TEXT NOT NULL,"
    "  returned TEXT NOT NULL,"
    "  note TEXT NOT NULL,"
    "  last_terminal TEXT,"
    "  last_seen INTEGER,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS fleet_ledger_device ON fleet_ledger (vendor, product, serial);"
    "CREATE TABLE IF NOT EXISTS fleet_bundles ("
    "  terminal TEXT PRIMARY KEY,"
    "  version INTEGER NOT NULL," /* only rises */
    "  content TEXT,"		  /* SHA-256 of what the bundle was built from */
    "  bundle BLOB,"
    "  built_at INTEGER);"
    /* central TOTP (docs/fleet.md, "Central TOTP enrollment"): secret = AES-256-GCM under
     * [fleet] totp_key of the plaintext bundle_totp_secret_encode writes, AAD
     * "mynaguard-collector-totp-v1\0" user "\0" gen */
    "CREATE TABLE IF NOT EXISTS fleet_totp ("
    "  user TEXT PRIMARY KEY,"
    "  groups TEXT NOT NULL," /* JSON array of group names */
    "  gen INTEGER NOT NULL," /* rises with every enrollment of this user */
    "  secret BLOB,"	      /* NULL once revoked */
    "  enrolled_at INTEGER NOT NULL,"
    "  enrolled_by TEXT NOT NULL,"
    "  revoked_at INTEGER,"
    "  revoked_by TEXT,"
    "  revoke_reason TEXT,"
    "  verified_at INTEGER," /* `fleet totp verify`; NULL = pending: in no bundle */
    "  verify_failures INTEGER NOT NULL DEFAULT 0);"
    /* helpdesk recovery codes: secret = the code and its end, encrypted like fleet_totp.secret
     * with gen BUNDLE_RECOVERY_GEN + rid; one per user, a new one replaces it */
    "CREATE TABLE IF NOT EXISTS fleet_totp_recovery ("
    "  user TEXT PRIMARY KEY,"
    "  rid INTEGER NOT NULL,"
    "  secret BLOB NOT NULL,"
    "  until INTEGER NOT NULL,"
    "  issued_at INTEGER NOT NULL,"
    "  issued_by TEXT NOT NULL);"
    /* one-time across terminals: who used (user, time step) first */
    "CREATE TABLE IF NOT EXISTS fleet_totp_claims ("
    "  user TEXT NOT NULL,"
    "  step INTEGER NOT NULL,"
    "  terminal TEXT NOT NULL,"
    "  at INTEGER NOT NULL,"
    "  PRIMARY KEY (user, step));"
    "CREATE TABLE IF NOT EXISTS fleet_terminal_keys ("
    "  terminal TEXT PRIMARY KEY,"
    "  x25519 BLOB NOT NULL," /* the agent's public key, as the uplink reported it */
    "  updated_at INTEGER NOT NULL);";

int fleet_db_exec(struct fleet *f, const char *sql)
{
	int r = sqldb_exec(f->db, sql);

	if (r < 0) {
		server_log(LOG_ERR, "fleet: %s", sqldb_errmsg(f->db));
		return r == -EBUSY ? -EBUSY : -EIO;
	}
	return 0;
}

struct sqldb_stmt *fleet_db_prepare(struct fleet *f, const char *sql)
{
	return fleet_db_prepare_pg(f, sql, NULL);
}

struct sqldb_stmt *fleet_db_prepare_pg(struct fleet *f, const char *sql, const char *pg_sql)
{
	struct sqldb_stmt *st = NULL;

	if (sqldb_prepare(f->db, sql, pg_sql, &st) < 0) {
		server_log(LOG_ERR, "fleet: %s", sqldb_errmsg(f->db));
		return NULL;
	}
	return st;
}

void fleet_db_finalize(struct sqldb_stmt **st)
{
	sqldb_finalizep(st);
}

const char *fleet_col_text(struct sqldb_stmt *st, int i)
{
	return sqldb_column_text(st, i);
}

/* fleet_totp.verified_at and verify_failures came with `fleet totp verify`. The enrollments of
 * an older database went to their terminals at once and have been in use: they count as
 * verified at their enrollment (as a version 1 TOTP record does on a terminal). */
static int totp_migrate(struct fleet *f)
{
	int rc;
	{
		_cleanup_(fleet_db_finalize) struct sqldb_stmt *st = fleet_db_prepare(
		    f, "SELECT 1 FROM pragma_table_info('fleet_totp') WHERE name = 'verified_at'");
		if (!st)
			return -EIO;
		rc = sqldb_step(st);
	}
	if (rc == SQLDB_ROW)
		return 0;
	if (rc != SQLDB_DONE)
		return -EIO;
	server_log(LOG_NOTICE, "fleet: fleet_totp gains verified_at (existing enrollments count "
			       "as verified)");
	return fleet_db_exec(
	    f, "BEGIN IMMEDIATE;"
	       " ALTER TABLE fleet_totp ADD COLUMN verified_at INTEGER;"
	       " ALTER TABLE fleet_totp ADD COLUMN verify_failures INTEGER NOT NULL DEFAULT 0;"
	       " UPDATE fleet_totp SET verified_at = enrolled_at WHERE secret IS NOT NULL;"
	       " COMMIT");
}

int fleet_open(struct collector *c, const struct collector_config *cfg, struct fleet **ret)
{
	struct fleet *f;
	char err[BUNDLE_ERR_MAX] = "";
	int r;

	*ret = NULL;
	if (!cfg->fleet_grant_key || !cfg->fleet_root_key)
		return 0;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->c = c;
	pthread_mutex_init(&f->lock, NULL);
	r = bundle_signer_load(cfg->fleet_grant_key, &f->grant, err, sizeof(err));
	if (r < 0) {
		server_log(LOG_ERR, "[fleet] grant_key %s: %s", cfg->fleet_grant_key,
			   err[0] ? err : strerror(-r));
		fleet_close(f);
		return r;
	}
	bundle_signer_pubkey(f->grant, f->grant_pub);
	r = bundle_pubkey_load(cfg->fleet_root_key, f->root_pub, err, sizeof(err));
	if (r < 0) {
		server_log(LOG_ERR, "[fleet] root_key %s: %s", cfg->fleet_root_key,
			   err[0] ? err : strerror(-r));
		fleet_close(f);
		return r;
	}
	if (cfg->fleet_totp_key) {
		r = at_rest_key_load(cfg->fleet_totp_key, f->totp_key, err, sizeof(err));
		if (r < 0) {
			server_log(LOG_ERR, "[fleet] totp_key %s: %s", cfg->fleet_totp_key, err);
			fleet_close(f);
			return r;
		}
		f->have_totp_key = true;
	}
	r = sqldb_open(cfg->database, &f->db);
	if (r < 0) {
		server_log(LOG_ERR, "fleet: database %s: %s", cfg->database, strerror(-r));
		fleet_close(f);
		return -EIO;
	}
	/* PostgreSQL: the tables are the store's schema step 3 → 4 (store-pg.c), made when the
	 * connection opened */
	if (!sqldb_is_pg(f->db)) {
		r = fleet_db_exec(f, "PRAGMA synchronous = FULL");
		if (r >= 0)
			r = fleet_db_exec(f, schema);
		if (r >= 0)
			r = totp_migrate(f);
	}
	if (r < 0) {
		fleet_close(f);
		return r;
	}
	*ret = f;
	return 0;
}

void fleet_close(struct fleet *f)
{
	if (!f)
		return;
	sqldb_close(f->db);
	bundle_signer_free(f->grant);
	secmem_wipe(f, sizeof(*f));
	free(f);
}

void fleet_emit(struct fleet *f, enum event_kind kind, json_t *data)
{
	if (!f->c->writer) {
		json_decref(data);
		return;
	}
	if (ingest_writer_self_event(f->c->writer, kind, data) < 0)
		server_log(LOG_ERR, "fleet: cannot queue the %s event", event_kind_name(kind));
}

void fleet_sha256_hex(const void *a, size_t alen, const void *b, size_t blen, char out[65])
{
	uint8_t md[32];
	unsigned mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	memset(md, 0, sizeof(md));
	if (ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(ctx, a, alen) == 1 && (!b || EVP_DigestUpdate(ctx, b, blen) == 1))
		EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	for (size_t i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* ---- the group's base ---- */

int fleet_load_base(struct fleet *f, const char *group, uint8_t **ret_blob, size_t *ret_len,
		    struct policy **ret_base)
{
	_cleanup_(fleet_db_finalize) struct sqldb_stmt *st =
	    fleet_db_prepare(f, "SELECT base FROM fleet_groups WHERE name = ?");
	struct bundle_frame fr;
	struct policy_errors errs = {0};
	char err[BUNDLE_ERR_MAX];
	uint8_t *blob;
	const void *col;
	size_t len;
	int rc;

	if (!st)
		return -EIO;
	sqldb_bind_text(st, 1, group);
	rc = sqldb_step(st);
	if (rc != SQLDB_ROW)
		return rc == SQLDB_DONE ? -ENOENT : -EIO;
	if (sqldb_column_is_null(st, 0))
		return -ENODATA;
	col = sqldb_column_blob(st, 0, &len);
	blob = malloc(len ? len : 1);
	if (!blob)
		return -ENOMEM;
	if (len)
		memcpy(blob, col, len);
	if (bundle_decode_base(blob, len, &fr, err, sizeof(err)) < 0 ||
	    policy_parse_base(group, (const char *)fr.base, fr.base_len, ret_base, &errs) < 0) {
		policy_errors_clear(&errs);
		free(blob);
		server_log(LOG_ERR, "fleet: the stored base of group %s does not parse", group);
		return -EIO;
	}
	policy_errors_clear(&errs);
	if (ret_blob) {
		*ret_blob = blob;
		*ret_len = len;
	} else
		free(blob);
	return 0;
}

/* ---- exceptions as the bundle carries them ---- */

static void exception_clear(struct bundle_exception *e)
{
	free(e->serial);
	free(e->descriptor_hash);
	for (size_t i = 0; i < e->n_users; i++)
		free(e->users[i]);
	free(e->purpose);
	free(e->approved_by);
	free(e->ledger);
	*e = (struct bundle_exception){0};
}

static int row_to_exception(struct sqldb_stmt *st, struct bundle_exception *e)
{
	/* columns: id, vendor, product, serial, hash, class, users, valid_from, valid_until,
	 * purpose, approved_by, ledger */
	json_t *users = NULL;
	const char *t;

	*e = (struct bundle_exception){0};
	snprintf(e->id, sizeof(e->id), "%s", fleet_col_text(st, 0));
	e->vendor = (uint16_t)(int)sqldb_column_int64(st, 1);
	e->product = (uint16_t)(int)sqldb_column_int64(st, 2);
	e->serial = strdup(fleet_col_text(st, 3));
	t = fleet_col_text(st, 4);
	e->descriptor_hash = t ? strdup(t) : NULL;
	snprintf(e->cls, sizeof(e->cls), "%s", fleet_col_text(st, 5));
	users = json_loads(fleet_col_text(st, 6), 0, NULL);
	for (size_t i = 0;
	     json_is_array(users) && i < json_array_size(users) && e->n_users < BUNDLE_MAX_USERS;
	     i++) {
		const char *u = json_string_value(json_array_get(users, i));
		if (u)
			e->users[e->n_users++] = strdup(u);
	}
	json_decref(users);
	e->from = sqldb_column_int64(st, 7);
	e->until = sqldb_column_int64(st, 8);
	e->purpose = strdup(fleet_col_text(st, 9));
	e->approved_by = strdup(fleet_col_text(st, 10));
	t = fleet_col_text(st, 11);
	e->ledger = t ? strdup(t) : NULL;
	if (!e->serial || !e->purpose || !e->approved_by)
		return -ENOMEM;
	for (size_t i = 0; i < e->n_users; i++)
		if (!e->users[i])
			return -ENOMEM;
	return 0;
}

#define EXC_COLS                                                                                   \
	"id, vendor, product, serial, hash, class, users, valid_from, valid_until, purpose, "      \
	"approved_by, ledger"

/* The active exceptions for terminal in group that the base allows, not yet over at now. */
static int terminal_exceptions(struct fleet *f, const struct policy *base, const char *group,
			       const char *terminal, int64_t now, struct bundle_exceptions *ret)
{
	_cleanup_(fleet_db_finalize) struct sqldb_stmt *st = fleet_db_prepare(
	    f,
	    "SELECT " EXC_COLS " FROM fleet_exceptions WHERE state = 'active' AND valid_until > ?"
	    " AND ((scope = 'terminal' AND terminal = ?) OR (scope = 'group' AND grp = ?))"
	    " ORDER BY id");
	int rc;

	*ret = (struct bundle_exceptions){0};
	if (!st)
		return -EIO;
	sqldb_bind_int64(st, 1, now);
	sqldb_bind_text(st, 2, terminal);
	sqldb_bind_text(st, 3, group);
	while ((rc = sqldb_step(st)) == SQLDB_ROW && ret->n < BUNDLE_MAX_EXCEPTIONS) {
		struct bundle_exception *items = realloc(ret->items, (ret->n + 1) * sizeof(*items));
		char err[BUNDLE_ERR_MAX];
		if (!items) {
			bundle_exceptions_free(ret);
			return -ENOMEM;
		}
		ret->items = items;
		int r = row_to_exception(st, &items[ret->n]);
		ret->n++;
		if (r < 0) {
			bundle_exceptions_free(ret);
			return r;
		}
		/* a newer base may allow less than the one the grant was checked against: the
		 * terminal would refuse the whole bundle, so such an exception is left out */
		struct bundle_exceptions one = {.items = &items[ret->n - 1], .n = 1};
		if (bundle_check_limits(base, &one, err, sizeof(err)) < 0) {
			server_log(LOG_WARNING,
				   "fleet: exception %s left out of the bundle for %s: %s",
				   items[ret->n - 1].id, terminal, err);
			ret->n--;
			exception_clear(&items[ret->n]);
		}
	}
	if (rc != SQLDB_ROW && rc != SQLDB_DONE) {
		bundle_exceptions_free(ret);
		return -EIO;
	}
	return 0;
}

int fleet_bundle_for(struct fleet *f, const char *terminal, int64_t now, uint8_t **ret,
		     size_t *ret_len, uint64_t *ret_version, char *reason, size_t reasonsz)
{
	_cleanup_free_ uint8_t *base_blob = NULL;
	_cleanup_free_ char *json = NULL, *totp_desc = NULL;
	_cleanup_policy_ struct policy *base = NULL;
	_cleanup_(bundle_exceptions_free) struct bundle_exceptions ex = {0};
	char group[80], content[65], err[BUNDLE_ERR_MAX];
	size_t base_len = 0;
	uint64_t version = 0;
	int rc, r;

	{
		_cleanup_(fleet_db_finalize) struct sqldb_stmt *st =
		    fleet_db_prepare(f, "SELECT grp FROM fleet_members WHERE terminal = ?");
		if (!st)
			return -EIO;
		sqldb_bind_text(st, 1, terminal);
		rc = sqldb_step(st);
		if (rc == SQLDB_DONE) {
			snprintf(reason, reasonsz, "terminal %s is in no group", terminal);
			return -ENOENT;
		}
		if (rc != SQLDB_ROW)
			return -EIO;
		snprintf(group, sizeof(group), "%s", fleet_col_text(st, 0));
	}
	r = fleet_load_base(f, group, &base_blob, &base_len, &base);
	if (r == -ENOENT || r == -ENODATA) {
		snprintf(reason, reasonsz, "group %s has no signed base", group);
		return -ENOENT;
	}
	if (r < 0)
		return r;
	if (!policy_fleet_covers(base, terminal)) {
		snprintf(reason, reasonsz,
			 "the base of group %s does not name terminal %s in [fleet] terminals",
			 group, terminal);
		return -ENOENT;
	}
	r = terminal_exceptions(f, base, group, terminal, now, &ex);
	if (r < 0)
		return r;
	r = bundle_exceptions_to_json(&ex, &json);
	if (r < 0) {
		bundle_exceptions_free(&ex);
		return r;
	}
	/* The sealed secrets differ at every sealing: what they are made of is hashed instead
	 * (user, generation, the terminal's key), and they are sealed only for a new bundle. */
	r = fleet_totp_describe(f, terminal, group, now, &totp_desc);
	if (r < 0) {
		bundle_exceptions_free(&ex);
		return r;
	}
	{
		size_t jl = strlen(json), dl = strlen(totp_desc);
		_cleanup_free_ char *both = malloc(jl + dl + 2);
		if (!both) {
			bundle_exceptions_free(&ex);
			return -ENOMEM;
		}
		memcpy(both, json, jl + 1);
		memcpy(both + jl + 1, totp_desc, dl + 1);
		/* without central TOTP entries the content is what it always was */
		fleet_sha256_hex(base_blob, base_len, both, jl + 1 + (dl ? dl + 1 : 0), content);
	}

	{
		_cleanup_(fleet_db_finalize) struct sqldb_stmt *st = fleet_db_prepare(
		    f, "SELECT version, content, bundle FROM fleet_bundles WHERE terminal = ?");
		if (!st)
			return -EIO;
		sqldb_bind_text(st, 1, terminal);
		rc = sqldb_step(st);
		if (rc == SQLDB_ROW) {
			const char *old = fleet_col_text(st, 1);
			version = (uint64_t)sqldb_column_int64(st, 0);
			size_t n = 0;
			const void *b = sqldb_column_blob(st, 2, &n);
			if (old && strcmp(old, content) == 0 && b && n > 0) {
				*ret = malloc(n);
				if (!*ret)
					return -ENOMEM;
				memcpy(*ret, b, n);
				*ret_len = n;
				*ret_version = version;
				return 0;
			}
		} else if (rc != SQLDB_DONE)
			return -EIO;
	}

	/* something changed for this terminal: the next version */
	version++;
	if (totp_desc[0]) {
		r = fleet_totp_seal_for(f, terminal, group, now, &ex);
		free(json);
		json = NULL;
		if (r >= 0)
			r = bundle_exceptions_to_json(&ex, &json);
		if (r < 0) {
			bundle_exceptions_free(&ex);
			return r;
		}
	}
	bundle_exceptions_free(&ex);
	r = bundle_build(base_blob, base_len, f->grant, version, now, terminal, json, strlen(json),
			 ret, ret_len, err, sizeof(err));
	if (r < 0) {
		server_log(LOG_ERR, "fleet: cannot build the bundle for %s: %s", terminal, err);
		return r;
	}
	{
		_cleanup_(fleet_db_finalize) struct sqldb_stmt *st = fleet_db_prepare(
		    f, "INSERT INTO fleet_bundles (terminal, version, content, bundle, built_at)"
		       " VALUES (?, ?, ?, ?, ?) ON CONFLICT (terminal) DO UPDATE SET"
		       " version = excluded.version, content = excluded.content,"
		       " bundle = excluded.bundle, built_at = excluded.built_at");
		if (!st) {
			free(*ret);
			*ret = NULL;
			return -EIO;
		}
		sqldb_bind_text(st, 1, terminal);
		sqldb_bind_int64(st, 2, (int64_t)version);
		sqldb_bind_text(st, 3, content);
		sqldb_bind_blob(st, 4, *ret, *ret_len);
		sqldb_bind_int64(st, 5, now);
		if (sqldb_step(st) != SQLDB_DONE) {
			server_log(LOG_ERR, "fleet: cannot store the bundle for %s: %s", terminal,
				   sqldb_errmsg(f->db));
			free(*ret);
			*ret = NULL;
			return -EIO;
		}
	}
	*ret_version = version;
	return 0;
}

/* ---- what ingested events add ---- */

static bool code_valid(const char *s)
{
	if (!s || strlen(s) != 8)
		return false;
	for (size_t i = 0; i < 8; i++)
		if (!strchr("0123456789ABCDEFGHJKMNPQRSTVWXYZ", s[i]))
			return false;
	return true;
}

static int hex4(json_t *v, uint16_t *ret)
{
	const char *s = json_string_value(v);
	unsigned x = 0;

	if (!s || strlen(s) != 4)
		return -EINVAL;
	for (size_t i = 0; i < 4; i++) {
		char ch = s[i];
		int d = ch >= '0' && ch <= '9'	 ? ch - '0'
			: ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
			: ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
						 : -1;
		if (d < 0)
			return -EINVAL;
		x = x * 16 + (unsigned)d;
	}
	*ret = (uint16_t)x;
	return 0;
}

static const char *hash_hex(json_t *v)
{
	const char *s = json_string_value(v);

	if (s && strncmp(s, "sha256:", 7) == 0)
		s += 7;
	if (!s || strlen(s) != 64)
		return NULL;
	for (size_t i = 0; i < 64; i++)
		if (!strchr("0123456789abcdef", s[i]))
			return NULL;
	return s;
}

static void note_blocked(struct fleet *f, const struct event *e)
{
	json_t *d = e->data;
	uint16_t vendor, product;
	const char *serial = json_string_value(json_object_get(d, "serial"));
	const char *code = json_string_value(json_object_get(d, "request_code"));
	json_t *classes = json_object_get(d, "classes");
	/* one class: the interface that was blocked; several: the device's, not telling which */
	const char *cls =
	    json_array_size(classes) == 1 ? json_string_value(json_array_get(classes, 0)) : NULL;
	const char *rule = json_string_value(json_object_get(d, "rule"));
	char computed[9];
	int rc;

	if (json_is_true(json_object_get(d, "audit")))
		return; /* audit mode: nothing was blocked */
	if (hex4(json_object_get(d, "vendor"), &vendor) < 0 ||
	    hex4(json_object_get(d, "product"), &product) < 0)
		return;
	if (!code_valid(code)) {
		bundle_request_code(e->terminal, vendor, product, serial, computed);
		code = computed;
	}
	_cleanup_(fleet_db_finalize) struct sqldb_stmt *st = fleet_db_prepare(
	    f, "INSERT INTO fleet_requests (terminal, code, vendor, product, serial, hash, class,"
	       " manufacturer, product_name, first_seen, last_seen, count, state, rule)"
	       " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 'pending', ?)"
	       " ON CONFLICT (terminal, code) DO UPDATE SET"
	       " last_seen = CASE WHEN excluded.last_seen > fleet_requests.last_seen"
	       " THEN excluded.last_seen ELSE fleet_requests.last_seen END,"
	       " count = fleet_requests.count + 1,"
	       " class = coalesce(fleet_requests.class, excluded.class),"
	       " rule = coalesce(fleet_requests.rule, excluded.rule)"
	       " RETURNING count");
	if (!st)
		return;
	sqldb_bind_text(st, 1, e->terminal);
	sqldb_bind_text(st, 2, code);
	sqldb_bind_int64(st, 3, vendor);
	sqldb_bind_int64(st, 4, product);
	sqldb_bind_text(st, 5, serial);
	sqldb_bind_text(st, 6, hash_hex(json_object_get(d, "descriptor_hash")));
	sqldb_bind_text(st, 7, cls);
	sqldb_bind_text(st, 8, json_string_value(json_object_get(d, "manufacturer")));
	sqldb_bind_text(st, 9, json_string_value(json_object_get(d, "product_name")));
	sqldb_bind_int64(st, 10, e->ts_ms);
	sqldb_bind_int64(st, 11, e->ts_ms);
	sqldb_bind_text(st, 12, rule);
	rc = sqldb_step(st);
	if (rc != SQLDB_ROW) {
		server_log(LOG_ERR, "fleet: cannot record the request %s of %s: %s", code,
			   e->terminal, sqldb_errmsg(f->db));
		return;
	}
	if (sqldb_column_int64(st, 0) == 1) {
		char v[5], p[5];
		snprintf(v, sizeof(v), "%04x", vendor);
		snprintf(p, sizeof(p), "%04x", product);
		fleet_emit(f, EVENT_FLEET_REQUEST,
			   json_pack("{s:s,s:s,s:s,s:s,s:s?,s:s?}", "terminal", e->terminal, "code",
				     code, "vendor", v, "product", p, "serial", serial, "class",
				     cls));
	}
}

static void note_seen(struct fleet *f, const struct event *e)
{
	const char *vendor = json_string_value(json_object_get(e->data, "vendor"));
	const char *product = json_string_value(json_object_get(e->data, "product"));
	const char *serial = json_string_value(json_object_get(e->data, "serial"));

	if (!vendor || !product || !serial)
		return;
	_cleanup_(fleet_db_finalize) struct sqldb_stmt *st =
	    fleet_db_prepare(f, "UPDATE fleet_ledger SET last_terminal = ?, last_seen = ?"
				" WHERE vendor = lower(?) AND product = lower(?) AND serial = ?"
				" AND (last_seen IS NULL OR last_seen <= ?)");
	if (!st)
		return;
	sqldb_bind_text(st, 1, e->terminal);
	sqldb_bind_int64(st, 2, e->ts_ms);
	sqldb_bind_text(st, 3, vendor);
	sqldb_bind_text(st, 4, product);
	sqldb_bind_text(st, 5, serial);
	sqldb_bind_int64(st, 6, e->ts_ms);
	if (sqldb_step(st) != SQLDB_DONE)
		server_log(LOG_ERR, "fleet: cannot update the ledger: %s", sqldb_errmsg(f->db));
}

void fleet_note_batch(struct fleet *f, const struct event_batch *b)
{
	bool any = false;

	if (!f)
		return;
	for (size_t i = 0; i < b->n && !any; i++)
		any = b->events[i].kind == EVENT_AUTH_SUCCESS ||
		      b->events[i].kind == EVENT_USB_BLOCKED ||
		      b->events[i].kind == EVENT_USB_ALLOWED ||
		      b->events[i].kind == EVENT_USB_REMOVED;
	if (!any)
		return;
	pthread_mutex_lock(&f->lock);
	if (sqldb_begin(f->db) >= 0) {
		for (size_t i = 0; i < b->n; i++) {
			const struct event *e = &b->events[i];
			if (e->kind == EVENT_USB_BLOCKED)
				note_blocked(f, e);
			if (e->kind == EVENT_AUTH_SUCCESS)
				fleet_totp_note_success(f, e);
			if (e->kind == EVENT_USB_BLOCKED || e->kind == EVENT_USB_ALLOWED ||
			    e->kind == EVENT_USB_REMOVED)
				note_seen(f, e);
		}
		if (sqldb_commit(f->db) < 0)
			server_log(LOG_ERR, "fleet: %s", sqldb_errmsg(f->db));
	} else {
		server_log(LOG_ERR, "fleet: %s", sqldb_errmsg(f->db));
	}
	pthread_mutex_unlock(&f->lock);
}
