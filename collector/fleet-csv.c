/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: the media ledger's CSV (import is strict and all-or-nothing; the export
 * opens in Excel: UTF-8 with BOM, CRLF) and the date parser of the fleet endpoints. Pure. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event.h"
#include "fleet.h"
#include "macro.h"
#include "parse.h"
#include "utf8.h"

#define JST_OFFSET (9 * 3600)

const char fleet_ledger_csv_header[] = "登録番号,保管者,所属,型番,ベンダーID,プロダクトID,シリアル,"
				       "暗号化,貸出日,返却日,最終確認端末,最終確認日時,備考";

static const char *const columns[FLEET_LEDGER_COLUMNS] = {
    "登録番号", "保管者", "所属",   "型番",	    "ベンダーID",   "プロダクトID", "シリアル",
    "暗号化",	"貸出日", "返却日", "最終確認端末", "最終確認日時", "備考",
};

static void errf(char *err, size_t errsz, const char *fmt, ...) _printf_(3, 4);
static void errf(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errsz)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
	err[utf8_truncate(err, strlen(err), errsz - 1)] = 0;
}

static bool date_valid(const char *s)
{
	struct tm tm = {0};
	unsigned y, m, d;
	char tail;

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return false;
	for (size_t i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
			return false;
	if (sscanf(s, "%4u-%2u-%2u%c", &y, &m, &d, &tail) != 3 || y < 1970 || m < 1 || m > 12 ||
	    d < 1 || d > 31)
		return false;
	tm.tm_year = (int)y - 1900;
	tm.tm_mon = (int)m - 1;
	tm.tm_mday = (int)d;
	time_t t = timegm(&tm);
	struct tm back;
	gmtime_r(&t, &back);
	return back.tm_mday == (int)d && back.tm_mon == (int)m - 1;
}

int fleet_parse_time(const char *s, bool end_of_day, int64_t *ret)
{
	int64_t v;

	if (!s || !s[0])
		return -EINVAL;
	if (date_valid(s)) {
		struct tm tm = {0};
		tm.tm_year = atoi(s) - 1900;
		tm.tm_mon = atoi(s + 5) - 1;
		tm.tm_mday = atoi(s + 8);
		v = (int64_t)timegm(&tm) - JST_OFFSET;
		*ret = end_of_day ? v + 86400 : v;
		return 0;
	}
	if (strchr(s, 'T')) {
		int64_t ms;
		if (event_parse_ts(s, &ms) < 0)
			return -EINVAL;
		*ret = ms / 1000;
		return 0;
	}
	if (parse_int64(s, 0, EVENT_TS_MAX_MS / 1000, &v) < 0)
		return -EINVAL;
	*ret = v;
	return 0;
}

static bool text_ok(const char *s, size_t max)
{
	size_t len = strlen(s);

	if (len > max || !utf8_valid(s, len))
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static bool number_ok(const char *s)
{
	size_t len = strlen(s);

	if (len < 1 || len > FLEET_LEDGER_NUMBER_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
			    s[i]))
			return false;
	return true;
}

static bool hex4_ok(const char *s)
{
	if (strlen(s) != 4)
		return false;
	for (size_t i = 0; i < 4; i++)
		if (!strchr("0123456789abcdef", s[i]))
			return false;
	return true;
}

int fleet_ledger_row_check(const struct fleet_ledger_row *r, char *err, size_t errsz)
{
	const struct {
		const char *v;
		const char *col;
	} texts[] = {
	    {r->holder, columns[1]}, {r->department, columns[2]}, {r->model, columns[3]},
	    {r->serial, columns[6]}, {r->note, columns[12]},
	};

	if (!r->number || !number_ok(r->number)) {
		errf(err, errsz, "%s: expected 1 to %d of A-Z a-z 0-9 . _ -", columns[0],
		     FLEET_LEDGER_NUMBER_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < ELEMENTSOF(texts); i++)
		if (!texts[i].v || !text_ok(texts[i].v, FLEET_LEDGER_TEXT_MAX)) {
			errf(err, errsz,
			     "%s: at most %d bytes of UTF-8 text without control characters",
			     texts[i].col, FLEET_LEDGER_TEXT_MAX);
			return -EINVAL;
		}
	if (!hex4_ok(r->vendor)) {
		errf(err, errsz, "%s: expected 4 hex digits (e.g. 0781)", columns[4]);
		return -EINVAL;
	}
	if (!hex4_ok(r->product)) {
		errf(err, errsz, "%s: expected 4 hex digits (e.g. 5581)", columns[5]);
		return -EINVAL;
	}
	if (!r->serial[0]) {
		errf(err, errsz, "%s: required", columns[6]);
		return -EINVAL;
	}
	if (r->lent[0] && !date_valid(r->lent)) {
		errf(err, errsz, "%s: expected YYYY-MM-DD", columns[8]);
		return -EINVAL;
	}
	if (r->returned[0] && !date_valid(r->returned)) {
		errf(err, errsz, "%s: expected YYYY-MM-DD", columns[9]);
		return -EINVAL;
	}
	if (r->lent[0] && r->returned[0] && strcmp(r->returned, r->lent) < 0) {
		errf(err, errsz, "%s is before %s", columns[9], columns[8]);
		return -EINVAL;
	}
	return 0;
}

void fleet_ledger_row_clear(struct fleet_ledger_row *r)
{
	if (!r)
		return;
	free(r->number);
	free(r->holder);
	free(r->department);
	free(r->model);
	free(r->serial);
	free(r->note);
	free(r->last_terminal);
	*r = (struct fleet_ledger_row){0};
}

void fleet_ledger_rows_free(struct fleet_ledger_row *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++)
		fleet_ledger_row_clear(&rows[i]);
	free(rows);
}

/* ---- CSV reading ---- */

struct cells {
	char *v[FLEET_LEDGER_COLUMNS];
	size_t n;
};

static void cells_clear(struct cells *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i]);
	c->n = 0;
}

static bool guard_char(char c)
{
	return c == '=' || c == '+' || c == '-' || c == '@' || c == '\t' || c == '\r';
}

/* One line starting at *pos. 1 = a row, 0 = end of input, -EINVAL with err. */
static int read_row(const char *t, size_t len, size_t *pos, struct cells *ret, char *err,
		    size_t errsz)
{
	size_t p = *pos;

	ret->n = 0;
	if (p >= len)
		return 0;
	for (;;) {
		size_t cap = 64, n = 0;
		char *cell = malloc(cap);
		if (!cell)
			return -ENOMEM;
		if (p < len && t[p] == '"') {
			p++;
			for (;;) {
				if (p >= len) {
					free(cell);
					errf(err, errsz, "a quoted cell is not closed");
					return -EINVAL;
				}
				char ch = t[p];
				if (ch == '"') {
					if (p + 1 < len && t[p + 1] == '"')
						p += 2;
					else {
						p++;
						break;
					}
				} else
					p++;
				if (n + 2 > cap) {
					char *bigger = cap > 4 * FLEET_LEDGER_TEXT_MAX
							   ? NULL
							   : realloc(cell, cap * 2);
					if (!bigger) {
						free(cell);
						errf(err, errsz, "cell %zu: longer than %d bytes",
						     ret->n + 1, FLEET_LEDGER_TEXT_MAX);
						return -EINVAL;
					}
					cell = bigger;
					cap *= 2;
				}
				cell[n++] = ch;
			}
			if (p < len && t[p] != ',' && t[p] != '\r' && t[p] != '\n') {
				free(cell);
				errf(err, errsz, "cell %zu: text after the closing quote",
				     ret->n + 1);
				return -EINVAL;
			}
		} else {
			while (p < len && t[p] != ',' && t[p] != '\r' && t[p] != '\n') {
				if (t[p] == '"') {
					free(cell);
					errf(
					    err, errsz,
					    "cell %zu: a quote inside a cell that does not start with one",
					    ret->n + 1);
					return -EINVAL;
				}
				if (n + 2 > cap) {
					char *bigger = cap > 4 * FLEET_LEDGER_TEXT_MAX
							   ? NULL
							   : realloc(cell, cap * 2);
					if (!bigger) {
						free(cell);
						errf(err, errsz, "cell %zu: longer than %d bytes",
						     ret->n + 1, FLEET_LEDGER_TEXT_MAX);
						return -EINVAL;
					}
					cell = bigger;
					cap *= 2;
				}
				cell[n++] = t[p++];
			}
		}
		cell[n] = 0;
		if (strlen(cell) != n) {
			free(cell);
			errf(err, errsz, "cell %zu: a NUL byte", ret->n + 1);
			return -EINVAL;
		}
		if (ret->n >= FLEET_LEDGER_COLUMNS) {
			free(cell);
			errf(err, errsz, "more than %d cells", FLEET_LEDGER_COLUMNS);
			return -EINVAL;
		}
		ret->v[ret->n++] = cell;
		if (p >= len)
			break;
		if (t[p] == ',') {
			p++;
			continue;
		}
		if (t[p] == '\n') {
			p++;
			break;
		}
		if (t[p] == '\r' && p + 1 < len && t[p + 1] == '\n') {
			p += 2;
			break;
		}
		errf(err, errsz, "a CR that does not end the line");
		return -EINVAL;
	}
	*pos = p;
	return 1;
}

static int cells_to_row(struct cells *c, struct fleet_ledger_row *r, char *err, size_t errsz)
{
	char *v[FLEET_LEDGER_COLUMNS];

	*r = (struct fleet_ledger_row){0};
	if (c->n != FLEET_LEDGER_COLUMNS) {
		errf(err, errsz, "%zu cells, expected %d", c->n, FLEET_LEDGER_COLUMNS);
		return -EINVAL;
	}
	for (size_t i = 0; i < FLEET_LEDGER_COLUMNS; i++) {
		char *s = c->v[i];
		/* the export's guard against spreadsheet formulas */
		if (s[0] == '\'') {
			size_t k = 0;
			while (s[k] == '\'')
				k++;
			if (guard_char(s[k]))
				memmove(s, s + 1, strlen(s));
		}
		if (!text_ok(s, FLEET_LEDGER_TEXT_MAX)) {
			errf(err, errsz,
			     "%s: at most %d bytes of UTF-8 text without control characters",
			     columns[i], FLEET_LEDGER_TEXT_MAX);
			return -EINVAL;
		}
		v[i] = s;
	}
	if (strlen(v[4]) == 4)
		for (size_t i = 0; i < 4; i++)
			r->vendor[i] =
			    (char)(v[4][i] >= 'A' && v[4][i] <= 'F' ? v[4][i] + 32 : v[4][i]);
	else
		snprintf(r->vendor, sizeof(r->vendor), "%s", v[4][0] ? "?" : "");
	if (strlen(v[5]) == 4)
		for (size_t i = 0; i < 4; i++)
			r->product[i] =
			    (char)(v[5][i] >= 'A' && v[5][i] <= 'F' ? v[5][i] + 32 : v[5][i]);
	else
		snprintf(r->product, sizeof(r->product), "%s", v[5][0] ? "?" : "");
	if (strcmp(v[7], "はい") == 0)
		r->encrypted = true;
	else if (strcmp(v[7], "いいえ") != 0) {
		errf(err, errsz, "%s: expected はい or いいえ", columns[7]);
		return -EINVAL;
	}
	if (strlen(v[8]) > 10 || strlen(v[9]) > 10) {
		errf(err, errsz, "%s: expected YYYY-MM-DD", columns[strlen(v[8]) > 10 ? 8 : 9]);
		return -EINVAL;
	}
	memcpy(r->lent, v[8], strlen(v[8]) + 1);
	memcpy(r->returned, v[9], strlen(v[9]) + 1);
	/* columns 10 and 11 (last seen) are the collector's: ignored */
	r->number = TAKE_PTR(c->v[0]);
	r->holder = TAKE_PTR(c->v[1]);
	r->department = TAKE_PTR(c->v[2]);
	r->model = TAKE_PTR(c->v[3]);
	r->serial = TAKE_PTR(c->v[6]);
	r->note = TAKE_PTR(c->v[12]);
	return fleet_ledger_row_check(r, err, errsz);
}

int fleet_ledger_csv_parse(const char *text, size_t len, struct fleet_ledger_row **ret,
			   size_t *ret_n, char *err, size_t errsz)
{
	struct fleet_ledger_row *rows = NULL;
	size_t n = 0, pos = 0;
	unsigned line = 1;
	struct cells c = {0};
	char why[FLEET_LEDGER_ERR_MAX];
	int r;

	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
		pos = 3;
	r = read_row(text, len, &pos, &c, why, sizeof(why));
	if (r == 0) {
		errf(err, errsz, "line 1: the file is empty (expected the header line)");
		return -EINVAL;
	}
	if (r < 0)
		goto fail;
	if (c.n != FLEET_LEDGER_COLUMNS) {
		snprintf(why, sizeof(why), "the header line must be: %s", fleet_ledger_csv_header);
		r = -EINVAL;
		goto fail;
	}
	for (size_t i = 0; i < FLEET_LEDGER_COLUMNS; i++)
		if (strcmp(c.v[i], columns[i]) != 0) {
			snprintf(why, sizeof(why), "the header line must be: %s",
				 fleet_ledger_csv_header);
			r = -EINVAL;
			goto fail;
		}
	cells_clear(&c);
	for (;;) {
		line++;
		r = read_row(text, len, &pos, &c, why, sizeof(why));
		if (r == 0)
			break;
		if (r < 0)
			goto fail;
		if (n >= FLEET_LEDGER_MAX_ROWS) {
			snprintf(why, sizeof(why), "more than %d rows", FLEET_LEDGER_MAX_ROWS);
			r = -EINVAL;
			goto fail;
		}
		struct fleet_ledger_row *bigger = realloc(rows, (n + 1) * sizeof(*rows));
		if (!bigger) {
			r = -ENOMEM;
			goto fail;
		}
		rows = bigger;
		r = cells_to_row(&c, &rows[n], why, sizeof(why));
		n++; /* cleared below on failure: partly filled rows are freed too */
		cells_clear(&c);
		if (r < 0)
			goto fail;
		for (size_t i = 0; i + 1 < n; i++)
			if (strcmp(rows[i].number, rows[n - 1].number) == 0) {
				snprintf(why, sizeof(why), "%s %s is also on an earlier line",
					 columns[0], rows[n - 1].number);
				r = -EINVAL;
				goto fail;
			}
	}
	*ret = rows;
	*ret_n = n;
	return 0;
fail:
	cells_clear(&c);
	fleet_ledger_rows_free(rows, n);
	if (r == -ENOMEM)
		errf(err, errsz, "out of memory");
	else
		errf(err, errsz, "line %u: %s", line, why);
	return r;
}

/* ---- CSV writing ---- */

struct sbuf {
	char *p;
	size_t n, cap;
	bool oom;
};

static void sb_add(struct sbuf *b, const char *s, size_t len)
{
	if (b->oom)
		return;
	if (b->n + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->n + len + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, len);
	b->n += len;
	b->p[b->n] = 0;
}

static void sb_cell(struct sbuf *b, const char *s, bool last)
{
	size_t k = 0;

	s = s ? s : "";
	while (s[k] == '\'')
		k++;
	sb_add(b, "\"", 1);
	if (guard_char(s[k]))
		sb_add(b, "'", 1);
	for (const char *q = s; *q; q++) {
		sb_add(b, q, 1);
		if (*q == '"')
			sb_add(b, "\"", 1);
	}
	sb_add(b, last ? "\"\r\n" : "\",", last ? 3 : 2);
}

int fleet_ledger_csv_write(const struct fleet_ledger_row *rows, size_t n, char **ret,
			   size_t *ret_len)
{
	struct sbuf b = {0};

	sb_add(&b, "\xEF\xBB\xBF", 3);
	sb_add(&b, fleet_ledger_csv_header, strlen(fleet_ledger_csv_header));
	sb_add(&b, "\r\n", 2);
	for (size_t i = 0; i < n; i++) {
		const struct fleet_ledger_row *r = &rows[i];
		char seen[32] = "";
		if (r->last_seen_ms > 0) {
			time_t t = (time_t)(r->last_seen_ms / 1000) + JST_OFFSET;
			struct tm tm;
			gmtime_r(&t, &tm);
			strftime(seen, sizeof(seen), "%Y-%m-%d %H:%M:%S", &tm);
		}
		sb_cell(&b, r->number, false);
		sb_cell(&b, r->holder, false);
		sb_cell(&b, r->department, false);
		sb_cell(&b, r->model, false);
		sb_cell(&b, r->vendor, false);
		sb_cell(&b, r->product, false);
		sb_cell(&b, r->serial, false);
		sb_cell(&b, r->encrypted ? "はい" : "いいえ", false);
		sb_cell(&b, r->lent, false);
		sb_cell(&b, r->returned, false);
		sb_cell(&b, r->last_terminal, false);
		sb_cell(&b, seen, false);
		sb_cell(&b, r->note, true);
	}
	if (b.oom) {
		free(b.p);
		return -ENOMEM;
	}
	*ret = b.p;
	*ret_len = b.n;
	return 0;
}
