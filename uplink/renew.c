/* SPDX-License-Identifier: MIT */
/* mynaguard-uplink (user mynaguard): renews the terminal's certificate over mutual TLS at a share
 * of its life (default 2/3) plus a stagger fixed by the terminal id, with a key made here. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "enroll.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "policy.h"
#include "secmem.h"
#include "uplink.h"

#define CA_MAX (256 * 1024)

int64_t uplink_renew_due(int64_t not_before, int64_t not_after, unsigned percent,
			 const char *terminal)
{
	int64_t life = not_after - not_before;
	uint64_t h = 14695981039346656037ULL; /* FNV-1a of the id: the same every run */
	int64_t spread;

	if (life <= 0)
		return not_after;
	for (const char *p = terminal; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	spread = life / 800 * (int64_t)percent + (life % 800) * (int64_t)percent / 800;
	return not_before + life / 100 * (int64_t)percent + (life % 100) * (int64_t)percent / 100 +
	       (spread > 0 ? (int64_t)(h % (uint64_t)(spread + 1)) : 0);
}

static void plan(struct uplink_renew *rn)
{
	rn->due = 0;
	if (uplink_cert_dates(rn->p->report_cert, &rn->not_before, &rn->not_after) < 0)
		return;
	rn->due = uplink_renew_due(rn->not_before, rn->not_after, rn->percent, rn->p->terminal_id);
}

static void fmt(int64_t t, char out[static 32])
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void uplink_renew_init(struct uplink_renew *rn, const struct policy *p, unsigned percent)
{
	char a[32], b[32];

	*rn = (struct uplink_renew){.p = p, .percent = percent};
	uplink_recover_pair(p->report_key, p->report_cert);
	plan(rn);
	if (!rn->due) {
		log_line(LOG_WARNING, "uplink.renew cannot read %s: no renewal planned",
			 p->report_cert);
		return;
	}
	fmt(rn->not_after, a);
	fmt(rn->due, b);
	log_line(LOG_INFO, "uplink.renew certificate valid until %s, renewal from %s", a, b);
}

int uplink_renew_wait_ms(const struct uplink_renew *rn)
{
	int64_t now = (int64_t)time(NULL);

	if (!rn->due)
		return -1;
	if (rn->due <= now)
		return 0;
	return rn->due - now > INT32_MAX / 1000 ? INT32_MAX : (int)((rn->due - now) * 1000);
}

int uplink_renew_now(struct uplink_renew *rn)
{
	if (!rn->due)
		return -ENOENT;
	rn->due = (int64_t)time(NULL);
	log_line(LOG_INFO, "uplink.renew now (--renew-now)");
	return 0;
}

/* 1: renewed; <0: failed (logged) */
static int renew(struct uplink_renew *rn, const struct uplink_tls *tls, long timeout_sec)
{
	_cleanup_secret_ char *key = NULL;
	_cleanup_free_ char *csr = NULL, *body = NULL, *cert = NULL, *ca = NULL;
	char err[256] = "";
	size_t ca_len;
	int r;

	r = fileio_read_file(AT_FDCWD, tls->ca, CA_MAX, &ca, &ca_len);
	if (r < 0) {
		log_line(LOG_WARNING, "uplink.renew failed: CA %s: %s", tls->ca, strerror(-r));
		return r;
	}
	r = uplink_make_request(rn->p->terminal_id, &key, &csr);
	if (r < 0) {
		log_line(LOG_WARNING, "uplink.renew failed: cannot make a key: %s", strerror(-r));
		return r;
	}
	json_t *o = json_pack("{s:s}", "csr", csr);
	body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!body)
		return -ENOMEM;
	_cleanup_free_ char *url = NULL, *answer = NULL;
	size_t answer_len = 0;
	size_t ul = strlen(rn->p->report_collector);
	while (ul > 0 && rn->p->report_collector[ul - 1] == '/')
		ul--;
	if (asprintf(&url, "%.*s/v1/renew", (int)ul, rn->p->report_collector) < 0)
		return -ENOMEM;
	long status = uplink_https(url, tls->ca, tls->cert, tls->key, body, timeout_sec, &answer,
				   &answer_len, err, sizeof(err));
	if (status != 200) {
		log_line(LOG_WARNING, "uplink.renew failed: %s: %s", url,
			 status < 0 || status >= 400 ? err : "unexpected answer");
		return -EIO;
	}
	r = uplink_check_answer(answer ? answer : "", answer_len, rn->p->terminal_id, key, ca,
				&cert, err, sizeof(err));
	if (r < 0) {
		log_line(LOG_WARNING, "uplink.renew failed: bad answer: %s", err);
		return r;
	}
	r = uplink_install_pair(rn->p->report_key, key, rn->p->report_cert, cert, (uid_t)-1,
				(gid_t)-1);
	if (r < 0) {
		log_line(LOG_ERR,
			 "uplink.renew failed: cannot replace %s and %s: %s (the uplink's user "
			 "needs write access to their directory)",
			 rn->p->report_key, rn->p->report_cert, strerror(-r));
		return r;
	}
	return 1;
}

int uplink_renew_tick(struct uplink_renew *rn, struct uplink_client **client,
		      const struct uplink_tls *tls, long timeout_sec, struct uplink_claim *claim)
{
	int64_t now = (int64_t)time(NULL), old_after = rn->not_after;
	struct uplink_client *nc;
	char a[32], b[32];
	int r;

	if (!rn->due || rn->due > now)
		return 0;
	r = renew(rn, tls, timeout_sec);
	if (r < 0) {
		/* again in a twentieth of what is left, between a minute and an hour */
		int64_t left = rn->not_after - now, wait = left / 20;
		wait = wait < 60 ? 60 : wait > 3600 ? 3600 : wait;
		rn->due = now + wait;
		fmt(rn->not_after, a);
		log_line(LOG_WARNING,
			 "uplink.renew retrying in %" PRId64 " s (the certificate expires %s)",
			 wait, a);
		return r;
	}
	uplink_claim_renewed(claim); /* its next claim: a new connection, the new certificate */
	plan(rn);
	fmt(rn->not_after, a);
	fmt(rn->due, b);
	log_line(LOG_INFO,
		 "uplink.renewed certificate %s: valid until %s (was %" PRId64 "), next renewal "
		 "from %s",
		 tls->cert, a, old_after, b);
	if (uplink_client_new(rn->p->report_collector, tls, timeout_sec, &nc) < 0) {
		log_line(LOG_ERR, "uplink.renew cannot reconnect with the new certificate");
		return 1;
	}
	uplink_client_free(*client);
	*client = nc;
	return 1;
}
