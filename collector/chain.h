/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: one link of a terminal's hash chain (docs/evidence.md), computed the same
 * way by both stores (store.c for SQLite, store-pg.c for PostgreSQL). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

/* SHA-256: one link of a terminal's hash chain */
#define STORE_CHAIN_LEN 32

/* body = SHA-256(len32 clause || clause || len32 data || data): what a tombstone keeps */
int chain_body(EVP_MD_CTX *md, const void *clause, size_t clause_len, const void *data,
	       size_t data_len, uint8_t out[STORE_CHAIN_LEN]);

/* link = SHA-256(prev || len32 terminal || terminal || seq64 || ts64 || received64 ||
 * len32 kind || kind || body), integers big-endian, texts as stored. */
int chain_link(EVP_MD_CTX *md, const uint8_t prev[STORE_CHAIN_LEN], const char *terminal,
	       uint64_t seq, int64_t ts, int64_t received, const char *kind,
	       const uint8_t body[STORE_CHAIN_LEN], uint8_t out[STORE_CHAIN_LEN]);
