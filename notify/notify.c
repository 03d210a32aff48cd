/* SPDX-License-Identifier: MIT */
/* mynaguard-notify: runs unprivileged in each desktop session (XDG autostart), reads the agent's
 * notices from /run/mynaguard/notify.sock and shows them through org.freedesktop.Notifications
 * on the session bus. Reads only; a broken notice is dropped with one log line. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "config.h"
#include "escape.h"
#include "macro.h"
#include "notice.h"

#define NOTIFY_BACKOFF_FIRST_MS 500
#define NOTIFY_BACKOFF_MAX_MS	30000
#define NOTIFY_RECENT		8      /* request codes whose notification is replaced, not added */
#define NOTIFY_RECENT_MS	600000 /* ... while shown in the last 10 minutes */

static const char BUS_NAME[] = "org.freedesktop.Notifications";
static const char BUS_PATH[] = "/org/freedesktop/Notifications";

struct recent {
	char code[NOTICE_CODE_LEN + 1];
	uint32_t id; /* the server's notification id; 0 = not known (yet) */
	uint64_t at_us;
};

struct notifier {
	const char *path;
	sd_event *event;
	sd_bus *bus;
	int fd;
	sd_event_source *io;
	sd_event_source *retry;
	uint64_t backoff_ms;
	bool waiting_logged; /* "cannot connect" said once per outage */
	bool markup;	     /* the server renders body markup: escape & < > */
	struct recent recent[NOTIFY_RECENT];
	uint64_t shown, dropped;
};

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, (size_t)n);
}

static uint64_t now_us(struct notifier *nf)
{
	uint64_t t = 0;
	(void)sd_event_now(nf->event, CLOCK_MONOTONIC, &t);
	return t;
}

/* ---- the text ------------------------------------------------------------------------------ */

/* Append s to the buffer, with & < > escaped when the server renders markup. */
static void put(char *buf, size_t size, size_t *o, const char *s, bool escape)
{
	for (; *s && *o + 6 < size; s++) {
		const char *rep = NULL;
		if (escape && *s == '&')
			rep = "&amp;";
		else if (escape && *s == '<')
			rep = "&lt;";
		else if (escape && *s == '>')
			rep = "&gt;";
		if (rep) {
			memcpy(buf + *o, rep, strlen(rep));
			*o += strlen(rep);
		} else {
			buf[(*o)++] = *s;
		}
	}
	buf[*o] = '\0';
}

/* Japanese first, English second; the request code alone on its own line, so the clerk can
 * read it out on the telephone. */
static void notice_body(const struct notifier *nf, const struct notice *n, char *buf, size_t size)
{
	char ids[16];
	size_t o = 0;
	bool m = nf->markup;

	snprintf(ids, sizeof ids, "%04x:%04x", n->vendor, n->product);
	buf[0] = '\0';
	put(buf, size, &o,
	    "この USB 機器は市のセキュリティポリシーにより使用できません。\n"
	    "This USB device is blocked by the city's security policy.\n\n"
	    "機器 / Device: ",
	    false);
	if (n->name[0]) {
		put(buf, size, &o, n->name, m);
		put(buf, size, &o, " (", false);
		put(buf, size, &o, ids, false);
		put(buf, size, &o, ")", false);
	} else {
		put(buf, size, &o, ids, false);
	}
	put(buf, size, &o, "\n使用が必要な場合の問い合わせ先 / If you need it, ask: ", false);
	put(buf, size, &o,
	    n->contact[0] ? n->contact : "システム管理者 / your system administrator", m);
	put(buf, size, &o, "\n申請コード / Request code:\n", false);
	put(buf, size, &o, m ? "<b>" : "", false);
	put(buf, size, &o, n->request_code, false);
	put(buf, size, &o, m ? "</b>" : "", false);
}

/* ---- showing --------------------------------------------------------------------------------- */

static struct recent *recent_find(struct notifier *nf, const char *code)
{
	uint64_t now = now_us(nf);
	for (size_t i = 0; i < NOTIFY_RECENT; i++)
		if (strcmp(nf->recent[i].code, code) == 0 &&
		    now - nf->recent[i].at_us < (uint64_t)NOTIFY_RECENT_MS * 1000)
			return &nf->recent[i];
	return NULL;
}

static struct recent *recent_slot(struct notifier *nf, const char *code)
{
	struct recent *r = recent_find(nf, code), *oldest = &nf->recent[0];
	if (r)
		return r;
	for (size_t i = 1; i < NOTIFY_RECENT; i++)
		if (nf->recent[i].at_us < oldest->at_us)
			oldest = &nf->recent[i];
	*oldest = (struct recent){.at_us = now_us(nf)};
	memcpy(oldest->code, code, sizeof oldest->code);
	return oldest;
}

static int on_notify_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct recent *r = userdata;
	const sd_bus_error *e = sd_bus_message_get_error(m);
	uint32_t id;

	if (e) {
		say("mynaguard-notify: Notify failed: %s: %s (is a notification daemon running?)",
		    e->name, e->message ? e->message : "");
		return 0;
	}
	if (sd_bus_message_read(m, "u", &id) >= 0 && r)
		r->id = id;
	return 0;
}

static void show(struct notifier *nf, const struct notice *n)
{
	_cleanup_free_ char *body = malloc(8192);
	sd_bus_message *m = NULL;
	struct recent *r;
	int rc;

	if (!body) {
		say("mynaguard-notify: out of memory, notice not shown");
		return;
	}
	notice_body(nf, n, body, 8192);
	r = recent_slot(nf, n->request_code);
	r->at_us = now_us(nf);
	rc = sd_bus_message_new_method_call(nf->bus, &m, BUS_NAME, BUS_PATH, BUS_NAME, "Notify");
	if (rc >= 0)
		rc = sd_bus_message_append(m, "susss", "mynaguard", r->id, "dialog-warning",
					   "USB 機器は使用できません / USB device blocked", body);
	if (rc >= 0)
		rc = sd_bus_message_append(m, "as", 0);
	/* Critical: it stays until the clerk closes it (the code must be read out first). */
	if (rc >= 0)
		rc = sd_bus_message_append(m, "a{sv}", 3, "urgency", "y", (uint8_t)2, "category",
					   "s", "device", "desktop-entry", "s", "mynaguard-notify");
	if (rc >= 0)
		rc = sd_bus_message_append(m, "i", (int32_t)0);
	if (rc >= 0)
		rc = sd_bus_call_async(nf->bus, NULL, m, on_notify_reply, r, 0);
	sd_bus_message_unref(m);
	if (rc < 0) {
		say("mynaguard-notify: Notify failed: %s", strerror(-rc));
		return;
	}
	nf->shown++;
	say("mynaguard-notify: shown device=%04x:%04x request_code=%s", n->vendor, n->product,
	    n->request_code);
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata);

/* Whether the server renders markup decides how the body is written: the agent's socket is
 * connected only once that is known (an error answer means plain text). */
static int on_caps_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct notifier *nf = userdata;
	const char *cap;

	if (!sd_bus_message_is_method_error(m, NULL) &&
	    sd_bus_message_enter_container(m, 'a', "s") >= 0)
		while (sd_bus_message_read(m, "s", &cap) > 0)
			if (strcmp(cap, "body-markup") == 0)
				nf->markup = true;
	if (nf->fd < 0 && !nf->retry)
		(void)on_retry(NULL, 0, nf); /* the first attempt at once */
	return 0;
}

/* ---- the agent's socket ---------------------------------------------------------------------- */

static void schedule_connect(struct notifier *nf);

static void disconnect(struct notifier *nf, const char *why)
{
	nf->io = sd_event_source_disable_unref(nf->io);
	if (nf->fd >= 0)
		close(nf->fd);
	nf->fd = -1;
	say("mynaguard-notify: disconnected from %s (%s), reconnecting", nf->path, why);
	nf->backoff_ms = NOTIFY_BACKOFF_FIRST_MS;
	nf->waiting_logged = false;
	schedule_connect(nf);
}

static void handle_message(struct notifier *nf, const char *buf, size_t len)
{
	char reason[EVENT_REASON_MAX], shown[ESCAPE_SIZE(EVENT_REASON_MAX)];
	struct notice n;

	if (notice_parse(buf, len, &n, reason) < 0) {
		nf->dropped++;
		escape_text(reason, strlen(reason), EVENT_REASON_MAX, 0, shown, sizeof shown);
		say("mynaguard-notify: notice dropped: %s (dropped so far: %" PRIu64 ")", shown,
		    nf->dropped);
		return;
	}
	show(nf, &n);
}

static int on_readable(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct notifier *nf = userdata;
	char buf[NOTICE_MAX + 1];

	/* A few messages per wake-up; the rest wait for the next turn of the loop. */
	for (int i = 0; i < 32; i++) {
		ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			disconnect(nf, strerror(errno));
			return 0;
		}
		if (n == 0) {
			disconnect(nf, "the agent closed the connection");
			return 0;
		}
		if ((size_t)n > NOTICE_MAX) {
			nf->dropped++;
			say("mynaguard-notify: notice dropped: message too large (%zd bytes, limit "
			    "%d) (dropped so far: %" PRIu64 ")",
			    n, NOTICE_MAX, nf->dropped);
			continue;
		}
		handle_message(nf, buf, (size_t)n);
	}
	if ((revents & (EPOLLHUP | EPOLLERR)) && !(revents & EPOLLIN))
		disconnect(nf, "hang-up");
	return 0;
}

static int try_connect(struct notifier *nf)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t plen = strlen(nf->path);
	_cleanup_close_ int fd = -1;
	int r;

	if (plen >= sizeof sa.sun_path)
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, nf->path, plen);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return negative_errno();
	if (connect(fd, (struct sockaddr *)&sa,
		    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + 1)) < 0)
		return negative_errno();
	r = sd_event_add_io(nf->event, &nf->io, fd, EPOLLIN, on_readable, nf);
	if (r < 0)
		return r;
	nf->fd = TAKE_FD(fd);
	return 0;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct notifier *nf = userdata;
	int r;

	nf->retry = sd_event_source_disable_unref(nf->retry);
	r = try_connect(nf);
	if (r >= 0) {
		say("mynaguard-notify: connected to %s", nf->path);
		nf->backoff_ms = NOTIFY_BACKOFF_FIRST_MS;
		nf->waiting_logged = false;
		return 0;
	}
	if (!nf->waiting_logged) {
		say("mynaguard-notify: cannot connect to %s (%s), retrying every %u s at most",
		    nf->path, strerror(-r), NOTIFY_BACKOFF_MAX_MS / 1000);
		nf->waiting_logged = true;
	}
	schedule_connect(nf);
	nf->backoff_ms *= 2;
	if (nf->backoff_ms > NOTIFY_BACKOFF_MAX_MS)
		nf->backoff_ms = NOTIFY_BACKOFF_MAX_MS;
	return 0;
}

static void schedule_connect(struct notifier *nf)
{
	int r = sd_event_add_time_relative(nf->event, &nf->retry, CLOCK_MONOTONIC,
					   nf->backoff_ms * 1000, 10000, on_retry, nf);
	if (r < 0) {
		say("mynaguard-notify: cannot arm the reconnect timer: %s, exiting", strerror(-r));
		(void)sd_event_exit(nf->event, 1);
	}
}

/* ---- main ----------------------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fputs(
	    "Usage: mynaguard-notify [--socket PATH]\n"
	    "\n"
	    "Shows mynaguardd's notices (a blocked USB device, whom to ask, the request code)\n"
	    "as desktop notifications. Started in each desktop session; see mynaguard-notify(1).\n",
	    f);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {0},
	};
	struct notifier nf = {
	    .path = MYNAGUARD_NOTIFY_SOCKET_PATH,
	    .fd = -1,
	    .backoff_ms = NOTIFY_BACKOFF_FIRST_MS,
	};
	int c, r;

	while ((c = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			nf.path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			puts("mynaguard-notify " MYNAGUARD_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "mynaguard-notify: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	/* SIGTERM (the session ends) and SIGINT: leave the loop and say so. */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	(void)sigprocmask(SIG_BLOCK, &mask, NULL);
	r = sd_event_default(&nf.event);
	if (r >= 0)
		r = sd_event_add_signal(nf.event, NULL, SIGTERM, NULL, NULL);
	if (r >= 0)
		r = sd_event_add_signal(nf.event, NULL, SIGINT, NULL, NULL);
	if (r >= 0)
		r = sd_bus_open_user(&nf.bus);
	if (r < 0) {
		say("mynaguard-notify: cannot open the session bus: %s, exiting", strerror(-r));
		return 1;
	}
	/* The session bus going away is the session ending: then so do we. */
	r = sd_bus_set_exit_on_disconnect(nf.bus, 1);
	if (r >= 0)
		r = sd_bus_attach_event(nf.bus, nf.event, SD_EVENT_PRIORITY_NORMAL);
	if (r >= 0)
		r = sd_bus_call_method_async(nf.bus, NULL, BUS_NAME, BUS_PATH, BUS_NAME,
					     "GetCapabilities", on_caps_reply, &nf, "");
	if (r < 0) {
		say("mynaguard-notify: session bus: %s, exiting", strerror(-r));
		return 1;
	}
	say("mynaguard-notify: started socket=%s", nf.path);
	r = sd_event_loop(nf.event);
	say("mynaguard-notify: stopping shown=%" PRIu64 " dropped=%" PRIu64, nf.shown, nf.dropped);
	sd_event_source_disable_unref(nf.io);
	sd_event_source_disable_unref(nf.retry);
	if (nf.fd >= 0)
		close(nf.fd);
	sd_bus_flush_close_unref(nf.bus);
	sd_event_unref(nf.event);
	return r < 0 ? 1 : r;
}
