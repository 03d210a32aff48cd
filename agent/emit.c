/* SPDX-License-Identifier: MIT */
/* mynaguardd's worker: numbers, stamps and durably spools every event; collects the PAM fallback
 * file. Files are reached through the monitor (priv.h): the spool, STATE/seq, the fallback file. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "config.h"
#include "emit-internal.h"
#include "escape.h"
#include "fileio.h"
#include "macro.h"
#include "parse.h"
#include "priv.h"
#include "spool.h"

/* STATE/seq holds a number R such that every sequence number ever assigned is below R; it is
 * raised in blocks before numbers are used. It matters only when the spool was lost. */
#define SEQ_FILE	  "seq"
#define SEQ_RESERVE	  1024
#define PENDING_DIR	  "totp"
#define PENDING_FILE	  ".pending-events"
#define LOG_DATA_MAX	  1024
#define SPOOL_RETRY_MS	  10000
#define REFUSED_REPORT_MS 10000 /* unprivileged records refused: one spool.dropped per 10 s */

struct agent_emit {
	struct priv_spool *spool; /* NULL while it cannot be opened */
	char *spool_dir;
	uint64_t max_bytes;
	int64_t retry_at_ms;
	int state_fd; /* >= 0: the monitor has STATE (the fd is its business) */
	uint64_t next_seq;
	uint64_t reserved; /* contents of STATE/seq */
	uint64_t stored;
	uint64_t lost;
	unsigned depth; /* spool.dropped emitted from inside an emit */
	/* Unprivileged records the spool refused (share full), not yet announced. */
	uint64_t refused_pending;
	uint64_t refused_total;
	int64_t refused_reported_ms;
	int report_tfd; /* one-shot timer for a deferred announcement, -1 = none */
	bool report_armed;
	int ack_ino; /* inotify on SPOOL/ack: the uplink acknowledged something, -1 = none */
	bool ack_watch_tried;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

json_t *agent_emit_auth_clauses(void)
{
	return json_pack("[s,s]", "2-6-3-a", "2-3-1");
}

static int read_reserved(int state_fd, uint64_t *ret)
{
	return priv_seq_read(ret);
}

static int write_reserved(struct agent_emit *e, uint64_t r)
{
	int k = priv_seq_write(r);
	if (k < 0)
		return k;
	e->reserved = r;
	return 0;
}

static void log_event(const struct event *ev)
{
	char ts[32];
	_cleanup_free_ char *data = json_dumps(ev->data, JSON_COMPACT | JSON_ENSURE_ASCII);
	_cleanup_free_ char *clause = json_dumps(ev->clause, JSON_COMPACT | JSON_ENSURE_ASCII);
	event_format_ts(ev->ts_ms, ts);
	if (data && strlen(data) > LOG_DATA_MAX)
		strcpy(data + LOG_DATA_MAX - 3, "...");
	log_line(LOG_INFO, "event seq=%" PRIu64 " kind=%s ts=%s clause=%s data=%s", ev->seq,
		 event_kind_name(ev->kind), ts, clause ? clause : "[]", data ? data : "{}");
}

static void emit_dropped(struct agent *a, const struct spool_drop *d, const char *reason);
static bool spool_ready(struct agent_emit *e);
static void check_ack(struct agent *a);
static void watch_ack(struct agent *a, struct agent_emit *e);

int64_t agent_emit_at(struct agent *a, enum event_kind kind, int64_t ts_ms, json_t *clauses,
		      json_t *data, bool sync)
{
	return agent_emit_class(a, kind, ts_ms, SPOOL_CLASS_PROTECTED, clauses, data, sync);
}

int64_t agent_emit_class(struct agent *a, enum event_kind kind, int64_t ts_ms, enum spool_class cls,
			 json_t *clauses, json_t *data, bool sync)
{
	struct agent_emit *e = *agent_emit_slot(a);
	const struct policy *p = agent_policy(a);
	struct event ev = {.kind = kind, .ts_ms = ts_ms > 0 ? ts_ms : now_ms()};
	char reason[EVENT_REASON_MAX];

	ev.clause = clauses ? clauses : json_array();
	ev.data = data ? data : json_object();
	if (!e) {
		event_clear(&ev);
		return -ENODEV;
	}
	if (!spool_ready(e)) {
		_cleanup_free_ char *text = json_dumps(ev.data, JSON_COMPACT | JSON_ENSURE_ASCII);
		if (text && strlen(text) > LOG_DATA_MAX)
			strcpy(text + LOG_DATA_MAX - 3, "...");
		log_line(LOG_ERR, "event.lost kind=%s error=\"spool not open\" data=%s",
			 event_kind_name(kind), text ? text : "{}");
		e->lost++;
		event_clear(&ev);
		return -ENODEV;
	}
	if (!p || !p->terminal_id || !event_terminal_id_valid(p->terminal_id)) {
		log_line(LOG_ERR, "event.lost kind=%s error=\"no valid terminal id in the policy\"",
			 event_kind_name(kind));
		event_clear(&ev);
		e->lost++;
		return -EINVAL;
	}
	memcpy(ev.terminal, p->terminal_id, strlen(p->terminal_id) + 1);
	watch_ack(a, e);
	ev.seq = e->next_seq;

	if (ev.seq >= e->reserved && e->state_fd >= 0) {
		int r = write_reserved(e, ev.seq + SEQ_RESERVE);
		if (r < 0)
			log_line(
			    LOG_WARNING,
			    "emit.warning op=reserve-seq error=\"%s\", continuing (numbers are "
			    "still unique while the spool survives)",
			    strerror(-r));
	}

	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = event_encode(&ev, &text, &len);
	if (r >= 0) {
		/* Only what the collector will accept goes into the spool: a poisoned record
		 * would block the upload queue forever. */
		struct event check;
		r = event_decode(text, len, &check, reason);
		if (r >= 0)
			event_clear(&check);
		else
			log_line(LOG_ERR, "event.lost kind=%s error=\"invalid: %s\"",
				 event_kind_name(kind), reason);
	} else
		log_line(LOG_ERR, "event.lost kind=%s error=\"cannot encode: %s\"",
			 event_kind_name(kind), strerror(-r));
	if (r < 0) {
		e->lost++;
		event_clear(&ev);
		return r;
	}

	struct spool_drop drop = {0};
	r = priv_spool_append(e->spool, ev.seq, cls, text, len, &drop);
	if (r == -ENOSPC && cls == SPOOL_CLASS_UNPRIVILEGED) {
		/* The unprivileged share is full: this one goes, counted, nothing else does. */
		e->refused_pending++;
		e->refused_total++;
		event_clear(&ev);
		return r;
	}
	if (r < 0) {
		log_line(LOG_ERR, "event.lost seq=%" PRIu64 " kind=%s error=\"spool: %s\"", ev.seq,
			 event_kind_name(kind), spool_strerror(r));
		e->lost++;
		event_clear(&ev);
		return r;
	}
	if (sync) {
		/* Appended but not known to be on disk: it keeps its number (the next one must not
		 * reuse it) and the next successful sync may still save it. */
		int k = priv_spool_sync(e->spool);
		if (k < 0)
			log_line(LOG_WARNING, "event.unsynced seq=%" PRIu64 " kind=%s error=\"%s\"",
				 ev.seq, event_kind_name(kind), strerror(-k));
	}
	e->next_seq = ev.seq + 1;
	e->stored++;
	log_event(&ev);
	event_clear(&ev);
	if (drop.count > 0 || drop.segments > 0)
		emit_dropped(a, &drop, "spool full");
	if (sync && e->depth == 0 && e->ack_ino < 0)
		check_ack(a); /* no watch on ack/: take acknowledgements as events are stored */
	return (int64_t)ev.seq;
}

static void arm_report_timer(struct agent_emit *e, int64_t delay_ms)
{
	if (e->report_tfd < 0 || e->report_armed)
		return;
	if (delay_ms < 1)
		delay_ms = 1;
	struct itimerspec its = {
	    .it_value = {.tv_sec = delay_ms / 1000, .tv_nsec = (delay_ms % 1000) * 1000000}};
	if (timerfd_settime(e->report_tfd, 0, &its, NULL) == 0)
		e->report_armed = true;
}

/* Announce the unprivileged records refused since the last announcement: at once for the first,
 * then at most once per REFUSED_REPORT_MS (a one-shot timer catches the rest; force: now, e.g.
 * at stop). No timer runs while nothing is pending: the agent stays asleep when idle. */
static void report_refused(struct agent *a, bool force)
{
	struct agent_emit *e = *agent_emit_slot(a);
	int64_t now = now_ms();
	if (!e || e->refused_pending == 0 || e->depth > 0)
		return;
	if (!force && e->refused_reported_ms != 0 &&
	    now - e->refused_reported_ms < REFUSED_REPORT_MS) {
		arm_report_timer(e, REFUSED_REPORT_MS - (now - e->refused_reported_ms));
		return;
	}
	uint64_t n = e->refused_pending;
	log_line(LOG_WARNING,
		 "spool.dropped count=%" PRIu64 " total=%" PRIu64
		 " reason=\"unprivileged share full\" (datagrams from non-root senders; nothing "
		 "else was removed for them)",
		 n, e->refused_total);
	e->depth++;
	int64_t k = agent_emit_at(
	    a, EVENT_SPOOL_DROPPED, 0, json_pack("[s]", "2-2-7"),
	    json_pack("{s:I, s:s}", "count", (json_int_t)n, "reason", "unprivileged share full"),
	    true);
	e->depth--;
	if (k >= 0) {
		e->refused_pending -= n;
		e->refused_reported_ms = now;
	} else
		arm_report_timer(e, REFUSED_REPORT_MS);
}

static void on_report_timer(struct agent *a, int fd, uint32_t events, void *userdata)
{
	struct agent_emit *e = *agent_emit_slot(a);
	uint64_t expirations;
	while (read(fd, &expirations, sizeof expirations) > 0)
		;
	if (!e)
		return;
	e->report_armed = false;
	report_refused(a, false);
}

/* The uplink replaced ack/acked: delete what it acknowledged (or refuse it) now. */
static void on_ack_change(struct agent *a, int fd, uint32_t events, void *userdata)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	while (read(fd, buf, sizeof buf) > 0)
		;
	check_ack(a);
}

int agent_emit_watch_ack(struct agent *a)
{
	const char *dir = agent_paths(a)->spool ? agent_paths(a)->spool : MYNAGUARD_SPOOL_DIR;
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -1;
	int r = spool_prepare_dir(dir);

	if (r < 0)
		return r;
	if (asprintf(&path, "%s/%s", dir, SPOOL_ACK_DIR) < 0)
		return -ENOMEM;
	fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0 || inotify_add_watch(
			  fd, path, IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR | IN_DONT_FOLLOW) < 0)
		return -errno;
	*agent_ack_ino_slot(a) = TAKE_FD(fd);
	return 0;
}

/* Once the spool is open: follow the watch on SPOOL/ack that main took before the split.
 * Without it, acknowledgements are still handled whenever an event is stored. */
static void watch_ack(struct agent *a, struct agent_emit *e)
{
	if (e->ack_watch_tried || !e->spool)
		return;
	e->ack_watch_tried = true;
	int *ino = agent_ack_ino_slot(a);
	if (*ino < 0)
		return;
	e->ack_ino = *ino;
	*ino = -1;
	if (agent_watch_fd(a, e->ack_ino, on_ack_change, NULL) < 0) {
		log_line(LOG_WARNING,
			 "emit.warning op=watch-ack error=\"%s\" (acknowledged segments are "
			 "deleted when events are stored)",
			 strerror(errno));
		close(e->ack_ino);
		e->ack_ino = -1;
	}
}

/* Let the spool delete what the uplink acknowledged; report a refused acknowledgement once. */
static void check_ack(struct agent *a)
{
	struct agent_emit *e = *agent_emit_slot(a);
	struct spool_trim t;
	if (!e || !e->spool)
		return;
	int r = priv_spool_trim_acked(e->spool, &t);
	if (r < 0)
		log_line(LOG_ERR, "spool.error op=trim error=\"%s\"", strerror(-r));
	if (!t.new_refusal)
		return;
	char reason[128];
	if (t.refused == -ERANGE)
		snprintf(reason, sizeof reason,
			 "uplink acknowledgement %" PRIu64
			 " refused: beyond the last stored %" PRIu64,
			 t.claimed, priv_spool_last_seq(e->spool));
	else
		snprintf(reason, sizeof reason, "uplink acknowledgement refused: %s",
			 t.refused == -EBADMSG ? "not a number" : strerror(-t.refused));
	log_line(LOG_WARNING, "spool.ack-refused dir=%s/%s reason=\"%s\" acked=%" PRIu64 "",
		 e->spool_dir, SPOOL_ACKED_PATH, reason, t.acked);
	/* Nothing was dropped: the announcement carries the refusal (count 0). */
	e->depth++;
	(void)agent_emit_at(a, EVENT_SPOOL_DROPPED, 0, json_pack("[s]", "2-2-7"),
			    json_pack("{s:I, s:s, s:I}", "count", (json_int_t)0, "reason", reason,
				      "acked", (json_int_t)t.acked),
			    true);
	e->depth--;
}

static void emit_dropped(struct agent *a, const struct spool_drop *d, const char *reason)
{
	struct agent_emit *e = *agent_emit_slot(a);
	if (d->count == 0)
		return;
	log_line(LOG_WARNING,
		 "spool.dropped count=%" PRIu64 " first_seq=%" PRIu64 " last_seq=%" PRIu64
		 " reason=\"%s\"",
		 d->count, d->first_seq, d->last_seq, reason);
	if (e->depth > 4)
		return;
	e->depth++;
	json_t *data = json_pack("{s:I, s:I, s:I, s:s}", "count", (json_int_t)d->count, "first_seq",
				 (json_int_t)d->first_seq, "last_seq", (json_int_t)d->last_seq,
				 "reason", reason);
	(void)agent_emit_at(a, EVENT_SPOOL_DROPPED, 0, json_pack("[s]", "2-2-7"), data, true);
	e->depth--;
}

int64_t agent_emit(struct agent *a, enum event_kind kind, json_t *clauses, json_t *data)
{
	return agent_emit_at(a, kind, 0, clauses, data, true);
}

int agent_emit_flush(struct agent *a)
{
	struct agent_emit *e = *agent_emit_slot(a);
	if (!e || !e->spool)
		return -ENODEV;
	int r = priv_spool_sync(e->spool);
	if (r < 0)
		log_line(LOG_ERR, "emit.error op=sync error=\"%s\"", strerror(-r));
	report_refused(a, false);
	if (e->ack_ino < 0)
		check_ack(a);
	return r;
}

/* The PAM module appends datagrams here when the socket is down. Emit every line, then empty
 * the file, all under the flock the module takes for appending. A crash after the emits and
 * before the truncate emits those lines again at the next start (documented in docs/spool.md). */
void agent_emit_collect_pending(struct agent *a)
{
	struct agent_emit *e = *agent_emit_slot(a);
	if (!e || e->state_fd < 0)
		return;
	_cleanup_free_ char *text = NULL;
	size_t len = 0;

	/* The monitor opens it (a regular file owned by it, mode 0600), takes the flock the
	 * module takes for appending, and hands over the bytes; we parse them. */
	int r = priv_pending_read(&text, &len);
	if (r == -ENOENT)
		goto drops;
	if (r < 0) {
		fprintf(
		    stderr,
		    "pending.refused file=%s/%s/%s error=\"%s\" (must be a regular file owned by "
		    "uid %u, mode 0600), leaving it\n",
		    agent_paths(a)->state, PENDING_DIR, PENDING_FILE, strerror(-r),
		    (unsigned)geteuid());
		return;
	}
	uint64_t ok = 0, bad = 0;
	for (char *line = text; line < text + len;) {
		char *nl = memchr(line, '\n', (size_t)(text + len - line));
		size_t n = nl ? (size_t)(nl - line) : (size_t)(text + len - line);
		if (n > 0) {
			enum event_kind kind;
			int64_t ts;
			json_t *data;
			char reason[EVENT_REASON_MAX], shown[ESCAPE_SIZE(120)];
			if (event_datagram_decode(line, n, &kind, &ts, &data, reason) < 0) {
				bad++;
				escape_text(reason, strlen(reason), 120, 0, shown, sizeof shown);
				log_line(LOG_WARNING,
					 "pending.malformed line=%" PRIu64 " reason=\"%s\"",
					 ok + bad, shown);
			} else {
				/* Written by root while the agent was down: its time is the
				 * best there is, but never later than now. */
				int64_t now = now_ms();
				json_object_set_new(data, "sender",
						    json_pack("{s:s, s:I}", "via", "pending-file",
							      "ts_ms", (json_int_t)ts));
				if (agent_emit_at(a, kind, ts > 0 && ts < now ? ts : now,
						  agent_emit_auth_clauses(), data, false) >= 0)
					ok++;
			}
		}
		line += n + 1;
	}
	if (len > 0) {
		/* An empty file is left alone: truncating it would wake our own inotify watch. */
		r = agent_emit_flush(a);
		if (r < 0) {
			log_line(LOG_ERR, "pending.error op=sync error=\"%s\", keeping the file",
				 strerror(-r));
			(void)priv_pending_done(false);
			return;
		}
		r = priv_pending_done(true);
		if (r < 0)
			log_line(LOG_ERR, "pending.error op=truncate error=\"%s\"", strerror(-r));
		log_line(LOG_INFO, "pending.collected events=%" PRIu64 " malformed=%" PRIu64 "", ok,
			 bad);
	} else
		(void)priv_pending_done(false);

drops:;
	/* Lines the module could not even append: lost before they got a number. */
	char dtext[PRIV_DROPS_MAX + 1];
	uint64_t dropped;
	if (priv_pending_drops_read(dtext, sizeof dtext) < 0)
		return;
	dtext[strcspn(dtext, "\n")] = 0;
	if (parse_uint64(dtext, 0, INT64_MAX, &dropped) == 0 && dropped > 0) {
		log_line(LOG_WARNING,
			 "spool.dropped count=%" PRIu64 " reason=\"PAM fallback file full\"",
			 dropped);
		(void)agent_emit(a, EVENT_SPOOL_DROPPED, json_pack("[s]", "2-2-7"),
				 json_pack("{s:I, s:s}", "count", (json_int_t)dropped, "reason",
					   "PAM fallback file full"));
	}
	r = priv_pending_drops_clear();
	if (r < 0)
		log_line(LOG_ERR, "pending.error op=unlink-drops error=\"%s\"", strerror(-r));
}

/* Open the spool and find the next number. On failure the agent keeps running (the USB gate
 * must not depend on the disk): events are logged as lost and the spool is retried. */
static int open_spool(struct agent_emit *e)
{
	struct spool_recovery info;
	int r = priv_spool_open(e->spool_dir, e->max_bytes, &e->spool, &info);
	if (r < 0)
		return r;
	if (info.truncated_bytes > 0)
		log_line(LOG_WARNING,
			 "spool.recovered dir=%s truncated_bytes=%" PRIu64
			 " (an append torn by a crash or power cut; it was never acknowledged)",
			 e->spool_dir, info.truncated_bytes);
	if (info.foreign > 0)
		log_line(LOG_WARNING, "spool.warning dir=%s foreign_files=%" PRIu64 " (skipped)",
			 e->spool_dir, info.foreign);
	if (info.dir_mode_fixed)
		log_line(
		    LOG_WARNING,
		    "spool.warning dir=%s mode=%04o was writable by others; now %04o (only the "
		    "agent creates or deletes files there)",
		    e->spool_dir, info.dir_mode_fixed, info.dir_mode_fixed & 07755);

	e->reserved = 0;
	if (e->state_fd >= 0) {
		r = read_reserved(e->state_fd, &e->reserved);
		if (r < 0) {
			log_line(LOG_WARNING, "emit.warning file=%s error=\"%s\", ignoring it",
				 SEQ_FILE, strerror(-r));
			e->reserved = 0;
		}
	}
	e->next_seq = priv_spool_next_seq(e->spool);
	if (priv_spool_last_seq(e->spool) == 0 && info.segments == 0 && e->reserved > e->next_seq) {
		/* Numbers were handed out before, but the spool is gone: never reuse them. */
		fprintf(
		    stderr,
		    "spool.warning dir=%s spool empty but numbers were reserved through %" PRIu64
		    "; continuing at %" PRIu64 "\n",
		    e->spool_dir, e->reserved - 1, e->reserved);
		e->next_seq = e->reserved;
	}
	log_line(LOG_INFO,
		 "spool.open dir=%s max_bytes=%" PRIu64 " bytes=%" PRIu64 " next_seq=%" PRIu64 "",
		 e->spool_dir, e->max_bytes, priv_spool_bytes(e->spool), e->next_seq);
	return 0;
}

static bool spool_ready(struct agent_emit *e)
{
	if (e->spool)
		return true;
	int64_t now = now_ms();
	if (now < e->retry_at_ms)
		return false;
	int r = open_spool(e);
	if (r < 0) {
		e->retry_at_ms = now + SPOOL_RETRY_MS;
		log_line(LOG_ERR,
			 "emit.error spool=%s error=\"%s\", events are logged here only until it "
			 "opens (retrying in %d s)",
			 e->spool_dir, spool_strerror(r), SPOOL_RETRY_MS / 1000);
		return false;
	}
	return true;
}

int agent_emit_init(struct agent *a)
{
	const struct agent_paths *paths = agent_paths(a);
	const struct policy *p = agent_policy(a);
	const char *state_dir = paths->state ? paths->state : MYNAGUARD_STATE_DIR;

	struct agent_emit *e = calloc(1, sizeof *e);
	if (!e)
		return -ENOMEM;
	e->state_fd = -1;
	e->report_tfd = -1;
	e->ack_ino = -1;
	e->spool_dir = strdup(paths->spool ? paths->spool : MYNAGUARD_SPOOL_DIR);
	if (!e->spool_dir) {
		free(e);
		return -ENOMEM;
	}
	e->max_bytes = p && p->report_spool_max ? p->report_spool_max : 64ULL << 20;
	if (e->max_bytes < 2 * SPOOL_RECORD_MAX)
		e->max_bytes = 2 * SPOOL_RECORD_MAX;
	*agent_emit_slot(a) = e;

	uint64_t probe;
	int r = priv_seq_read(&probe); /* the monitor opens STATE (or reports why not) */
	if (r >= 0 || r == -EBADMSG)
		e->state_fd = 0;
	else
		log_line(LOG_ERR,
			 "emit.error state=%s error=\"%s\", continuing without the sequence floor "
			 "and the PAM fallback file",
			 state_dir, strerror(-r));
	if (spool_ready(e)) {
		watch_ack(a, e);
		check_ack(a); /* what the uplink acknowledged while the agent was down */
	}
	e->report_tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (e->report_tfd >= 0 && agent_watch_fd(a, e->report_tfd, on_report_timer, NULL) < 0) {
		close(e->report_tfd);
		e->report_tfd = -1;
	}
	if (e->report_tfd < 0)
		log_line(LOG_WARNING,
			 "emit.warning op=timer error=\"%s\" (refused unprivileged events are "
			 "announced with the next event or at stop)",
			 strerror(errno));
	return 0;
}

void agent_emit_done(struct agent *a)
{
	struct agent_emit *e = *agent_emit_slot(a);
	if (!e)
		return;
	report_refused(a, true);
	if (e->report_tfd >= 0) {
		(void)agent_unwatch_fd(a, e->report_tfd);
		close(e->report_tfd);
	}
	if (e->ack_ino >= 0) {
		(void)agent_unwatch_fd(a, e->ack_ino);
		close(e->ack_ino);
	}
	if (e->spool) {
		(void)priv_spool_sync(e->spool);
		priv_spool_free(e->spool);
	}
	free(e->spool_dir);
	free(e);
	*agent_emit_slot(a) = NULL;
}
