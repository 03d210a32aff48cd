/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: the alert thread's deliveries through libcurl — mail to the city's relay
 * (SMTP, optional STARTTLS that must succeed, optional AUTH only over TLS) and a webhook POST —
 * each bounded by a timeout. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "alert.h"
#include "fileio.h"
#include "macro.h"
#include "secmem.h"

#define SMTP_PASSWORD_MAX 1024

static void curl_cleanupp(CURL **c)
{
	if (*c)
		curl_easy_cleanup(*c);
}

static void slist_freep(struct curl_slist **l)
{
	curl_slist_free_all(*l);
}

/* base64 of len bytes of s into a new string, in lines of at most 76 characters when wrap */
static char *b64(const char *s, size_t len, bool wrap)
{
	size_t out = 4 * ((len + 2) / 3), cap = out + (wrap ? 2 * (out / 76 + 1) : 0) + 1;
	_cleanup_free_ char *flat = malloc(out + 1);
	char *res = malloc(cap), *p = res;

	if (!flat || !res) {
		free(res);
		return NULL;
	}
	EVP_EncodeBlock((unsigned char *)flat, (const unsigned char *)s, (int)len);
	for (size_t i = 0; i < out; i += 76) {
		size_t n = out - i < 76 ? out - i : 76;
		memcpy(p, flat + i, n);
		p += n;
		if (wrap) {
			*p++ = '\r';
			*p++ = '\n';
		}
	}
	*p = 0;
	return res;
}

/* RFC 2047: the subject as "=?UTF-8?B?...?=" words of at most 45 input bytes each, cut on
 * character boundaries, folded onto continuation lines. */
static int subject_encode(FILE *f, const char *s)
{
	size_t len = strlen(s), i = 0;

	fputs("Subject:", f);
	while (i < len) {
		size_t n = len - i < 45 ? len - i : 45;
		_cleanup_free_ char *w = NULL;
		while (i + n < len && ((unsigned char)s[i + n] & 0xc0) == 0x80)
			n--; /* never split a UTF-8 sequence */
		w = b64(s + i, n, false);
		if (!w)
			return -ENOMEM;
		fprintf(f, "%s=?UTF-8?B?%s?=", i ? "\r\n " : " ", w);
		i += n;
	}
	fputs("\r\n", f);
	return 0;
}

int alert_mail_format(const struct collector_config *cfg, const char *subject, const char *body,
		      int64_t now_ms, char **ret)
{
	_cleanup_free_ char *text = NULL, *enc = NULL;
	size_t size = 0;
	unsigned char rnd[8];
	char date[64];
	time_t t = (time_t)(now_ms / 1000);
	struct tm tm;
	FILE *f;

	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -EIO;
	enc = b64(body, strlen(body), true);
	f = enc ? open_memstream(&text, &size) : NULL;
	if (!f)
		return -ENOMEM;
	fprintf(f, "Date: %s\r\nFrom: %s\r\nTo: %s\r\n", date, cfg->alert_from, cfg->alert_to);
	fprintf(f, "Message-ID: <%lld.%02x%02x%02x%02x%02x%02x%02x%02x@mynaguard-collector>\r\n",
		(long long)now_ms, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	if (subject_encode(f, subject) < 0) {
		fclose(f);
		return -ENOMEM;
	}
	fputs("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n"
	      "Content-Transfer-Encoding: base64\r\nAuto-Submitted: auto-generated\r\n\r\n",
	      f);
	fputs(enc, f);
	if (fclose(f) != 0)
		return -ENOMEM;
	*ret = TAKE_PTR(text);
	return 0;
}

int alert_smtp_password(const char *path, char **ret, char *err, size_t errsz)
{
	const struct fileio_expect ex = {.forbidden_mode = 0077};
	_cleanup_close_ int fd = -1;
	char *text = NULL;
	size_t len = 0;
	int r = fileio_open_verified(AT_FDCWD, path, O_RDONLY, &ex, &fd);

	if (r >= 0)
		r = fileio_read_fd(fd, SMTP_PASSWORD_MAX, &text, &len);
	if (r < 0) {
		snprintf(err, errsz, "%s",
			 r == -EACCES  ? "group or others may read it (chmod 600)"
			 : r == -ELOOP ? "is a symlink"
			 : r == -EFBIG ? "longer than 1024 bytes"
				       : strerror(-r));
		return r;
	}
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		text[--len] = 0;
	r = len == 0 ? -EBADMSG : 0;
	for (size_t i = 0; r == 0 && i < len; i++)
		if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
			r = -EBADMSG; /* one line of printable bytes, nothing for the SMTP dialogue */
	if (r < 0) {
		snprintf(err, errsz, "expected the password on one line, without control bytes");
		secmem_wipe(text, len);
		free(text);
		return r;
	}
	*ret = text;
	return 0;
}

int alert_smtp_auth_check(const struct collector_config *c, const char *name,
			  char err[static CONFIG_ERROR_MAX])
{
	char why[160];
	char *pw = NULL;
	int r;

	if (!c->alert_smtp_user && !c->alert_smtp_password_file)
		return 0;
	if (!c->alert_smtp_user != !c->alert_smtp_password_file) {
		snprintf(err, CONFIG_ERROR_MAX,
			 "%s: [alerts] smtp_user and smtp_password_file go together", name);
		return -EINVAL;
	}
	if (!c->alert_smtp) {
		snprintf(err, CONFIG_ERROR_MAX, "%s: [alerts] smtp_user needs smtp", name);
		return -EINVAL;
	}
	if (strncmp(c->alert_smtp, "smtps://", 8) != 0 && !c->alert_starttls) {
		snprintf(err, CONFIG_ERROR_MAX,
			 "%s: [alerts] smtp_user: the password is sent only over TLS: set starttls "
			 "= yes or use an smtps:// relay",
			 name);
		return -EINVAL;
	}
	for (const char *u = c->alert_smtp_user; *u; u++)
		if ((unsigned char)*u <= 0x20 || *u == 0x7f) {
			snprintf(err, CONFIG_ERROR_MAX,
				 "%s: [alerts] smtp_user: no spaces or control bytes", name);
			return -EINVAL;
		}
	r = alert_smtp_password(c->alert_smtp_password_file, &pw, why, sizeof(why));
	if (r < 0) {
		snprintf(err, CONFIG_ERROR_MAX, "%s: [alerts] smtp_password_file %s: %s", name,
			 c->alert_smtp_password_file, why);
		return r == -ENOMEM ? r : -EINVAL;
	}
	secmem_free_string(pw);
	return 0;
}

struct upload {
	const char *data;
	size_t len, off;
};

static size_t read_cb(char *buf, size_t size, size_t n, void *arg)
{
	struct upload *u = arg;
	size_t want = size * n, left = u->len - u->off;

	if (want > left)
		want = left;
	memcpy(buf, u->data + u->off, want);
	u->off += want;
	return want;
}

static size_t discard_cb(char *buf, size_t size, size_t n, void *arg)
{
	(void)buf;
	(void)arg;
	return size * n;
}

static void common_opts(CURL *c, const struct collector_config *cfg, char *errbuf)
{
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)cfg->alert_timeout);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)cfg->alert_timeout);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
}

static int curl_failed(CURLcode rc, const char *errbuf, char err[static ALERT_ERROR_MAX])
{
	snprintf(err, ALERT_ERROR_MAX, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
	return -EIO;
}

int alert_send_mail(const struct collector_config *cfg, const char *subject, const char *body,
		    char err[static ALERT_ERROR_MAX])
{
	_cleanup_(curl_cleanupp) CURL *c = NULL;
	_cleanup_(slist_freep) struct curl_slist *rcpt = NULL;
	_cleanup_free_ char *text = NULL, *to = NULL;
	_cleanup_secret_ char *password = NULL;
	char errbuf[CURL_ERROR_SIZE] = "", *save = NULL;
	struct timespec now;
	struct upload u;
	CURLcode rc;
	int r;

	clock_gettime(CLOCK_REALTIME, &now);
	r = alert_mail_format(cfg, subject, body,
			      (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000, &text);
	if (r < 0) {
		snprintf(err, ALERT_ERROR_MAX, "cannot format the mail: %s", strerror(-r));
		return r;
	}
	to = strdup(cfg->alert_to);
	if (!to)
		return -ENOMEM;
	for (char *a = strtok_r(to, " ,\t", &save); a; a = strtok_r(NULL, " ,\t", &save)) {
		struct curl_slist *n = curl_slist_append(rcpt, a);
		if (!n)
			return -ENOMEM;
		rcpt = n;
	}
	c = curl_easy_init();
	if (!c)
		return -ENOMEM;
	u = (struct upload){.data = text, .len = strlen(text)};
	common_opts(c, cfg, errbuf);
	curl_easy_setopt(c, CURLOPT_URL, cfg->alert_smtp);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	/* a password goes only over TLS (alert_smtp_auth_check refused a clear-text relay) */
	curl_easy_setopt(c, CURLOPT_USE_SSL,
			 cfg->alert_starttls || cfg->alert_smtp_user ? (long)CURLUSESSL_ALL
								     : (long)CURLUSESSL_NONE);
	if (cfg->alert_smtp_user) {
		char why[160];
		/* read for each mail (a changed password needs no restart), wiped after it */
		r = alert_smtp_password(cfg->alert_smtp_password_file, &password, why, sizeof(why));
		if (r < 0) {
			snprintf(err, ALERT_ERROR_MAX, "[alerts] smtp_password_file %s: %s",
				 cfg->alert_smtp_password_file, why);
			return r;
		}
		curl_easy_setopt(c, CURLOPT_USERNAME, cfg->alert_smtp_user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, password);
	}
	if (cfg->alert_smtp_ca)
		curl_easy_setopt(c, CURLOPT_CAINFO, cfg->alert_smtp_ca);
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, cfg->alert_from);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
	curl_easy_setopt(c, CURLOPT_READDATA, &u);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	rc = curl_easy_perform(c);
	if (password) /* libcurl's copy: replaced by an empty one before the handle goes */
		curl_easy_setopt(c, CURLOPT_PASSWORD, "");
	if (rc != CURLE_OK)
		return curl_failed(rc, errbuf, err);
	return 0;
}

int alert_send_webhook(const struct collector_config *cfg, const char *json,
		       char err[static ALERT_ERROR_MAX])
{
	_cleanup_(curl_cleanupp) CURL *c = NULL;
	_cleanup_(slist_freep) struct curl_slist *h = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	long status = 0;
	CURLcode rc;

	h = curl_slist_append(NULL, "Content-Type: application/json; charset=utf-8");
	c = h ? curl_easy_init() : NULL;
	if (!c)
		return -ENOMEM;
	common_opts(c, cfg, errbuf);
	curl_easy_setopt(c, CURLOPT_URL, cfg->alert_webhook);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_cb);
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK)
		return curl_failed(rc, errbuf, err);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status > 299) {
		snprintf(err, ALERT_ERROR_MAX, "the webhook answered HTTP %ld", status);
		return -EIO;
	}
	return 0;
}
