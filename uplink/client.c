/* SPDX-License-Identifier: MIT */
/* mynaguard-uplink (user mynaguard): one POST of a batch with libcurl over mutual TLS, parsed answer. */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "escape.h"
#include "macro.h"
#include "uplink.h"

#define ANSWER_MAX (64 * 1024)

struct uplink_client {
	CURL *curl;
	struct curl_slist *headers;
	char *url;
	char errbuf[CURL_ERROR_SIZE];
	char *body;
	size_t body_len;
	size_t body_max;
	bool body_overflow;
	size_t base_len; /* of url before "/v1/events" */
	char etag[64];	 /* GET: the answer's ETag header */
	long timeout_sec;
};

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct uplink_client *c = userdata;
	size_t n = size * nmemb;
	if (c->body_len + n > c->body_max) {
		c->body_overflow = true;
		return n; /* keep reading, ignore the rest */
	}
	char *nb = realloc(c->body, c->body_len + n + 1);
	if (!nb)
		return 0;
	memcpy(nb + c->body_len, ptr, n);
	c->body = nb;
	c->body_len += n;
	c->body[c->body_len] = 0;
	return n;
}

int uplink_client_new(const char *url, const struct uplink_tls *tls, long timeout_sec,
		      struct uplink_client **ret)
{
	size_t ul = strlen(url);
	while (ul > 0 && url[ul - 1] == '/')
		ul--;
	struct uplink_client *c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	c->url = malloc(ul + sizeof "/v1/events");
	c->curl = curl_easy_init();
	c->headers = curl_slist_append(NULL, "Content-Type: application/json");
	if (c->headers)
		c->headers = curl_slist_append(c->headers, "Expect:");
	if (!c->url || !c->curl || !c->headers) {
		uplink_client_free(c);
		return -ENOMEM;
	}
	memcpy(c->url, url, ul);
	strcpy(c->url + ul, "/v1/events");
	c->base_len = ul;
	c->body_max = ANSWER_MAX;

	CURL *h = c->curl;
	CURLcode e = CURLE_OK;
#define SET(opt, val)                                                                              \
	do {                                                                                       \
		if (e == CURLE_OK)                                                                 \
			e = curl_easy_setopt(h, opt, val);                                         \
	} while (0)
	SET(CURLOPT_URL, c->url);
	SET(CURLOPT_PROTOCOLS_STR, "https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_PROXY, ""); /* no proxy from the environment on a closed network */
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_HTTPHEADER, c->headers);
	SET(CURLOPT_ERRORBUFFER, c->errbuf);
	SET(CURLOPT_WRITEFUNCTION, on_write);
	SET(CURLOPT_WRITEDATA, c);
	SET(CURLOPT_CONNECTTIMEOUT, 10L);
	SET(CURLOPT_TIMEOUT, timeout_sec);
	c->timeout_sec = timeout_sec;
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	/* Trust exactly the configured CA: no system store, no CA directory. */
	SET(CURLOPT_CAINFO, tls->ca);
	SET(CURLOPT_CAPATH, NULL);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	/* TLS 1.2 at least; with no maximum the highest (1.3) is negotiated when offered. */
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	SET(CURLOPT_SSLCERT, tls->cert);
	SET(CURLOPT_SSLCERTTYPE, "PEM");
	SET(CURLOPT_SSLKEY, tls->key);
	SET(CURLOPT_SSLKEYTYPE, "PEM");
	SET(CURLOPT_POST, 1L);
#undef SET
	if (e != CURLE_OK) {
		uplink_client_free(c);
		return -EINVAL;
	}
	*ret = c;
	return 0;
}

void uplink_client_free(struct uplink_client *c)
{
	if (!c)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	curl_slist_free_all(c->headers);
	free(c->url);
	free(c->body);
	free(c);
}

/* The collector's reason from {"error":"..."} bodies, else the body's first line, for a log
 * line: escaped by escape_text(), cut with "..." to fit buf. */
static void answer_reason(const struct uplink_client *c, char *buf, size_t size)
{
	buf[0] = 0;
	if (!c->body || c->body_len == 0)
		return;
	json_t *o = json_loadb(c->body, c->body_len, 0, NULL);
	const char *s = NULL;
	if (json_is_object(o)) {
		json_t *v = json_object_get(o, "error");
		if (!json_is_string(v))
			v = json_object_get(o, "reason");
		if (json_is_string(v))
			s = json_string_value(v);
	}
	const char *src = s ? s : c->body;
	/* its first line, at most 200 bytes, escaped (base/escape.h) */
	escape_text(src, strcspn(src, "\n"), 200, 0, buf, size);
	json_decref(o);
}

void uplink_client_post(struct uplink_client *c, const char *body, size_t len,
			struct uplink_answer *ret)
{
	*ret = (struct uplink_answer){.result = UPLINK_FAILED, .retry_after_sec = -1};
	free(c->body);
	c->body = NULL;
	c->body_len = 0;
	c->body_overflow = false;
	c->errbuf[0] = 0;

	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	CURLcode e = curl_easy_perform(c->curl);
	if (e != CURLE_OK) {
		snprintf(ret->message, sizeof ret->message, "%s",
			 c->errbuf[0] ? c->errbuf : curl_easy_strerror(e));
		return;
	}
	long status = 0;
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	ret->status = status;
	if (status == 200) {
		json_error_t err;
		json_t *o = c->body_overflow ? NULL
					     : json_loadb(c->body ? c->body : "", c->body_len,
							  JSON_REJECT_DUPLICATES, &err);
		json_t *v = json_object_get(o, "acked_through");
		if (!json_is_integer(v) || json_integer_value(v) < 0) {
			snprintf(ret->message, sizeof ret->message,
				 "200 without a valid acked_through");
			json_decref(o);
			return;
		}
		ret->acked_through = (uint64_t)json_integer_value(v);
		ret->result = UPLINK_OK;
		json_decref(o);
		return;
	}
	char reason[210];
	answer_reason(c, reason, sizeof reason);
	snprintf(ret->message, sizeof ret->message, "HTTP %ld%s%s", status, reason[0] ? ": " : "",
		 reason);
	if (status == 429 || status == 503) {
		curl_off_t ra = -1;
		if (curl_easy_getinfo(c->curl, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
			ret->retry_after_sec = (long)ra;
		ret->result = UPLINK_RETRY_AFTER;
		return;
	}
	if (status >= 400 && status < 500) {
		ret->result = UPLINK_REJECTED;
		return;
	}
	ret->result = UPLINK_FAILED;
}

/* The ETag header of a GET answer, when it is short and printable. */
static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct uplink_client *c = userdata;
	size_t n = size * nmemb;

	if (n > 5 && strncasecmp(ptr, "ETag:", 5) == 0) {
		size_t i = 5, end = n;
		while (i < end && (ptr[i] == ' ' || ptr[i] == '\t'))
			i++;
		while (end > i &&
		       (ptr[end - 1] == '\r' || ptr[end - 1] == '\n' || ptr[end - 1] == ' '))
			end--;
		c->etag[0] = 0;
		if (end - i < sizeof c->etag) {
			bool ok = true;
			for (size_t k = i; k < end; k++)
				ok = ok && ptr[k] > 0x20 && ptr[k] < 0x7f;
			if (ok) {
				memcpy(c->etag, ptr + i, end - i);
				c->etag[end - i] = 0;
			}
		}
	}
	return n;
}

void uplink_client_get(struct uplink_client *c, const char *path, const char *if_none_match,
		       const char *extra_header, size_t max, struct uplink_fetch *ret)
{
	_cleanup_free_ char *url = NULL;
	_cleanup_free_ char *inm = NULL;
	struct curl_slist *h = NULL;

	*ret = (struct uplink_fetch){0};
	free(c->body);
	c->body = NULL;
	c->body_len = 0;
	c->body_overflow = false;
	c->errbuf[0] = 0;
	c->etag[0] = 0;
	if (asprintf(&url, "%.*s%s", (int)c->base_len, c->url, path) < 0) {
		url = NULL;
		snprintf(ret->message, sizeof ret->message, "out of memory");
		return;
	}
	h = curl_slist_append(NULL, "Expect:");
	if (h && if_none_match && if_none_match[0] &&
	    asprintf(&inm, "If-None-Match: %s", if_none_match) >= 0) {
		struct curl_slist *h2 = curl_slist_append(h, inm);
		if (h2)
			h = h2;
	}
	if (h && extra_header) {
		struct curl_slist *h2 = curl_slist_append(h, extra_header);
		if (h2)
			h = h2;
	}
	c->body_max = max;
	curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, c);
	CURLcode e = curl_easy_perform(c->curl);
	/* back to what uplink_client_post expects, on the same connection */
	curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, NULL);
	curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, NULL);
	curl_easy_setopt(c->curl, CURLOPT_URL, c->url);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->headers);
	curl_easy_setopt(c->curl, CURLOPT_POST, 1L);
	c->body_max = ANSWER_MAX;
	curl_slist_free_all(h);
	if (e != CURLE_OK) {
		snprintf(ret->message, sizeof ret->message, "%s",
			 c->errbuf[0] ? c->errbuf : curl_easy_strerror(e));
		snprintf(ret->what, sizeof ret->what, "curl %d", (int)e);
		return;
	}
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &ret->status);
	snprintf(ret->what, sizeof ret->what, "HTTP %ld", ret->status);
	snprintf(ret->etag, sizeof ret->etag, "%s", c->etag);
	if (ret->status == 200) {
		if (c->body_overflow) {
			snprintf(ret->message, sizeof ret->message, "the answer exceeds %zu bytes",
				 max);
			ret->status = 0;
			return;
		}
		ret->body = c->body;
		ret->len = c->body_len;
		c->body = NULL;
		c->body_len = 0;
		return;
	}
	char reason[210];
	answer_reason(c, reason, sizeof reason);
	snprintf(ret->message, sizeof ret->message, "HTTP %ld%s%s", ret->status,
		 reason[0] ? ": " : "", reason);
}

enum claim_result uplink_client_claim(struct uplink_client *c, const char *user, uint64_t step,
				      long timeout_ms)
{
	_cleanup_free_ char *url = NULL, *body = NULL;
	enum claim_result res = CLAIM_OFFLINE;
	long status = 0;
	CURLcode e;

	if (asprintf(&url, "%.*s/v1/totp/claim", (int)c->base_len, c->url) < 0 ||
	    asprintf(&body, "{\"user\":\"%s\",\"step\":%" PRIu64 "}", user, step) < 0)
		return CLAIM_OFFLINE;
	free(c->body);
	c->body = NULL;
	c->body_len = 0;
	c->body_overflow = false;
	c->body_max = 4096;
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	e = curl_easy_perform(c->curl);
	curl_easy_setopt(c->curl, CURLOPT_URL, c->url);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, c->timeout_sec);
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT, 10L);
	c->body_max = ANSWER_MAX;
	if (e == CURLE_OK)
		curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status == 200 && !c->body_overflow && c->body) {
		json_t *o = json_loadb(c->body, c->body_len, JSON_REJECT_DUPLICATES, NULL);
		const char *w = json_string_value(json_object_get(o, "result"));
		for (unsigned i = 0; w && i < CLAIM_OFFLINE; i++)
			if (strcmp(w, claim_result_name((enum claim_result)i)) == 0)
				res = (enum claim_result)i;
		json_decref(o);
	}
	return res;
}
