/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: the periodic log review (ログの点検, docs/evidence.md "Log review"): what
 * in a period needs a human look, and its sign-off, stored as a review.signed event of the
 * collector itself. Also the dashboard dispatch of /v1/review, /v1/evidence and /r/selfcheck. */
#include "review.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "bundle.h"
#include "fleet-internal.h"
#include "ingest.h"
#include "macro.h"
#include "metrics.h"
#include "parse.h"
#include "server.h"
#include "store-pg.h"
#include "store.h"
#include "utf8.h"

#define REASON_MAX 256

int review_fail(char *err, size_t errsz, int r, const char *fmt, ...)
{
	va_list ap;

	if (err && errsz) {
		va_start(ap, fmt);
		vsnprintf(err, errsz, fmt, ap);
		va_end(ap);
	}
	return r;
}

/* ---- settings ---- */

static int parse_hhmm(const char *s, unsigned *ret)
{
	if (strlen(s) != 5 || s[2] != ':' || s[0] < '0' || s[0] > '2' || s[1] < '0' || s[1] > '9' ||
	    s[3] < '0' || s[3] > '5' || s[4] < '0' || s[4] > '9')
		return -EINVAL;
	*ret = (unsigned)((s[0] - '0') * 10 + (s[1] - '0')) * 60 +
	       (unsigned)((s[3] - '0') * 10 + (s[4] - '0'));
	return *ret <= 24 * 60 ? 0 : -EINVAL;
}

int review_settings_parse(const struct collector_config *c, struct review_settings *ret, char *err,
			  size_t errsz)
{
	static const char *const day_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
	const char *hours = c->office_hours ? c->office_hours : "08:00-19:00";
	const char *days = c->office_days ? c->office_days : "mon tue wed thu fri";
	struct review_settings rs = {.burst_n = c->burst_failures,
				     .burst_minutes = c->burst_minutes};
	char buf[64];

	if (c->review_period && strcmp(c->review_period, "monthly") != 0 &&
	    strcmp(c->review_period, "weekly") != 0)
		return review_fail(err, errsz, -EINVAL, "[review] period: monthly or weekly");
	rs.weekly = c->review_period && strcmp(c->review_period, "weekly") == 0;
	if (strlen(hours) != 11 || hours[5] != '-')
		return review_fail(err, errsz, -EINVAL,
				   "[review] office_hours: expected HH:MM-HH:MM");
	memcpy(buf, hours, 5);
	buf[5] = 0;
	if (parse_hhmm(buf, &rs.office_start) < 0 || parse_hhmm(hours + 6, &rs.office_end) < 0 ||
	    rs.office_start >= rs.office_end)
		return review_fail(err, errsz, -EINVAL,
				   "[review] office_hours: expected HH:MM-HH:MM, start before end");
	if (strlen(days) >= sizeof(buf))
		return review_fail(err, errsz, -EINVAL, "[review] office_days: too long");
	snprintf(buf, sizeof(buf), "%s", days);
	char *save = NULL;
	for (char *t = strtok_r(buf, " ,", &save); t; t = strtok_r(NULL, " ,", &save)) {
		size_t i;
		for (i = 0; i < ELEMENTSOF(day_names); i++)
			if (strcmp(t, day_names[i]) == 0)
				break;
		if (i == ELEMENTSOF(day_names))
			return review_fail(
			    err, errsz, -EINVAL,
			    "[review] office_days: day names sun mon tue wed thu fri sat");
		rs.days |= 1u << i;
	}
	*ret = rs;
	return 0;
}

/* ---- periods and days (Japan time) ---- */

static int64_t jst_day_start(int y, int m, int d)
{
	struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d};
	return (int64_t)timegm(&tm) * 1000 - REVIEW_JST_MS;
}

static bool digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* Monday (day start, ms) of ISO week 1 of year y */
static int64_t iso_week1(int y)
{
	int64_t jan4 = jst_day_start(y, 1, 4);
	struct tm tm;
	time_t t = (time_t)((jan4 + REVIEW_JST_MS) / 1000);

	gmtime_r(&t, &tm);
	return jan4 - (int64_t)((tm.tm_wday + 6) % 7) * REVIEW_DAY_MS;
}

int review_period_parse(const char *s, struct review_period *ret, char *err, size_t errsz)
{
	size_t n = s ? strlen(s) : 0;
	int y;

	if (n == 7 && digits(s, 4) && s[4] == '-' && digits(s + 5, 2)) {
		int m = (s[5] - '0') * 10 + (s[6] - '0');
		y = atoi(s);
		if (y < 2000 || y > 9998 || m < 1 || m > 12)
			return review_fail(err, errsz, -EINVAL, "period: no such month");
		ret->from_ms = jst_day_start(y, m, 1);
		ret->to_ms = m == 12 ? jst_day_start(y + 1, 1, 1) : jst_day_start(y, m + 1, 1);
	} else if (n == 8 && digits(s, 4) && s[4] == '-' && s[5] == 'W' && digits(s + 6, 2)) {
		int w = (s[6] - '0') * 10 + (s[7] - '0');
		y = atoi(s);
		if (y < 2000 || y > 9998 || w < 1 ||
		    iso_week1(y) + (int64_t)(w - 1) * 7 * REVIEW_DAY_MS >= iso_week1(y + 1))
			return review_fail(err, errsz, -EINVAL, "period: no such week");
		ret->from_ms = iso_week1(y) + (int64_t)(w - 1) * 7 * REVIEW_DAY_MS;
		ret->to_ms = ret->from_ms + 7 * REVIEW_DAY_MS;
	} else
		return review_fail(err, errsz, -EINVAL,
				   "period: expected YYYY-MM (a month) or YYYY-Www (an ISO week)");
	snprintf(ret->name, sizeof(ret->name), "%s", s);
	return 0;
}

void review_day_name(int64_t ms, char out[11])
{
	time_t t = (time_t)((ms + REVIEW_JST_MS) / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 11, "%Y-%m-%d", &tm);
}

void review_period_of(int64_t ms, bool weekly, struct review_period *ret)
{
	time_t t = (time_t)((ms + REVIEW_JST_MS) / 1000);
	struct tm tm;
	char name[40];

	gmtime_r(&t, &tm);
	if (!weekly) {
		snprintf(name, sizeof(name), "%04d-%02d", tm.tm_year + 1900, tm.tm_mon + 1);
	} else {
		int y = tm.tm_year + 1900;
		if (ms < iso_week1(y))
			y--;
		else if (ms >= iso_week1(y + 1))
			y++;
		snprintf(name, sizeof(name), "%04d-W%02d", y,
			 (int)((ms - iso_week1(y)) / (7 * REVIEW_DAY_MS)) + 1);
	}
	review_period_parse(name, ret, NULL, 0);
}

/* ---- the database ---- */

struct review_db {
	sqlite3 *lite;
	PGconn *pg;
	unsigned cursors; /* PostgreSQL: names of the cursors made */
};

struct review_q {
	struct review_db *db;
	sqlite3_stmt *st;
	/* PostgreSQL: the text with $N, the parameters as text, the cursor's current batch */
	char *sql;
	char *vals[REVIEW_Q_PARAMS];
	Oid types[REVIEW_Q_PARAMS];
	int nparams;
	unsigned cursor;
	bool open, done;
	PGresult *res;
	int row;
};

static int lite_open(const char *path, struct review_db *db)
{
	int rc = sqlite3_open_v2(path, &db->lite, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);

	if (rc != SQLITE_OK)
		return -EIO;
	sqlite3_busy_timeout(db->lite, 10000);
	/* a fresh connection per request: its page cache (2 MB by default) would read the same
	 * pages of a month's events again and again; mapped, they are read once */
	sqlite3_exec(db->lite, "PRAGMA mmap_size = 1073741824; PRAGMA cache_size = -65536", NULL,
		     NULL, NULL);
	if (sqlite3_exec(db->lite, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(db->lite, "SELECT count(*) FROM terminals", NULL, NULL, NULL) != SQLITE_OK)
		return -EIO;
	return 0;
}

static int pg_exec(PGconn *c, const char *sql)
{
	PGresult *res = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(res);
	int r = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -EIO;

	if (r < 0)
		server_log(LOG_ERR, "review: PostgreSQL: %s", PQerrorMessage(c));
	PQclear(res);
	return r;
}

static int pg_open(const char *conninfo, struct review_db *db)
{
	db->pg = PQconnectdb(conninfo);
	if (PQstatus(db->pg) != CONNECTION_OK) {
		server_log(LOG_ERR, "review: PostgreSQL: %s", PQerrorMessage(db->pg));
		return -EIO;
	}
	/* one snapshot for the whole request, as SQLite's read transaction */
	return pg_exec(db->pg, "SET client_encoding = 'UTF8';"
			       "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;"
			       "SELECT count(*) FROM terminals");
}

int review_db_open(const char *location, struct review_db **ret)
{
	struct review_db *db = calloc(1, sizeof(*db));
	const char *conninfo = store_pg_location(location);
	int r;

	if (!db)
		return -ENOMEM;
	r = conninfo ? pg_open(conninfo, db) : lite_open(location, db);
	if (r < 0) {
		review_db_close(db);
		return r;
	}
	*ret = db;
	return 0;
}

void review_db_close(struct review_db *db)
{
	if (!db)
		return;
	if (db->lite) {
		sqlite3_exec(db->lite, "ROLLBACK", NULL, NULL, NULL);
		sqlite3_close(db->lite);
	}
	if (db->pg)
		PQfinish(db->pg); /* the transaction ends with the connection */
	free(db);
}

bool review_db_is_pg(const struct review_db *db)
{
	return db->pg != NULL;
}

bool review_db_has_table(struct review_db *db, const char *name)
{
	struct review_q *q =
	    review_q_prep(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
			  "SELECT 1 WHERE to_regclass(?1) IS NOT NULL");
	bool yes;

	if (!q)
		return false;
	review_q_text(q, 1, name);
	yes = review_q_step(q) == 1;
	review_q_free(q);
	return yes;
}

/* A connection kept between requests (the dashboard thread's): a read transaction per use. */
static int db_begin(struct review_db *db)
{
	if (db->lite)
		return sqlite3_exec(db->lite, "BEGIN; SELECT count(*) FROM terminals", NULL, NULL,
				    NULL) == SQLITE_OK
			   ? 0
			   : -EIO;
	return pg_exec(db->pg, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;"
			       "SELECT count(*) FROM terminals");
}

static void db_end(struct review_db *db)
{
	if (db->lite)
		sqlite3_exec(db->lite, "ROLLBACK", NULL, NULL, NULL);
	else
		(void)pg_exec(db->pg, "ROLLBACK");
}

/* ?N becomes $N (nothing else in these texts holds a ?), and the comment REVIEW_Q_C
 * PostgreSQL's COLLATE "C" */
static char *pg_text(const char *sql, int *ret_n)
{
	static const char mark[] = REVIEW_Q_C, collate[] = "COLLATE \"C\"";
	char *out = malloc(strlen(sql) * 3 + 1), *o = out;

	*ret_n = 0;
	if (!out)
		return NULL;
	for (const char *p = sql; *p;) {
		if (strncmp(p, mark, sizeof(mark) - 1) == 0) {
			memcpy(o, collate, sizeof(collate) - 1);
			o += sizeof(collate) - 1;
			p += sizeof(mark) - 1;
			continue;
		}
		if (*p == '?' && p[1] >= '1' && p[1] <= '0' + REVIEW_Q_PARAMS) {
			*o++ = '$';
			if (p[1] - '0' > *ret_n)
				*ret_n = p[1] - '0';
			p++;
			continue;
		}
		*o++ = *p++;
	}
	*o = 0;
	return out;
}

struct review_q *review_q_prep(struct review_db *db, const char *sql, const char *pg)
{
	struct review_q *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	q->db = db;
	q->row = -1;
	if (db->lite) {
		if (sqlite3_prepare_v2(db->lite, sql, -1, &q->st, NULL) != SQLITE_OK) {
			server_log(LOG_ERR, "review: %s", sqlite3_errmsg(db->lite));
			free(q);
			return NULL;
		}
		return q;
	}
	q->sql = pg_text(pg ? pg : sql, &q->nparams);
	q->cursor = ++db->cursors;
	if (!q->sql) {
		free(q);
		return NULL;
	}
	return q;
}

static void pg_param(struct review_q *q, int i, char *v, Oid type)
{
	if (i < 1 || i > REVIEW_Q_PARAMS)
		return;
	free(q->vals[i - 1]);
	q->vals[i - 1] = v;
	q->types[i - 1] = type;
}

void review_q_int(struct review_q *q, int i, int64_t v)
{
	char *s = NULL;

	if (q->st) {
		sqlite3_bind_int64(q->st, i, v);
		return;
	}
	if (asprintf(&s, "%" PRId64, v) < 0)
		s = NULL;
	pg_param(q, i, s, 20 /* int8 */);
}

void review_q_text(struct review_q *q, int i, const char *v)
{
	if (q->st) {
		if (v)
			sqlite3_bind_text(q->st, i, v, -1, SQLITE_TRANSIENT);
		else
			sqlite3_bind_null(q->st, i);
		return;
	}
	pg_param(q, i, v ? strdup(v) : NULL, 25 /* text */);
}

static void pg_close_cursor(struct review_q *q)
{
	char sql[48];

	PQclear(q->res);
	q->res = NULL;
	q->row = -1;
	q->done = false;
	if (!q->open)
		return;
	q->open = false;
	snprintf(sql, sizeof(sql), "CLOSE mg_review_%u", q->cursor);
	(void)pg_exec(q->db->pg, sql);
}

static int pg_step(struct review_q *q)
{
	PGconn *c = q->db->pg;
	char fetch[64];

	if (!q->open) {
		char *declare = NULL;
		PGresult *res;
		bool ok;

		if (asprintf(&declare, "DECLARE mg_review_%u NO SCROLL CURSOR FOR %s", q->cursor,
			     q->sql) < 0)
			return -ENOMEM;
		res = PQexecParams(c, declare, q->nparams, q->types, (const char *const *)q->vals,
				   NULL, NULL, 0);
		ok = PQresultStatus(res) == PGRES_COMMAND_OK;
		if (!ok)
			server_log(LOG_ERR, "review: PostgreSQL: %s", PQerrorMessage(c));
		PQclear(res);
		free(declare);
		if (!ok)
			return -EIO;
		q->open = true;
	}
	if (q->res && q->row + 1 < PQntuples(q->res)) {
		q->row++;
		return 1;
	}
	if (q->done)
		return 0;
	PQclear(q->res);
	snprintf(fetch, sizeof(fetch), "FETCH %d FROM mg_review_%u", REVIEW_Q_FETCH, q->cursor);
	q->res = PQexec(c, fetch);
	q->row = 0;
	if (PQresultStatus(q->res) != PGRES_TUPLES_OK) {
		server_log(LOG_ERR, "review: PostgreSQL: %s", PQerrorMessage(c));
		return -EIO;
	}
	if (PQntuples(q->res) < REVIEW_Q_FETCH)
		q->done = true;
	return PQntuples(q->res) > 0 ? 1 : 0;
}

int review_q_step(struct review_q *q)
{
	int rc;

	if (!q->st)
		return pg_step(q);
	rc = sqlite3_step(q->st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -EIO;
}

void review_q_reset(struct review_q *q)
{
	if (q->st)
		sqlite3_reset(q->st);
	else
		pg_close_cursor(q);
}

bool review_q_null(struct review_q *q, int i)
{
	if (q->st)
		return sqlite3_column_type(q->st, i) == SQLITE_NULL;
	return !q->res || q->row < 0 || PQgetisnull(q->res, q->row, i);
}

const char *review_q_col(struct review_q *q, int i)
{
	const unsigned char *t;

	if (!q->st)
		return review_q_null(q, i) ? "" : PQgetvalue(q->res, q->row, i);
	t = sqlite3_column_text(q->st, i);
	return t ? (const char *)t : "";
}

int64_t review_q_int_col(struct review_q *q, int i)
{
	const char *v;

	if (q->st)
		return sqlite3_column_int64(q->st, i);
	v = review_q_col(q, i);
	if (strcmp(v, "t") == 0) /* a boolean */
		return 1;
	return strtoll(v, NULL, 10);
}

void review_q_free(struct review_q *q)
{
	if (!q)
		return;
	if (q->st)
		sqlite3_finalize(q->st);
	else
		pg_close_cursor(q);
	for (int i = 0; i < REVIEW_Q_PARAMS; i++)
		free(q->vals[i]);
	free(q->sql);
	free(q);
}

static json_t *ts_json(int64_t ms)
{
	char buf[32];
	event_format_ts(ms, buf);
	return json_string(buf);
}

static const char *col(struct review_q *q, int i)
{
	return review_q_col(q, i);
}

/* failing_only: only the terminals with a failing check on a day of [from_ms, to_ms) in the daily
 * history (check_days, kept by the writer with every snapshot, late ones included): a snapshot
 * that fails a check has its day's row with status 2, so the others have none to offer. */
static int snapshots_of(struct review_db *db, int64_t from_ms, int64_t to_ms, bool failing_only,
			review_snapshot_fn fn, void *userdata)
{
	struct review_q *terms, *prev, *snaps, *fails = NULL;
	int rc = 0, r = 0;

	/* "+kind": the terminal's own events (events_tid_ts), not every terminal's compliance
	 * events of the period (events_kind_ts, which SQLite picks otherwise) once per terminal:
	 * 10 s instead of 0.3 s at 1,000 terminals (tests/bench/collector/bench-heavy.py) */
	terms = review_q_prep(db, "SELECT id, name FROM terminals ORDER BY name " REVIEW_Q_C, NULL);
	prev = review_q_prep(db,
			     "SELECT ts FROM events WHERE tid = ?1 AND ts < ?2"
			     " AND +kind = 'compliance' ORDER BY ts DESC LIMIT 1",
			     "SELECT ts FROM events WHERE tid = ?1 AND ts < ?2"
			     " AND kind = 'compliance' ORDER BY ts DESC LIMIT 1");
	snaps = review_q_prep(db,
			      "SELECT ts, seq, data, lower(hex(chain)) FROM events"
			      " WHERE tid = ?1 AND ts >= ?2 AND ts < ?3 AND +kind = 'compliance'"
			      " ORDER BY ts, seq",
			      "SELECT ts, seq, data, encode(chain, 'hex') FROM events"
			      " WHERE tid = ?1 AND ts >= ?2 AND ts < ?3 AND kind = 'compliance'"
			      " ORDER BY ts, seq");
	if (failing_only && review_db_has_table(db, "check_days")) {
		fails = review_q_prep(db,
				      "SELECT 1 FROM check_days WHERE tid = ?1 AND day >= ?2"
				      " AND day <= ?3 AND status = 2 LIMIT 1",
				      NULL);
		if (!fails)
			r = -EIO;
	}
	if (!terms || !prev || !snaps)
		r = -EIO;
	while (r >= 0 && (rc = review_q_step(terms)) == 1) {
		int64_t tid = review_q_int_col(terms, 0), lo = from_ms;
		const char *name = col(terms, 1);

		if (fails) {
			review_q_reset(fails);
			review_q_int(fails, 1, tid);
			review_q_int(fails, 2, store_day(from_ms));
			review_q_int(fails, 3, store_day(to_ms - 1));
			rc = review_q_step(fails);
			if (rc < 0)
				break;
			if (rc == 0) {
				rc = 1;
				continue;
			}
		}
		review_q_reset(prev);
		review_q_int(prev, 1, tid);
		review_q_int(prev, 2, from_ms);
		rc = review_q_step(prev);
		if (rc == 1)
			lo = review_q_int_col(prev, 0);
		else if (rc < 0)
			break;
		review_q_reset(snaps);
		review_q_int(snaps, 1, tid);
		review_q_int(snaps, 2, lo);
		review_q_int(snaps, 3, to_ms);
		while (r >= 0 && (rc = review_q_step(snaps)) == 1) {
			json_t *data = json_loads(col(snaps, 2), 0, NULL);
			r = fn(name, review_q_int_col(snaps, 0),
			       (uint64_t)review_q_int_col(snaps, 1), col(snaps, 3), data, userdata);
			json_decref(data);
		}
		if (r >= 0 && rc < 0)
			break;
		rc = 1;
	}
	if (r >= 0 && rc != 0)
		r = -EIO;
	review_q_free(terms);
	review_q_free(prev);
	review_q_free(snaps);
	review_q_free(fails);
	return r;
}

int review_snapshots(struct review_db *db, int64_t from_ms, int64_t to_ms, review_snapshot_fn fn,
		     void *userdata)
{
	return snapshots_of(db, from_ms, to_ms, false, fn, userdata);
}

/* ---- the items ---- */

struct category {
	const char *name;
	json_t *items;
	unsigned count;
};

enum {
	CAT_OFF_HOURS,
	CAT_BURST,
	CAT_LOCKOUT,
	CAT_USB,
	CAT_GAP,
	CAT_DRIFT,
	_CAT_MAX
};
static const char *const cat_names[_CAT_MAX] = {
    "off_hours", "failure_burst", "lockout", "usb_unregistered", "sequence_gap", "compliance_drift",
};

/* true when the category lists no more items (add_item(c, NULL) then counts one): the caller
 * need not make the item */
static bool category_full(const struct category *c)
{
	return json_array_size(c->items) >= REVIEW_ITEMS_MAX;
}

static void add_item(struct category *c, json_t *item)
{
	c->count++;
	if (!item)
		return;
	if (json_array_size(c->items) >= REVIEW_ITEMS_MAX) {
		json_decref(item);
		return;
	}
	json_object_set_new(item, "category", json_string(c->name));
	json_array_append_new(c->items, item);
}

/* sql (SQLite) and pg (PostgreSQL, NULL: the same), with the period as ?1 and ?2 */
static struct review_q *prep(struct review_db *db, const char *sql, const char *pg, int64_t from,
			     int64_t to)
{
	struct review_q *q = review_q_prep(db, sql, pg);

	if (q) {
		review_q_int(q, 1, from);
		review_q_int(q, 2, to);
	}
	return q;
}

#define EVENTS_OF(kind)                                                                            \
	"SELECT t.name, e.seq, e.ts, e.data FROM events e JOIN terminals t ON t.id = e.tid"        \
	" WHERE e.kind = '" kind "' AND e.ts >= ?1 AND e.ts < ?2"

static json_t *user_of(const char *data)
{
	json_t *d = json_loads(data, 0, NULL);
	json_t *u = json_incref(json_object_get(d, "user"));
	json_decref(d);
	return u && json_is_string(u) ? u : (json_decref(u), json_null());
}

static int off_hours(struct review_db *db, const struct review_settings *rs,
		     const struct review_period *p, struct category *c)
{
	struct review_q *st =
	    prep(db, EVENTS_OF("auth.success") " ORDER BY e.ts, t.name " REVIEW_Q_C ", e.seq", NULL,
		 p->from_ms, p->to_ms);
	int rc;

	if (!st)
		return -EIO;
	while ((rc = review_q_step(st)) == 1) {
		int64_t ts = review_q_int_col(st, 2);
		time_t t = (time_t)((ts + REVIEW_JST_MS) / 1000);
		struct tm tm;
		unsigned minute;

		gmtime_r(&t, &tm);
		minute = (unsigned)(tm.tm_hour * 60 + tm.tm_min);
		if ((rs->days & (1u << tm.tm_wday)) && minute >= rs->office_start &&
		    minute < rs->office_end)
			continue;
		if (category_full(c)) {
			add_item(c, NULL);
			continue;
		}
		add_item(c, json_pack("{s:s, s:I, s:o, s:o}", "terminal", col(st, 0), "seq",
				      (json_int_t)review_q_int_col(st, 1), "ts", ts_json(ts),
				      "user", user_of(col(st, 3))));
	}
	review_q_free(st);
	return rc == 0 ? 0 : -EIO;
}

#define BURSTS(user)                                                                               \
	"SELECT t.name, " user ", e.ts FROM events e JOIN terminals t ON t.id = e.tid"             \
	" WHERE e.kind = 'auth.failure' AND e.ts >= ?1 AND e.ts < ?2"                              \
	" ORDER BY t.name " REVIEW_Q_C ", 2, e.ts, e.seq"

static int bursts(struct review_db *db, const struct review_settings *rs,
		  const struct review_period *p, struct category *c)
{
	struct review_q *st = prep(db, BURSTS("ifnull(json_extract(e.data, '$.user'), '')"),
				   BURSTS("coalesce(e.data::json ->> 'user', '') COLLATE \"C\""),
				   p->from_ms, p->to_ms);
	int64_t window = (int64_t)rs->burst_minutes * 60000, *ts = NULL;
	size_t n = 0, cap = 0;
	char *term = NULL, *user = NULL;
	int rc;

	if (!st)
		return -EIO;
	for (;;) {
		rc = review_q_step(st);
		bool same = rc == 1 && term && strcmp(term, col(st, 0)) == 0 &&
			    strcmp(user, col(st, 1)) == 0;
		if (!same && n > 0) {
			/* the runs of one terminal and user: each window of burst_n failures within
			 * the minutes starts a burst, which goes on while the next one keeps the
			 * window */
			for (size_t i = 0; i + rs->burst_n <= n;) {
				if (ts[i + rs->burst_n - 1] - ts[i] > window) {
					i++;
					continue;
				}
				size_t j = i + rs->burst_n;
				while (j < n && ts[j] - ts[j - rs->burst_n + 1] <= window)
					j++;
				add_item(c, json_pack("{s:s, s:s, s:o, s:o, s:I}", "terminal", term,
						      "user", user, "ts", ts_json(ts[i]), "until",
						      ts_json(ts[j - 1]), "count",
						      (json_int_t)(j - i)));
				i = j;
			}
			n = 0;
		}
		if (rc != 1)
			break;
		if (!same) {
			free(term);
			free(user);
			term = strdup(col(st, 0));
			user = strdup(col(st, 1));
			if (!term || !user)
				break;
		}
		if (n == cap) {
			int64_t *nts = realloc(ts, (cap = cap ? cap * 2 : 64) * sizeof(*ts));
			if (!nts)
				break;
			ts = nts;
		}
		ts[n++] = review_q_int_col(st, 2);
	}
	free(ts);
	free(term);
	free(user);
	review_q_free(st);
	return rc == 0 ? 0 : -EIO;
}

static int lockouts(struct review_db *db, const struct review_period *p, struct category *c)
{
	struct review_q *st =
	    prep(db, EVENTS_OF("auth.locked") " ORDER BY e.ts, t.name " REVIEW_Q_C ", e.seq", NULL,
		 p->from_ms, p->to_ms);
	int rc;

	if (!st)
		return -EIO;
	while ((rc = review_q_step(st)) == 1)
		add_item(c,
			 json_pack("{s:s, s:I, s:o, s:o}", "terminal", col(st, 0), "seq",
				   (json_int_t)review_q_int_col(st, 1), "ts",
				   ts_json(review_q_int_col(st, 2)), "user", user_of(col(st, 3))));
	review_q_free(st);
	return rc == 0 ? 0 : -EIO;
}

/* Blocked devices that the media ledger does not hold, one item per terminal and device; "new"
 * when no terminal reported the device before the period. */
static int usb_devices(struct review_db *db, const struct review_period *p, struct category *c)
{
	bool ledger = review_db_has_table(db, "fleet_ledger");
	char sql[1400];
	struct review_q *st;
	int rc;
	/* audit: true (SQLite's 1) is an audit-mode report, not a block */
	static const char *const dialect[2][8] = {
	    {"ifnull(json_extract(e.data, '$.vendor'), '')",
	     "ifnull(json_extract(e.data, '$.product'), '')",
	     "ifnull(json_extract(e.data, '$.serial'), '')",
	     "json_extract(e.data, '$.product_name')",
	     "ifnull(json_extract(e.data, '$.audit'), 0) = 0", "json_extract(x.data, '$.vendor')",
	     "json_extract(x.data, '$.product')", "json_extract(x.data, '$.serial')"},
	    {"coalesce(e.data::json ->> 'vendor', '')", "coalesce(e.data::json ->> 'product', '')",
	     "coalesce(e.data::json ->> 'serial', '')", "e.data::json ->> 'product_name'",
	     "coalesce(e.data::json ->> 'audit', 'false') IN ('false', '0')",
	     "(x.data::json ->> 'vendor')", "(x.data::json ->> 'product')",
	     "(x.data::json ->> 'serial')"},
	};
	const char *const *d = dialect[review_db_is_pg(db)];

	snprintf(
	    sql, sizeof(sql),
	    "WITH b AS (SELECT t.name AS terminal, e.ts, lower(%s) AS vendor,"
	    "  lower(%s) AS product, %s AS serial, %s AS pname"
	    "  FROM events e JOIN terminals t ON t.id = e.tid"
	    "  WHERE e.kind = 'usb.blocked' AND e.ts >= ?1 AND e.ts < ?2 AND %s)"
	    " SELECT terminal, vendor, product, serial, min(ts), max(ts), count(*), max(pname),"
	    "  NOT EXISTS (SELECT 1 FROM events x WHERE x.kind = 'usb.blocked' AND x.ts < ?1"
	    "   AND lower(coalesce(%s, '')) = b.vendor AND lower(coalesce(%s, '')) = b.product"
	    "   AND coalesce(%s, '') = b.serial)"
	    " FROM b %s GROUP BY terminal, vendor, product, serial ORDER BY min(ts), terminal " REVIEW_Q_C,
	    d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7],
	    ledger ? "WHERE NOT EXISTS (SELECT 1 FROM fleet_ledger l WHERE l.vendor = b.vendor"
		     " AND l.product = b.product AND l.serial = b.serial)"
		   : "");
	st = prep(db, sql, NULL, p->from_ms, p->to_ms);
	if (!st)
		return -EIO;
	while ((rc = review_q_step(st)) == 1) {
		json_t *it = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:I, s:b}", "terminal",
				       col(st, 0), "vendor", col(st, 1), "product", col(st, 2),
				       "serial", col(st, 3), "ts", ts_json(review_q_int_col(st, 4)),
				       "until", ts_json(review_q_int_col(st, 5)), "count",
				       (json_int_t)review_q_int_col(st, 6), "new",
				       review_q_int_col(st, 8) != 0);
		if (it && !review_q_null(st, 7))
			json_object_set_new(it, "product_name", json_string(col(st, 7)));
		add_item(c, it);
	}
	review_q_free(st);
	return rc == 0 ? 0 : -EIO;
}

static int gaps(struct review_db *db, const struct review_period *p, struct category *c)
{
	struct review_q *st =
	    prep(db,
		 /* when: the terminal's time of the event after the gap */
		 "SELECT name, gfirst, glast, at, announced, detected_at FROM ("
		 " SELECT t.name AS name, g.first AS gfirst, g.last AS glast,"
		 " coalesce((SELECT e.ts FROM events e WHERE e.tid = g.tid AND e.seq = g.last + 1"
		 " LIMIT 1), g.detected_at) AS at, g.announced AS announced,"
		 " g.detected_at AS detected_at FROM gaps g JOIN terminals t ON t.id = g.tid) x"
		 " WHERE at >= ?1 AND at < ?2 ORDER BY at, name " REVIEW_Q_C ", gfirst",
		 NULL, p->from_ms, p->to_ms);
	int rc;

	if (!st)
		return -EIO;
	while ((rc = review_q_step(st)) == 1)
		add_item(c, json_pack("{s:s, s:I, s:I, s:o, s:b, s:o}", "terminal", col(st, 0),
				      "first", (json_int_t)review_q_int_col(st, 1), "last",
				      (json_int_t)review_q_int_col(st, 2), "ts",
				      ts_json(review_q_int_col(st, 3)), "announced",
				      review_q_int_col(st, 4) != 0, "detected_at",
				      ts_json(review_q_int_col(st, 5))));
	review_q_free(st);
	return rc == 0 ? 0 : -EIO;
}

/* A terminal whose snapshot went from compliant (no failing check) to non-compliant inside the
 * period; the last snapshot before the period counts as where it came from. */
struct drift_state {
	const struct review_period *p;
	struct category *c;
	char terminal[EVENT_TERMINAL_MAX + 1];
	int prev; /* -1 unknown, 0 compliant, 1 not */
};

static int drift_snapshot(const char *terminal, int64_t ts, uint64_t seq, const char *chain,
			  json_t *data, void *userdata)
{
	struct drift_state *d = userdata;
	json_t *failing = json_array(), *ck;
	size_t i;
	int now;

	(void)chain;
	if (!failing)
		return -ENOMEM;
	json_array_foreach(json_object_get(data, "checks"), i, ck)
	{
		const char *st = json_string_value(json_object_get(ck, "status"));
		json_t *id = json_object_get(ck, "id");
		/* a check with an id, as the daily history counts it (snapshots_of()) */
		if (st && json_is_string(id) &&
		    (strcmp(st, "fail") == 0 || strcmp(st, "error") == 0))
			json_array_append(failing, id);
	}
	now = json_array_size(failing) > 0;
	if (strcmp(d->terminal, terminal) != 0) {
		snprintf(d->terminal, sizeof(d->terminal), "%s", terminal);
		d->prev = -1;
	}
	if (d->prev == 0 && now == 1 && ts >= d->p->from_ms)
		add_item(d->c, json_pack("{s:s, s:I, s:o, s:O}", "terminal", terminal, "seq",
					 (json_int_t)seq, "ts", ts_json(ts), "failing", failing));
	json_decref(failing);
	d->prev = now;
	return 0;
}

static int drift(struct review_db *db, const struct review_period *p, struct category *c)
{
	struct drift_state d = {.p = p, .c = c, .prev = -1};
	return snapshots_of(db, p->from_ms, p->to_ms, true, drift_snapshot, &d);
}

static void sha256_json(json_t *v, char out[65])
{
	char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);

	fleet_sha256_hex(text ? text : "", text ? strlen(text) : 0, NULL, 0, out);
	free(text);
}

static json_t *settings_json(const struct review_settings *rs)
{
	static const char *const dn[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
	char hours[40], days[32] = "";

	snprintf(hours, sizeof(hours), "%02u:%02u-%02u:%02u", rs->office_start / 60,
		 rs->office_start % 60, rs->office_end / 60, rs->office_end % 60);
	for (unsigned i = 0; i < 7; i++)
		if (rs->days & (1u << i))
			snprintf(days + strlen(days), sizeof(days) - strlen(days), "%s%s",
				 days[0] ? " " : "", dn[i]);
	return json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "period",
			 rs->weekly ? "weekly" : "monthly", "office_hours", hours, "office_days",
			 days, "burst_failures", (json_int_t)rs->burst_n, "burst_minutes",
			 (json_int_t)rs->burst_minutes, "timezone", "+09:00");
}

int review_items(struct review_db *db, const struct review_settings *rs,
		 const struct review_period *p, json_t **ret)
{
	struct category cats[_CAT_MAX];
	json_t *items = json_array(), *counts = json_object();
	char sha[65];
	int r = 0;

	for (unsigned i = 0; i < _CAT_MAX; i++)
		cats[i] = (struct category){.name = cat_names[i], .items = json_array()};
	r = off_hours(db, rs, p, &cats[CAT_OFF_HOURS]);
	if (r >= 0)
		r = bursts(db, rs, p, &cats[CAT_BURST]);
	if (r >= 0)
		r = lockouts(db, p, &cats[CAT_LOCKOUT]);
	if (r >= 0)
		r = usb_devices(db, p, &cats[CAT_USB]);
	if (r >= 0)
		r = gaps(db, p, &cats[CAT_GAP]);
	if (r >= 0)
		r = drift(db, p, &cats[CAT_DRIFT]);
	for (unsigned i = 0; i < _CAT_MAX; i++) {
		if (r >= 0 && items && counts) {
			json_array_extend(items, cats[i].items);
			json_object_set_new(counts, cats[i].name,
					    json_integer((json_int_t)cats[i].count));
		}
		json_decref(cats[i].items);
	}
	if (r < 0 || !items || !counts) {
		json_decref(items);
		json_decref(counts);
		return r < 0 ? r : -ENOMEM;
	}
	sha256_json(items, sha);
	*ret =
	    json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:s}", "period", p->name, "from",
		      ts_json(p->from_ms), "to", ts_json(p->to_ms), "settings", settings_json(rs),
		      "categories", counts, "items", items, "items_sha256", sha);
	return *ret ? 0 : -ENOMEM;
}

int review_signoffs(struct review_db *db, const char *period, unsigned limit, json_t **ret)
{
	struct review_q *st = review_q_prep(
	    db,
	    "SELECT e.seq, e.ts, e.data, hex(e.chain) FROM events e JOIN terminals t"
	    " ON t.id = e.tid WHERE t.name = '" INGEST_SELF_TERMINAL "'"
	    " AND e.kind = 'review.signed'"
	    " AND (?1 IS NULL OR json_extract(e.data, '$.period') = ?1)"
	    " ORDER BY e.ts DESC, e.seq DESC LIMIT ?2",
	    "SELECT e.seq, e.ts, e.data, upper(encode(e.chain, 'hex')) FROM events e"
	    " JOIN terminals t ON t.id = e.tid WHERE t.name = '" INGEST_SELF_TERMINAL "'"
	    " AND e.kind = 'review.signed'"
	    " AND (?1 IS NULL OR e.data::json ->> 'period' = ?1)"
	    " ORDER BY e.ts DESC, e.seq DESC LIMIT ?2");
	json_t *list = json_array();
	int rc;

	if (!st || !list) {
		review_q_free(st);
		json_decref(list);
		return -EIO;
	}
	review_q_text(st, 1, period);
	review_q_int(st, 2, limit);
	while ((rc = review_q_step(st)) == 1) {
		json_t *o = json_loads(col(st, 2), 0, NULL);
		if (!json_is_object(o)) {
			json_decref(o);
			continue;
		}
		json_object_set_new(o, "seq", json_integer(review_q_int_col(st, 0)));
		json_object_set_new(o, "ts", ts_json(review_q_int_col(st, 1)));
		json_object_set_new(o, "chain", json_string(col(st, 3)));
		json_array_append_new(list, o);
	}
	review_q_free(st);
	if (rc != 0) {
		json_decref(list);
		return -EIO;
	}
	*ret = list;
	return 0;
}

/* ---- the cache of the lists (docs/evidence.md "Log review", "The list's cache") ---- */

/* Making a list reads the period's events: seconds at 10,000 terminals. A list is made once per
 * period on a thread of the review's own (the refresher) and kept here with the marker of the
 * store it was made from; a request answers from here at once, after a check of the marker
 * (a few index lookups): the store's newest event id and a digest of the gaps, the disposals
 * and the media ledger. Events stored since with a ts at or after the period's end leave the
 * list as it is; any other change marks it "changed", and it is made again on the next request
 * once REVIEW_REFRESH_MS have passed since it was made, or at once on ?refresh=1. */
#define REVIEW_CACHE_MAX  8
#define REVIEW_REFRESH_MS (5 * 60 * 1000LL)

struct review_marker {
	int64_t at;	/* collector's clock, before the snapshot began */
	int64_t max_id; /* the newest event id */
	char sig[65];	/* SHA-256 of the gaps', the disposals' and the ledger's summary */
	/* PostgreSQL: the events of the list's kinds before the period's end received since
	 * win_from (at - REVIEW_PG_WINDOW_MS), counted */
	int64_t win_from, win_count;
};

/* PostgreSQL: several collectors may write one database, so a batch that commits after another
 * one may hold lower event ids than the newest one a snapshot saw. The events of the kinds the
 * list reads that were received since this long before the snapshot are counted as well (in
 * events_expiry, kind and received_at, kept events only): a later batch of any collector adds
 * to the count (a writer's transaction is a batch, milliseconds to seconds; the collectors'
 * clocks are synchronised). */
#define REVIEW_PG_WINDOW_MS (10 * 60 * 1000LL)

static int64_t received_since(struct review_db *db, int64_t from_ms, int64_t to_ms)
{
	struct review_q *q = review_q_prep(
	    db,
	    "SELECT count(*) FROM events WHERE kind IN ('auth.success', 'auth.failure',"
	    " 'auth.locked', 'usb.blocked', 'compliance') AND body IS NULL AND received_at >= ?1"
	    " AND ts + 0 < ?2",
	    NULL);
	int64_t n = -1;

	if (q) {
		review_q_int(q, 1, from_ms);
		review_q_int(q, 2, to_ms);
		if (review_q_step(q) == 1)
			n = review_q_int_col(q, 0);
	}
	review_q_free(q);
	return n;
}

struct cache_entry {
	bool used;
	struct review_period p;
	struct review_settings rs;
	json_t *body;	  /* review_items(); NULL until made */
	char *items_text; /* its items as compact JSON, for the answers */
	struct review_marker m;
	int64_t as_of;	  /* when its snapshot began (collector's clock) */
	int64_t last_use; /* the entry left out last is reused */
	bool changed;	  /* the store changed since as_of in a way that can change the list */
	bool queued, running;
	unsigned waiters;
	int error; /* the last making failed (no body) */
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake, done;
	bool started;
	char *location;
	struct cache_entry e[REVIEW_CACHE_MAX];
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER,
	   .wake = PTHREAD_COND_INITIALIZER,
	   .done = PTHREAD_COND_INITIALIZER};

static bool settings_eq(const struct review_settings *a, const struct review_settings *b)
{
	return a->weekly == b->weekly && a->office_start == b->office_start &&
	       a->office_end == b->office_end && a->days == b->days && a->burst_n == b->burst_n &&
	       a->burst_minutes == b->burst_minutes;
}

static int append_row(struct review_q *q, int ncols, json_t *a)
{
	for (int i = 0; i < ncols; i++)
		if (json_array_append_new(a, json_string(col(q, i))) < 0)
			return -ENOMEM;
	return 0;
}

/* All rows of sql into a (as text); -EIO when the store cannot answer. */
static int marker_rows(struct review_db *db, const char *sql, int ncols, json_t *a)
{
	struct review_q *q = review_q_prep(db, sql, NULL);
	int rc = q ? 0 : -EIO, r = 0;

	while (q && r >= 0 && (rc = review_q_step(q)) == 1)
		r = append_row(q, ncols, a);
	review_q_free(q);
	return r < 0 ? r : rc == 0 ? 0 : -EIO;
}

/* The marker of db's snapshot, begun after at, for the list of p. */
static int marker_read(struct review_db *db, int64_t at, const struct review_period *p,
		       struct review_marker *m)
{
	json_t *a = json_array();
	struct review_q *q = review_q_prep(db, "SELECT coalesce(max(id), 0) FROM events", NULL);
	int r = a && q && review_q_step(q) == 1 ? 0 : -EIO;

	m->at = at;
	if (r >= 0)
		m->max_id = review_q_int_col(q, 0);
	review_q_free(q);
	/* a gap found, filled or announced; events disposed of (tombstones made, or deleted into
	 * an anchor); a device registered in the ledger or taken off it */
	if (r >= 0)
		r = marker_rows(
		    db,
		    "SELECT count(*), coalesce(sum(announced), 0), coalesce(max(id), 0),"
		    " coalesce(sum(first), 0), coalesce(sum(last), 0) FROM gaps",
		    5, a);
	if (r >= 0)
		r = marker_rows(db,
				"SELECT count(*), coalesce(sum(disposed), 0), coalesce(max(at), 0)"
				" FROM chain_anchors",
				3, a);
	if (r >= 0 && review_db_has_table(db, "chain_collapse"))
		r = marker_rows(db, "SELECT count(*) FROM chain_collapse", 1, a);
	if (r >= 0 && review_db_has_table(db, "fleet_ledger"))
		r = marker_rows(
		    db, "SELECT vendor, product, serial FROM fleet_ledger ORDER BY 1, 2, 3", 3, a);
	if (r >= 0)
		sha256_json(a, m->sig);
	json_decref(a);
	m->win_from = at - REVIEW_PG_WINDOW_MS;
	m->win_count = 0;
	if (r >= 0 && review_db_is_pg(db) &&
	    (m->win_count = received_since(db, m->win_from, p->to_ms)) < 0)
		r = -EIO;
	return r;
}

/* Whether a list made at marker old is still the list of p at marker cur: nothing changed but
 * the events, and every event stored since has a ts at or after p's end (the list reads no
 * event after its period). SQLite's one writer stores events in id order, one transaction at a
 * time, so a snapshot holds every event up to its newest id; on PostgreSQL the events of the
 * list's kinds received since old->win_from are counted again. */
static bool marker_current(struct review_db *db, const struct review_marker *old,
			   const struct review_marker *cur, const struct review_period *p)
{
	struct review_q *q;
	int rc;

	if (strcmp(old->sig, cur->sig) != 0 || cur->max_id < old->max_id)
		return false;
	if (cur->max_id > old->max_id) {
		/* the new rows by id (the primary key), not all rows before the end by ts */
		q = review_q_prep(db, "SELECT 1 FROM events WHERE id > ?1 AND +ts < ?2 LIMIT 1",
				  "SELECT 1 FROM events WHERE id > ?1 AND ts + 0 < ?2 LIMIT 1");
		if (!q)
			return false;
		review_q_int(q, 1, old->max_id);
		review_q_int(q, 2, p->to_ms);
		rc = review_q_step(q);
		review_q_free(q);
		if (rc != 0)
			return false;
	}
	return !review_db_is_pg(db) ||
	       received_since(db, old->win_from, p->to_ms) == old->win_count;
}

/* cache.lock held. The entry of p with settings rs; make: or a new one, reusing the one left out
 * longest (none while each is being made or waited for: NULL). */
static struct cache_entry *cache_find(const char *location, const struct review_period *p,
				      const struct review_settings *rs, bool make)
{
	struct cache_entry *old = NULL;

	if (!cache.location || strcmp(cache.location, location) != 0) {
		char *l = strdup(location);
		if (!l)
			return NULL;
		for (unsigned i = 0; i < REVIEW_CACHE_MAX; i++)
			if (cache.e[i].used && !cache.e[i].queued && !cache.e[i].running &&
			    !cache.e[i].waiters) {
				json_decref(cache.e[i].body);
				free(cache.e[i].items_text);
				cache.e[i] = (struct cache_entry){0};
			}
		free(cache.location);
		cache.location = l;
	}
	for (unsigned i = 0; i < REVIEW_CACHE_MAX; i++) {
		struct cache_entry *e = &cache.e[i];
		if (e->used && strcmp(e->p.name, p->name) == 0 && settings_eq(&e->rs, rs))
			return e;
		if (!e->queued && !e->running && !e->waiters &&
		    (!old || !e->used || (old->used && e->last_use < old->last_use)))
			old = e;
	}
	if (!make || !old)
		return NULL;
	json_decref(old->body);
	free(old->items_text);
	*old = (struct cache_entry){.used = true, .p = *p, .rs = *rs};
	return old;
}

/* cache.lock held. e's list is now body (taken) with items_text (taken, made by items_dump()
 * without the lock), made in a snapshot begun at as_of with marker m. */
static void cache_set(struct cache_entry *e, json_t *body, char *items_text,
		      const struct review_marker *m, int64_t as_of)
{
	json_decref(e->body);
	free(e->items_text);
	e->body = body;
	e->items_text = items_text;
	e->m = *m;
	e->as_of = as_of;
	e->changed = false;
	e->error = 0;
}

static char *items_dump(json_t *body)
{
	return json_dumps(json_object_get(body, "items"), JSON_COMPACT);
}

/* The refresher: makes the lists queued, one at a time, each in a snapshot of its own. */
static void *refresher_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&cache.lock);
	for (;;) {
		struct cache_entry *e = NULL;
		for (unsigned i = 0; i < REVIEW_CACHE_MAX && !e; i++)
			if (cache.e[i].used && cache.e[i].queued)
				e = &cache.e[i];
		if (!e) {
			pthread_cond_wait(&cache.wake, &cache.lock);
			continue;
		}
		e->queued = false;
		e->running = true;
		struct review_period p = e->p;
		struct review_settings rs = e->rs;
		char *location = strdup(cache.location);
		pthread_mutex_unlock(&cache.lock);

		struct review_db *db = NULL;
		struct review_marker m;
		json_t *body = NULL;
		int64_t at = server_now_ms();
		int r = location ? review_db_open(location, &db) : -ENOMEM;
		if (r >= 0)
			r = marker_read(db, at, &p, &m);
		if (r >= 0)
			r = review_items(db, &rs, &p, &body);
		review_db_close(db);
		free(location);
		char *text = r >= 0 ? items_dump(body) : NULL;
		if (r >= 0 && !text)
			r = -ENOMEM;
		if (r < 0) {
			server_log(LOG_ERR, "review: the list of %s cannot be made now", p.name);
			json_decref(body);
		}

		pthread_mutex_lock(&cache.lock);
		e->running = false;
		if (r >= 0)
			cache_set(e, body, text, &m, at);
		else
			e->error = r;
		pthread_cond_broadcast(&cache.done);
	}
	return NULL;
}

/* cache.lock held. Queues e for the refresher (started the first time). */
static int cache_queue(struct cache_entry *e)
{
	if (!cache.started) {
		pthread_attr_t attr;
		pthread_t t;
		int r = -pthread_attr_init(&attr);
		if (r >= 0)
			r = -pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (r >= 0)
			r = -pthread_create(&t, &attr, refresher_main, NULL);
		pthread_attr_destroy(&attr);
		if (r < 0)
			return r;
		cache.started = true;
	}
	if (!e->queued && !e->running) {
		e->queued = true;
		pthread_cond_signal(&cache.wake);
	}
	return 0;
}

/* A copy of a list without its items. */
static json_t *body_head(json_t *body)
{
	json_t *head = json_object(), *v;
	const char *key;

	json_object_foreach(body, key, v)
	{
		if (head && strcmp(key, "items") != 0)
			json_object_set_new(head, key, json_deep_copy(v));
	}
	return head;
}

/* cache.lock held. The answer of the dashboard thread: e's list with its time and state, the
 * sign-offs (taken) and the reviewer, its items spliced in as made once (an answer of 12,000
 * items is not copied and written again each time). NULL when out of memory. */
static struct evbuffer *cache_answer(const struct cache_entry *e, json_t *signoffs,
				     const char *reviewer)
{
	json_t *head = body_head(e->body);
	struct evbuffer *buf = evbuffer_new();
	char *text = NULL;
	size_t n;

	json_object_set_new(head, "as_of", ts_json(e->as_of));
	json_object_set_new(head, "changed", json_boolean(e->changed));
	json_object_set_new(head, "refreshing", json_boolean(e->queued || e->running));
	json_object_set_new(head, "signoffs", signoffs);
	json_object_set_new(head, "reviewer", json_string(reviewer));
	text = head ? json_dumps(head, JSON_COMPACT) : NULL;
	json_decref(head);
	n = text ? strlen(text) : 0;
	if (!buf || n < 2 || text[n - 1] != '}' ||
	    evbuffer_add_printf(buf, "%.*s,\"items\":", (int)(n - 1), text) < 0 ||
	    evbuffer_add(buf, e->items_text, strlen(e->items_text)) < 0 ||
	    evbuffer_add(buf, "}\n", 2) < 0) {
		if (buf)
			evbuffer_free(buf);
		buf = NULL;
	}
	free(text);
	return buf;
}

/* cache.lock held. A copy of e's list with its time and state, for an answer. */
static json_t *cache_body(const struct cache_entry *e)
{
	json_t *body = json_deep_copy(e->body);

	if (body) {
		json_object_set_new(body, "as_of", ts_json(e->as_of));
		json_object_set_new(body, "changed", json_boolean(e->changed));
		json_object_set_new(body, "refreshing", json_boolean(e->queued || e->running));
	}
	return body;
}

/* ---- the dashboard ---- */

/* The dashboard thread checks the request (who, method, parameters, the sign-off's body) and
 * answers a mistake at once; the database work runs on a heavy thread (server_heavy_submit)
 * with a connection of its own, so the dashboard keeps answering while a review, a bundle or a
 * report is made. */
enum review_op {
	OP_REVIEW,
	OP_SIGNOFF,
	OP_EVIDENCE,
	OP_REPORT
};

struct review_job {
	struct server_heavy_job heavy;
	enum review_op op;
	struct auth_principal who;
	const struct collector_config *cfg;
	struct ingest_writer *writer;
	struct review_settings rs;
	struct review_period period; /* review, sign-off */
	int64_t now_ms;
	/* review: ?async=1 (202 while the list is made), ?refresh=1; the sign-offs read */
	bool async, refresh;
	json_t *signoffs;
	/* sign-off */
	char sha[65];
	char *comment; /* NULL when none */
	bool has_items;
	json_int_t items;
	/* evidence */
	struct evidence_query q;
	/* report */
	char *month, *group;
};

/* Takes body; personal data is hidden from an account that must not see it. */
static void answer(struct review_job *j, int status, json_t *body)
{
	if (j->who.hide_personal && body)
		auth_redact(body);
	server_answer_json(&j->heavy.answer, status, body);
}
#define answer_err(j, ...) server_answer_error(&(j)->heavy.answer, __VA_ARGS__)
#define reply_err	   server_reply_error

/* The query's parameters, each at most once and among names (NULL-terminated); values in
 * vals[i] (NULL when absent). false after answering 400. */
static bool query_params(struct evhttp_request *req, const char *const *names, const char **vals,
			 struct evkeyvalq *params)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
	struct evkeyval *kv;

	TAILQ_INIT(params);
	if (query && strstr(query, "%00")) {
		reply_err(req, 400, "query string contains %%00 (a NUL byte)");
		return false;
	}
	if (query && evhttp_parse_query_str(query, params) < 0) {
		reply_err(req, 400, "malformed query string");
		return false;
	}
	TAILQ_FOREACH(kv, params, next)
	{
		size_t i;
		for (i = 0; names[i]; i++)
			if (strcmp(kv->key, names[i]) == 0)
				break;
		if (!names[i] || vals[i]) {
			size_t n = utf8_valid_prefix(kv->key, strlen(kv->key));
			reply_err(req, 400, "unknown or repeated parameter \"%.*s\"",
				  (int)utf8_truncate(kv->key, n, 40), kv->key);
			return false;
		}
		vals[i] = kv->value;
	}
	return true;
}

static bool open_db(struct review_job *j, struct review_db **db)
{
	if (review_db_open(j->cfg->database, db) < 0) {
		answer_err(j, 503, "the store cannot answer now");
		return false;
	}
	return true;
}

/* ---- dashboard thread: the request's parameters ---- */

static bool review_params(struct evhttp_request *req, struct review_job *j)
{
	static const char *const names[] = {"period", "async", "refresh", NULL};
	const char *vals[3] = {NULL, NULL, NULL};
	struct evkeyvalq params;
	char err[REASON_MAX];
	bool ok = false;

	if (!query_params(req, names, vals, &params))
		goto out;
	if (vals[0] && review_period_parse(vals[0], &j->period, err, sizeof(err)) < 0) {
		reply_err(req, 400, "%s", err);
		goto out;
	}
	for (unsigned i = 1; i < 3; i++)
		if (vals[i] && strcmp(vals[i], "0") != 0 && strcmp(vals[i], "1") != 0) {
			reply_err(req, 400, "%s: 0 or 1", names[i]);
			goto out;
		}
	j->async = vals[1] && strcmp(vals[1], "1") == 0;
	j->refresh = vals[2] && strcmp(vals[2], "1") == 0;
	if (!vals[0]) { /* the last period that has ended */
		review_period_of(j->now_ms, j->rs.weekly, &j->period);
		review_period_of(j->period.from_ms - 1, j->rs.weekly, &j->period);
	}
	ok = true;
out:
	evhttp_clear_headers(&params);
	return ok;
}

static bool comment_valid(const char *s)
{
	size_t len = strlen(s);

	if (len > REVIEW_COMMENT_MAX || !utf8_valid(s, len))
		return false;
	for (size_t i = 0; i < len; i++)
		if (((unsigned char)s[i] < 0x20 && s[i] != '\n' && s[i] != '\t') || s[i] == 0x7f)
			return false;
	return true;
}

static bool signoff_params(struct evhttp_request *req, struct review_job *j)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *p = len ? (const char *)evbuffer_pullup(in, -1) : "";
	json_error_t jerr;
	json_t *o = json_loadb(p, len, JSON_REJECT_DUPLICATES, &jerr), *v;
	const char *key, *period, *sha, *comment;
	char err[REASON_MAX];
	bool ok = false;

	if (!json_is_object(o)) {
		reply_err(req, 400,
			  "the body must be a JSON object {period, items_sha256, comment}");
		goto out;
	}
	json_object_foreach(o, key, v)
	{
		if (strcmp(key, "period") != 0 && strcmp(key, "items_sha256") != 0 &&
		    strcmp(key, "comment") != 0 && strcmp(key, "items") != 0) {
			reply_err(req, 400,
				  "unknown key (period, items_sha256, items, comment are known)");
			goto out;
		}
	}
	period = json_string_value(json_object_get(o, "period"));
	sha = json_string_value(json_object_get(o, "items_sha256"));
	comment = json_string_value(json_object_get(o, "comment"));
	if (!period || review_period_parse(period, &j->period, err, sizeof(err)) < 0) {
		reply_err(req, 400, "%s", period ? err : "period: required (YYYY-MM or YYYY-Www)");
		goto out;
	}
	if (j->period.from_ms > j->now_ms) {
		reply_err(req, 400, "period: %s has not begun", j->period.name);
		goto out;
	}
	if (!sha || strlen(sha) != 64 || strspn(sha, "0123456789abcdef") != 64) {
		reply_err(req, 400,
			  "items_sha256: required, the items_sha256 of GET /v1/review (64 hex)");
		goto out;
	}
	if (json_object_get(o, "comment") && !json_is_null(json_object_get(o, "comment")) &&
	    (!comment || !comment_valid(comment))) {
		reply_err(req, 400, "comment: text of at most %d bytes without control characters",
			  REVIEW_COMMENT_MAX);
		goto out;
	}
	if (json_object_get(o, "items") && !json_is_integer(json_object_get(o, "items"))) {
		reply_err(req, 400, "items: the number of items reviewed");
		goto out;
	}
	memcpy(j->sha, sha, 65);
	if (comment && !(j->comment = strdup(comment))) {
		reply_err(req, 503, "out of memory");
		goto out;
	}
	j->has_items = json_object_get(o, "items") != NULL;
	j->items = json_integer_value(json_object_get(o, "items"));
	ok = true;
out:
	json_decref(o);
	return ok;
}

static bool evidence_params(struct evhttp_request *req, struct review_job *j)
{
	static const char *const names[] = {"from", "to", "clauses", NULL};
	const char *vals[3] = {NULL, NULL, NULL};
	struct evkeyvalq params;
	char err[REASON_MAX];
	bool ok = false;

	if (!query_params(req, names, vals, &params))
		goto out;
	if (!vals[0] || !vals[1]) {
		reply_err(req, 400, "from and to are required (YYYY-MM-DD)");
		goto out;
	}
	if (evidence_query_parse(vals[0], vals[1], vals[2], &j->q, err, sizeof(err)) < 0) {
		reply_err(req, 400, "%s", err);
		goto out;
	}
	j->q.hide_personal = j->who.hide_personal;
	if (!j->cfg->evidence_key) {
		reply_err(req, 503, "no evidence key on this collector ([evidence] key)");
		goto out;
	}
	ok = true;
out:
	evhttp_clear_headers(&params);
	return ok;
}

static bool report_params(struct evhttp_request *req, struct review_job *j)
{
	static const char *const names[] = {"month", "group", NULL};
	const char *vals[2] = {NULL, NULL};
	struct evkeyvalq params;
	bool ok = false;

	if (!query_params(req, names, vals, &params))
		goto out;
	if (!vals[0]) {
		reply_err(req, 400, "month is required (YYYY-MM)");
		goto out;
	}
	j->month = strdup(vals[0]);
	j->group = vals[1] ? strdup(vals[1]) : NULL;
	if (!j->month || (vals[1] && !j->group)) {
		reply_err(req, 503, "out of memory");
		goto out;
	}
	ok = true;
out:
	evhttp_clear_headers(&params);
	return ok;
}

/* ---- heavy thread: the answers ---- */

/* The sign-offs and who asks, added to a copy of the list. */
static json_t *review_body(struct review_job *j, json_t *body)
{
	json_object_set_new(body, "signoffs", j->signoffs);
	j->signoffs = NULL;
	json_object_set_new(body, "reviewer", json_string(j->who.name));
	if (j->who.hide_personal)
		auth_redact(body);
	return body;
}

/* A heavy thread: the first request of a period without ?async=1 waits for its list. */
static void review_wait(struct review_job *j)
{
	struct cache_entry *e;
	json_t *body = NULL;

	pthread_mutex_lock(&cache.lock);
	e = cache_find(j->cfg->database, &j->period, &j->rs, false);
	while (e && !e->body && (e->queued || e->running))
		pthread_cond_wait(&cache.done, &cache.lock);
	if (e) {
		body = e->body ? cache_body(e) : NULL;
		e->waiters--;
		e->error = 0; /* the next request tries again */
	}
	pthread_mutex_unlock(&cache.lock);
	if (!body) {
		answer_err(j, 503, "the store cannot answer now");
		return;
	}
	server_answer_json(&j->heavy.answer, 200, review_body(j, body));
}

/* The dashboard thread, in its snapshot of the store kept between requests. */
static struct review_db *dash_db;
static char *dash_location;

static void dash_drop(void)
{
	review_db_close(dash_db);
	dash_db = NULL;
	free(dash_location);
	dash_location = NULL;
}

static struct review_db *dash_snapshot(const char *location)
{
	if (dash_db && strcmp(dash_location, location) == 0 && db_begin(dash_db) == 0)
		return dash_db;
	dash_drop();
	if (review_db_open(location, &dash_db) < 0) {
		dash_db = NULL;
		return NULL;
	}
	dash_location = strdup(location);
	if (!dash_location)
		dash_drop();
	return dash_db;
}

/* The dashboard thread: GET /v1/review from the cache (the marker checked, the sign-offs read in
 * a snapshot of its own); true when answered, false when j is to wait on a heavy thread. */
static bool review_from_cache(struct evhttp_request *req, struct review_job *j)
{
	int64_t now = server_now_ms();
	struct review_db *db = dash_snapshot(j->cfg->database);
	struct review_marker cur;
	struct cache_entry *e;
	json_t *body = NULL;
	int r = db ? marker_read(db, now, &j->period, &cur) : -EIO;

	if (r >= 0)
		r = review_signoffs(db, NULL, 100, &j->signoffs);
	if (r < 0) {
		dash_drop();
		reply_err(req, 503, "the store cannot answer now");
		return true;
	}
	pthread_mutex_lock(&cache.lock);
	e = cache_find(j->cfg->database, &j->period, &j->rs, true);
	if (e && e->body && !e->queued && !e->running) {
		if (marker_current(db, &e->m, &cur, &j->period))
			e->m = cur;
		else
			e->changed = true;
	}
	db_end(db);
	if (!e) { /* every list kept is being made or waited for */
		pthread_mutex_unlock(&cache.lock);
		server_reply_busy(req);
		return true;
	}
	if (!e->body && e->error && !e->queued && !e->running) {
		e->error = 0; /* the next request tries again */
		pthread_mutex_unlock(&cache.lock);
		reply_err(req, 503, "the store cannot answer now");
		return true;
	}
	e->last_use = now;
	if (!e->body || (e->changed && (j->refresh || now - e->as_of >= REVIEW_REFRESH_MS)))
		r = cache_queue(e);
	bool made = e->body != NULL;
	struct evbuffer *fast = NULL;
	if (made && !j->who.hide_personal) {
		fast = cache_answer(e, j->signoffs, j->who.name);
		j->signoffs = NULL;
	} else if (made)
		body = cache_body(e);
	else if (r >= 0 && !j->async)
		e->waiters++;
	pthread_mutex_unlock(&cache.lock);
	if (r < 0)
		server_log(LOG_ERR, "review: the refresher cannot start: %s", strerror(-r));
	if ((r < 0 && !made) || (made && !body && !fast)) {
		reply_err(req, 503, "the list cannot be made now");
		return true;
	}
	if (fast) {
		struct server_answer a;
		server_answer_init(&a);
		a.status = 200;
		a.body = fast;
		evhttp_add_header(&a.headers, "Content-Type", "application/json");
		evhttp_add_header(&a.headers, "X-Content-Type-Options", "nosniff");
		evhttp_add_header(&a.headers, "Cache-Control", "no-store");
		server_answer_send(req, &a);
		return true;
	}
	if (body) {
		server_reply_json(req, 200, review_body(j, body));
		return true;
	}
	if (j->async) {
		server_reply_json(
		    req, 202,
		    json_pack("{s:s, s:s}", "period", j->period.name, "status", "computing"));
		return true;
	}
	return false;
}

static void signoff_post(struct review_job *j)
{
	const struct review_period *per = &j->period;
	json_t *list = NULL;
	struct review_db *db = NULL;
	size_t n_items = 0;
	int r;

	struct review_marker cur;
	struct cache_entry *e;
	int64_t at = server_now_ms();

	if (!open_db(j, &db))
		return;
	/* the list as it is now: the cache's when the store has not changed it since, else made
	 * again in this snapshot */
	r = marker_read(db, at, per, &cur);
	if (r >= 0) {
		pthread_mutex_lock(&cache.lock);
		e = cache_find(j->cfg->database, per, &j->rs, false);
		if (e && e->body && marker_current(db, &e->m, &cur, per)) {
			list = body_head(e->body); /* what the sign-off names */
			n_items = json_array_size(json_object_get(e->body, "items"));
			e->m = cur;
		}
		pthread_mutex_unlock(&cache.lock);
	}
	if (r >= 0 && !list) {
		r = review_items(db, &j->rs, per, &list);
		n_items = r >= 0 ? json_array_size(json_object_get(list, "items")) : 0;
		json_t *copy = r >= 0 ? json_deep_copy(list) : NULL;
		char *text = copy ? items_dump(copy) : NULL;
		pthread_mutex_lock(&cache.lock);
		e = text ? cache_find(j->cfg->database, per, &j->rs, true) : NULL;
		if (e && !e->queued && !e->running) {
			cache_set(e, copy, text, &cur, at);
			copy = NULL;
			text = NULL;
		}
		pthread_mutex_unlock(&cache.lock);
		json_decref(copy);
		free(text);
	}
	review_db_close(db);
	if (r < 0) {
		answer_err(j, 503, "the store cannot answer now");
		return;
	}
	if (strcmp(j->sha, json_string_value(json_object_get(list, "items_sha256"))) != 0) {
		answer_err(j, 409,
			   "the list of %s changed since it was shown (reload it and review again)",
			   per->name);
		goto out;
	}
	if (j->has_items && (size_t)j->items != n_items) {
		answer_err(j, 409, "items: the list has %zu items", n_items);
		goto out;
	}
	json_t *data = json_pack(
	    "{s:s, s:s, s:O, s:O, s:I, s:s, s:O, s:s}", "reviewer", j->who.name, "period",
	    per->name, "from", json_object_get(list, "from"), "to", json_object_get(list, "to"),
	    "items", (json_int_t)n_items, "items_sha256", j->sha, "categories",
	    json_object_get(list, "categories"), "comment", j->comment ? j->comment : "");
	json_t *body = json_deep_copy(data);
	if (!data || !body || !j->writer ||
	    ingest_writer_self_event(j->writer, EVENT_REVIEW_SIGNED, data) < 0) {
		json_decref(body);
		answer_err(j, 503, "the sign-off cannot be stored now");
		goto out;
	}
	server_log(LOG_INFO, "review.signed period=%s reviewer=%s items=%zu", per->name,
		   j->who.name, n_items);
	answer(j, 202, body);
out:
	json_decref(list);
}

static const char *attachment(const char *from, const char *to, char *buf, size_t n)
{
	snprintf(buf, n, "attachment; filename=\"mynaguard-evidence-%s-%s.jsonl\"", from, to);
	return buf;
}

static void evidence_get(struct review_job *j)
{
	struct server_answer *a = &j->heavy.answer;
	struct bundle_signer *key = NULL;
	char err[REASON_MAX], disp[128];
	struct review_db *db = NULL;
	FILE *tmp = NULL;
	struct evbuffer *buf = NULL;
	int r;

	r = bundle_signer_load(j->cfg->evidence_key, &key, err, sizeof(err));
	if (r < 0) {
		server_log(LOG_ERR, "evidence: %s", err);
		answer_err(j, 503, "the evidence key cannot be loaded; see the collector's log");
		goto out;
	}
	if (!open_db(j, &db))
		goto out;
	tmp = tmpfile();
	r = tmp ? evidence_write(db, &j->q, key, tmp, err, sizeof(err)) : -errno;
	if (r >= 0 && fflush(tmp) != 0)
		r = -EIO;
	buf = r >= 0 ? evbuffer_new() : NULL;
	if (r < 0 || !buf) {
		server_log(LOG_ERR, "evidence: %s", r < 0 ? err : "out of memory");
		answer_err(j, 503, "the evidence bundle cannot be made now");
		goto out;
	}
	off_t size = ftello(tmp);
	int fd = size >= 0 ? dup(fileno(tmp)) : -1;
	if (fd < 0 || evbuffer_add_file(buf, fd, 0, size) < 0) {
		answer_err(j, 503, "the evidence bundle cannot be sent");
		goto out;
	}
	server_answer_clear(a);
	a->status = 200;
	a->body = buf;
	buf = NULL;
	evhttp_add_header(&a->headers, "Content-Type", "application/x-ndjson; charset=utf-8");
	evhttp_add_header(&a->headers, "Content-Disposition",
			  attachment(j->q.from, j->q.to, disp, sizeof(disp)));
	evhttp_add_header(&a->headers, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(&a->headers, "Cache-Control", "no-store");
out:
	if (buf)
		evbuffer_free(buf);
	if (tmp)
		fclose(tmp);
	bundle_signer_free(key);
	review_db_close(db);
}

static void report_get(struct review_job *j)
{
	struct server_answer *a = &j->heavy.answer;
	char err[REASON_MAX];
	struct review_db *db = NULL;
	char *text = NULL;
	size_t len = 0;
	FILE *f = NULL;
	int r;

	if (!open_db(j, &db))
		goto out;
	f = open_memstream(&text, &len);
	r = f ? report_selfcheck_html(db, j->month, j->group, j->who.hide_personal, f, err,
				      sizeof(err))
	      : -ENOMEM;
	if (f && fclose(f) != 0 && r >= 0)
		r = -ENOMEM;
	f = NULL;
	if (r == -EINVAL || r == -ENOENT) {
		answer_err(j, r == -EINVAL ? 400 : 404, "%s", err);
		goto out;
	}
	if (r < 0) {
		answer_err(j, 503, "the report cannot be made now");
		goto out;
	}
	server_answer_clear(a);
	a->body = evbuffer_new();
	if (!a->body) {
		answer_err(j, 503, "out of memory");
		goto out;
	}
	a->status = 200;
	evbuffer_add(a->body, text, len);
	evhttp_add_header(&a->headers, "Content-Type", "text/html; charset=utf-8");
	evhttp_add_header(&a->headers, "Content-Security-Policy",
			  "default-src 'none'; style-src 'self'; frame-ancestors 'none';"
			  " base-uri 'none'; form-action 'none'");
	evhttp_add_header(&a->headers, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(&a->headers, "Referrer-Policy", "no-referrer");
	evhttp_add_header(&a->headers, "Cache-Control", "no-store");
out:
	free(text);
	review_db_close(db);
}

static void job_run(struct server_heavy_job *h)
{
	struct review_job *j = (struct review_job *)h;

	switch (j->op) {
	case OP_REVIEW:
		review_wait(j);
		break;
	case OP_SIGNOFF:
		signoff_post(j);
		break;
	case OP_EVIDENCE:
		evidence_get(j);
		break;
	case OP_REPORT:
		report_get(j);
		break;
	}
}

static void job_release(struct server_heavy_job *h)
{
	struct review_job *j = (struct review_job *)h;

	json_decref(j->signoffs);
	free(j->comment);
	free(j->month);
	free(j->group);
	free(j);
}

bool review_api_path(const char *path)
{
	return path &&
	       (strcmp(path, "/v1/review") == 0 || strcmp(path, "/v1/review/signoff") == 0 ||
		strcmp(path, "/v1/evidence") == 0 || strcmp(path, "/r/selfcheck") == 0);
}

void review_api_handle(struct evhttp_request *req, struct worker *w)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : "";
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	bool post = strcmp(path, "/v1/review/signoff") == 0;
	struct review_job *j;
	char err[REASON_MAX];
	bool ok;

	j = calloc(1, sizeof(*j));
	if (!j) {
		reply_err(req, 503, "out of memory");
		return;
	}
	j->heavy.run = job_run;
	j->heavy.release = job_release;
	j->cfg = w->c->cfg;
	j->writer = w->c->writer;
	j->now_ms = server_now_ms();
	/* reading the review, the evidence and the report: any role (the auditor's work);
	 * signing a review off: an approver or an administrator */
	if (auth_request(req, w, post ? AUTH_APPROVER : AUTH_AUDITOR, post, &j->who) < 0) {
		job_release(&j->heavy);
		return;
	}
	if (post ? m != EVHTTP_REQ_POST : m != EVHTTP_REQ_GET) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
				  post ? "POST" : "GET");
		reply_err(req, 405, "use %s", post ? "POST" : "GET");
		job_release(&j->heavy);
		return;
	}
	if (review_settings_parse(w->c->cfg, &j->rs, err, sizeof(err)) < 0) {
		reply_err(req, 503, "%s", err); /* config_load() checked it already */
		job_release(&j->heavy);
		return;
	}
	if (strcmp(path, "/v1/review") == 0) {
		j->op = OP_REVIEW;
		ok = review_params(req, j);
	} else if (post) {
		j->op = OP_SIGNOFF;
		ok = signoff_params(req, j);
	} else if (strcmp(path, "/v1/evidence") == 0) {
		j->op = OP_EVIDENCE;
		ok = evidence_params(req, j);
	} else {
		j->op = OP_REPORT;
		ok = report_params(req, j);
	}
	if (!ok || (j->op == OP_REVIEW && review_from_cache(req, j))) { /* answered */
		job_release(&j->heavy);
		return;
	}
	if (server_heavy_submit(w->c, req, &j->heavy) < 0) {
		if (j->op == OP_REVIEW) {
			struct cache_entry *e;
			pthread_mutex_lock(&cache.lock);
			e = cache_find(j->cfg->database, &j->period, &j->rs, false);
			if (e)
				e->waiters--;
			pthread_mutex_unlock(&cache.lock);
		}
		server_reply_busy(req);
		job_release(&j->heavy);
	}
}

/* ---- the reminder (alert.c) ---- */

int review_overdue(struct review_db *db, bool weekly, int64_t now_ms, int64_t grace_ms,
		   struct review_period *ret)
{
	struct review_period cur;
	struct review_q *st;
	int r = -EIO;

	/* the newest period whose grace has passed: the one before the period of now - grace */
	review_period_of(now_ms - grace_ms, weekly, &cur);
	review_period_of(cur.from_ms - 1, weekly, ret);
	/* a store with nothing before the period's end was not in use then: nothing to review */
#define OVERDUE(period)                                                                            \
	"SELECT EXISTS (SELECT 1 FROM events WHERE ts < ?1),"                                      \
	" EXISTS (SELECT 1 FROM events e JOIN terminals t ON t.id = e.tid"                         \
	" WHERE t.name = '" INGEST_SELF_TERMINAL "' AND e.kind = 'review.signed'"                  \
	" AND " period " = ?2)"
	st = review_q_prep(db, OVERDUE("json_extract(e.data, '$.period')"),
			   OVERDUE("e.data::json ->> 'period'"));
	if (st) {
		review_q_int(st, 1, ret->to_ms);
		review_q_text(st, 2, ret->name);
		if (review_q_step(st) == 1)
			r = review_q_int_col(st, 0) && !review_q_int_col(st, 1);
	}
	review_q_free(st);
	return r;
}
