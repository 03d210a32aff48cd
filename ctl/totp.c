/* SPDX-License-Identifier: MIT */
/* mynaguardctl totp: enroll (secret, URI, QR in the terminal, PNG), status, reset, remove.
 * Writes the same record format as pam_mynaguard.so reads (pam_module/totp_record.h). Root. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <png.h>
#include <pwd.h>
#include <qrencode.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"
#include "macro.h"
#include "policy.h"
#include "secmem.h"
#include "totp_record.h"
#include "totp_store.h"

#define ISSUER_MAX 64

static void totp_usage(FILE *f)
{
	fputs("Usage: mynaguardctl [--yes] [--policy FILE] totp enroll USER [--store DIR]\n"
	      "           [--secret-file FILE|-] [--issuer NAME] [--no-qr] [--png FILE]\n"
	      "       mynaguardctl totp status|reset|remove USER [--store DIR]\n"
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
	fprintf(stderr, "mynaguardctl: enrolled %s in %s\n", a->user, a->store);
	return r;
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
	format_time(rec.enrolled, t, sizeof(t));
	printf("enrolled %s\n", t);
	printf("digits %u\nperiod %u\n", rec.digits, rec.period);
	if (rec.last_step == 0)
		printf("last_used never\n");
	else {
		format_time((int64_t)(rec.last_step * rec.period), t, sizeof(t));
		printf("last_used %s\n", t);
	}
	printf("failures %u\n", rec.failures);
	if (rec.locked_until != 0 && rec.locked_until > (int64_t)time(NULL)) {
		format_time(rec.locked_until, t, sizeof(t));
		printf("locked until %s\n", t);
	} else
		printf("locked no\n");
	totp_record_wipe(&rec);
	return 0;
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
	if (!enroll && strcmp(cmd, "status") != 0 && strcmp(cmd, "reset") != 0 &&
	    strcmp(cmd, "remove") != 0) {
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
	return do_remove(&a);
}
