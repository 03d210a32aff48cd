/* SPDX-License-Identifier: MIT */
/* mynaguardctl totp: enroll (secret, URI, QR in the terminal, PNG), status, reset, remove.
 * Writes the same record format as pam_mynaguard.so reads (pam_module/totp_record.h). Root. */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <getopt.h>
#include <jansson.h>
#include <png.h>
#include <pwd.h>
#include <qrencode.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"
#include "macro.h"
#include "policy.h"
#include "secmem.h"
#include "totp_record.h"
#include "totp_seeds.h"
#include "totp_store.h"
#include "totp_verify.h"

#define ISSUER_MAX 64

static void totp_usage(FILE *f)
{
	fputs("Usage: mynaguardctl [--yes] [--policy FILE] totp enroll USER [--store DIR]\n"
	      "           [--secret-file FILE|-] [--issuer NAME] [--no-qr] [--png FILE]\n"
	      "       mynaguardctl [--policy FILE] totp verify USER [--store DIR]\n"
	      "       mynaguardctl totp status|reset|remove USER [--store DIR]\n"
	      "       mynaguardctl totp list [--json] [--store DIR]\n"
	      "       mynaguardctl totp import FILE [--store DIR]\n"
	      "\n"
	      "Store default: " MYNAGUARD_TOTP_STORE ". See mynaguardctl(8).\n",
	      f);
}

struct totp_args {
	const char *user;
	const char *store;
	const char *secret_file; /* "-": stdin */
	const char *issuer;
	const char *png;
	bool no_qr;
};

static int parse_args(int argc, char **argv, bool enroll, struct totp_args *a)
{
	static const struct option longopts[] = {
	    {"store", required_argument, NULL, 's'},
	    {"secret", optional_argument, NULL, 'K'},
	    {"secret-file", required_argument, NULL, 'k'},
	    {"issuer", required_argument, NULL, 'i'},
	    {"no-qr", no_argument, NULL, 'n'},
	    {"png", required_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	int c;

	*a = (struct totp_args){.store = MYNAGUARD_TOTP_STORE, .issuer = "mynaguard"};
	optind = 0; /* GNU: full re-initialisation; options may follow USER */
	while ((c = getopt_long(argc, argv, "s:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			a->store = optarg;
			break;
		case 'K':
			/* The old spelling put the secret in argv, where every user sees it (ps,
			 * /proc/PID/cmdline). */
			fputs(
			    "mynaguardctl totp enroll: --secret no longer takes the secret on the "
			    "command line, where other users see it (ps); give it on stdin with "
			    "--secret-file - or in a file with --secret-file FILE\n",
			    stderr);
			return -EINVAL;
		case 'k':
		case 'i':
		case 'n':
		case 'p':
			if (!enroll) {
				fprintf(stderr, "mynaguardctl totp: %s takes only --store\n",
					argv[0]);
				return -EINVAL;
			}
			if (c == 'k')
				a->secret_file = optarg;
			else if (c == 'i')
				a->issuer = optarg;
			else if (c == 'n')
				a->no_qr = true;
			else
				a->png = optarg;
			break;
		case 'h':
			totp_usage(stdout);
			return 1;
		default:
			return -EINVAL;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "mynaguardctl totp %s: expected exactly one USER\n", argv[0]);
		return -EINVAL;
	}
	a->user = argv[optind];
	if (!totp_user_valid(a->user)) {
		fprintf(stderr,
			"mynaguardctl totp: '%s' is not a valid user name (1-%d of A-Z a-z 0-9 . _ "
			"@ -, not starting with . or -)\n",
			a->user, TOTP_USER_MAX);
		return -EINVAL;
	}
	if (a->store[0] == '\0') {
		fputs("mynaguardctl totp: --store needs a directory\n", stderr);
		return -EINVAL;
	}
	return 0;
}

/* mkdir -p: missing parents 0755, the store itself 0700. */
static int make_store(const char *path)
{
	_cleanup_free_ char *p = strdup(path);
	struct stat st;

	if (!p)
		return -ENOMEM;
	if (lstat(path, &st) == 0)
		return 0;
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return negative_errno();
		*s = '/';
	}
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return negative_errno();
	/* mkdir honours the umask; the store must be exactly 0700 whatever it was. */
	if (chmod(path, 0700) < 0)
		return negative_errno();
	return 0;
}

static int open_store(const char *store, bool create, int *ret)
{
	int r;

	if (create) {
		r = make_store(store);
		if (r < 0) {
			fprintf(stderr, "mynaguardctl totp: cannot create store %s: %s\n", store,
				strerror(-r));
			return r;
		}
	}
	r = totp_store_open(store, geteuid(), ret);
	if (r < 0)
		fprintf(stderr, "mynaguardctl totp: store %s %s\n", store, totp_store_strerror(r));
	return r;
}

static void format_time(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, size, "@%lld", (long long)t);
}

/* Percent-encode everything but RFC 3986 unreserved characters. */
static void uri_escape(const char *s, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p && n + 4 < size; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~')
			out[n++] = (char)*p;
		else {
			out[n++] = '%';
			out[n++] = hex[*p >> 4];
			out[n++] = hex[*p & 15];
		}
	}
	out[n] = '\0';
}

/* Accept the spellings authenticator exports use: lower case, spaces, dashes, '=' padding. */
static int import_secret(const char *in, struct totp_record *rec)
{
	char norm[TOTP_SECRET_B32_MAX + 16];
	size_t n = 0;
	int r;

	for (const char *p = in; *p; p++) {
		char c = *p;
		if (c == ' ' || c == '-' || c == '=')
			continue;
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (n + 1 >= sizeof(norm)) {
			secmem_wipe(norm, sizeof(norm));
			return -E2BIG;
		}
		norm[n++] = c;
	}
	r = totp_base32_decode(norm, n, rec->secret, sizeof(rec->secret));
	secmem_wipe(norm, sizeof(norm));
	if (r < 0)
		return r == -ENOBUFS ? -E2BIG : -EINVAL;
	if (r < TOTP_SECRET_MIN_BYTES)
		return -ERANGE;
	rec->secret_len = (size_t)r;
	return 0;
}

/* The first line of FILE ("-": stdin), read one byte at a time: no stdio buffer keeps a copy,
 * and on stdin the answer to a later question stays unread. The buffer is wiped. */
static int read_secret(const char *file, struct totp_record *rec)
{
	char line[TOTP_SECRET_B32_MAX + 64];
	_cleanup_close_ int own = -1;
	size_t n = 0;
	int fd = STDIN_FILENO, r;

	if (strcmp(file, "-") != 0) {
		own = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (own < 0)
			return negative_errno();
		fd = own;
	}
	for (;;) {
		char c;
		ssize_t k = read(fd, &c, 1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			r = negative_errno();
			secmem_wipe(line, sizeof(line));
			return r;
		}
		if (k == 0 || c == '\n')
			break;
		if (n + 1 >= sizeof(line)) {
			secmem_wipe(line, sizeof(line));
			return -E2BIG;
		}
		line[n++] = c;
	}
	if (n > 0 && line[n - 1] == '\r')
		n--;
	line[n] = '\0';
	r = import_secret(line, rec);
	secmem_wipe(line, sizeof(line));
	return r;
}

static void print_qr_terminal(const QRcode *qr)
{
	const int quiet = 2, w = qr->width;

	/* Two modules per character cell with half blocks; light modules are drawn, so the code
	 * reads on the usual dark terminal (like qrencode -t UTF8). */
	for (int y = -quiet; y < w + quiet; y += 2) {
		for (int x = -quiet; x < w + quiet; x++) {
			bool top = y >= 0 && y < w && x >= 0 && x < w && (qr->data[y * w + x] & 1);
			bool bot = y + 1 >= 0 && y + 1 < w && x >= 0 && x < w &&
				   (qr->data[(y + 1) * w + x] & 1);
			fputs(!top && !bot ? "\xe2\x96\x88"
			      : !top	   ? "\xe2\x96\x80"
			      : !bot	   ? "\xe2\x96\x84"
					   : " ",
			      stdout);
		}
		fputc('\n', stdout);
	}
}

void ctl_totp_print_qr(const char *uri)
{
	QRcode *qr = QRcode_encodeString(uri, 0, QR_ECLEVEL_M, QR_MODE_8, 1);

	if (!qr) {
		fprintf(stderr, "mynaguardctl: cannot make the QR code\n");
		return;
	}
	print_qr_terminal(qr);
	secmem_wipe(qr->data, (size_t)qr->width * (size_t)qr->width);
	QRcode_free(qr);
}

/* The image holds the secret: it is only ever a new file of ours, 0600. O_EXCL refuses an
 * existing file and any symlink (even a dangling one), so nothing someone else created or
 * pointed somewhere is ever written into. Returns the fd or -errno. */
static int open_png(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);

	if (fd < 0)
		return negative_errno();
	/* open() honours the umask, which can only take bits away; make it exactly 0600. */
	if (fchmod(fd, 0600) < 0) {
		int r = negative_errno();
		close(fd);
		return r;
	}
	return fd;
}

/* Write the image into fd (from open_png), which it closes. */
static int write_png(const QRcode *qr, int fd)
{
	const int scale = 8, quiet = 4;
	const int size = (qr->width + 2 * quiet) * scale;
	_cleanup_free_ png_byte *row = NULL;
	png_structp png = NULL;
	png_infop info = NULL;
	FILE *f;

	row = calloc((size_t)size, 1);
	if (!row) {
		close(fd);
		return -ENOMEM;
	}
	f = fdopen(fd, "wb");
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	info = png ? png_create_info_struct(png) : NULL;
	if (!png || !info || setjmp(png_jmpbuf(png))) {
		png_destroy_write_struct(&png, &info);
		fclose(f);
		return -EIO;
	}
	png_init_io(png, f);
	png_set_IHDR(png, info, (png_uint_32)size, (png_uint_32)size, 8, PNG_COLOR_TYPE_GRAY,
		     PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	for (int y = 0; y < size; y++) {
		int my = y / scale - quiet;
		for (int x = 0; x < size; x++) {
			int mx = x / scale - quiet;
			bool dark = my >= 0 && my < qr->width && mx >= 0 && mx < qr->width &&
				    (qr->data[my * qr->width + mx] & 1);
			row[x] = dark ? 0 : 255;
		}
		png_write_row(png, row);
	}
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	if (fflush(f) != 0 || fsync(fileno(f)) < 0) {
		fclose(f);
		return -EIO;
	}
	if (fclose(f) != 0)
		return -EIO;
	return 0;
}

static int policy_digits_period(const char *path, unsigned *digits, unsigned *period)
{
	_cleanup_policy_ struct policy *p = NULL;
	struct policy_errors *errs = calloc(1, sizeof(*errs));
	int r;

	*digits = 6;
	*period = 30;
	if (!errs)
		return -ENOMEM;
	r = policy_load(path, &p, errs);
	if (r == -ENOENT) {
		/* No policy yet (fresh install, tests): the defaults are the shipped policy's. */
		policy_errors_clear(errs);
		free(errs);
		return 0;
	}
	if (r < 0) {
		for (size_t i = 0; i < errs->n; i++) {
			char line[320];
			policy_error_format(errs, i, line, sizeof(line));
			fprintf(stderr, "%s\n", line);
		}
		policy_errors_clear(errs);
		free(errs);
		return r;
	}
	policy_errors_clear(errs);
	free(errs);
	*digits = p->mfa_digits;
	*period = p->mfa_step;
	if (*period < TOTP_PERIOD_MIN || *period > TOTP_PERIOD_MAX || *digits < 6 || *digits > 8)
		return -ERANGE;
	return 0;
}

/* 0 when the system knows the user (passwd, NSS), -ENOENT when it does not, -errno when the
 * lookup itself failed. */
static int user_exists(const char *user)
{
	struct passwd *pw;

	errno = 0;
	pw = getpwnam(user);
	if (pw)
		return 0;
	/* getpwnam(3): these mean "not found" in the implementations around. */
	if (errno == 0 || errno == ENOENT || errno == ESRCH || errno == EBADF || errno == EPERM)
		return -ENOENT;
	return negative_errno();
}

/* A refused or failed enrollment leaves no image: remove the file open_png created. */
static void drop_png(const char *path, int *fd)
{
	if (*fd < 0)
		return;
	closep(fd);
	*fd = -1;
	(void)unlink(path);
}

static int do_enroll(const struct ctl_opts *o, const struct totp_args *a)
{
	struct totp_record rec = {0};
	_cleanup_close_ int dirfd = -1, lockfd = -1, pngfd = -1;
	char secret[TOTP_SECRET_B32_MAX + 1], uri[512], issuer[3 * ISSUER_MAX + 1],
	    user[3 * TOTP_USER_MAX + 1];
	QRcode *qr;
	int r, n;

	if (strlen(a->issuer) == 0 || strlen(a->issuer) > ISSUER_MAX || strchr(a->issuer, ':')) {
		fprintf(stderr,
			"mynaguardctl totp enroll: --issuer must be 1-%d characters without ':'\n",
			ISSUER_MAX);
		return 2;
	}
	r = user_exists(a->user);
	if (r < 0) {
		if (r == -ENOENT)
			fprintf(stderr,
				"mynaguardctl totp enroll: no user '%s' on this system; nothing "
				"written\n",
				a->user);
		else
			fprintf(stderr,
				"mynaguardctl totp enroll: cannot look up user '%s': %s; nothing "
				"written\n",
				a->user, strerror(-r));
		return 1;
	}
	r = policy_digits_period(o->policy_path, &rec.digits, &rec.period);
	if (r < 0) {
		fprintf(stderr, "mynaguardctl totp enroll: policy %s unusable: %s\n",
			o->policy_path, strerror(-r));
		return 1;
	}
	if (a->secret_file) {
		r = read_secret(a->secret_file, &rec);
		if (r == -ERANGE || r == -E2BIG || r == -EINVAL) {
			fprintf(stderr,
				"mynaguardctl totp enroll: the secret (first line of %s) must be "
				"base32 (RFC 4648) of %d to %d bytes (%s)\n",
				strcmp(a->secret_file, "-") == 0 ? "stdin" : a->secret_file,
				TOTP_SECRET_MIN_BYTES, TOTP_SECRET_MAX_BYTES,
				r == -ERANGE  ? "too short"
				: r == -E2BIG ? "too long"
					      : "not base32");
			totp_record_wipe(&rec);
			return 2;
		}
		if (r < 0) {
			fprintf(stderr,
				"mynaguardctl totp enroll: cannot read the secret from %s: %s\n",
				a->secret_file, strerror(-r));
			totp_record_wipe(&rec);
			return 1;
		}
	} else {
		rec.secret_len = TOTP_SECRET_DEFAULT_BYTES;
		if (getrandom(rec.secret, rec.secret_len, 0) != (ssize_t)rec.secret_len) {
			fprintf(stderr, "mynaguardctl totp enroll: no randomness: %s\n",
				strerror(errno));
			return 1;
		}
	}
	rec.enrolled = (int64_t)time(NULL);

	/* Before anything is written: a refused image leaves no record behind either. */
	if (a->png) {
		pngfd = open_png(a->png);
		if (pngfd < 0) {
			fprintf(
			    stderr,
			    "mynaguardctl totp enroll: will not write the QR image to %s: %s (it "
			    "holds the secret: only a new file is written; remove it or choose "
			    "another name)\n",
			    a->png,
			    pngfd == -EEXIST ? "it exists (or is a symlink)" : strerror(-pngfd));
			totp_record_wipe(&rec);
			return 1;
		}
	}
	r = open_store(a->store, true, &dirfd);
	if (r < 0) {
		drop_png(a->png, &pngfd);
		totp_record_wipe(&rec);
		return 1;
	}
	r = totp_store_exists(dirfd, a->user);
	if (r > 0) {
		char q[160];
		snprintf(q, sizeof(q),
			 "%s is already enrolled; replace the secret (the old one stops working)?",
			 a->user);
		if (!ctl_confirm(o, q)) {
			fprintf(stderr, "mynaguardctl totp enroll: %s left unchanged\n", a->user);
			drop_png(a->png, &pngfd);
			totp_record_wipe(&rec);
			return 1;
		}
	}
	r = totp_store_lock(dirfd, a->user, geteuid(), &lockfd);
	if (r >= 0)
		r = totp_store_write(dirfd, a->user, &rec);
	if (r < 0) {
		fprintf(stderr, "mynaguardctl totp enroll: cannot write the record of %s: %s\n",
			a->user, totp_store_strerror(r));
		drop_png(a->png, &pngfd);
		totp_record_wipe(&rec);
		return 1;
	}
	closep(&lockfd);

	totp_base32_encode(rec.secret, rec.secret_len, secret, sizeof(secret));
	uri_escape(a->issuer, issuer, sizeof(issuer));
	uri_escape(a->user, user, sizeof(user));
	n = snprintf(uri, sizeof(uri),
		     "otpauth://totp/%s:%s?secret=%s&issuer=%s&algorithm=SHA1&digits=%u&period=%u",
		     issuer, user, secret, issuer, rec.digits, rec.period);
	secmem_wipe(secret, sizeof(secret));
	totp_record_wipe(&rec);
	if (n < 0 || (size_t)n >= sizeof(uri)) {
		secmem_wipe(uri, sizeof(uri));
		return 1;
	}
	puts(uri);
	r = 0;
	if (!a->no_qr || a->png) {
		qr = QRcode_encodeString(uri, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
		if (!qr) {
			fprintf(stderr, "mynaguardctl totp enroll: cannot make the QR code\n");
			drop_png(a->png, &pngfd);
			r = 1;
		} else {
			if (!a->no_qr)
				print_qr_terminal(qr);
			if (pngfd >= 0) {
				int k = write_png(qr, TAKE_FD(pngfd));
				if (k < 0) {
					fprintf(stderr,
						"mynaguardctl totp enroll: cannot write %s: %s\n",
						a->png, strerror(-k));
					r = 1;
				}
			}
			secmem_wipe(qr->data, (size_t)qr->width * (size_t)qr->width);
			QRcode_free(qr);
		}
	}
	secmem_wipe(uri, sizeof(uri));
	fflush(stdout);
	fprintf(stderr,
		"mynaguardctl: enrolled %s in %s (pending)\n"
		"Next: once %s has added the code to the authenticator app, run\n"
		"    mynaguardctl totp verify %s%s%s\n"
		"and let %s type the code shown. Until then the enrollment is pending: it does not "
		"count as enrolled, and %s logs in as if not enrolled (refused unless the policy "
		"sets nullok).\n",
		a->user, a->store, a->user, a->user,
		strcmp(a->store, MYNAGUARD_TOTP_STORE) != 0 ? " --store " : "",
		strcmp(a->store, MYNAGUARD_TOTP_STORE) != 0 ? a->store : "", a->user, a->user);
	return r;
}

/* The last accepted code: the time itself (version 2), else the start of its time step. */
static int64_t last_used(const struct totp_record *rec)
{
	if (rec->last_used > 0)
		return rec->last_used;
	return rec->last_step == 0 ? 0 : (int64_t)(rec->last_step * rec->period);
}

static int do_status(const struct totp_args *a)
{
	_cleanup_close_ int dirfd = -1, lockfd = -1;
	struct totp_record rec;
	char t[40];
	int r;

	if (open_store(a->store, false, &dirfd) < 0)
		return 1;
	r = totp_store_lock(dirfd, a->user, geteuid(), &lockfd);
	if (r >= 0)
		r = totp_store_read(dirfd, a->user, geteuid(), &rec);
	if (r == -ENOENT) {
		printf("user %s\nenrolled no\n", a->user);
		return 1;
	}
	if (r < 0) {
		fprintf(stderr, "mynaguardctl totp status: record of %s %s\n", a->user,
			totp_store_strerror(r));
		return 1;
	}
	printf("user %s\n", a->user);
	printf("type %s\n", totp_kind_name(rec.kind));
	if (rec.serial[0])
		printf("serial %s\n", rec.serial);
	format_time(rec.enrolled, t, sizeof(t));
	printf("enrolled %s\n", t);
	if (rec.verified == 0)
		printf("verified no (pending: mynaguardctl totp verify %s)\n", a->user);
	else {
		format_time(rec.verified, t, sizeof(t));
		printf("verified %s\n", t);
	}
	printf("digits %u\nperiod %u\n", rec.digits, rec.period);
	if (last_used(&rec) == 0)
		printf("last_used never\n");
	else {
		format_time(last_used(&rec), t, sizeof(t));
		printf("last_used %s\n", t);
	}
	printf("failures %u\n", rec.failures);
	if (rec.locked_until != 0 && rec.locked_until > (int64_t)time(NULL)) {
		format_time(rec.locked_until, t, sizeof(t));
		printf("locked until %s\n", t);
	} else
		printf("locked no\n");
	/* A pending enrollment does not count (the installer's no-lock-out rule asks this). */
	r = rec.verified == 0 ? 1 : 0;
	totp_record_wipe(&rec);
	return r;
}

static int do_reset(const struct totp_args *a)
{
	_cleanup_close_ int dirfd = -1, lockfd = -1, fd = -1;
	struct totp_record rec;
	int r;

	if (open_store(a->store, false, &dirfd) < 0)
		return 1;
	r = totp_store_lock(dirfd, a->user, geteuid(), &lockfd);
	if (r >= 0)
		r = totp_store_open_record(dirfd, a->user, geteuid(), O_RDWR, &fd);
	if (r >= 0)
		r = totp_store_read_fd(fd, &rec);
	if (r >= 0) {
		/* last_step stays: clearing it would make used codes valid again. */
		rec.failures = 0;
		rec.locked_until = 0;
		r = totp_store_update(fd, &rec);
		totp_record_wipe(&rec);
	}
	if (r < 0) {
		fprintf(stderr, "mynaguardctl totp reset: %s: %s\n", a->user,
			r == -ENOENT ? "not enrolled" : totp_store_strerror(r));
		return 1;
	}
	printf("%s: failures and lockout cleared\n", a->user);
	return 0;
}

static int do_remove(const struct totp_args *a)
{
	_cleanup_close_ int dirfd = -1, lockfd = -1;
	int r;

	if (open_store(a->store, false, &dirfd) < 0)
		return 1;
	r = totp_store_lock(dirfd, a->user, geteuid(), &lockfd);
	if (r >= 0)
		r = totp_store_remove(dirfd, a->user);
	if (r < 0) {
		fprintf(stderr, "mynaguardctl totp remove: %s: %s\n", a->user,
			r == -ENOENT ? "not enrolled" : totp_store_strerror(r));
		return 1;
	}
	printf("%s: TOTP record removed\n", a->user);
	return 0;
}

/* ---- verify ---- */

static int policy_params(const char *path, struct totp_params *ret)
{
	_cleanup_policy_ struct policy *p = NULL;
	struct policy_errors *errs = calloc(1, sizeof(*errs));
	int r;

	if (!errs)
		return -ENOMEM;
	r = policy_load(path, &p, errs);
	if (r == -ENOENT)
		r = policy_new_default(&p); /* as the module does without its default policy */
	else if (r < 0)
		for (size_t i = 0; i < errs->n; i++) {
			char line[320];
			policy_error_format(errs, i, line, sizeof(line));
			fprintf(stderr, "%s\n", line);
		}
	policy_errors_clear(errs);
	free(errs);
	if (r < 0)
		return r;
	ret->window = p->mfa_window;
	ret->max_failures = p->mfa_max_failures ? p->mfa_max_failures : 1;
	ret->lockout_sec = p->mfa_lockout_sec;
	return 0;
}

int ctl_totp_read_code(const char *user, char *code, size_t size)
{
	struct termios old, quiet;
	bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
	size_t n = 0;
	int r = 0;

	fprintf(stderr, "Code now shown in %s's authenticator: ", user);
	fflush(stderr);
	if (tty) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	for (;;) {
		char c;
		ssize_t k = read(STDIN_FILENO, &c, 1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			r = negative_errno();
			break;
		}
		if (k == 0 && n == 0) {
			r = -ENODATA;
			break;
		}
		if (k == 0 || c == '\n')
			break;
		if (c == ' ' || c == '\t' || c == '\r')
			continue;
		if (n + 1 >= size) {
			r = -E2BIG;
			break;
		}
		code[n++] = c;
	}
	code[n] = '\0';
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	return r;
}

static int do_verify(const struct ctl_opts *o, const struct totp_args *a)
{
	_cleanup_close_ int dirfd = -1, lockfd = -1, fd = -1;
	struct totp_params params;
	struct totp_record rec;
	enum totp_result res;
	char code[32], t[40];
	int changed = 0, r;
	int64_t now;

	if (open_store(a->store, false, &dirfd) < 0)
		return 1;
	/* A first look without the lock: nobody waits on it while the clerk types. */
	r = totp_store_read(dirfd, a->user, geteuid(), &rec);
	if (r < 0) {
		fprintf(stderr, "mynaguardctl totp verify: %s: %s\n", a->user,
			r == -ENOENT ? "not enrolled" : totp_store_strerror(r));
		return 1;
	}
	if (rec.verified != 0) {
		format_time(rec.verified, t, sizeof(t));
		printf("%s: already verified (%s)\n", a->user, t);
		totp_record_wipe(&rec);
		return 0;
	}
	totp_record_wipe(&rec);
	r = policy_params(o->policy_path, &params);
	if (r < 0) {
		fprintf(stderr, "mynaguardctl totp verify: policy %s unusable: %s\n",
			o->policy_path, strerror(-r));
		return 1;
	}
	r = ctl_totp_read_code(a->user, code, sizeof(code));
	if (r < 0) {
		secmem_wipe(code, sizeof(code));
		fprintf(stderr, "mynaguardctl totp verify: no code read: %s; %s stays pending\n",
			r == -ENODATA ? "end of input" : strerror(-r), a->user);
		return 1;
	}
	r = totp_store_lock(dirfd, a->user, geteuid(), &lockfd);
	if (r >= 0)
		r = totp_store_open_record(dirfd, a->user, geteuid(), O_RDWR, &fd);
	if (r >= 0)
		r = totp_store_read_fd(fd, &rec);
	if (r < 0) {
		secmem_wipe(code, sizeof(code));
		fprintf(stderr, "mynaguardctl totp verify: %s: %s\n", a->user,
			r == -ENOENT ? "not enrolled" : totp_store_strerror(r));
		return 1;
	}
	now = (int64_t)time(NULL);
	/* The same rules as a login: one-time, window, and wrong codes count towards the lock. */
	r = totp_verify(&rec, code, now, &params, &res, &changed);
	secmem_wipe(code, sizeof(code));
	if (r >= 0 && res == TOTP_SUCCESS) {
		rec.verified = now;
		/* A new record (rename): the verified line is not in a state slot. */
		r = totp_store_write(dirfd, a->user, &rec);
	} else if (r >= 0 && changed)
		r = totp_store_update(fd, &rec);
	if (r < 0) {
		fprintf(stderr, "mynaguardctl totp verify: cannot update the record of %s: %s\n",
			a->user, r == -EIO ? "I/O error" : totp_store_strerror(r));
		totp_record_wipe(&rec);
		return 1;
	}
	switch (res) {
	case TOTP_SUCCESS:
		printf("%s: code accepted; the enrollment is verified and counts from now\n",
		       a->user);
		break;
	case TOTP_WRONG:
		fprintf(stderr,
			"mynaguardctl totp verify: %s: wrong code; the enrollment stays pending "
			"(check the app's clock and that the code belongs to %s; %u of %u failures "
			"before a lock)\n",
			a->user, a->user, rec.failures, params.max_failures);
		break;
	case TOTP_REPLAY:
		fprintf(
		    stderr,
		    "mynaguardctl totp verify: %s: that code was already used; wait for the next "
		    "code and run verify again\n",
		    a->user);
		break;
	case TOTP_LOCKED:
	case TOTP_PENDING:
		format_time(rec.locked_until, t, sizeof(t));
		fprintf(
		    stderr,
		    "mynaguardctl totp verify: %s is locked until %s after too many wrong codes "
		    "(mynaguardctl totp reset %s clears it)\n",
		    a->user, t, a->user);
		break;
	}
	totp_record_wipe(&rec);
	return res == TOTP_SUCCESS ? 0 : 1;
}

/* ---- list ---- */

struct list_entry {
	char user[TOTP_USER_MAX + 1];
	int err; /* < 0: the record could not be read */
	enum totp_kind kind;
	char serial[TOTP_SERIAL_MAX + 1];
	int64_t enrolled, verified, last_used, locked_until;
	unsigned failures;
};

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct list_entry *)a)->user, ((const struct list_entry *)b)->user);
}

static json_t *time_json(int64_t t)
{
	char buf[40];

	if (t <= 0)
		return json_null();
	format_time(t, buf, sizeof(buf));
	return json_string(buf);
}

static int do_list(const char *store, bool as_json)
{
	_cleanup_close_ int dirfd = -1;
	_cleanup_free_ struct list_entry *v = NULL;
	size_t n = 0, cap = 0;
	int64_t now = (int64_t)time(NULL);
	bool any_bad = false;
	DIR *d;
	int dfd;

	if (open_store(store, false, &dirfd) < 0)
		return 1;
	dfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
	d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		fprintf(stderr, "mynaguardctl totp list: cannot read %s: %s\n", store,
			strerror(errno));
		return 1;
	}
	for (struct dirent *de; (de = readdir(d));) {
		struct totp_record rec;
		struct list_entry *e;

		/* Records only: lock files and the pending-events files start with '.'. */
		if (!totp_user_valid(de->d_name))
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 32;
			struct list_entry *nv = realloc(v, ncap * sizeof(*nv));
			if (!nv) {
				closedir(d);
				fputs("mynaguardctl totp list: out of memory\n", stderr);
				return 1;
			}
			v = nv;
			cap = ncap;
		}
		e = &v[n++];
		*e = (struct list_entry){0};
		memcpy(e->user, de->d_name, strlen(de->d_name) + 1); /* valid: at most 64 */
		e->err = totp_store_read(dirfd, e->user, geteuid(), &rec);
		if (e->err < 0) {
			any_bad = true;
			continue;
		}
		e->kind = rec.kind;
		memcpy(e->serial, rec.serial, sizeof(e->serial));
		e->enrolled = rec.enrolled;
		e->verified = rec.verified;
		e->last_used = last_used(&rec);
		e->failures = rec.failures;
		e->locked_until = rec.locked_until > now ? rec.locked_until : 0;
		totp_record_wipe(&rec);
	}
	closedir(d);
	if (n > 0)
		qsort(v, n, sizeof(*v), entry_cmp);

	if (as_json) {
		json_t *root = json_object(), *arr = json_array();
		char *text;
		for (size_t i = 0; i < n; i++) {
			const struct list_entry *e = &v[i];
			json_t *o = json_object();
			json_object_set_new(o, "user", json_string(e->user));
			if (e->err < 0) {
				json_object_set_new(o, "error",
						    json_string(totp_store_strerror(e->err)));
				json_array_append_new(arr, o);
				continue;
			}
			json_object_set_new(o, "type", json_string(totp_kind_name(e->kind)));
			json_object_set_new(o, "serial",
					    e->serial[0] ? json_string(e->serial) : json_null());
			json_object_set_new(o, "enrolled", time_json(e->enrolled));
			json_object_set_new(o, "state",
					    json_string(e->verified ? "verified" : "pending"));
			json_object_set_new(o, "verified", time_json(e->verified));
			json_object_set_new(o, "last_used", time_json(e->last_used));
			json_object_set_new(o, "failures", json_integer(e->failures));
			json_object_set_new(o, "locked", json_boolean(e->locked_until != 0));
			json_object_set_new(o, "locked_until", time_json(e->locked_until));
			json_array_append_new(arr, o);
		}
		json_object_set_new(root, "store", json_string(store));
		json_object_set_new(root, "records", arr);
		text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		json_decref(root);
		if (!text) {
			fputs("mynaguardctl totp list: out of memory\n", stderr);
			return 1;
		}
		puts(text);
		free(text);
		return any_bad ? 1 : 0;
	}
	printf("%-16s %-8s %-12s %-20s %-8s %-20s %s\n", "USER", "TYPE", "SERIAL", "ENROLLED",
	       "STATE", "LAST_USED", "LOCKED");
	for (size_t i = 0; i < n; i++) {
		const struct list_entry *e = &v[i];
		char en[40], lu[40], lk[64];
		if (e->err < 0) {
			printf("%-16s unreadable: record %s\n", e->user,
			       totp_store_strerror(e->err));
			continue;
		}
		format_time(e->enrolled, en, sizeof(en));
		if (e->last_used)
			format_time(e->last_used, lu, sizeof(lu));
		else
			snprintf(lu, sizeof(lu), "never");
		if (e->locked_until) {
			char u[40];
			format_time(e->locked_until, u, sizeof(u));
			snprintf(lk, sizeof(lk), "until %s", u);
		} else
			snprintf(lk, sizeof(lk), "no");
		printf("%-16s %-8s %-12s %-20s %-8s %-20s %s\n", e->user, totp_kind_name(e->kind),
		       e->serial[0] ? e->serial : "-", en, e->verified ? "verified" : "pending", lu,
		       lk);
	}
	if (n == 0)
		printf("(nobody is enrolled in %s)\n", store);
	return any_bad ? 1 : 0;
}

/* ---- import ---- */

#define IMPORT_MAX_ERRORS 20

/* The whole file into a buffer the caller wipes and frees. */
static int read_seed_file(const char *path, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	char *buf;
	size_t len = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return negative_errno();
	if (fstat(fd, &st) < 0)
		return negative_errno();
	if (!S_ISREG(st.st_mode))
		return -EBADFD;
	if (st.st_size > TOTP_SEEDS_MAX_BYTES)
		return -EFBIG;
	if (st.st_mode & 0077)
		fprintf(
		    stderr,
		    "mynaguardctl totp import: warning: %s is readable or writable by group or "
		    "others (mode %04o); it holds the tokens' secrets: chmod 600 it, and delete "
		    "it once imported\n",
		    path, (unsigned)(st.st_mode & 07777));
	buf = calloc(1, TOTP_SEEDS_MAX_BYTES + 1);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t k = read(fd, buf + len, TOTP_SEEDS_MAX_BYTES + 1 - len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			int r = negative_errno();
			secmem_wipe(buf, TOTP_SEEDS_MAX_BYTES + 1);
			free(buf);
			return r;
		}
		if (k == 0)
			break;
		len += (size_t)k;
		if (len > TOTP_SEEDS_MAX_BYTES) {
			secmem_wipe(buf, TOTP_SEEDS_MAX_BYTES + 1);
			free(buf);
			return -EFBIG;
		}
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}

static int do_import(const char *file, const char *store)
{
	struct totp_seed_error errs[IMPORT_MAX_ERRORS];
	struct totp_seed *seeds = NULL;
	_cleanup_close_ int dirfd = -1;
	size_t len = 0, n = 0, nerrs = 0, written = 0;
	char *text = NULL;
	unsigned bad = 0;
	int r;

	r = read_seed_file(file, &text, &len);
	if (r < 0) {
		fprintf(stderr, "mynaguardctl totp import: cannot read %s: %s\n", file,
			r == -EFBIG    ? "larger than 1 MiB"
			: r == -EBADFD ? "not a regular file"
				       : strerror(-r));
		return 1;
	}
	r = totp_seeds_parse(text, len, &seeds, &n, errs, IMPORT_MAX_ERRORS, &nerrs);
	secmem_wipe(text, TOTP_SEEDS_MAX_BYTES + 1);
	free(text);
	if (r == -EBADMSG) {
		for (size_t i = 0; i < nerrs && i < IMPORT_MAX_ERRORS; i++)
			fprintf(stderr, "%s:%u: %s\n", file, errs[i].line, errs[i].what);
		if (nerrs > IMPORT_MAX_ERRORS)
			fprintf(stderr, "%s: ... and %zu more errors\n", file,
				nerrs - IMPORT_MAX_ERRORS);
		fprintf(stderr, "mynaguardctl totp import: %zu error(s) in %s; nothing imported\n",
			nerrs, file);
		return 1;
	}
	if (r < 0) {
		fprintf(stderr, "mynaguardctl totp import: %s: %s; nothing imported\n", file,
			r == -ENODATA ? "no entries (lines user,serial,secret[,digits[,period]])"
			: r == -EFBIG ? "too large or too many entries"
				      : strerror(-r));
		return 1;
	}
	/* Everything is checked before anything is written. */
	for (size_t i = 0; i < n; i++) {
		if (user_exists(seeds[i].user) < 0) {
			fprintf(stderr, "%s:%u: no user '%s' on this system\n", file, seeds[i].line,
				seeds[i].user);
			bad++;
		}
	}
	if (bad == 0 && open_store(store, true, &dirfd) < 0)
		bad++;
	for (size_t i = 0; dirfd >= 0 && i < n; i++) {
		r = totp_store_exists(dirfd, seeds[i].user);
		if (r != 0) {
			fprintf(stderr, "%s:%u: %s %s\n", file, seeds[i].line, seeds[i].user,
				r > 0 ? "is already enrolled (mynaguardctl totp remove it first)"
				      : totp_store_strerror(r));
			bad++;
		}
	}
	if (bad > 0) {
		fprintf(stderr, "mynaguardctl totp import: %u problem(s); nothing imported\n", bad);
		totp_seeds_free(seeds, n);
		return 1;
	}
	for (written = 0; written < n; written++) {
		struct totp_seed *sd = &seeds[written];
		struct totp_record rec = {.kind = TOTP_KIND_HARDWARE};
		_cleanup_close_ int lockfd = -1;

		memcpy(rec.serial, sd->serial, sizeof(rec.serial));
		memcpy(rec.secret, sd->secret, sizeof(rec.secret));
		rec.secret_len = sd->secret_len;
		rec.digits = sd->digits;
		rec.period = sd->period;
		rec.enrolled = (int64_t)time(NULL);
		r = totp_store_lock(dirfd, sd->user, geteuid(), &lockfd);
		if (r >= 0) {
			/* Checked above; a record that appeared since is not overwritten. */
			r = totp_store_exists(dirfd, sd->user);
			if (r > 0)
				r = -EEXIST;
		}
		if (r >= 0)
			r = totp_store_write(dirfd, sd->user, &rec);
		totp_record_wipe(&rec);
		if (r < 0) {
			fprintf(
			    stderr, "mynaguardctl totp import: cannot write the record of %s: %s\n",
			    sd->user, r == -EEXIST ? "enrolled meanwhile" : totp_store_strerror(r));
			break;
		}
	}
	if (written < n) {
		/* All or nothing: take back what this run wrote. */
		for (size_t i = 0; i < written; i++) {
			_cleanup_close_ int lockfd = -1;
			if (totp_store_lock(dirfd, seeds[i].user, geteuid(), &lockfd) >= 0)
				(void)totp_store_remove(dirfd, seeds[i].user);
		}
		fprintf(stderr, "mynaguardctl totp import: nothing imported\n");
		totp_seeds_free(seeds, n);
		return 1;
	}
	for (size_t i = 0; i < n; i++)
		printf("%s: hardware token %s imported (pending: mynaguardctl totp verify %s)\n",
		       seeds[i].user, seeds[i].serial, seeds[i].user);
	totp_seeds_free(seeds, n);
	fprintf(stderr,
		"mynaguardctl: %zu token(s) imported into %s. Hand each token to its user and run "
		"mynaguardctl totp verify USER with them; then delete %s (it holds the secrets).\n",
		n, store, file);
	return 0;
}

static int parse_list_import(int argc, char **argv, bool import, const char **ret_store,
			     const char **ret_file, bool *ret_json)
{
	static const struct option longopts[] = {
	    {"store", required_argument, NULL, 's'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	int c;

	*ret_store = MYNAGUARD_TOTP_STORE;
	*ret_file = NULL;
	*ret_json = false;
	optind = 0;
	while ((c = getopt_long(argc, argv, "s:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			*ret_store = optarg;
			break;
		case 'j':
			if (import) {
				fputs("mynaguardctl totp import: no --json\n", stderr);
				return -EINVAL;
			}
			*ret_json = true;
			break;
		case 'h':
			totp_usage(stdout);
			return 1;
		default:
			return -EINVAL;
		}
	}
	if (optind + (import ? 1 : 0) != argc) {
		fprintf(stderr, "mynaguardctl totp %s: expected %s\n", argv[0],
			import ? "exactly one FILE" : "no arguments but options");
		return -EINVAL;
	}
	if (import)
		*ret_file = argv[optind];
	if ((*ret_store)[0] == '\0') {
		fputs("mynaguardctl totp: --store needs a directory\n", stderr);
		return -EINVAL;
	}
	return 0;
}

int ctl_totp(const struct ctl_opts *o, int argc, char **argv)
{
	struct totp_args a;
	const char *cmd;
	bool enroll;
	int r;

	if (argc < 2) {
		totp_usage(stderr);
		return 2;
	}
	cmd = argv[1];
	enroll = strcmp(cmd, "enroll") == 0;
	if (strcmp(cmd, "list") == 0 || strcmp(cmd, "import") == 0) {
		const char *store, *file;
		bool json, import = cmd[0] == 'i';
		r = parse_list_import(argc - 1, argv + 1, import, &store, &file, &json);
		if (r != 0) {
			if (r < 0)
				totp_usage(stderr);
			return r < 0 ? 2 : 0;
		}
		return import ? do_import(file, store) : do_list(store, json);
	}
	if (!enroll && strcmp(cmd, "status") != 0 && strcmp(cmd, "reset") != 0 &&
	    strcmp(cmd, "remove") != 0 && strcmp(cmd, "verify") != 0) {
		if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
			totp_usage(stdout);
			return 0;
		}
		fprintf(stderr, "mynaguardctl totp: unknown subcommand '%s'\n", cmd);
		totp_usage(stderr);
		return 2;
	}
	r = parse_args(argc - 1, argv + 1, enroll, &a);
	if (r != 0) {
		if (r < 0)
			totp_usage(stderr);
		return r < 0 ? 2 : 0;
	}
	if (enroll)
		return do_enroll(o, &a);
	if (strcmp(cmd, "status") == 0)
		return do_status(&a);
	if (strcmp(cmd, "reset") == 0)
		return do_reset(&a);
	if (strcmp(cmd, "verify") == 0)
		return do_verify(o, &a);
	return do_remove(&a);
}
