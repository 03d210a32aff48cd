/* SPDX-License-Identifier: MIT */
/* mynaguard-uplink (user mynaguard): spool → batches → collector (mutual TLS) → ack/acked. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "enroll.h"
#include "event.h"
#include "log.h"
#include "macro.h"
#include "parse.h"
#include "policy.h"
#include "spool.h"
#include "uplink.h"

/* How often an idle uplink asks for the fleet bundle without --poll: a grant reaches an online
 * terminal in well under a minute (docs/fleet.md, "The uplink"). */
#define UPLINK_POLL_DEFAULT_SEC 30

struct opts {
	const char *policy;
	const char *spool;
	bool once;
	bool check;
	bool verbose;
	uint64_t retry_min_ms;
	uint64_t retry_max_ms;
	long timeout_sec;
	unsigned renew_at;	  /* percent of the certificate's life (renew.c) */
	bool renew_now;		  /* renew at start, whatever the certificate's age */
	uint64_t poll_sec;	  /* fleet bundle fetch period; 0 = UPLINK_POLL_DEFAULT_SEC */
	const char *claim_socket; /* NULL: SPOOL/inbox/claim.sock; "" = none */
};

struct pending {
	struct spool_record *recs;
	size_t n;
	size_t cap;
	size_t bytes;		   /* payload bytes */
	struct spool_record carry; /* read but did not fit the batch; carry.payload NULL = none */
};

static void pending_drop_through(struct pending *p, uint64_t acked)
{
	size_t k = 0;
	while (k < p->n && p->recs[k].seq <= acked) {
		p->bytes -= p->recs[k].len;
		free((void *)p->recs[k].payload);
		k++;
	}
	if (k > 0 && p->n > k)
		memmove(p->recs, p->recs + k, (p->n - k) * sizeof *p->recs);
	p->n -= k;
}

static void pending_clear(struct pending *p)
{
	pending_drop_through(p, UINT64_MAX);
	free((void *)p->carry.payload);
	free(p->recs);
	*p = (struct pending){0};
}

/* Top the batch up from the spool. Returns -errno on a read error. */
static int pending_fill(struct pending *p, struct spool_reader *r, const char *terminal, size_t cap)
{
	if (p->cap < cap) {
		struct spool_record *nr = realloc(p->recs, cap * sizeof *nr);
		if (!nr)
			return -ENOMEM;
		p->recs = nr;
		p->cap = cap;
	}
	while (p->n < cap) {
		struct spool_record rec;
		if (p->carry.payload) {
			rec = p->carry;
			p->carry = (struct spool_record){0};
		} else {
			int k = spool_reader_next(r, &rec);
			if (k < 0)
				return k;
			if (k == 0)
				break;
		}
		if (p->n > 0 && event_batch_raw_size(terminal, p->n + 1, p->bytes + rec.len) >
				    EVENT_BATCH_MAX_BYTES) {
			p->carry = rec;
			break;
		}
		p->recs[p->n++] = rec;
		p->bytes += rec.len;
	}
	return 0;
}

static uint64_t jitter(uint64_t ms)
{
	/* "full jitter" on the upper half: between ms/2 and ms */
	uint32_t rnd = 0;
	if (getrandom(&rnd, sizeof rnd, GRND_NONBLOCK) != sizeof rnd)
		rnd = (uint32_t)time(NULL) * 2654435761U;
	return ms / 2 + (ms > 1 ? rnd % (ms / 2 + 1) : 0);
}

static void usage(FILE *f)
{
	fputs(
	    "Usage: mynaguard-uplink [--policy FILE] [--spool DIR] [--once] [--check]\n"
	    "  -p, --policy FILE    policy file (default " MYNAGUARD_POLICY_PATH ")\n"
	    "  -s, --spool DIR      spool directory (default " MYNAGUARD_SPOOL_DIR ")\n"
	    "  -1, --once           send what is in the spool, then exit\n"
	    "  -n, --check          validate the configuration and exit\n"
	    "      --retry-min MS   first retry delay (default 1000)\n"
	    "      --retry-max MS   longest retry delay (default 300000)\n"
	    "      --timeout SEC    limit for one upload (default 60)\n"
	    "      --poll SEC       fetch the fleet bundle at least this often (default 30)\n"
	    "      --renew-at PCT   renew the certificate at PCT % of its life (default 67)\n"
	    "      --renew-now      renew the certificate at start (with --once: exit 1 if it fails)\n"
	    "      --claim-socket PATH  where the PAM module claims TOTP steps (default\n"
	    "                       SPOOL/" CLAIM_SOCKET_NAME "; \"\" = none)\n"
	    "  -v, --verbose        one line per batch\n"
	    "Enrollment: mynaguard-uplink --enroll URL --token-file FILE --ca-fingerprint SHA256\n",
	    f);
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	enum {
		OPT_RETRY_MIN = 256,
		OPT_RETRY_MAX,
		OPT_TIMEOUT,
		OPT_RENEW_AT,
		OPT_RENEW_NOW,
		OPT_POLL,
		OPT_CLAIM_SOCKET
	};
	static const struct option longopts[] = {
	    {"policy", required_argument, NULL, 'p'},
	    {"spool", required_argument, NULL, 's'},
	    {"once", no_argument, NULL, '1'},
	    {"check", no_argument, NULL, 'n'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"retry-min", required_argument, NULL, OPT_RETRY_MIN},
	    {"retry-max", required_argument, NULL, OPT_RETRY_MAX},
	    {"timeout", required_argument, NULL, OPT_TIMEOUT},
	    {"renew-at", required_argument, NULL, OPT_RENEW_AT},
	    {"renew-now", no_argument, NULL, OPT_RENEW_NOW},
	    {"poll", required_argument, NULL, OPT_POLL},
	    {"claim-socket", required_argument, NULL, OPT_CLAIM_SOCKET},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {0},
	};
	int c;
	uint64_t v;
	while ((c = getopt_long(argc, argv, "p:s:1nvhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			o->policy = optarg;
			break;
		case 's':
			o->spool = optarg;
			break;
		case '1':
			o->once = true;
			break;
		case 'n':
			o->check = true;
			break;
		case 'v':
			o->verbose = true;
			break;
		case OPT_RETRY_MIN:
		case OPT_RETRY_MAX:
			if (parse_uint64(optarg, 1, 24 * 3600 * 1000, &v) < 0) {
				log_line(LOG_ERR, "mynaguard-uplink: bad delay '%s' (milliseconds)",
					 optarg);
				return 2;
			}
			*(c == OPT_RETRY_MIN ? &o->retry_min_ms : &o->retry_max_ms) = v;
			break;
		case OPT_TIMEOUT:
			if (parse_uint64(optarg, 1, 3600, &v) < 0) {
				log_line(LOG_ERR, "mynaguard-uplink: bad timeout '%s' (seconds)",
					 optarg);
				return 2;
			}
			o->timeout_sec = (long)v;
			break;
		case OPT_RENEW_AT:
			if (parse_uint(optarg, 1, 95, &o->renew_at) < 0) {
				log_line(LOG_ERR,
					 "mynaguard-uplink: --renew-at: 1 to 95 (percent)");
				return 2;
			}
			break;
		case OPT_RENEW_NOW:
			o->renew_now = true;
			break;
		case OPT_POLL:
			if (parse_uint64(optarg, 1, 7 * 86400, &v) < 0) {
				log_line(LOG_ERR,
					 "mynaguard-uplink: bad poll period '%s' (seconds)",
					 optarg);
				return 2;
			}
			o->poll_sec = v;
			break;
		case OPT_CLAIM_SOCKET:
			o->claim_socket = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			puts("mynaguard-uplink " MYNAGUARD_VERSION);
			exit(0);
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		log_line(LOG_ERR, "mynaguard-uplink: unexpected argument '%s'", argv[optind]);
		return 2;
	}
	if (o->retry_max_ms < o->retry_min_ms)
		o->retry_max_ms = o->retry_min_ms;
	return 0;
}

static bool readable(const char *what, const char *path)
{
	if (access(path, R_OK) == 0)
		return true;
	log_line(LOG_ERR, "mynaguard-uplink: %s %s: %s", what, path, strerror(errno));
	return false;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Wait for a signal, new spool records (inotify, when watch) or the timeout (-1 = none).
 * Claims are served meanwhile and at any other time by the claim thread (claim.c). Returns true
 * when a stop signal came. */
static bool wait_for(int sigfd, int inofd, bool watch, int timeout_ms)
{
	struct pollfd pfd[2] = {{.fd = sigfd, .events = POLLIN},
				{.fd = watch ? inofd : -1, .events = POLLIN}};
	uint64_t end = timeout_ms < 0 ? UINT64_MAX : mono_ms() + (uint64_t)timeout_ms;
	for (;;) {
		uint64_t now = mono_ms();
		int left = timeout_ms < 0 ? -1 : now >= end ? 0 : (int)(end - now);
		if (poll(pfd, 2, left) < 0 && errno == EINTR)
			continue;
		break;
	}
	if (pfd[0].revents & POLLIN)
		return true;
	/* drain: what changed does not matter, only that something did */
	char buf[4096];
	while (read(inofd, buf, sizeof buf) > 0)
		;
	return false;
}

int main(int argc, char **argv)
{
	struct opts o = {
	    .policy = MYNAGUARD_POLICY_PATH,
	    .spool = MYNAGUARD_SPOOL_DIR,
	    .retry_min_ms = 1000,
	    .retry_max_ms = 300000,
	    .timeout_sec = 60,
	    .renew_at = 67,
	};
	struct policy_errors errs = {0};
	_cleanup_policy_ struct policy *p = NULL;

	/* First: a stop request during start-up waits in the signalfd instead of killing us. */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (uplink_enroll_requested(argc, argv))
		return uplink_enroll_main(argc, argv); /* enroll.c */
	int r = parse_opts(argc, argv, &o);
	if (r != 0)
		return r;
	setvbuf(stderr, NULL, _IOLBF, 0);

	r = policy_load(o.policy, &p, &errs);
	if (r < 0) {
		char line[512];
		for (size_t i = 0; i < errs.n; i++) {
			policy_error_format(&errs, i, line, sizeof line);
			log_line(LOG_ERR, "%s", line);
		}
		if (errs.n == 0)
			log_line(LOG_ERR, "%s: %s", o.policy, strerror(-r));
		policy_errors_clear(&errs);
		return 1;
	}
	policy_errors_clear(&errs);
	if (!p->report_collector || strncmp(p->report_collector, "https://", 8) != 0) {
		log_line(LOG_ERR,
			 "mynaguard-uplink: %s: [report] collector must be an https:// URL",
			 o.policy);
		return 1;
	}
	/* Check all three (no short-circuit) so that every missing file is reported at once. */
	bool ok = readable("CA", p->report_ca);
	ok = readable("certificate", p->report_cert) && ok;
	ok = readable("key", p->report_key) && ok;
	if (!ok)
		return 1;
	/* The installer gives the key to root, group mynaguard (the uplink's own group), mode 0640:
	 * readable by the uplink through its group and written by no one but root. Warn about any
	 * access beyond that: others, group write, or group read for a group that is not ours. */
	struct stat kst;
	if (stat(p->report_key, &kst) == 0 &&
	    ((kst.st_mode & 0027) || ((kst.st_mode & 0040) && kst.st_gid != getegid())))
		log_line(
		    LOG_WARNING,
		    "uplink.warning key %s has mode %04o group %u: only root and the uplink's "
		    "user and group may read it (as installed: chown root:mynaguard, chmod 0640)",
		    p->report_key, (unsigned)(kst.st_mode & 07777), (unsigned)kst.st_gid);
	if (o.check) {
		log_line(LOG_INFO, "mynaguard-uplink: %s is valid (collector %s)", o.policy,
			 p->report_collector);
		return 0;
	}
	if (geteuid() == 0)
		log_line(LOG_WARNING, "uplink.warning running as root; the service runs it as user "
				      "mynaguard (network-facing code never needs root)");

	_cleanup_close_ int sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	_cleanup_close_ int inofd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (sigfd < 0 || inofd < 0) {
		log_line(LOG_ERR, "mynaguard-uplink: %s", strerror(errno));
		return 1;
	}
	if (inotify_add_watch(inofd, o.spool, IN_MODIFY | IN_CREATE | IN_MOVED_TO) < 0) {
		log_line(LOG_ERR, "mynaguard-uplink: watch %s: %s", o.spool, strerror(errno));
		return 1;
	}
	struct spool_reader *reader;
	r = spool_reader_open(o.spool, &reader);
	if (r < 0) {
		log_line(LOG_ERR, "mynaguard-uplink: spool %s: %s", o.spool, spool_strerror(r));
		return 1;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		spool_reader_free(reader);
		return 1;
	}
	struct uplink_client *client;
	struct uplink_tls tls = {.ca = p->report_ca, .cert = p->report_cert, .key = p->report_key};
	r = uplink_client_new(p->report_collector, &tls, o.timeout_sec, &client);
	if (r < 0) {
		log_line(LOG_ERR, "mynaguard-uplink: %s", strerror(-r));
		spool_reader_free(reader);
		return 1;
	}
	struct uplink_inbox *inbox;
	r = uplink_inbox_new(o.spool, o.verbose, &inbox);
	if (r < 0) {
		log_line(LOG_ERR, "mynaguard-uplink: %s", strerror(-r));
		uplink_client_free(client);
		spool_reader_free(reader);
		return 1;
	}
	uplink_inbox_set_terminal(inbox, p->terminal_id);
	/* One-time TOTP codes across terminals: the PAM module claims here, served by a thread with
	 * its own connection to the collector (docs/fleet.md, "The claim thread"). */
	struct uplink_claim *claim = NULL;
	_cleanup_free_ char *claim_path = NULL;
	if (!o.claim_socket && asprintf(&claim_path, "%s/%s", o.spool, CLAIM_SOCKET_NAME) < 0)
		claim_path = NULL;
	if (o.claim_socket || claim_path) {
		const char *cp = o.claim_socket ? o.claim_socket : claim_path;
		if (cp[0]) {
			if (!o.claim_socket) { /* SPOOL/inbox: made by the agent and the installer */
				_cleanup_free_ char *dir = NULL;
				if (asprintf(&dir, "%s/%s", o.spool, SPOOL_INBOX_DIR) >= 0 &&
				    mkdir(dir, 0770) < 0 && errno != EEXIST)
					log_line(LOG_WARNING,
						 "uplink.warning op=mkdir dir=%s error=\"%m\"",
						 dir);
			}
			int lfd = uplink_claim_listen(cp);
			if (lfd >= 0)
				lfd = uplink_claim_start(lfd, p->report_collector, &tls,
							 o.timeout_sec, &claim);
			if (lfd < 0)
				log_line(
				    LOG_WARNING,
				    "uplink.warning op=claim-socket path=%s error=\"%s\" (TOTP "
				    "codes are one-time per terminal only)",
				    cp, strerror(-lfd));
		}
	}
	/* A granted exception reaches an idle terminal within one poll: a conditional GET (304
	 * while nothing changed) on the connection the uploads keep (docs/fleet.md). */
	uint64_t poll_sec = o.poll_sec ? o.poll_sec : UPLINK_POLL_DEFAULT_SEC;
	if (!o.poll_sec && p->report_interval_sec && p->report_interval_sec < poll_sec)
		poll_sec = p->report_interval_sec;
	uint64_t poll_ms = poll_sec * 1000;
	uint64_t next_fetch_ms = 0; /* at start */
	log_line(LOG_INFO, "uplink.start collector=%s spool=%s acked=%" PRIu64 " batch_max=%u",
		 p->report_collector, o.spool, spool_reader_acked(reader), p->report_batch_max);

	struct uplink_renew renew;
	uplink_renew_init(&renew, p, o.renew_at);
	if (o.renew_now && uplink_renew_now(&renew) < 0) {
		log_line(LOG_ERR, "mynaguard-uplink: --renew-now: cannot read the certificate %s",
			 p->report_cert);
		uplink_claim_stop(claim);
		uplink_inbox_free(inbox);
		uplink_client_free(client);
		spool_reader_free(reader);
		return 1;
	}

	size_t cap_policy = p->report_batch_max < EVENT_BATCH_MAX_EVENTS ? p->report_batch_max
									 : EVENT_BATCH_MAX_EVENTS;
	size_t cap = cap_policy;
	struct pending pend = {0};
	uint64_t delay_ms = 0; /* current backoff; 0 = healthy */
	bool failing = false;
	char last_error[256] = "";
	uint64_t sent_total = 0, skipped_logged = 0;
	int exit_code = 0;

	for (;;) {
		if (uplink_renew_tick(&renew, &client, &tls, o.timeout_sec, claim) < 0 &&
		    o.renew_now && o.once) {
			exit_code = 1; /* the renewal asked for did not happen */
			break;
		}
		r = pending_fill(&pend, reader, p->terminal_id, cap);
		if (r < 0) {
			log_line(LOG_ERR,
				 "uplink.error op=read-spool error=\"%s\", retrying in 5 s",
				 spool_strerror(r));
			if (wait_for(sigfd, inofd, false, 5000))
				break;
			continue;
		}
		if (spool_reader_skipped(reader) > skipped_logged) {
			skipped_logged = spool_reader_skipped(reader);
			log_line(LOG_WARNING,
				 "uplink.warning spool damage: skipped the rest of %" PRIu64
				 " damaged segment(s); the collector will show the gap",
				 skipped_logged);
		}
		if (mono_ms() >= next_fetch_ms || (pend.n == 0 && o.once)) {
			uplink_inbox_fetch(inbox, client);
			next_fetch_ms = mono_ms() + poll_ms;
		}
		if (pend.n == 0) {
			if (o.once)
				break;
			/* Idle: sleep until the agent writes (inotify), the next bundle fetch, the
			 * certificate's renewal or a signal. */
			uint64_t now = mono_ms();
			uint64_t left = next_fetch_ms > now ? next_fetch_ms - now : 0;
			int wait_ms = left > INT32_MAX ? INT32_MAX : (int)left;
			int renew_ms = uplink_renew_wait_ms(&renew);
			if (renew_ms >= 0 && renew_ms < wait_ms)
				wait_ms = renew_ms;
			if (wait_for(sigfd, inofd, true, wait_ms))
				break;
			continue;
		}
		/* What leaves the machine must be on disk first. */
		r = spool_reader_sync(reader);
		if (r < 0)
			log_line(LOG_WARNING, "uplink.warning op=sync error=\"%s\"", strerror(-r));

		_cleanup_free_ const char **texts = calloc(pend.n, sizeof *texts);
		_cleanup_free_ size_t *lens = calloc(pend.n, sizeof *lens);
		_cleanup_free_ char *body = NULL;
		size_t body_len = 0;
		if (!texts || !lens) {
			exit_code = 1;
			break;
		}
		for (size_t i = 0; i < pend.n; i++) {
			texts[i] = pend.recs[i].payload;
			lens[i] = pend.recs[i].len;
		}
		r = event_batch_encode_raw(p->terminal_id, texts, lens, pend.n, &body, &body_len);
		if (r < 0) {
			log_line(LOG_ERR, "uplink.error op=encode error=\"%s\"", strerror(-r));
			exit_code = 1;
			break;
		}
		uint64_t first = pend.recs[0].seq, last = pend.recs[pend.n - 1].seq;
		struct uplink_answer ans;
		uplink_client_post(client, body, body_len, &ans);

		if (ans.result == UPLINK_OK && ans.acked_through >= first) {
			uint64_t acked = ans.acked_through > last ? last : ans.acked_through;
			size_t before = pend.n;
			pending_drop_through(&pend, acked);
			sent_total += before - pend.n;
			r = spool_reader_ack(reader, acked);
			if (r < 0)
				log_line(
				    LOG_WARNING,
				    "uplink.warning op=ack error=\"%s\" (those events may be sent "
				    "again; the collector keeps one copy)",
				    strerror(-r));
			if (failing)
				log_line(LOG_INFO,
					 "uplink.recovered collector=%s acked_through=%" PRIu64
					 ", sending again",
					 p->report_collector, acked);
			if (o.verbose)
				log_line(LOG_INFO,
					 "uplink.sent events=%zu first=%" PRIu64
					 " acked_through=%" PRIu64 " bytes=%zu",
					 before - pend.n, first, acked, body_len);
			failing = false;
			delay_ms = 0;
			last_error[0] = 0;
			if (cap < cap_policy)
				cap = cap * 2 < cap_policy ? cap * 2 : cap_policy;
			/* after each upload: a grant may be waiting for this terminal */
			next_fetch_ms = 0;
			continue;
		}

		uint64_t wait_ms;
		if (ans.result == UPLINK_OK)
			snprintf(ans.message, sizeof ans.message,
				 "acked_through %" PRIu64 " is below the batch (%" PRIu64
				 "..%" PRIu64 ")",
				 ans.acked_through, first, last);
		if (ans.result == UPLINK_REJECTED && ans.status == 413 && cap > 1) {
			cap = cap / 2 > 0 ? cap / 2 : 1;
			/* keep the records: the next batch takes fewer of them */
			while (pend.n > cap) {
				struct spool_record rec = pend.recs[--pend.n];
				pend.bytes -= rec.len;
				if (pend.carry.payload) {
					/* only one carry slot: re-read the rest later */
					free((void *)rec.payload);
					free((void *)pend.carry.payload);
					pend.carry = (struct spool_record){0};
					pending_drop_through(&pend, UINT64_MAX);
					spool_reader_rewind(reader);
					break;
				}
				pend.carry = rec;
			}
			log_line(LOG_WARNING,
				 "uplink.batch-too-large events=%zu, retrying with at most %zu",
				 (size_t)(last - first + 1), cap);
			continue;
		}
		if (ans.result == UPLINK_RETRY_AFTER && ans.retry_after_sec >= 0) {
			long ra = ans.retry_after_sec > 3600 ? 3600 : ans.retry_after_sec;
			wait_ms = (uint64_t)ra * 1000;
			/* a little jitter on top, so terminals told the same do not return together */
			wait_ms += jitter(wait_ms / 10 + 2) / 2;
			log_line(LOG_INFO,
				 "uplink.throttled collector=%s status=%ld retrying in %.1f s",
				 p->report_collector, ans.status, (double)wait_ms / 1000.0);
			delay_ms = delay_ms ? delay_ms : o.retry_min_ms;
		} else {
			delay_ms = delay_ms == 0 ? o.retry_min_ms
						 : (delay_ms * 2 > o.retry_max_ms ? o.retry_max_ms
										  : delay_ms * 2);
			wait_ms = jitter(delay_ms);
			if (!failing || strcmp(last_error, ans.message) != 0)
				log_line(
				    LOG_WARNING,
				    "uplink.unreachable collector=%s error=\"%s\" retrying in %.1f s "
				    "(backing off up to %.1f s; events stay in the spool)",
				    p->report_collector, ans.message, (double)wait_ms / 1000.0,
				    (double)o.retry_max_ms / 1000.0);
			snprintf(last_error, sizeof last_error, "%s", ans.message);
		}
		failing = true;
		if (wait_for(sigfd, inofd, false, wait_ms > INT32_MAX ? INT32_MAX : (int)wait_ms))
			break;
	}

	log_line(LOG_INFO, "uplink.stop sent=%" PRIu64 " acked=%" PRIu64, sent_total,
		 spool_reader_acked(reader));
	uplink_claim_stop(claim);
	pending_clear(&pend);
	uplink_inbox_free(inbox);
	uplink_client_free(client);
	spool_reader_free(reader);
	curl_global_cleanup();
	return exit_code;
}
