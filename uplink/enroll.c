/* SPDX-License-Identifier: MIT */
/* mynaguard-uplink --enroll (run once by the admin, as root): pins the collector's CA by the
 * fingerprint the admin gives, makes the key here, sends CSR + one-time token over TLS verified
 * against that CA, writes key (0600), certificate and CA. Also the helpers renewal shares. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "enroll.h"
#include "escape.h"
#include "event.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "parse.h"
#include "policy.h"
#include "secmem.h"

#define ANSWER_MAX (256 * 1024)
#define TOKEN_MAX  256

struct buf {
	char *data;
	size_t len;
	bool overflow;
};

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct buf *b = userdata;
	size_t n = size * nmemb;
	if (b->len + n > ANSWER_MAX) {
		b->overflow = true;
		return n;
	}
	char *nb = realloc(b->data, b->len + n + 1);
	if (!nb)
		return 0;
	memcpy(nb + b->len, ptr, n);
	b->data = nb;
	b->len += n;
	b->data[b->len] = 0;
	return n;
}

/* The collector's {"error": ...}, escaped, for a message. */
static void answer_error(const struct buf *b, char *out, size_t size)
{
	json_t *o = b->data ? json_loadb(b->data, b->len, 0, NULL) : NULL;
	json_t *v = json_object_get(o, "error");
	const char *s = json_is_string(v) ? json_string_value(v) : b->data ? b->data : "";
	escape_text(s, strcspn(s, "\n"), 200, 0, out, size);
	json_decref(o);
}

/* One HTTPS request. cainfo NULL: the server is not verified (only for fetching the CA, which
 * is then checked against the pinned fingerprint). Returns the HTTP status or -1 (err set). */
static long https(const char *url, const char *cainfo, const char *cert, const char *key,
		  const char *body, long timeout, struct buf *ret, char *err, size_t errsz);

long uplink_https(const char *url, const char *cainfo, const char *cert, const char *key,
		  const char *body, long timeout, char **ret_body, size_t *ret_len, char *err,
		  size_t errsz)
{
	struct buf b;
	long status = https(url, cainfo, cert, key, body, timeout, &b, err, errsz);

	if (status >= 400) {
		char msg[210];
		answer_error(&b, msg, sizeof(msg));
		snprintf(err, errsz, "HTTP %ld: %s", status, msg);
	}
	*ret_body = b.data;
	*ret_len = b.len;
	return status;
}

static long https(const char *url, const char *cainfo, const char *cert, const char *key,
		  const char *body, long timeout, struct buf *ret, char *err, size_t errsz)
{
	CURL *h = curl_easy_init();
	struct curl_slist *hdr = NULL;
	char ebuf[CURL_ERROR_SIZE] = "";
	long status = -1;
	CURLcode e = CURLE_OK;

	*ret = (struct buf){0};
	if (!h) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	hdr = curl_slist_append(NULL, "Content-Type: application/json");
	if (hdr)
		hdr = curl_slist_append(hdr, "Expect:");
#define SET(opt, val)                                                                              \
	do {                                                                                       \
		if (e == CURLE_OK)                                                                 \
			e = curl_easy_setopt(h, opt, val);                                         \
	} while (0)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_PROTOCOLS_STR, "https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_PROXY, "");
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_ERRORBUFFER, ebuf);
	SET(CURLOPT_WRITEFUNCTION, on_write);
	SET(CURLOPT_WRITEDATA, ret);
	SET(CURLOPT_CONNECTTIMEOUT, 10L);
	SET(CURLOPT_TIMEOUT, timeout);
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	SET(CURLOPT_CAPATH, NULL);
	if (cainfo) {
		SET(CURLOPT_CAINFO, cainfo);
		SET(CURLOPT_SSL_VERIFYPEER, 1L);
		SET(CURLOPT_SSL_VERIFYHOST, 2L);
	} else {
		SET(CURLOPT_CAINFO, NULL);
		SET(CURLOPT_SSL_VERIFYPEER, 0L);
		SET(CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (cert) {
		SET(CURLOPT_SSLCERT, cert);
		SET(CURLOPT_SSLKEY, key);
	}
	if (body) {
		SET(CURLOPT_HTTPHEADER, hdr);
		SET(CURLOPT_POSTFIELDS, body);
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	}
#undef SET
	if (e == CURLE_OK)
		e = curl_easy_perform(h);
	if (e != CURLE_OK)
		snprintf(err, errsz, "%s", ebuf[0] ? ebuf : curl_easy_strerror(e));
	else if (ret->overflow)
		snprintf(err, errsz, "the answer is larger than %d bytes", ANSWER_MAX);
	else
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	return status;
}

int uplink_make_request(const char *terminal, char **ret_key_pem, char **ret_csr_pem)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	BIO *kb = BIO_new(BIO_s_secmem()), *cb = BIO_new(BIO_s_mem());
	char *kd, *cd;
	long kl, cl;
	int r = -ENOMEM;

	if (!pk || !req || !name || !kb || !cb)
		goto done;
	if (X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
				       (const unsigned char *)terminal, -1, -1, 0) != 1 ||
	    X509_REQ_set_subject_name(req, name) != 1 || X509_REQ_set_pubkey(req, pk) != 1 ||
	    X509_REQ_sign(req, pk, EVP_sha256()) <= 0 ||
	    PEM_write_bio_PrivateKey(kb, pk, NULL, NULL, 0, NULL, NULL) != 1 ||
	    PEM_write_bio_X509_REQ(cb, req) != 1) {
		r = -EIO;
		goto done;
	}
	kl = BIO_get_mem_data(kb, &kd);
	cl = BIO_get_mem_data(cb, &cd);
	*ret_key_pem = strndup(kd, (size_t)kl);
	*ret_csr_pem = strndup(cd, (size_t)cl);
	if (!*ret_key_pem || !*ret_csr_pem) {
		secmem_free_string(*ret_key_pem);
		free(*ret_csr_pem);
		goto done;
	}
	r = 0;
done:
	BIO_free(kb); /* secure memory: cleansed */
	BIO_free(cb);
	X509_NAME_free(name);
	X509_REQ_free(req);
	EVP_PKEY_free(pk);
	return r;
}

static X509 *pem_cert(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	return x;
}

int uplink_check_answer(const char *body, size_t len, const char *terminal, const char *key_pem,
			const char *ca_pem, char **ret_cert_pem, char *err, size_t errsz)
{
	json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	json_t *v = json_object_get(o, "certificate");
	X509 *x = json_is_string(v) ? pem_cert(json_string_value(v)) : NULL;
	X509 *ca = pem_cert(ca_pem);
	BIO *kb = BIO_new_mem_buf(key_pem, -1);
	EVP_PKEY *pk = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
	char cn[EVENT_TERMINAL_MAX + 2] = "";
	int r = -EBADMSG;

	if (!x)
		snprintf(err, errsz, "the answer carries no certificate");
	else if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
					   sizeof(cn)) < 0 ||
		 strcmp(cn, terminal) != 0)
		snprintf(err, errsz, "the certificate is not for %s", terminal);
	else if (!pk || X509_check_private_key(x, pk) != 1)
		snprintf(err, errsz, "the certificate does not carry the key made here");
	else if (!ca || X509_verify(x, X509_get0_pubkey(ca)) != 1)
		snprintf(err, errsz, "the certificate is not signed by the pinned CA");
	else {
		*ret_cert_pem = strdup(json_string_value(v));
		r = *ret_cert_pem ? 0 : -ENOMEM;
	}
	EVP_PKEY_free(pk);
	BIO_free(kb);
	X509_free(ca);
	X509_free(x);
	json_decref(o);
	return r;
}

static int write_new(const char *path, const char *data, mode_t mode, uid_t uid, gid_t gid)
{
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int fd = -1;

	if (asprintf(&tmp, "%s.new", path) < 0)
		return -ENOMEM;
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return negative_errno();
	if ((uid != (uid_t)-1 || gid != (gid_t)-1) && fchown(fd, uid, gid) < 0)
		return negative_errno();
	if (fchmod(fd, mode) < 0 || fileio_write_all(fd, data, strlen(data)) < 0 || fsync(fd) < 0)
		return -EIO;
	return 0;
}

static int rename_new(const char *path)
{
	_cleanup_free_ char *tmp = NULL;
	if (asprintf(&tmp, "%s.new", path) < 0)
		return -ENOMEM;
	return rename(tmp, path) < 0 ? negative_errno() : 0;
}

static void sync_dir(const char *path)
{
	_cleanup_free_ char *copy = strdup(path);
	_cleanup_close_ int fd =
	    copy ? open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	if (fd >= 0)
		(void)fsync(fd);
}

int uplink_install_pair(const char *key_path, const char *key_pem, const char *cert_path,
			const char *cert_pem, uid_t uid, gid_t gid)
{
	int r = write_new(key_path, key_pem, 0600, uid, gid);
	if (r >= 0)
		r = write_new(cert_path, cert_pem, 0644, uid, gid);
	if (r < 0)
		return r;
	/* from here on uplink_recover_pair completes a swap cut short */
	r = rename_new(key_path);
	if (r >= 0)
		r = rename_new(cert_path);
	sync_dir(key_path);
	sync_dir(cert_path);
	return r;
}

void uplink_recover_pair(const char *key_path, const char *cert_path)
{
	_cleanup_free_ char *kn = NULL, *cn = NULL;

	if (asprintf(&kn, "%s.new", key_path) < 0 || asprintf(&cn, "%s.new", cert_path) < 0)
		return;
	if (access(cn, F_OK) != 0) {
		(void)unlink(kn); /* the key was being written: the old pair stands */
		return;
	}
	if (access(kn, F_OK) == 0) {
		/* neither was renamed: the old pair stands */
		(void)unlink(kn);
		(void)unlink(cn);
		return;
	}
	/* the new key is in place, its certificate not yet */
	if (rename(cn, cert_path) == 0)
		log_line(LOG_WARNING, "uplink.renew completed an interrupted certificate swap: %s",
			 cert_path);
}

int uplink_cert_dates(const char *path, int64_t *ret_not_before, int64_t *ret_not_after)
{
	FILE *f = fopen(path, "re");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	struct tm a, b;
	int r = -EINVAL;

	if (f)
		fclose(f);
	else
		return negative_errno();
	if (x && ASN1_TIME_to_tm(X509_get0_notBefore(x), &a) == 1 &&
	    ASN1_TIME_to_tm(X509_get0_notAfter(x), &b) == 1) {
		*ret_not_before = (int64_t)timegm(&a);
		*ret_not_after = (int64_t)timegm(&b);
		r = 0;
	}
	X509_free(x);
	return r;
}

/* "AB:CD:..." or "abcd..." (64 hex digits), "sha256:" or "SHA256 Fingerprint=" allowed before */
static int parse_fingerprint(const char *s, unsigned char out[32])
{
	size_t n = 0;
	const char *eq = strchr(s, '=');

	if (eq)
		s = eq + 1;
	else if (strncasecmp(s, "sha256:", 7) == 0)
		s += 7;
	for (; *s; s++) {
		int d;
		if (*s == ':' || *s == ' ')
			continue;
		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (*s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			return -EINVAL;
		if (n >= 64)
			return -EINVAL;
		if (n % 2 == 0)
			out[n / 2] = (unsigned char)(d << 4);
		else
			out[n / 2] |= (unsigned char)d;
		n++;
	}
	return n == 64 ? 0 : -EINVAL;
}

/* The certificate of pem whose SHA-256 is fp, as PEM (malloc'd); NULL when none. found gets
 * the fingerprint of the first certificate for the message. */
static char *pinned_ca(const char *pem, size_t len, const unsigned char fp[32], char *found,
		       size_t fsz)
{
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	X509 *x;
	char *out = NULL;

	found[0] = 0;
	for (int i = 0; b && i < 16 && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)); i++) {
		unsigned char md[32];
		unsigned int n = sizeof(md);
		if (X509_digest(x, EVP_sha256(), md, &n) == 1 && n == 32) {
			if (!found[0])
				for (unsigned k = 0; k < 32 && 3 * k + 3 < fsz; k++)
					snprintf(found + 3 * k, 4, k < 31 ? "%02X:" : "%02X",
						 md[k]);
			if (memcmp(md, fp, 32) == 0) {
				BIO *o = BIO_new(BIO_s_mem());
				char *d;
				long l;
				if (o && PEM_write_bio_X509(o, x) == 1 &&
				    (l = BIO_get_mem_data(o, &d)) > 0)
					out = strndup(d, (size_t)l);
				BIO_free(o);
				X509_free(x);
				break;
			}
		}
		X509_free(x);
	}
	BIO_free(b);
	return out;
}

bool uplink_enroll_requested(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--enroll") == 0 || strncmp(argv[i], "--enroll=", 9) == 0)
			return true;
	return false;
}

static void enroll_usage(FILE *f)
{
	fputs("Usage: mynaguard-uplink --enroll URL --token-file FILE --ca-fingerprint SHA256\n"
	      "                        [--policy FILE] [--user NAME] [--timeout SEC]\n"
	      "  --enroll URL           the collector's enrollment listener (https://host:8445)\n"
	      "  --token-file FILE      the one-time token (first line; - = standard input)\n"
	      "  --ca-fingerprint HEX   SHA-256 of the collector's CA certificate (mynaguard-ca\n"
	      "                         fingerprint); nothing is sent when it does not match\n"
	      "  --policy FILE          terminal id and TLS paths (default " MYNAGUARD_POLICY_PATH
	      ")\n"
	      "  --user NAME            owner of the key (default mynaguard, when it exists)\n"
	      "See mynaguard-uplink(8), ENROLLMENT.\n",
	      f);
}

static int read_token(const char *path, char out[static TOKEN_MAX])
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
	size_t n;

	if (!f)
		return negative_errno();
	if (!fgets(out, TOKEN_MAX, f))
		out[0] = 0;
	if (f != stdin)
		fclose(f);
	n = strcspn(out, "\r\n");
	out[n] = 0;
	while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '\t'))
		out[--n] = 0;
	return n ? 0 : -ENODATA;
}

int uplink_enroll_main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"enroll", required_argument, NULL, 'E'},
	    {"token-file", required_argument, NULL, 'T'},
	    {"ca-fingerprint", required_argument, NULL, 'F'},
	    {"policy", required_argument, NULL, 'p'},
	    {"user", required_argument, NULL, 'u'},
	    {"timeout", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	const char *url = NULL, *token_file = NULL, *fp_text = NULL, *user = NULL;
	const char *policy_path = MYNAGUARD_POLICY_PATH;
	unsigned char fp[32];
	uint64_t timeout = 60;
	char token[TOKEN_MAX], err[256] = "", found[100], msg[256];
	struct policy_errors errs = {0};
	_cleanup_policy_ struct policy *p = NULL;
	_cleanup_free_ char *ca = NULL, *csr = NULL, *cert = NULL, *body = NULL, *tmpca = NULL;
	_cleanup_free_ char *u_ca = NULL, *u_enroll = NULL;
	_cleanup_secret_ char *key = NULL;
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	struct buf ans = {0};
	long status;
	int opt, r, rc = 1;

	while ((opt = getopt_long(argc, argv, "p:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'E':
			url = optarg;
			break;
		case 'T':
			token_file = optarg;
			break;
		case 'F':
			fp_text = optarg;
			break;
		case 'p':
			policy_path = optarg;
			break;
		case 'u':
			user = optarg;
			break;
		case 't':
			if (parse_uint64(optarg, 1, 3600, &timeout) < 0) {
				enroll_usage(stderr);
				return 2;
			}
			break;
		case 'h':
			enroll_usage(stdout);
			return 0;
		default:
			enroll_usage(stderr);
			return 2;
		}
	}
	if (optind < argc || !url || !token_file || !fp_text) {
		fprintf(stderr,
			"mynaguard-uplink: --enroll needs --token-file and "
			"--ca-fingerprint (the CA is pinned, never trusted on first use)\n");
		enroll_usage(stderr);
		return 2;
	}
	if (strncmp(url, "https://", 8) != 0) {
		fprintf(stderr, "mynaguard-uplink: --enroll: an https:// URL\n");
		return 2;
	}
	if (parse_fingerprint(fp_text, fp) < 0) {
		fprintf(stderr, "mynaguard-uplink: --ca-fingerprint: expected the SHA-256 "
				"fingerprint, 64 hex digits (colons allowed)\n");
		return 2;
	}
	r = policy_load(policy_path, &p, &errs);
	if (r < 0) {
		char line[512];
		for (size_t i = 0; i < errs.n; i++) {
			policy_error_format(&errs, i, line, sizeof line);
			fprintf(stderr, "%s\n", line);
		}
		if (errs.n == 0)
			fprintf(stderr, "%s: %s\n", policy_path, strerror(-r));
		policy_errors_clear(&errs);
		return 1;
	}
	policy_errors_clear(&errs);
	if (user || geteuid() == 0) {
		struct passwd *pw = getpwnam(user ? user : "mynaguard");
		if (pw) {
			uid = pw->pw_uid;
			gid = pw->pw_gid;
		} else if (user) {
			fprintf(stderr, "mynaguard-uplink: --user %s: no such user\n", user);
			return 2;
		}
	}
	r = read_token(token_file, token);
	if (r < 0) {
		fprintf(stderr, "mynaguard-uplink: --token-file %s: %s\n", token_file,
			r == -ENODATA ? "empty" : strerror(-r));
		return 1;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		goto out;
	size_t ul = strlen(url);
	while (ul > 0 && url[ul - 1] == '/')
		ul--;
	if (asprintf(&u_ca, "%.*s/v1/enroll/ca", (int)ul, url) < 0 ||
	    asprintf(&u_enroll, "%.*s/v1/enroll", (int)ul, url) < 0)
		goto out;

	/* 1. the CA, over TLS not yet verified: kept only when its fingerprint is the pinned one */
	status = https(u_ca, NULL, NULL, NULL, NULL, (long)timeout, &ans, err, sizeof(err));
	if (status != 200) {
		fprintf(stderr, "mynaguard-uplink: %s: %s\n", u_ca,
			status < 0 ? err : "no CA certificate in the answer");
		goto out;
	}
	ca = pinned_ca(ans.data, ans.len, fp, found, sizeof(found));
	free(ans.data);
	ans = (struct buf){0};
	if (!ca) {
		fprintf(stderr,
			"mynaguard-uplink: the collector's CA (SHA-256 %s) does not match "
			"--ca-fingerprint: nothing sent, not enrolled. Check the fingerprint with "
			"the admin (mynaguard-ca fingerprint on the CA host).\n",
			found[0] ? found : "none");
		goto out;
	}
	/* 2. everything else over TLS verified against that CA (and the host name) */
	r = asprintf(&tmpca, "%s.enroll", p->report_ca) < 0 ? -ENOMEM : 0;
	if (r >= 0)
		r = fileio_write_atomic_path(tmpca, ca, strlen(ca), 0644);
	if (r < 0) {
		fprintf(stderr, "mynaguard-uplink: cannot write %s.enroll: %s\n", p->report_ca,
			strerror(-r));
		goto out;
	}
	r = uplink_make_request(p->terminal_id, &key, &csr);
	if (r < 0) {
		fprintf(stderr, "mynaguard-uplink: cannot make a key: %s\n", strerror(-r));
		goto out;
	}
	json_t *req =
	    json_pack("{s:s,s:s,s:s}", "terminal", p->terminal_id, "token", token, "csr", csr);
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	if (req) /* jansson's copy of the token */
		secmem_wipe((void *)json_string_value(json_object_get(req, "token")),
			    strlen(token));
	json_decref(req);
	if (!body)
		goto out;
	status = https(u_enroll, tmpca, NULL, NULL, body, (long)timeout, &ans, err, sizeof(err));
	secmem_wipe(body, strlen(body));
	if (status < 0) {
		fprintf(stderr, "mynaguard-uplink: %s: %s\n", u_enroll, err);
		goto out;
	}
	if (status != 200) {
		answer_error(&ans, msg, sizeof(msg));
		fprintf(stderr, "mynaguard-uplink: enrollment of %s refused: HTTP %ld: %s\n",
			p->terminal_id, status, msg);
		goto out;
	}
	r = uplink_check_answer(ans.data, ans.len, p->terminal_id, key, ca, &cert, err,
				sizeof(err));
	if (r < 0) {
		fprintf(stderr, "mynaguard-uplink: bad answer from the collector: %s\n", err);
		goto out;
	}
	r = uplink_install_pair(p->report_key, key, p->report_cert, cert, uid, gid);
	if (r >= 0)
		r = rename(tmpca, p->report_ca) < 0 ? negative_errno() : 0;
	if (r < 0) {
		fprintf(stderr, "mynaguard-uplink: cannot install %s, %s, %s: %s\n", p->report_key,
			p->report_cert, p->report_ca, strerror(-r));
		goto out;
	}
	/* renewal: the uplink's user replaces key and certificate in this directory */
	if (uid != (uid_t)-1) {
		_cleanup_free_ char *copy = strdup(p->report_key);
		if (copy && chown(dirname(copy), uid, gid) < 0)
			fprintf(stderr,
				"mynaguard-uplink: warning: cannot give %s to the uplink's "
				"user: renewal will fail\n",
				copy);
	}
	int64_t nb, na;
	char when[32] = "?";
	if (uplink_cert_dates(p->report_cert, &nb, &na) == 0) {
		time_t t = (time_t)na;
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	printf("mynaguard-uplink: enrolled %s: %s (valid until %s), %s, %s\n", p->terminal_id,
	       p->report_cert, when, p->report_key, p->report_ca);
	rc = 0;
out:
	if (tmpca)
		(void)unlink(tmpca);
	explicit_bzero(token, sizeof(token));
	free(ans.data);
	curl_global_cleanup();
	return rc;
}
