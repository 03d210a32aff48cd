/* SPDX-License-Identifier: MIT */
/* The offline check of an evidence bundle (evidence-verify.h). Every byte of the file is
 * untrusted until the checks below have passed. */
#include "evidence-verify.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "utf8.h"

const char *const evidence_sections[EVIDENCE_SECTIONS] = {
    "header", "status", "failure", "review", "policy", "chain_head",
};

static int fail(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;

	if (err && errsz) {
		va_start(ap, fmt);
		vsnprintf(err, errsz, fmt, ap);
		va_end(ap);
	}
	return -EBADMSG;
}

static void hexs(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

void evidence_key_id(const uint8_t pub[32], char out[EVIDENCE_KEY_ID_LEN + 1])
{
	uint8_t md[32];
	char h[65];

	memset(md, 0, sizeof(md));
	EVP_Digest(pub, 32, md, NULL, EVP_sha256(), NULL);
	hexs(md, 32, h);
	memcpy(out, h, EVIDENCE_KEY_ID_LEN);
	out[EVIDENCE_KEY_ID_LEN] = 0;
}

static bool lower_hex(const char *s, size_t n)
{
	if (!s || strlen(s) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr("0123456789abcdef", s[i]))
			return false;
	return true;
}

static int unhex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -EINVAL;
		out[i] = (uint8_t)v;
	}
	return 0;
}

/* A JSON object of exactly one line (no NUL, valid UTF-8). */
static json_t *line_object(const uint8_t *p, size_t n)
{
	json_t *o;

	if (n == 0 || memchr(p, 0, n) || !utf8_valid((const char *)p, n))
		return NULL;
	o = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(o)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* The manifest line [m, m + mlen) and what it says. */
struct manifest {
	unsigned long long lines, bytes, count[EVIDENCE_SECTIONS];
	char sha[65], sec_sha[EVIDENCE_SECTIONS][65];
};

static int parse_manifest(const uint8_t *m, size_t mlen, struct manifest *ret, char *err,
			  size_t errsz)
{
	json_t *o = line_object(m, mlen), *secs, *v;
	const char *k;
	int r = 0;

	if (!o)
		return fail(err, errsz, "the manifest (next-to-last line) is not a JSON object");
	secs = json_object_get(o, "sections");
	json_object_foreach(o, k, v)
	{
		if (strcmp(k, "type") != 0 && strcmp(k, "lines") != 0 && strcmp(k, "bytes") != 0 &&
		    strcmp(k, "sha256") != 0 && strcmp(k, "sections") != 0)
			r = fail(err, errsz, "the manifest has an unknown key");
	}
	if (r == 0 && (!json_is_string(json_object_get(o, "type")) ||
		       strcmp(json_string_value(json_object_get(o, "type")), "manifest") != 0))
		r = fail(err, errsz, "the next-to-last line is not the manifest");
	if (r == 0 && (!json_is_integer(json_object_get(o, "lines")) ||
		       json_integer_value(json_object_get(o, "lines")) < 1 ||
		       !json_is_integer(json_object_get(o, "bytes")) ||
		       json_integer_value(json_object_get(o, "bytes")) < 0 ||
		       !lower_hex(json_string_value(json_object_get(o, "sha256")), 64) ||
		       !json_is_object(secs) || json_object_size(secs) != EVIDENCE_SECTIONS))
		r = fail(err, errsz, "the manifest lacks lines, bytes, sha256 or its sections");
	if (r == 0) {
		ret->lines = (unsigned long long)json_integer_value(json_object_get(o, "lines"));
		ret->bytes = (unsigned long long)json_integer_value(json_object_get(o, "bytes"));
		snprintf(ret->sha, sizeof(ret->sha), "%s",
			 json_string_value(json_object_get(o, "sha256")));
	}
	for (unsigned i = 0; r == 0 && i < EVIDENCE_SECTIONS; i++) {
		json_t *s = json_object_get(secs, evidence_sections[i]);
		json_t *c = json_object_get(s, "count");
		const char *h = json_string_value(json_object_get(s, "sha256"));
		if (!json_is_object(s) || json_object_size(s) != 2 || !json_is_integer(c) ||
		    json_integer_value(c) < 0 || !lower_hex(h, 64)) {
			r = fail(err, errsz, "the manifest's section %s is malformed",
				 evidence_sections[i]);
			break;
		}
		ret->count[i] = (unsigned long long)json_integer_value(c);
		snprintf(ret->sec_sha[i], sizeof(ret->sec_sha[i]), "%s", h);
	}
	json_decref(o);
	return r;
}

static int check_header(json_t *o, struct evidence_summary *sum, const char *key_id, char *err,
			size_t errsz)
{
	const char *format = json_string_value(json_object_get(o, "format"));
	const char *from = json_string_value(json_object_get(o, "from"));
	const char *to = json_string_value(json_object_get(o, "to"));
	const char *kid = json_string_value(json_object_get(o, "key_id"));
	json_t *version = json_object_get(o, "version");

	if (!format || strcmp(format, EVIDENCE_FORMAT) != 0)
		return fail(err, errsz, "line 1: not a mynaguard evidence bundle");
	if (!json_is_integer(version) || json_integer_value(version) != EVIDENCE_VERSION)
		return fail(err, errsz, "line 1: format version %s, this verifier reads %d",
			    json_is_integer(version) ? "other" : "missing", EVIDENCE_VERSION);
	if (!from || strlen(from) != 10 || !to || strlen(to) != 10)
		return fail(err, errsz, "line 1: from and to must be dates");
	if (key_id && (!kid || strcmp(kid, key_id) != 0))
		return fail(err, errsz, "line 1: the header names another key than the signature");
	snprintf(sum->from, sizeof(sum->from), "%s", from);
	snprintf(sum->to, sizeof(sum->to), "%s", to);
	return 0;
}

/* The body [buf, buf + blen) against the manifest. */
static int check_body(const uint8_t *buf, size_t blen, const struct manifest *m, const char *key_id,
		      struct evidence_summary *sum, char *err, size_t errsz)
{
	EVP_MD_CTX *body = EVP_MD_CTX_new(), *sec[EVIDENCE_SECTIONS] = {0};
	unsigned long long line = 0, count[EVIDENCE_SECTIONS] = {0};
	size_t off = 0;
	int r = 0;

	if (!body || EVP_DigestInit_ex(body, EVP_sha256(), NULL) != 1)
		r = -ENOMEM;
	for (unsigned i = 0; r == 0 && i < EVIDENCE_SECTIONS; i++)
		if (!(sec[i] = EVP_MD_CTX_new()) ||
		    EVP_DigestInit_ex(sec[i], EVP_sha256(), NULL) != 1)
			r = -ENOMEM;
	if (r == 0 && m->bytes != blen)
		r = fail(err, errsz,
			 "the records hold %zu bytes, the manifest says %llu: lines were added, "
			 "removed or changed in length",
			 blen, m->bytes);
	while (r == 0 && off < blen) {
		const uint8_t *p = buf + off, *nl = memchr(p, '\n', blen - off);
		size_t n = (size_t)(nl - p);
		json_t *o;
		const char *type;
		unsigned s;

		line++;
		/* blen ends at a line end (the manifest follows it), so nl is never NULL */
		o = line_object(p, n);
		if (!o) {
			r = fail(err, errsz, "line %llu: not a JSON object", line);
			break;
		}
		type = json_string_value(json_object_get(o, "type"));
		for (s = 0; type && s < EVIDENCE_SECTIONS; s++)
			if (strcmp(type, evidence_sections[s]) == 0)
				break;
		if (!type || s == EVIDENCE_SECTIONS)
			r = fail(err, errsz, "line %llu: unknown record type", line);
		else if ((line == 1) != (s == EVIDENCE_HEADER))
			r = fail(err, errsz, "line %llu: %s", line,
				 line == 1 ? "the first line must be the header"
					   : "a second header");
		else if (s == EVIDENCE_HEADER)
			r = check_header(o, sum, key_id, err, errsz);
		json_decref(o);
		if (r < 0)
			break;
		if (EVP_DigestUpdate(body, p, n + 1) != 1 ||
		    EVP_DigestUpdate(sec[s], p, n + 1) != 1)
			r = -ENOMEM;
		count[s]++;
		off += n + 1;
	}
	if (r == 0 && line == 0)
		r = fail(err, errsz, "no header line");
	if (r == 0 && line != m->lines)
		r = fail(err, errsz, "%llu record lines, the manifest says %llu", line, m->lines);
	for (unsigned i = 0; r == 0 && i < EVIDENCE_SECTIONS; i++) {
		uint8_t md[32];
		char h[65];
		if (count[i] != m->count[i]) {
			r = fail(err, errsz,
				 "section %s: %llu lines, the manifest says %llu (records were "
				 "added, removed or their type changed)",
				 evidence_sections[i], count[i], m->count[i]);
			break;
		}
		if (EVP_DigestFinal_ex(sec[i], md, NULL) != 1) {
			r = -ENOMEM;
			break;
		}
		hexs(md, 32, h);
		if (strcmp(h, m->sec_sha[i]) != 0)
			r = fail(err, errsz,
				 "section %s: its SHA-256 differs from the manifest's (a %s record "
				 "was changed)",
				 evidence_sections[i], evidence_sections[i]);
	}
	if (r == 0) {
		uint8_t md[32];
		char h[65];
		if (EVP_DigestFinal_ex(body, md, NULL) != 1)
			r = -ENOMEM;
		else {
			hexs(md, 32, h);
			if (strcmp(h, m->sha) != 0)
				r = fail(err, errsz,
					 "the records' SHA-256 differs from the manifest's (their "
					 "order was changed)");
		}
	}
	if (r == 0 && sum) {
		sum->lines = line;
		memcpy(sum->count, count, sizeof(count));
	}
	EVP_MD_CTX_free(body);
	for (unsigned i = 0; i < EVIDENCE_SECTIONS; i++)
		EVP_MD_CTX_free(sec[i]);
	return r;
}

/* Splits the file: body, manifest line, signature line (each line ending in \n). */
static int split(const uint8_t *buf, size_t len, size_t *body_len, size_t *m_off, size_t *m_len,
		 size_t *s_off, size_t *s_len, char *err, size_t errsz)
{
	size_t end, a, b;

	if (len == 0)
		return fail(err, errsz, "the file is empty");
	if (buf[len - 1] != '\n')
		return fail(err, errsz, "the file does not end with a line end (cut short?)");
	end = len - 1; /* the signature line is [a, end) */
	for (a = end; a > 0 && buf[a - 1] != '\n'; a--)
		;
	if (a == 0)
		return fail(err, errsz, "no manifest line before the signature");
	for (b = a - 1; b > 0 && buf[b - 1] != '\n'; b--)
		;
	*s_off = a;
	*s_len = end - a;
	*m_off = b;
	*m_len = a - 1 - b;
	*body_len = b;
	return 0;
}

static int parse_signature(const uint8_t *p, size_t n, uint8_t sig[BUNDLE_SIG_LEN],
			   char key_id[EVIDENCE_KEY_ID_LEN + 1], char *err, size_t errsz)
{
	json_t *o = line_object(p, n);
	const char *alg, *kid, *type, *value;
	int r = 0;

	if (!o)
		return fail(err, errsz, "the last line (the signature) is not a JSON object");
	alg = json_string_value(json_object_get(o, "alg"));
	kid = json_string_value(json_object_get(o, "key_id"));
	type = json_string_value(json_object_get(o, "type"));
	value = json_string_value(json_object_get(o, "value"));
	if (json_object_size(o) != 4 || !type || strcmp(type, "signature") != 0)
		r = fail(err, errsz, "the last line is not the signature");
	else if (!alg || strcmp(alg, "ed25519") != 0)
		r = fail(err, errsz, "signature: the algorithm is not ed25519");
	else if (!lower_hex(kid, EVIDENCE_KEY_ID_LEN))
		r = fail(err, errsz, "signature: malformed key_id");
	else if (!lower_hex(value, 2 * BUNDLE_SIG_LEN) || unhex(value, sig, BUNDLE_SIG_LEN) < 0)
		r = fail(err, errsz, "signature: the value is not %d hex digits",
			 2 * BUNDLE_SIG_LEN);
	if (r == 0)
		snprintf(key_id, EVIDENCE_KEY_ID_LEN + 1, "%s", kid);
	json_decref(o);
	return r;
}

static int verify(const uint8_t *buf, size_t len, const uint8_t *pub, struct evidence_summary *ret,
		  char *err, size_t errsz)
{
	size_t body_len = 0, m_off = 0, m_len = 0, s_off = 0, s_len = 0;
	uint8_t sig[BUNDLE_SIG_LEN];
	char kid[EVIDENCE_KEY_ID_LEN + 1], own[EVIDENCE_KEY_ID_LEN + 1];
	struct manifest m;
	struct evidence_summary sum = {0};
	int r;

	r = split(buf, len, &body_len, &m_off, &m_len, &s_off, &s_len, err, errsz);
	if (r < 0)
		return r;
	if (pub) {
		r = parse_signature(buf + s_off, s_len, sig, kid, err, errsz);
		if (r < 0)
			return r;
		evidence_key_id(pub, own);
		if (strcmp(kid, own) != 0)
			return fail(
			    err, errsz,
			    "signed with another key (key_id %s; the given public key is %s)", kid,
			    own);
		uint8_t *msg = malloc(sizeof(EVIDENCE_CONTEXT) + m_len);
		if (!msg)
			return -ENOMEM;
		memcpy(msg, EVIDENCE_CONTEXT, sizeof(EVIDENCE_CONTEXT));
		memcpy(msg + sizeof(EVIDENCE_CONTEXT), buf + m_off, m_len);
		r = bundle_verify_detached(pub, msg, sizeof(EVIDENCE_CONTEXT) + m_len, sig);
		free(msg);
		if (r == -ENOMEM)
			return r;
		if (r < 0)
			return fail(err, errsz,
				    "the signature does not match the manifest (the manifest or "
				    "the signature line was changed)");
	}
	r = parse_manifest(buf + m_off, m_len, &m, err, errsz);
	if (r < 0)
		return r;
	r = check_body(buf, body_len, &m, pub ? kid : NULL, &sum, err, errsz);
	if (r < 0)
		return r;
	if (ret)
		*ret = sum;
	return 0;
}

int evidence_bundle_verify(const uint8_t *buf, size_t len, const uint8_t pub[32],
			   struct evidence_summary *ret, char *err, size_t errsz)
{
	if (!pub)
		return -EINVAL;
	return verify(buf, len, pub, ret, err, errsz);
}

int evidence_check_unsigned(const uint8_t *buf, size_t len, struct evidence_summary *ret, char *err,
			    size_t errsz)
{
	return verify(buf, len, NULL, ret, err, errsz);
}
