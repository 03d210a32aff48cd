/* SPDX-License-Identifier: MIT */
/* mynaguardctl fleet: the fleet root key (keygen), signing a group's base policy (sign-base) and
 * showing a bundle or a signed base (show). Run by the 情報セキュリティ責任者 on an offline
 * machine; no network here. Remote subcommands that drive the collector go in the table below. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bundle.h"
#include "ctl.h"
#include "escape.h"
#include "fileio.h"
#include "macro.h"
#include "policy.h"

static void fleet_usage(FILE *f)
{
	fputs("Usage: mynaguardctl fleet COMMAND ...\n"
	      "\n"
	      "  keygen --out PREFIX                    new Ed25519 key pair: PREFIX.key (0600)\n"
	      "                                         and PREFIX.pub; never overwrites\n"
	      "  sign-base --key ROOT.key [--out FILE] POLICY\n"
	      "                                         check a group's base policy and sign it\n"
	      "                                         (default FILE: POLICY.signed)\n"
	      "  show [--root-pub FILE] FILE            what a bundle or a signed base holds;\n"
	      "                                         with --root-pub, whether it verifies\n"
	      "  group|policy|exception|request|ledger ... --collector URL --token-file FILE\n"
	      "      --ca FILE                          the collector's fleet endpoints\n"
	      "                                         (mynaguardctl fleet group --help)\n"
	      "\n"
	      "See mynaguardctl(8) and docs/fleet.md.\n",
	      f);
}

/* Each subcommand's options: only --help is common. Returns optind past the options, or -1
 * (usage error, already reported) or -2 (--help shown). */
struct fleet_opt {
	const char *name;
	const char **value;
};

static int parse_opts(int argc, char **argv, const struct fleet_opt *opts, size_t n)
{
	struct option longopts[8] = {{0}};
	int c;

	if (n + 2 > ELEMENTSOF(longopts))
		return -1;
	for (size_t i = 0; i < n; i++)
		longopts[i] = (struct option){opts[i].name, required_argument, NULL, (int)i + 1};
	longopts[n] = (struct option){"help", no_argument, NULL, 'h'};
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 'h') {
			fleet_usage(stdout);
			return -2;
		}
		if (c >= 1 && (size_t)c <= n) {
			*opts[c - 1].value = optarg;
			continue;
		}
		fleet_usage(stderr);
		return -1;
	}
	return optind;
}

static int opts_done(int r)
{
	return r == -2 ? 0 : 2;
}

static void format_time(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, size, "%" PRId64, t);
}

/* ---- keygen ---- */

static int write_new_file(const char *path, const char *text, mode_t mode)
{
	_cleanup_close_ int fd =
	    open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	int r;

	if (fd < 0)
		return -errno;
	r = fileio_write_all(fd, text, strlen(text));
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (r < 0)
		unlink(path);
	return r;
}

static int fleet_keygen(int argc, char **argv)
{
	const char *prefix = NULL;
	const struct fleet_opt opts[] = {{"out", &prefix}};
	_cleanup_free_ char *key_path = NULL, *pub_path = NULL;
	struct bundle_signer *s = NULL;
	uint8_t pub[BUNDLE_PUBKEY_LEN];
	char b64[45], line[47], err[BUNDLE_ERR_MAX];
	struct stat st;
	int i, r;

	i = parse_opts(argc, argv, opts, ELEMENTSOF(opts));
	if (i < 0)
		return opts_done(i);
	if (i < argc || !prefix || !prefix[0]) {
		fputs("mynaguardctl: fleet keygen: --out PREFIX is required (and nothing else)\n",
		      stderr);
		fleet_usage(stderr);
		return 2;
	}
	if (asprintf(&key_path, "%s.key", prefix) < 0 || asprintf(&pub_path, "%s.pub", prefix) < 0)
		return 1;
	/* Refuse before writing anything: a key pair is both files or neither. */
	if (lstat(key_path, &st) == 0 || lstat(pub_path, &st) == 0) {
		fprintf(stderr, "mynaguardctl: fleet keygen: %s exists: not overwritten\n",
			lstat(key_path, &st) == 0 ? key_path : pub_path);
		return 1;
	}
	if (bundle_signer_generate(&s) < 0) {
		fputs("mynaguardctl: fleet keygen: cannot generate a key\n", stderr);
		return 1;
	}
	bundle_signer_pubkey(s, pub);
	bundle_pubkey_to_base64(pub, b64);
	r = bundle_signer_save(s, key_path, err, sizeof(err));
	bundle_signer_free(s);
	if (r < 0) {
		fprintf(stderr, "mynaguardctl: fleet keygen: %s\n", err);
		return 1;
	}
	snprintf(line, sizeof(line), "%s\n", b64);
	r = write_new_file(pub_path, line, 0644);
	if (r < 0) {
		fprintf(stderr, "mynaguardctl: fleet keygen: %s: %s\n", pub_path, strerror(-r));
		unlink(key_path);
		return 1;
	}
	printf("Private key: %s (keep it offline; mode 0600)\n"
	       "Public key:  %s\n"
	       "             %s\n",
	       key_path, pub_path, b64);
	return fflush(stdout) == 0 ? 0 : 1;
}

/* ---- sign-base ---- */

static void print_errors(const struct policy_errors *errs, const char *path)
{
	char line[512];

	for (size_t i = 0; i < errs->n; i++) {
		policy_error_format(errs, i, line, sizeof(line));
		fprintf(stderr, "%s\n", line);
	}
	if (errs->n_dropped > 0)
		fprintf(stderr, "%s: ... and %zu more errors\n", path, errs->n_dropped);
}

static int fleet_sign_base(int argc, char **argv)
{
	const char *key = NULL, *out = NULL;
	const struct fleet_opt opts[] = {{"key", &key}, {"out", &out}};
	_cleanup_free_ char *text = NULL, *default_out = NULL;
	_cleanup_free_ uint8_t *signed_base = NULL;
	_cleanup_policy_ struct policy *p = NULL;
	struct policy_errors errs = {0};
	struct bundle_signer *root = NULL;
	uint8_t pub[BUNDLE_PUBKEY_LEN];
	char err[BUNDLE_ERR_MAX], b64[45], issued[32];
	const char *path;
	size_t len = 0, signed_len = 0;
	int i, r;

	i = parse_opts(argc, argv, opts, ELEMENTSOF(opts));
	if (i < 0)
		return opts_done(i);
	if (!key || i + 1 != argc) {
		fputs(
		    "mynaguardctl: fleet sign-base: expected --key ROOT.key [--out FILE] POLICY\n",
		    stderr);
		fleet_usage(stderr);
		return 2;
	}
	path = argv[i];
	if (!out) {
		if (asprintf(&default_out, "%s.signed", path) < 0)
			return 1;
		out = default_out;
	}

	r = fileio_read_file(AT_FDCWD, path, POLICY_MAX_FILE_SIZE, &text, &len);
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", path,
			r == -EFBIG ? "file too large: at most 1048576 bytes" : strerror(-r));
		return 1;
	}
	r = policy_parse_base(path, text, len, &p, &errs);
	if (r < 0) {
		if (r == -ENOMEM)
			fputs("mynaguardctl: out of memory\n", stderr);
		print_errors(&errs, path);
		policy_errors_clear(&errs);
		return 1;
	}
	policy_errors_clear(&errs);

	r = bundle_signer_load(key, &root, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "mynaguardctl: fleet sign-base: %s\n", err);
		return 1;
	}
	bundle_signer_pubkey(root, pub);
	r = bundle_sign_base(root, text, len, &signed_base, &signed_len);
	bundle_signer_free(root);
	if (r < 0) {
		fprintf(stderr, "mynaguardctl: fleet sign-base: cannot sign: %s\n", strerror(-r));
		return 1;
	}
	r = fileio_write_atomic_path(out, signed_base, signed_len, 0644);
	if (r < 0) {
		fprintf(stderr, "mynaguardctl: fleet sign-base: %s: %s\n", out, strerror(-r));
		return 1;
	}
	bundle_pubkey_to_base64(pub, b64);
	format_time(p->fleet_issued, issued, sizeof(issued));
	printf("Signed the base of group %s, version %" PRIu64 " (issued %s): %s\n"
	       "Root key: %s\n",
	       p->fleet_group, p->fleet_version, issued, out, b64);
	return fflush(stdout) == 0 ? 0 : 1;
}

/* ---- show ---- */

#define E(s) escape_text((s), strlen(s), 200, 0, (char[ESCAPE_SIZE(200)]){0}, ESCAPE_SIZE(200))

static void show_base(const struct policy *b)
{
	char issued[32], b64[45], code[16];

	format_time(b->fleet_issued, issued, sizeof(issued));
	bundle_pubkey_to_base64(b->fleet_grant_key, b64);
	printf("Base policy:  group %s, version %" PRIu64 ", issued %s\n", b->fleet_group,
	       b->fleet_version, issued);
	printf("  For terminals:");
	for (size_t i = 0; i < b->n_fleet_terminals; i++)
		printf(" %s", b->fleet_terminals[i]);
	printf("\n  Grant key:    %s\n", b64);
	printf("  Exceptions may open:");
	if (b->n_fleet_grant_classes == 0)
		printf(" nothing");
	for (size_t i = 0; i < b->n_fleet_grant_classes; i++) {
		policy_usb_class_code(&b->fleet_grant_classes[i], code, sizeof(code));
		printf("%s %s (%s)", i ? "," : "", b->fleet_grant_classes[i].name, code);
	}
	printf(", for at most %u days\n", b->fleet_grant_max_days);
	if (b->terminal_contact)
		printf("  Contact:      %s\n", E(b->terminal_contact));
}

static void show_exceptions(const char *json, size_t len)
{
	struct bundle_exceptions ex = {0};
	char err[BUNDLE_ERR_MAX], from[32], until[32];

	if (bundle_exceptions_parse(json, len, &ex, err, sizeof(err)) < 0) {
		printf("Exceptions:   do not parse: %s\n", E(err));
		return;
	}
	printf("Exceptions:   %zu\n", ex.n);
	for (size_t i = 0; i < ex.n; i++) {
		const struct bundle_exception *e = &ex.items[i];
		format_time(e->from, from, sizeof(from));
		format_time(e->until, until, sizeof(until));
		printf("  %s: %04x:%04x serial=%s", e->id, e->vendor, e->product,
		       e->serial ? E(e->serial) : "(any)");
		if (e->descriptor_hash)
			printf(" hash=sha256:%s", e->descriptor_hash);
		printf(" class %s, %s to %s\n", e->cls, from, until);
		printf("    users:");
		if (e->n_users == 0)
			printf(" everyone");
		for (size_t u = 0; u < e->n_users; u++)
			printf(" %s", e->users[u]);
		printf("; approved by %s", E(e->approved_by));
		if (e->ledger)
			printf("; ledger %s", e->ledger);
		printf("\n    purpose: %s\n", E(e->purpose));
	}
	bundle_exceptions_free(&ex);
}

static int fleet_show(int argc, char **argv)
{
	const char *root_pub_path = NULL;
	const struct fleet_opt opts[] = {{"root-pub", &root_pub_path}};
	_cleanup_free_ char *data = NULL;
	_cleanup_policy_ struct policy *base = NULL;
	struct policy_errors errs = {0};
	struct bundle_frame f;
	uint8_t root_pub[BUNDLE_PUBKEY_LEN];
	char err[BUNDLE_ERR_MAX], issued[32];
	const char *path;
	bool is_bundle, ok = true;
	size_t len = 0;
	int i, r;

	i = parse_opts(argc, argv, opts, ELEMENTSOF(opts));
	if (i < 0)
		return opts_done(i);
	if (i + 1 != argc) {
		fputs("mynaguardctl: fleet show: expected [--root-pub FILE] FILE\n", stderr);
		fleet_usage(stderr);
		return 2;
	}
	path = argv[i];
	if (root_pub_path && bundle_pubkey_load(root_pub_path, root_pub, err, sizeof(err)) < 0) {
		fprintf(stderr, "mynaguardctl: fleet show: %s\n", err);
		return 1;
	}
	r = fileio_read_file(AT_FDCWD, path, BUNDLE_MAX_BYTES + 1, &data, &len);
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", path,
			r == -EFBIG ? "larger than a bundle can be (1 MiB)" : strerror(-r));
		return 1;
	}
	is_bundle = len >= BUNDLE_MAGIC_LEN && memcmp(data, BUNDLE_MAGIC, BUNDLE_MAGIC_LEN) == 0;
	if (is_bundle)
		r = bundle_decode((const uint8_t *)data, len, &f, err, sizeof(err));
	else if (len >= BUNDLE_MAGIC_LEN && memcmp(data, BUNDLE_BASE_MAGIC, BUNDLE_MAGIC_LEN) == 0)
		r = bundle_decode_base((const uint8_t *)data, len, &f, err, sizeof(err));
	else {
		snprintf(err, sizeof(err), "not a bundle (%s) or a signed base (%s)", BUNDLE_MAGIC,
			 BUNDLE_BASE_MAGIC);
		r = -EBADMSG;
	}
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", path, err);
		return 1;
	}

	printf("%s: %s\n", path, is_bundle ? "bundle" : "signed base policy");
	if (is_bundle) {
		format_time(f.issued, issued, sizeof(issued));
		printf("Terminal:     %.*s\n", (int)f.terminal_id_len, f.terminal_id);
		printf("Version:      %" PRIu64 ", issued %s\n", f.version, issued);
	}
	/* The base's text is shown as what it claims; --root-pub says whether to believe it. */
	r = policy_parse_base(path, (const char *)f.base, f.base_len, &base, &errs);
	if (r < 0) {
		printf("Base policy:  does not parse as a base:\n");
		fflush(stdout);
		print_errors(&errs, path);
		ok = false;
	} else {
		show_base(base);
	}
	policy_errors_clear(&errs);
	if (is_bundle)
		show_exceptions(f.json, f.json_len);

	if (!root_pub_path) {
		printf("Signatures:   not checked (give --root-pub FILE)\n");
		return fflush(stdout) == 0 && ok ? 0 : 1;
	}
	if (bundle_verify_root(&f, root_pub) == 0) {
		printf("Root signature:  verifies\n");
	} else {
		printf("Root signature:  DOES NOT VERIFY with %s\n", root_pub_path);
		ok = false;
	}
	if (is_bundle) {
		if (base && bundle_verify_grant(&f, base->fleet_grant_key) == 0) {
			printf("Grant signature: verifies (with the base's grant key)\n");
		} else {
			printf("Grant signature: DOES NOT VERIFY with the base's grant key\n");
			ok = false;
		}
	}
	return fflush(stdout) == 0 && ok ? 0 : 1;
}

/* ---- dispatch ---- */

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} fleet_commands[] = {
    /* Offline: keys and signing, on the 情報セキュリティ責任者's machine. */
    {"keygen", fleet_keygen},
    {"sign-base", fleet_sign_base},
    {"show", fleet_show},
    /* Remote, against the collector's dashboard API (--collector URL --token-file FILE
     * --ca FILE): groups, policy (upload a signed base), exceptions, requests, ledger. Added
     * here as they are implemented; until then they are unknown commands. */
    {"group", ctl_fleet_remote},
    {"policy", ctl_fleet_remote},
    {"exception", ctl_fleet_remote},
    {"request", ctl_fleet_remote},
    {"ledger", ctl_fleet_remote},
    {"totp", ctl_fleet_remote},
};

int ctl_fleet(const struct ctl_opts *o, int argc, char **argv)
{
	if (argc < 2) {
		fleet_usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fleet_usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < ELEMENTSOF(fleet_commands); i++)
		if (strcmp(argv[1], fleet_commands[i].name) == 0)
			return fleet_commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "mynaguardctl: fleet: unknown command '%s'\n", argv[1]);
	fleet_usage(stderr);
	return 2;
}
