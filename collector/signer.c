/* SPDX-License-Identifier: MIT */
/* mynaguard-signer: the only process that opens the CA key. Listens on a Unix socket, takes one
 * fixed request (a CSR and a terminal id, signer-proto.h) per connection from the collector,
 * signs a client certificate with fixed extensions and lifetime, records it in the CA directory
 * (issued.tsv, certs/) the way mynaguard-ca does, and answers with the DER certificate. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "config.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "parse.h"
#include "signer-proto.h"

#define CA_KEY_MAX (64 * 1024)

struct signer {
	const char *ca_dir;
	uint64_t lifetime_s;
	X509 *ca;
	EVP_PKEY *key;
	int dirfd;
};

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	stopping = 1;
}

static void ssl_error(const char *what)
{
	char buf[256];
	unsigned long e = ERR_get_error();

	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	log_line(LOG_ERR, "mynaguard-signer: %s%s%s", what, e ? ": " : "", e ? buf : "");
	ERR_clear_error();
}

static int load_ca(struct signer *s)
{
	const struct fileio_expect expect = {.forbidden_mode = 0077};
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *text = NULL;
	size_t len;
	BIO *bio;
	FILE *f;
	int r;

	s->dirfd = open(s->ca_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0) {
		r = negative_errno();
		log_line(LOG_ERR, "mynaguard-signer: CA directory %s: %s", s->ca_dir, strerror(-r));
		return r;
	}
	/* the key: owned by us, no access for group or others, no symlink */
	r = fileio_open_verified(s->dirfd, "ca.key", O_RDONLY, &expect, &fd);
	if (r < 0) {
		log_line(LOG_ERR, "mynaguard-signer: %s/ca.key: %s", s->ca_dir,
			 r == -EACCES ? "readable by group or others (chmod 0600)" : strerror(-r));
		return r;
	}
	r = fileio_read_fd(fd, CA_KEY_MAX, &text, &len);
	if (r < 0)
		return r;
	bio = BIO_new_mem_buf(text, (int)len);
	s->key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	OPENSSL_cleanse(text, len);
	if (!s->key) {
		ssl_error("ca.key");
		return -EINVAL;
	}
	fd = openat(s->dirfd, "ca.pem", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	f = fd >= 0 ? fdopen(TAKE_FD(fd), "re") : NULL;
	s->ca = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	if (!s->ca) {
		ssl_error("ca.pem");
		return -EINVAL;
	}
	if (X509_check_private_key(s->ca, s->key) != 1) {
		ssl_error("ca.key does not belong to ca.pem");
		return -EINVAL;
	}
	return 0;
}

/* Keys a terminal may have: EC P-256/P-384, RSA 2048..4096, Ed25519. */
static bool key_acceptable(EVP_PKEY *pk)
{
	char group[32];

	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_EC:
		if (EVP_PKEY_get_utf8_string_param(pk, "group", group, sizeof(group), NULL) != 1)
			return false;
		return strcmp(group, "prime256v1") == 0 || strcmp(group, "secp384r1") == 0;
	case EVP_PKEY_RSA:
		return EVP_PKEY_get_bits(pk) >= 2048 && EVP_PKEY_get_bits(pk) <= 4096;
	case EVP_PKEY_ED25519:
		return true;
	default:
		return false;
	}
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok = ex && X509_add_ext(x, ex, -1) == 1;

	X509_EXTENSION_free(ex);
	return ok ? 0 : -EINVAL;
}

/* Random 128-bit serial whose first hex digit is 1-7 (as mynaguard-ca makes them): positive, no
 * leading zero, so every tool spells it the same way. */
static int new_serial(X509 *x, char out[static SIGNER_SERIAL_MAX])
{
	unsigned char b[16];
	BIGNUM *bn;
	char *hex;

	if (RAND_bytes(b, sizeof(b)) != 1)
		return -EIO;
	b[0] = (unsigned char)(((b[0] >> 4) % 7 + 1) << 4 | (b[0] & 0x0f));
	bn = BN_bin2bn(b, sizeof(b), NULL);
	hex = bn ? BN_bn2hex(bn) : NULL;
	if (!hex || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x))) {
		OPENSSL_free(hex);
		BN_free(bn);
		return -ENOMEM;
	}
	snprintf(out, SIGNER_SERIAL_MAX, "%s", hex);
	OPENSSL_free(hex);
	BN_free(bn);
	return 0;
}

static int64_t asn1_time_unix(const ASN1_TIME *t)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return (int64_t)timegm(&tm);
}

/* issued.tsv and certs/SERIAL.pem, as mynaguard-ca writes them (list and revoke read them). */
static void record(struct signer *s, X509 *x, const char *serial, const char *cn)
{
	char name[SIGNER_SERIAL_MAX + 16], end[64] = "";
	_cleanup_close_ int fd = -1;
	BIO *mem = BIO_new(BIO_s_mem());
	char *pem;
	long len;

	if (mem && ASN1_TIME_print(mem, X509_get0_notAfter(x)) == 1) {
		int n = BIO_read(mem, end, sizeof(end) - 1);
		end[n > 0 ? n : 0] = 0;
	}
	BIO_free(mem);
	mem = BIO_new(BIO_s_mem());
	if (mem && PEM_write_bio_X509(mem, x) == 1 && (len = BIO_get_mem_data(mem, &pem)) > 0) {
		_cleanup_close_ int certs =
		    openat(s->dirfd, "certs", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		snprintf(name, sizeof(name), "%s.pem", serial);
		if (certs < 0 || fileio_write_atomic(certs, name, pem, (size_t)len, 0644, (uid_t)-1,
						     (gid_t)-1) < 0)
			log_line(LOG_WARNING, "mynaguard-signer: cannot keep a copy in %s/certs/%s",
				 s->ca_dir, name);
	}
	BIO_free(mem);
	fd = openat(s->dirfd, "issued.tsv", O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0) {
		char line[256];
		int n = snprintf(line, sizeof(line), "%s\t%s\t%s\n", serial, cn, end);
		(void)fileio_lock_exclusive(fd);
		if (n > 0 && fileio_write_all(fd, line, (size_t)n) == 0 && fsync(fd) == 0)
			return;
	}
	log_line(LOG_WARNING,
		 "mynaguard-signer: cannot add serial %s to %s/issued.tsv "
		 "(mynaguard-ca revoke TERMINAL_ID will not find it; revoke by serial)",
		 serial, s->ca_dir);
}

static int sign(struct signer *s, const struct signer_request *req, struct signer_answer *ans)
{
	const unsigned char *p = req->csr;
	X509_REQ *csr = d2i_X509_REQ(NULL, &p, (long)req->csr_len);
	EVP_PKEY *pub;
	X509 *x = NULL;
	X509_NAME *subj = NULL;
	X509V3_CTX ctx;
	unsigned char *der = NULL;
	int64_t now = (int64_t)time(NULL), not_after, ca_end;
	int len, r = -EINVAL;

	if (!csr || p != req->csr + req->csr_len) {
		log_line(LOG_WARNING, "mynaguard-signer: refused %s: not one DER request",
			 req->terminal);
		goto done;
	}
	pub = X509_REQ_get0_pubkey(csr);
	if (!pub || X509_REQ_verify(csr, pub) != 1) {
		log_line(LOG_WARNING,
			 "mynaguard-signer: refused %s: the request's signature is bad",
			 req->terminal);
		goto done;
	}
	if (!key_acceptable(pub)) {
		log_line(LOG_WARNING,
			 "mynaguard-signer: refused %s: key type (EC P-256/P-384, RSA 2048-4096 or "
			 "Ed25519 only)",
			 req->terminal);
		goto done;
	}
	r = -ENOMEM;
	x = X509_new();
	subj = X509_NAME_new();
	if (!x || !subj || X509_set_version(x, 2) != 1 || new_serial(x, ans->serial) < 0)
		goto done;
	/* The subject is the terminal id the collector vouched for, whatever the request says. */
	if (X509_NAME_add_entry_by_NID(subj, NID_commonName, MBSTRING_UTF8,
				       (const unsigned char *)req->terminal, -1, -1, 0) != 1 ||
	    X509_set_subject_name(x, subj) != 1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(s->ca)) != 1 ||
	    X509_set_pubkey(x, pub) != 1)
		goto done;
	/* a minute back for terminals whose clock is a little behind */
	ca_end = asn1_time_unix(X509_get0_notAfter(s->ca));
	not_after = now + (int64_t)s->lifetime_s;
	if (ca_end > 0 && not_after > ca_end)
		not_after = ca_end;
	if (!ASN1_TIME_set(X509_getm_notBefore(x), (time_t)(now - 60)) ||
	    !ASN1_TIME_set(X509_getm_notAfter(x), (time_t)not_after))
		goto done;
	X509V3_set_ctx(&ctx, s->ca, x, NULL, NULL, 0);
	if (add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature") < 0 ||
	    add_ext(x, &ctx, NID_ext_key_usage, "clientAuth") < 0 ||
	    add_ext(x, &ctx, NID_subject_key_identifier, "hash") < 0 ||
	    add_ext(x, &ctx, NID_authority_key_identifier, "keyid") < 0)
		goto done;
	if (X509_sign(x, s->key,
		      EVP_PKEY_get_base_id(s->key) == EVP_PKEY_ED25519 ? NULL : EVP_sha256()) <=
	    0) {
		ssl_error("signing failed");
		r = -EIO;
		goto done;
	}
	len = i2d_X509(x, &der);
	if (len <= 0 || (size_t)len > SIGNER_CERT_MAX) {
		r = -EMSGSIZE;
		goto done;
	}
	memcpy(ans->cert, der, (size_t)len);
	ans->cert_len = (size_t)len;
	ans->not_after = not_after;
	ans->status = 0;
	record(s, x, ans->serial, req->terminal);
	log_line(LOG_INFO,
		 "mynaguard-signer: signed %s certificate for %s serial %s, valid until %lld",
		 req->op == SIGNER_OP_ENROLL ? "an enrollment" : "a renewal", req->terminal,
		 ans->serial, (long long)not_after);
	r = 0;
done:
	OPENSSL_free(der);
	X509_NAME_free(subj);
	X509_free(x);
	X509_REQ_free(csr);
	ERR_clear_error();
	return r;
}

static void serve(struct signer *s, int fd)
{
	static uint8_t
	    buf[SIGNER_ANSWER_MAX > SIGNER_REQUEST_MAX ? SIGNER_ANSWER_MAX : SIGNER_REQUEST_MAX];
	static struct signer_request req;
	static struct signer_answer ans;
	struct timeval tv = {.tv_sec = 5};
	ssize_t n;
	size_t len;
	int r;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	n = recv(fd, buf, sizeof(buf), MSG_TRUNC);
	if (n <= 0)
		return;
	memset(&ans, 0, sizeof(ans));
	r = (size_t)n > SIGNER_REQUEST_MAX ? -EBADMSG : signer_request_decode(buf, (size_t)n, &req);
	if (r < 0)
		log_line(LOG_WARNING, "mynaguard-signer: refused a malformed request (%s)",
			 strerror(-r));
	else
		r = sign(s, &req, &ans);
	if (r < 0) {
		memset(&ans, 0, sizeof(ans));
		ans.status = r;
	}
	if (signer_answer_encode(&ans, buf, sizeof(buf), &len) == 0)
		(void)send(fd, buf, len, MSG_NOSIGNAL);
}

static void usage(FILE *f)
{
	fputs(
	    "Usage: mynaguard-signer [--ca-dir DIR] [--socket PATH] [--lifetime DURATION] [--check]\n"
	    "  -d, --ca-dir DIR        the CA of mynaguard-ca (default /var/lib/mynaguard-ca)\n"
	    "  -s, --socket PATH       where the collector connects (default "
	    "/run/mynaguard-signer/signer.sock)\n"
	    "  -l, --lifetime DURATION life of a terminal certificate (default 397d; 5m .. 3650d)\n"
	    "  -n, --check             load the CA and its key, then exit\n"
	    "See mynaguard-signer(8).\n",
	    f);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"ca-dir", required_argument, NULL, 'd'},
	    {"socket", required_argument, NULL, 's'},
	    {"lifetime", required_argument, NULL, 'l'},
	    {"check", no_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {0},
	};
	struct signer s = {.ca_dir = "/var/lib/mynaguard-ca", .lifetime_s = 397 * 86400ULL};
	const char *socket_path = "/run/mynaguard-signer/signer.sock";
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct sigaction act = {.sa_handler = on_signal};
	bool check = false;
	int opt, r, lfd;

	while ((opt = getopt_long(argc, argv, "d:s:l:nh", opts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			s.ca_dir = optarg;
			break;
		case 's':
			socket_path = optarg;
			break;
		case 'l':
			if (parse_duration(optarg, 300, 3650 * 86400ULL, &s.lifetime_s) < 0) {
				log_line(
				    LOG_ERR,
				    "mynaguard-signer: --lifetime: expected a duration from 5m "
				    "to 3650d, got \"%s\"",
				    optarg);
				return 2;
			}
			break;
		case 'n':
			check = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			puts("mynaguard-signer " MYNAGUARD_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	setvbuf(stderr, NULL, _IOLBF, 0);
	if (load_ca(&s) < 0)
		return 1;
	if (check) {
		printf("mynaguard-signer: CA %s OK\n", s.ca_dir);
		return 0;
	}
	if (strlen(socket_path) >= sizeof(sa.sun_path)) {
		log_line(LOG_ERR, "mynaguard-signer: socket path too long");
		return 1;
	}
	strcpy(sa.sun_path, socket_path);
	lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	(void)unlink(socket_path);
	/* 0660: the collector reaches it through the socket's group (the unit sets it) */
	mode_t old = umask(0117);
	r = lfd < 0 ? -1 : bind(lfd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || listen(lfd, 16) < 0) {
		log_line(LOG_ERR, "mynaguard-signer: socket %s: %s", socket_path, strerror(errno));
		return 1;
	}
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGINT, &act, NULL);
	signal(SIGPIPE, SIG_IGN);
	printf("READY socket=%s\n", socket_path);
	fflush(stdout);
	log_line(LOG_INFO, "mynaguard-signer: CA %s, certificates for %llu s, listening on %s",
		 s.ca_dir, (unsigned long long)s.lifetime_s, socket_path);
#ifdef HAVE_SYSTEMD
	sd_notify(0, "READY=1");
#endif
	while (!stopping) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EINTR)
				log_line(LOG_WARNING, "mynaguard-signer: accept: %s",
					 strerror(errno));
			continue;
		}
		serve(&s, fd);
		close(fd);
	}
	log_line(LOG_INFO, "mynaguard-signer: stopping");
	(void)unlink(socket_path);
	EVP_PKEY_free(s.key);
	X509_free(s.ca);
	return 0;
}
