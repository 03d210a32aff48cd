/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: the printable monthly self-inspection report (自己点検報告書,
 * docs/evidence.md "Self-inspection report"): compliance per clause over the month for all
 * terminals or one group, the failures, and the log review's sign-off. One HTML document
 * without scripts; /style.css carries its print rules (A4, page breaks). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "evidence-verify.h"
#include "ingest.h"
#include "macro.h"
#include "review.h"
#include "server.h"
#include "store.h"

#define REPORT_CLAUSES_MAX 64
#define REPORT_LIST_MAX	   50 /* terminals named per clause and in the failure table */

/* The clause titles (docs: the city's policy, summarised in the collector's clause map). */
static const struct {
	const char *id, *ja, *en;
} titles[] = {
    {"2-2-6", "機密性", "confidentiality"},
    {"2-2-7", "完全性", "integrity"},
    {"2-2-8", "可用性", "availability"},
    {"2-3-1", "脅威（不正アクセス・内部不正）", "threats: unauthorized access"},
    {"2-3-2", "脅威（情報資産の無断持ち出し・設定不備）",
     "threats: carrying out, misconfiguration"},
    {"2-6-3-a", "マイナンバー利用事務系（持ち出し不可設定・多要素認証）",
     "My Number segment: no carrying out, multi-factor authentication"},
    {"2-6-4", "物理的セキュリティ", "physical security"},
    {"2-6-6", "技術的セキュリティ", "technical security"},
    {"2-6-7", "運用（監視・遵守状況の確認）", "operations: monitoring, compliance"},
    {"2-7", "監査及び自己点検", "audit and self-inspection"},
    {"2-8", "評価・見直し", "review of the policy"},
};

static const char *title_of(const char *id, bool en)
{
	for (size_t i = 0; i < ELEMENTSOF(titles); i++)
		if (strcmp(titles[i].id, id) == 0)
			return en ? titles[i].en : titles[i].ja;
	return "";
}

static void html(FILE *f, const char *s)
{
	for (; s && *s; s++)
		switch (*s) {
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '&':
			fputs("&amp;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&#39;", f);
			break;
		default:
			fputc(*s, f);
		}
}

/* "2026-12-05 21:53 JST" from ms since the epoch */
static void jst_text(int64_t ms, char out[32])
{
	time_t t = (time_t)((ms + REVIEW_JST_MS) / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%d %H:%M JST", &tm);
}

/* the same from an event time ("2026-12-05T12:53:49.644Z"); as it is when it does not parse */
static void html_time(FILE *f, const char *iso)
{
	struct tm tm = {0};
	const char *end = iso ? strptime(iso, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
	char buf[32];

	if (!end) {
		html(f, iso);
		return;
	}
	jst_text((int64_t)timegm(&tm) * 1000, buf);
	fputs(buf, f);
}

struct failing {
	char *terminal;
	unsigned days;
};

struct clause_acc {
	char id[33];
	unsigned long long total, ok; /* terminal-days */
	bool seen, failed;	      /* the current terminal-day */
	unsigned term_fail_days;      /* the current terminal */
	struct failing *list;
	size_t n, cap;
	unsigned terminals; /* failing terminals in all */
};

struct acc {
	struct clause_acc c[REPORT_CLAUSES_MAX];
	size_t n;
	char terminal[EVENT_TERMINAL_MAX + 1];
	unsigned day;
	bool started;
	char **members; /* sorted; NULL: every terminal */
	size_t n_members;
	unsigned long long terminals;
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool member(const struct acc *a, const char *t)
{
	return !a->members || bsearch(&t, a->members, a->n_members, sizeof(char *), cmp_str);
}

static void commit_day(struct acc *a)
{
	for (size_t i = 0; i < a->n; i++) {
		struct clause_acc *c = &a->c[i];
		if (!c->seen)
			continue;
		c->total++;
		if (c->failed)
			c->term_fail_days++;
		else
			c->ok++;
		c->seen = c->failed = false;
	}
}

static int commit_terminal(struct acc *a)
{
	for (size_t i = 0; i < a->n; i++) {
		struct clause_acc *c = &a->c[i];
		if (!c->term_fail_days)
			continue;
		c->terminals++;
		if (c->n < REPORT_LIST_MAX) {
			if (c->n == c->cap) {
				size_t cap = c->cap ? c->cap * 2 : 8;
				struct failing *l = realloc(c->list, cap * sizeof(*l));
				if (!l)
					return -ENOMEM;
				c->list = l;
				c->cap = cap;
			}
			c->list[c->n].terminal = strdup(a->terminal);
			if (!c->list[c->n].terminal)
				return -ENOMEM;
			c->list[c->n++].days = c->term_fail_days;
		}
		c->term_fail_days = 0;
	}
	return 0;
}

/* One check of the terminal on one day: its clause ids, and whether it failed that day. */
static int on_day(struct acc *a, const char *terminal, unsigned day, json_t *clause, bool failed)
{
	size_t i;
	json_t *cl;
	int r;

	if (!a->started || strcmp(a->terminal, terminal) != 0 || a->day != day) {
		if (a->started)
			commit_day(a);
		if (a->started && strcmp(a->terminal, terminal) != 0) {
			r = commit_terminal(a);
			if (r < 0)
				return r;
		}
		if (!a->started || strcmp(a->terminal, terminal) != 0)
			a->terminals++;
		snprintf(a->terminal, sizeof(a->terminal), "%s", terminal);
		a->day = day;
		a->started = true;
	}
	json_array_foreach(clause, i, cl)
	{
		const char *id = json_string_value(cl);
		size_t k;
		if (!id || strlen(id) > 32)
			continue;
		for (k = 0; k < a->n; k++)
			if (strcmp(a->c[k].id, id) == 0)
				break;
		if (k == a->n) {
			if (a->n == REPORT_CLAUSES_MAX)
				continue;
			snprintf(a->c[a->n++].id, sizeof(a->c[0].id), "%s", id);
		}
		a->c[k].seen = true;
		if (failed)
			a->c[k].failed = true;
	}
	return 0;
}

/* ---- each check's days, from the daily history ---- */

/* A check of the terminal as the days go by: its status carried into the days without a
 * snapshot, the worst of the current day, its clause ids (parsed again only when they change). */
struct check_run {
	char *id, *clause_text;
	json_t *clause;
	int last, worst; /* 0 not_applicable, 1 pass, 2 fail or error */
};

struct run {
	struct acc *a;
	struct check_run *c;
	size_t n, cap;
	char terminal[EVENT_TERMINAL_MAX + 1];
	unsigned day; /* the next day to count */
	unsigned ndays;
};

static void run_clear(struct run *u)
{
	for (size_t i = 0; i < u->n; i++) {
		free(u->c[i].id);
		free(u->c[i].clause_text);
		json_decref(u->c[i].clause);
	}
	u->n = 0;
	u->day = 0;
}

/* Counts the days before `until` (exclusive): a day is failing for a check when a snapshot
 * failed it that day or the day began with it failing. */
static int run_flush(struct run *u, unsigned until)
{
	for (; u->day < until && u->day < u->ndays; u->day++)
		for (size_t i = 0; i < u->n; i++) {
			struct check_run *c = &u->c[i];
			int r = on_day(u->a, u->terminal, u->day, c->clause, c->worst == 2);
			if (r < 0)
				return r;
			c->worst = c->last;
		}
	return 0;
}

/* One row of check_last_days: day relative to the month's first (below 0: the terminal's last
 * day before the month, its newest snapshot's checks only). */
static int run_row(struct run *u, int64_t day, const char *id, const char *status, int worst,
		   const char *clause)
{
	struct check_run *c = NULL;
	int last = strcmp(status, "fail") == 0 || strcmp(status, "error") == 0 ? 2
		   : strcmp(status, "pass") == 0			       ? 1
									       : 0;
	int r = 0;

	if (day > 0)
		r = run_flush(u, (unsigned)day);
	if (r < 0)
		return r;
	for (size_t i = 0; i < u->n && !c; i++)
		if (strcmp(u->c[i].id, id) == 0)
			c = &u->c[i];
	if (!c) {
		if (u->n == u->cap) {
			size_t cap = u->cap ? u->cap * 2 : 16;
			struct check_run *n = realloc(u->c, cap * sizeof(*n));
			if (!n)
				return -ENOMEM;
			u->c = n;
			u->cap = cap;
		}
		c = &u->c[u->n];
		*c = (struct check_run){.id = strdup(id), .worst = day < 0 ? last : worst};
		if (!c->id)
			return -ENOMEM;
		u->n++;
	} else if (worst > c->worst)
		c->worst = worst;
	c->last = last;
	if (!c->clause_text || strcmp(c->clause_text, clause) != 0) {
		json_t *j = json_loads(clause, 0, NULL);
		free(c->clause_text);
		json_decref(c->clause);
		c->clause_text = strdup(clause);
		c->clause = json_is_array(j) ? j : (json_decref(j), json_array());
		if (!c->clause_text || !c->clause)
			return -ENOMEM;
	}
	return 0;
}

/* Every terminal's checks per day of the month, in terminal order, from the daily history
 * (check_last_days, snapshot_days): each check's worst status of a day with a snapshot, its
 * newest status carried into the days after, and from the terminal's newest snapshot before
 * the month. The same days as the snapshots themselves give (evidence_daily()). */
static int clause_days_read(struct review_db *db, int64_t from_day, unsigned ndays, struct acc *a)
{
	struct review_q *st = review_q_prep(
	    db,
	    "SELECT t.name, c.day, c.check_id, c.status, c.worst, c.clause"
	    " FROM terminals t CROSS JOIN check_last_days c WHERE c.tid = t.id"
	    " AND c.day >= coalesce((SELECT max(p.day) FROM snapshot_days p WHERE p.tid = t.id"
	    " AND p.day < ?1), ?1) AND c.day < ?2 AND (c.day >= ?1 OR c.ts = (SELECT s.ts"
	    " FROM snapshot_days s WHERE s.tid = t.id AND s.day = c.day))"
	    " ORDER BY t.name " REVIEW_Q_C ", c.day, c.check_id " REVIEW_Q_C,
	    /* PostgreSQL planned the same text as a hash join over the whole history, 40 s at
	     * 1,000 terminals × a year; the fenced LATERAL (OFFSET 0) makes it one index range per
	     * terminal (0.25 s), the terminals in order spare the sort of every row */
	    "SELECT t.name, c.day, c.check_id, c.status, c.worst, c.clause"
	    " FROM (SELECT id, name FROM terminals ORDER BY name COLLATE \"C\") t"
	    " LEFT JOIN LATERAL (SELECT day, ts FROM snapshot_days p WHERE p.tid = t.id"
	    " AND p.day < ?1 ORDER BY day DESC LIMIT 1) p ON true"
	    " CROSS JOIN LATERAL (SELECT * FROM check_last_days c WHERE c.tid = t.id"
	    " AND c.day >= coalesce(p.day, ?1) AND c.day < ?2 OFFSET 0) c"
	    " WHERE c.day >= ?1 OR c.ts = p.ts"
	    " ORDER BY t.name COLLATE \"C\", c.day, c.check_id COLLATE \"C\"");
	struct run u = {.a = a, .ndays = ndays};
	int rc, r = 0;

	if (!st)
		return -EIO;
	review_q_int(st, 1, from_day);
	review_q_int(st, 2, from_day + ndays);
	while (r >= 0 && (rc = review_q_step(st)) == 1) {
		const char *t = review_q_col(st, 0);
		if (!member(a, t))
			continue;
		if (strcmp(u.terminal, t) != 0) {
			r = run_flush(&u, ndays);
			run_clear(&u);
			snprintf(u.terminal, sizeof(u.terminal), "%s", t);
		}
		if (r >= 0)
			r = run_row(&u, review_q_int_col(st, 1) - from_day, review_q_col(st, 2),
				    review_q_col(st, 3), (int)review_q_int_col(st, 4),
				    review_q_col(st, 5));
	}
	if (r >= 0 && rc < 0)
		r = -EIO;
	if (r >= 0)
		r = run_flush(&u, ndays);
	run_clear(&u);
	free(u.c);
	review_q_free(st);
	return r;
}

static int cmp_clause(const void *x, const void *y)
{
	return strcmp(((const struct clause_acc *)x)->id, ((const struct clause_acc *)y)->id);
}

static int load_members(struct review_db *db, const char *group, struct acc *a, char *err,
			size_t errsz)
{
	struct review_q *st;
	size_t cap = 0;
	int rc;

	if (!review_db_has_table(db, "fleet_groups")) { /* PostgreSQL: no fleet yet */
		snprintf(err, errsz, "no such group: the fleet has no groups");
		return -ENOENT;
	}
	st = review_q_prep(db, "SELECT 1 FROM fleet_groups WHERE name = ?1", NULL);
	if (!st)
		return -EIO;
	review_q_text(st, 1, group);
	rc = review_q_step(st);
	review_q_free(st);
	if (rc < 0)
		return -EIO;
	if (rc != 1) {
		snprintf(err, errsz, "no such group");
		return -ENOENT;
	}
	st = review_q_prep(db, "SELECT terminal FROM fleet_members WHERE grp = ?1", NULL);
	if (!st)
		return -EIO;
	review_q_text(st, 1, group);
	a->members = calloc(1, sizeof(char *));
	while (a->members && (rc = review_q_step(st)) == 1) {
		if (a->n_members == cap) {
			cap = cap ? cap * 2 : 64;
			char **m = realloc(a->members, cap * sizeof(char *));
			if (!m)
				break;
			a->members = m;
		}
		a->members[a->n_members] = strdup(review_q_col(st, 0));
		if (!a->members[a->n_members])
			break;
		a->n_members++;
	}
	review_q_free(st);
	if (!a->members || rc != 0)
		return -ENOMEM;
	qsort(a->members, a->n_members, sizeof(char *), cmp_str);
	return 0;
}

static void acc_free(struct acc *a)
{
	for (size_t i = 0; i < a->n; i++) {
		for (size_t k = 0; k < a->c[i].n; k++)
			free(a->c[i].list[k].terminal);
		free(a->c[i].list);
	}
	for (size_t i = 0; i < a->n_members; i++)
		free(a->members[i]);
	free(a->members);
}

/* Failures of the month per terminal (of the group): failed logins, lockouts, USB blocks, from
 * the daily history's counts per terminal and day (kind_days, kept by the writer with every event
 * of these kinds, late ones included): a few index ranges instead of the month's events, and
 * the counts stay when the events are disposed of. The month is whole days in Japan. */
static int failure_table(struct review_db *db, const struct review_period *p, const struct acc *a,
			 FILE *f)
{
#define FAILURE_N(k) "sum(CASE k.kind WHEN '" k "' THEN k.n ELSE 0 END)"
	struct review_q *st = review_q_prep(
	    db,
	    "SELECT t.name, " FAILURE_N("auth.failure") ", " FAILURE_N("auth.locked") ", " FAILURE_N(
		"usb.blocked") " FROM kind_days k JOIN terminals t ON t.id = k.tid"
			       " WHERE k.kind IN ('auth.failure', 'auth.locked', 'usb.blocked')"
			       " AND k.day >= ?1 AND k.day < ?2 GROUP BY t.name"
			       " ORDER BY sum(k.n) DESC, t.name " REVIEW_Q_C,
	    NULL);
	unsigned long long tot[3] = {0, 0, 0};
	unsigned shown = 0;
	int rc;

	if (!st)
		return -EIO;
	review_q_int(st, 1, store_day(p->from_ms));
	review_q_int(st, 2, store_day(p->to_ms));
	fputs(
	    "<table class=\"failures\"><thead><tr><th>端末 <span class=\"en\">terminal</span></th>"
	    "<th>ログイン失敗 <span class=\"en\">failed logins</span></th>"
	    "<th>ロックアウト <span class=\"en\">lockouts</span></th>"
	    "<th>USB 遮断 <span class=\"en\">USB blocked</span></th></tr></thead><tbody>\n",
	    f);
	while ((rc = review_q_step(st)) == 1) {
		const char *t = review_q_col(st, 0);
		if (!member(a, t))
			continue;
		for (int i = 0; i < 3; i++)
			tot[i] += (unsigned long long)review_q_int_col(st, i + 1);
		if (shown++ >= REPORT_LIST_MAX)
			continue;
		fputs("<tr><td>", f);
		html(f, t);
		fprintf(f,
			"</td><td class=\"num\">%lld</td><td class=\"num\">%lld</td>"
			"<td class=\"num\">%lld</td></tr>\n",
			(long long)review_q_int_col(st, 1), (long long)review_q_int_col(st, 2),
			(long long)review_q_int_col(st, 3));
	}
	review_q_free(st);
	if (shown == 0)
		fputs("<tr><td colspan=\"4\">なし <span class=\"en\">none</span></td></tr>\n", f);
	fprintf(f,
		"</tbody><tfoot><tr><th>合計 <span class=\"en\">total</span>%s</th>"
		"<td class=\"num\">%llu</td><td class=\"num\">%llu</td><td class=\"num\">%llu</td>"
		"</tr></tfoot></table>\n",
		shown > REPORT_LIST_MAX ? "（上位 50 端末を表示）" : "", tot[0], tot[1], tot[2]);
	return rc == 0 ? 0 : -EIO;
}

static void signoff_section(struct review_db *db, const struct review_period *p, bool hide_personal,
			    FILE *f)
{
	json_t *list = NULL, *o;
	size_t i, n = 0;

	fputs("<section class=\"review\"><h2>ログの点検 <span class=\"en\">log review "
	      "sign-off</span></h2>\n",
	      f);
	if (review_signoffs(db, NULL, 10000, &list) < 0) {
		fputs("<p>読み出せませんでした <span class=\"en\">cannot be read</span></p>"
		      "</section>\n",
		      f);
		return;
	}
	json_array_foreach(list, i, o)
	{
		struct review_period q;
		if (review_period_parse(json_string_value(json_object_get(o, "period")), &q, NULL,
					0) < 0 ||
		    q.to_ms <= p->from_ms || q.from_ms >= p->to_ms)
			continue;
		/* the reviewer and the comment (which may name a user), as the JSON hides them */
		if (hide_personal)
			auth_redact(o);
		if (n++ == 0)
			fputs(
			    "<table><thead><tr><th>期間 <span class=\"en\">period</span></th>"
			    "<th>点検者 <span class=\"en\">reviewer</span></th>"
			    "<th>日時 <span class=\"en\">signed at</span></th>"
			    "<th>件数 <span class=\"en\">items</span></th>"
			    "<th>所見 <span class=\"en\">comment</span></th></tr></thead><tbody>\n",
			    f);
		fputs("<tr class=\"signed\"><td>", f);
		html(f, json_string_value(json_object_get(o, "period")));
		fputs("</td><td>", f);
		html(f, json_string_value(json_object_get(o, "reviewer")));
		fputs("</td><td>", f);
		html_time(f, json_string_value(json_object_get(o, "ts")));
		fprintf(f, "</td><td class=\"num\">%lld</td><td class=\"comment\">",
			(long long)json_integer_value(json_object_get(o, "items")));
		html(f, json_string_value(json_object_get(o, "comment")));
		fputs("</td></tr>\n", f);
	}
	if (n)
		fputs("</tbody></table>\n", f);
	else
		fputs("<p class=\"unsigned\">未実施: この月の点検の承認はありません。 "
		      "<span class=\"en\">not signed off for this month</span></p>\n",
		      f);
	fputs("</section>\n", f);
	json_decref(list);
}

int report_selfcheck_html(struct review_db *db, const char *month, const char *group,
			  bool hide_personal, FILE *f, char *err, size_t errsz)
{
	struct review_period p;
	struct acc a = {0};
	char gen[32];
	int r;

	if (!month || strlen(month) != 7 || review_period_parse(month, &p, err, errsz) < 0) {
		snprintf(err, errsz, "month: expected YYYY-MM");
		return -EINVAL;
	}
	if (group) {
		r = load_members(db, group, &a, err, errsz);
		if (r < 0) {
			acc_free(&a);
			return r;
		}
	}
	r = clause_days_read(db, store_day(p.from_ms),
			     (unsigned)((p.to_ms - p.from_ms) / REVIEW_DAY_MS), &a);
	if (r >= 0 && a.started) {
		commit_day(&a);
		r = commit_terminal(&a);
	}
	if (r < 0) {
		acc_free(&a);
		snprintf(err, errsz, "the store cannot answer now");
		return r;
	}
	if (a.n)
		qsort(a.c, a.n, sizeof(a.c[0]), cmp_clause);
	jst_text(server_now_ms(), gen);

	fputs("<!doctype html>\n<html lang=\"ja\"><head><meta charset=\"utf-8\">\n"
	      "<title>自己点検報告書 ",
	      f);
	html(f, p.name);
	fputs("</title>\n<link rel=\"stylesheet\" href=\"/style.css\"></head>\n"
	      "<body class=\"report\"><main class=\"report\">\n<div class=\"report-head\">"
	      "<h1>自己点検報告書 <span class=\"en\">self-inspection report</span></h1>\n"
	      "<dl><dt>対象月 <span class=\"en\">month</span></dt><dd id=\"report-month\">",
	      f);
	html(f, p.name);
	fputs("</dd><dt>対象 <span class=\"en\">terminals</span></dt><dd id=\"report-group\">", f);
	if (group) {
		fputs("グループ ", f);
		html(f, group);
	} else
		fputs("全端末 <span class=\"en\">all terminals</span>", f);
	fprintf(f,
		"</dd><dt>端末数 <span class=\"en\">reporting</span></dt><dd>%llu</dd>"
		"<dt>作成 <span class=\"en\">generated</span></dt><dd>%s</dd></dl>\n"
		"<p class=\"basis\">情報セキュリティポリシー 2-7（監査及び自己点検）に基づき、"
		"mynaguard が収集した端末の遵守状況を条項ごとに集計した。端末日: 端末 1 台の "
		"1 日。その日に条項の検査が一度でも不適合なら不適合の端末日とする。</p>\n"
		"</div>\n",
		a.terminals, gen);

	fputs("<section class=\"clauses\"><h2>条項ごとの遵守状況 <span class=\"en\">compliance "
	      "per clause</span></h2>\n<table><thead><tr><th>条項 <span "
	      "class=\"en\">clause</span></th><th>内容</th><th>遵守率 <span "
	      "class=\"en\">rate</span></th><th>遵守端末日 / 端末日</th><th>不適合の端末（日数）"
	      "<span class=\"en\">failing terminals (days)</span></th></tr></thead><tbody>\n",
	      f);
	for (size_t i = 0; i < a.n; i++) {
		struct clause_acc *c = &a.c[i];
		fputs("<tr><td class=\"clause\">", f);
		html(f, c->id);
		fputs("</td><td>", f);
		html(f, title_of(c->id, false));
		fprintf(
		    f,
		    "</td><td class=\"num rate\">%.1f%%</td><td class=\"num\">%llu / %llu</td><td>",
		    c->total ? 100.0 * (double)c->ok / (double)c->total : 0.0, c->ok, c->total);
		if (!c->terminals)
			fputs("なし", f);
		for (size_t k = 0; k < c->n; k++) {
			fputs(k ? "、" : "", f);
			html(f, c->list[k].terminal);
			fprintf(f, "（%u）", c->list[k].days);
		}
		if (c->terminals > c->n)
			fprintf(f, " ほか %zu 台", (size_t)c->terminals - c->n);
		fputs("</td></tr>\n", f);
	}
	if (a.n == 0)
		fputs("<tr><td colspan=\"5\">この月の報告はありません <span class=\"en\">no "
		      "reports this month</span></td></tr>\n",
		      f);
	fputs("</tbody></table></section>\n", f);

	fputs("<section class=\"failures page-break\"><h2>失敗・遮断 <span class=\"en\">failures"
	      "</span></h2>\n",
	      f);
	r = failure_table(db, &p, &a, f);
	fputs("</section>\n", f);
	if (r >= 0) {
		signoff_section(db, &p, hide_personal, f);
		fputs(
		    "<section class=\"stamps\"><h2>確認 <span class=\"en\">approval</span></h2>"
		    "<table><tr><th>情報システム管理者</th><th>情報セキュリティ責任者</th>"
		    "<th>統括情報セキュリティ責任者</th></tr><tr class=\"stamp\"><td></td><td></td>"
		    "<td></td></tr></table></section>\n</main></body></html>\n",
		    f);
	}
	acc_free(&a);
	if (r < 0)
		snprintf(err, errsz, "the store cannot answer now");
	return r;
}
