/* SPDX-License-Identifier: MIT */
/* Writes the seed corpus of fuzz-bundle (tests/fuzz/corpus/bundle/) with the fixed test keys of
 * fuzz-bundle-keys.h. Ed25519 signatures are deterministic, so the output is the same on every
 * run: `build/tests/fuzz/gen-bundle-corpus tests/fuzz/corpus/bundle` rewrites the seeds. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "bundle.h"
#include "fileio.h"
#include "fuzz-bundle-keys.h"

static const char *outdir;

static struct bundle_signer *signer(const uint8_t seed[32])
{
	char path[] = "/tmp/gen-bundle-corpus-XXXXXX";
	struct bundle_signer *s = NULL;
	char err[BUNDLE_ERR_MAX];
	EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
	int fd = mkstemp(path);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

	if (!k || !f || PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) != 1) {
		fprintf(stderr, "gen-bundle-corpus: cannot write a key\n");
		exit(1);
	}
	fclose(f);
	EVP_PKEY_free(k);
	if (bundle_signer_load(path, &s, err, sizeof(err)) < 0) {
		fprintf(stderr, "gen-bundle-corpus: %s\n", err);
		exit(1);
	}
	unlink(path);
	return s;
}

static void put(const char *name, const void *data, size_t len)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", outdir, name);
	if (fileio_write_atomic_path(path, data, len, 0644) < 0) {
		fprintf(stderr, "gen-bundle-corpus: cannot write %s\n", path);
		exit(1);
	}
}

static char *base_text(const char *terminals, const struct bundle_signer *grant)
{
	uint8_t pub[BUNDLE_PUBKEY_LEN];
	char b64[45], *s = NULL;

	bundle_signer_pubkey(grant, pub);
	bundle_pubkey_to_base64(pub, b64);
	if (asprintf(&s,
		     "[terminal]\ncontact = 情報政策課 内線 1234\n\n[usb]\n"
		     "block = mass_storage, mtp\n\n[fleet]\ngroup = fuzz\nversion = 3\n"
		     "issued = 2026-12-01T09:00:00Z\nterminals = %s\ngrant_key = %s\n"
		     "grant_classes = mass_storage\ngrant_max_days = 30\n",
		     terminals, b64) < 0)
		exit(1);
	return s;
}

static void bundle(const char *name, const char *text, const struct bundle_signer *root,
		   const struct bundle_signer *grant, const char *id, const char *json)
{
	uint8_t *sb, *b;
	size_t sb_len, b_len;
	char err[BUNDLE_ERR_MAX];

	if (bundle_sign_base(root, text, strlen(text), &sb, &sb_len) < 0 ||
	    bundle_build(sb, sb_len, grant, 5, 1764547200, id, json, strlen(json), &b, &b_len, err,
			 sizeof(err)) < 0) {
		fprintf(stderr, "gen-bundle-corpus: %s: cannot build\n", name);
		exit(1);
	}
	put(name, b, b_len);
	free(sb);
	free(b);
}

#define EXCEPTIONS                                                                                 \
	"{\"exceptions\":[{\"id\":\"EX-2026-0001\",\"vendor\":\"0781\",\"product\":\"5581\","      \
	"\"serial\":\"4C530001090515116423\",\"hash\":null,\"class\":\"mass_storage\","            \
	"\"users\":[\"tanaka\"],\"from\":1764547200,\"until\":1765151999,\"purpose\":\"移送\","  \
	"\"approved_by\":\"sato\",\"ledger\":\"MB-0012\"},{\"id\":\"EX-2026-0002\","               \
	"\"vendor\":\"abcd\",\"product\":\"00ff\",\"serial\":\"S2\",\"hash\":\"sha256:"            \
	"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\"class\":"            \
	"\"mass_storage\",\"users\":[],\"from\":0,\"until\":86400,\"purpose\":\"p\","              \
	"\"approved_by\":\"a\",\"ledger\":null}]}"
#define EXCEPTIONS_MTP                                                                             \
	"{\"exceptions\":[{\"id\":\"X\",\"vendor\":\"0001\",\"product\":\"0002\",\"serial\":null," \
	"\"hash\":null,\"class\":\"mtp\",\"users\":[],\"from\":1,\"until\":2,\"purpose\":\"p\","   \
	"\"approved_by\":\"a\",\"ledger\":null}]}"

int main(int argc, char **argv)
{
	struct bundle_signer *root, *grant;
	char *covers, *other;
	uint8_t *sb;
	size_t sb_len;

	if (argc != 2) {
		fprintf(stderr, "usage: gen-bundle-corpus DIR\n");
		return 2;
	}
	outdir = argv[1];
	root = signer(fuzz_root_seed);
	grant = signer(fuzz_grant_seed);
	covers = base_text("fuzz-* kokuho-01", grant);
	other = base_text("other-*", grant);

	bundle("valid", covers, root, grant, FUZZ_TERMINAL_ID, EXCEPTIONS);
	bundle("valid-empty", covers, root, grant, FUZZ_TERMINAL_ID, "{\"exceptions\":[]}");
	bundle("beyond-limits", covers, root, grant, FUZZ_TERMINAL_ID, EXCEPTIONS_MTP);
	bundle("other-terminal", covers, root, grant, "fuzz-02", EXCEPTIONS);
	bundle("not-covered", other, root, grant, FUZZ_TERMINAL_ID, EXCEPTIONS);
	bundle("grant-by-root", covers, root, root, FUZZ_TERMINAL_ID, EXCEPTIONS);
	bundle("root-by-grant", covers, grant, grant, FUZZ_TERMINAL_ID, EXCEPTIONS);
	if (bundle_sign_base(root, covers, strlen(covers), &sb, &sb_len) < 0)
		return 1;
	put("base-file", sb, sb_len);
	free(sb);
	put("exceptions.json", EXCEPTIONS, strlen(EXCEPTIONS));
	put("exceptions-mtp.json", EXCEPTIONS_MTP, strlen(EXCEPTIONS_MTP));

	free(covers);
	free(other);
	bundle_signer_free(root);
	bundle_signer_free(grant);
	return 0;
}
