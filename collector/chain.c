/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: the hash chain's link (docs/evidence.md), shared by both stores. */
#include "chain.h"

#include <errno.h>
#include <string.h>

static void put_be(EVP_MD_CTX *md, uint64_t v, unsigned bytes)
{
	uint8_t b[8];
	for (unsigned i = 0; i < bytes; i++)
		b[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
	EVP_DigestUpdate(md, b, bytes);
}

static void put_str(EVP_MD_CTX *md, const void *p, size_t n)
{
	put_be(md, n, 4);
	EVP_DigestUpdate(md, p, n);
}

/* body = SHA-256(len32 clause || clause || len32 data || data): what a tombstone keeps */
int chain_body(EVP_MD_CTX *md, const void *clause, size_t clause_len, const void *data,
	       size_t data_len, uint8_t out[STORE_CHAIN_LEN])
{
	unsigned n = 0;
	int ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL);

	if (ok) {
		put_str(md, clause, clause_len);
		put_str(md, data, data_len);
		ok = EVP_DigestFinal_ex(md, out, &n);
	}
	return ok && n == STORE_CHAIN_LEN ? 0 : -EIO;
}

/* link = SHA-256(prev || len32 terminal || terminal || seq64 || ts64 || received64 ||
 * len32 kind || kind || body), integers big-endian, texts as stored. */
int chain_link(EVP_MD_CTX *md, const uint8_t prev[STORE_CHAIN_LEN], const char *terminal,
	       uint64_t seq, int64_t ts, int64_t received, const char *kind,
	       const uint8_t body[STORE_CHAIN_LEN], uint8_t out[STORE_CHAIN_LEN])
{
	unsigned n = 0;
	int ok;

	ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	if (ok) {
		EVP_DigestUpdate(md, prev, STORE_CHAIN_LEN);
		put_str(md, terminal, strlen(terminal));
		put_be(md, seq, 8);
		put_be(md, (uint64_t)ts, 8);
		put_be(md, (uint64_t)received, 8);
		put_str(md, kind, strlen(kind));
		EVP_DigestUpdate(md, body, STORE_CHAIN_LEN);
		ok = EVP_DigestFinal_ex(md, out, &n);
	}
	return ok && n == STORE_CHAIN_LEN ? 0 : -EIO;
}
