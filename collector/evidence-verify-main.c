/* SPDX-License-Identifier: MIT */
/* mynaguard-evidence-verify: checks an evidence bundle offline with the collector's evidence
 * public key only (docs/evidence.md "Evidence bundle"). Exit 0 valid, 1 not, 2 usage. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "config.h"
#include "evidence-verify.h"
#include "fileio.h"
#include "macro.h"

static void usage(FILE *f)
{
	fputs("Usage: mynaguard-evidence-verify FILE --key PUB\n"
	      "  -k, --key PUB   the collector's evidence public key (one base64 line, the .pub\n"
	      "                  file of mynaguardctl fleet keygen)\n"
	      "  -h, --help      this text\n"
	      "      --version   print the version\n",
	      f);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"key", required_argument, NULL, 'k'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {0},
	};
	const char *key = NULL;
	uint8_t pub[BUNDLE_PUBKEY_LEN];
	char err[EVIDENCE_ERR_MAX], kid[EVIDENCE_KEY_ID_LEN + 1];
	_cleanup_free_ char *data = NULL;
	struct evidence_summary sum;
	size_t len;
	int opt, r;

	while ((opt = getopt_long(argc, argv, "k:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'k':
			key = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("mynaguard-evidence-verify %s\n", MYNAGUARD_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!key || optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	if (bundle_pubkey_load(key, pub, err, sizeof(err)) < 0) {
		fprintf(stderr, "mynaguard-evidence-verify: %s\n", err);
		return 2;
	}
	r = fileio_read_file(AT_FDCWD, argv[optind], EVIDENCE_FILE_MAX, &data, &len);
	if (r < 0) {
		fprintf(stderr, "mynaguard-evidence-verify: %s: %s\n", argv[optind],
			r == -EFBIG ? "too large" : strerror(-r));
		return 1;
	}
	r = evidence_bundle_verify((const uint8_t *)data, len, pub, &sum, err, sizeof(err));
	if (r == -ENOMEM) {
		fprintf(stderr, "mynaguard-evidence-verify: out of memory\n");
		return 1;
	}
	if (r < 0) {
		printf("FAILED %s: %s\n", argv[optind], err);
		return 1;
	}
	evidence_key_id(pub, kid);
	printf("OK %s: %s to %s, signed by key %s; %llu records: header %llu, status %llu, "
	       "failure %llu, review %llu, policy %llu, chain_head %llu\n",
	       argv[optind], sum.from, sum.to, kid, sum.lines, sum.count[EVIDENCE_HEADER],
	       sum.count[EVIDENCE_STATUS], sum.count[EVIDENCE_FAILURE], sum.count[EVIDENCE_REVIEW],
	       sum.count[EVIDENCE_POLICY], sum.count[EVIDENCE_CHAIN_HEAD]);
	return 0;
}
