/* SPDX-License-Identifier: MIT */
/* The fleet channel's bundle (docs/fleet.md): framing, Ed25519 signatures (OpenSSL), the
 * exceptions JSON and the checks against a base policy's limits. Pure functions over bytes
 * except the key-file helpers; never logs, never exits. Built as static library mgbundle
 * (bundle_dep): policy_dep + OpenSSL + jansson. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "policy.h"

#define BUNDLE_MAX_BYTES	(1024 * 1024)
#define BUNDLE_MAGIC		"MYNABND1"
#define BUNDLE_BASE_MAGIC	"MYNABAS1"
#define BUNDLE_MAGIC_LEN	8
#define BUNDLE_SIG_LEN		64
#define BUNDLE_PUBKEY_LEN	32
#define BUNDLE_MAX_EXCEPTIONS	1024
#define BUNDLE_EXCEPTION_ID_MAX 64
#define BUNDLE_TEXT_MAX		512 /* purpose, approved_by */
#define BUNDLE_MAX_USERS	32
#define BUNDLE_TOTP_USER_MAX	64
#define BUNDLE_MAX_TOTP		4096
#define BUNDLE_X25519_LEN	32

/* Errors are negative errno values; the reason text goes to err (NUL-terminated, may be
 * truncated), e.g. "bad magic", "root signature does not verify", "bundle is for terminal X",
 * "version 3 is not newer than the applied 5". Japanese is the dashboard's job, not ours. */
#define BUNDLE_ERR_MAX 200

/* ---- Framing (no crypto, no parsing of the INI or JSON) ---- */

/* Views into the caller's buffer; nothing is copied. */
struct bundle_frame {
	const uint8_t *base; /* base policy text, not NUL-terminated */
	uint32_t base_len;
	const uint8_t *root_sig; /* 64 bytes */
	/* The signed body (absent in a base file: body == NULL) */
	const uint8_t *body; /* from version to the end of json */
	uint32_t body_len;
	uint64_t version;
	int64_t issued;
	const char *terminal_id; /* not NUL-terminated */
	uint16_t terminal_id_len;
	const char *json; /* not NUL-terminated */
	uint32_t json_len;
	const uint8_t *grant_sig; /* 64 bytes */
};

/* Decode a bundle ("MYNABND1"). -EBADMSG with a reason for anything malformed (short, trailing
 * bytes, lengths out of range, empty id), -EFBIG beyond BUNDLE_MAX_BYTES. */
int bundle_decode(const uint8_t *buf, size_t len, struct bundle_frame *ret, char *err,
		  size_t errsz);
/* Decode a signed base file ("MYNABAS1"): base and root_sig only. */
int bundle_decode_base(const uint8_t *buf, size_t len, struct bundle_frame *ret, char *err,
		       size_t errsz);

/* ---- Keys: Ed25519. Public keys as one line of base64 (32 raw bytes), private keys as PKCS#8
 * PEM (what `openssl genpkey -algorithm ed25519` writes). ---- */

int bundle_pubkey_from_base64(const char *b64, uint8_t out[BUNDLE_PUBKEY_LEN]);
/* base64 of the 32 bytes, NUL-terminated; out must hold 45 bytes. */
void bundle_pubkey_to_base64(const uint8_t key[BUNDLE_PUBKEY_LEN], char out[45]);
/* Read a .pub file (one base64 line, optional trailing newline). */
int bundle_pubkey_load(const char *path, uint8_t out[BUNDLE_PUBKEY_LEN], char *err, size_t errsz);

struct bundle_signer; /* an Ed25519 private key (EVP_PKEY) */
/* Refuses a key file that is a symlink (-ELOOP), not a regular file (-EBADFD), open to group or
 * others (-EACCES: mode & 0077), not an unencrypted Ed25519 PKCS#8 PEM (-EBADMSG). */
int bundle_signer_load(const char *pem_path, struct bundle_signer **ret, char *err, size_t errsz);
/* A new key pair; bundle_signer_save writes the PEM (mode 0600, O_EXCL). */
int bundle_signer_generate(struct bundle_signer **ret);
int bundle_signer_save(const struct bundle_signer *s, const char *pem_path, char *err,
		       size_t errsz);
void bundle_signer_pubkey(const struct bundle_signer *s, uint8_t out[BUNDLE_PUBKEY_LEN]);
void bundle_signer_free(struct bundle_signer *s);

/* ---- Signing (admin and collector side) ---- */

/* A signed base file: "MYNABAS1" || u32 len || base || root_sig. *ret is malloc'd. */
int bundle_sign_base(const struct bundle_signer *root, const char *base, size_t base_len,
		     uint8_t **ret, size_t *ret_len);
/* A full bundle from a signed base file (checked to decode, not re-verified), the body fields
 * and the exceptions JSON text (already encoded by bundle_exceptions_to_json). */
int bundle_build(const uint8_t *signed_base, size_t signed_base_len,
		 const struct bundle_signer *grant, uint64_t version, int64_t issued,
		 const char *terminal_id, const char *json, size_t json_len, uint8_t **ret,
		 size_t *ret_len, char *err, size_t errsz);

/* A detached Ed25519 signature over m (the message carries its own context string): the
 * collector's signed chain heads and evidence bundles (docs/evidence.md). */
int bundle_sign_detached(const struct bundle_signer *s, const void *m, size_t n,
			 uint8_t sig[BUNDLE_SIG_LEN]);

/* ---- Verification ---- */

/* A detached Ed25519 signature over m. 0 or -EBADMSG. */
int bundle_verify_detached(const uint8_t pub[BUNDLE_PUBKEY_LEN], const void *m, size_t n,
			   const uint8_t sig[BUNDLE_SIG_LEN]);

/* Root signature over "mynaguard-base-v1\0" || base. 0 or -EBADMSG. */
int bundle_verify_root(const struct bundle_frame *f, const uint8_t root_pub[BUNDLE_PUBKEY_LEN]);
/* Grant signature over "mynaguard-body-v1\0" || SHA-256(base) || body, with the key the base
 * names. 0 or -EBADMSG. */
int bundle_verify_grant(const struct bundle_frame *f, const uint8_t grant_pub[BUNDLE_PUBKEY_LEN]);

/* What the monitor and the worker both check before anything is installed, in this order:
 * root signature (before the base INI is parsed), base parses as a base policy
 * (policy_parse_base), grant signature with base->fleet_grant_key, terminal id == own_id,
 * base covers own_id (policy_fleet_covers), body version > applied_version, base version >=
 * applied_base_version. On success *ret_base (when not NULL) is the parsed base (caller frees). Never parses
 * the JSON. Errors: -EBADMSG (a signature, a base that does not parse or a frame without body),
 * -EACCES (another terminal's bundle, a base that does not cover own_id), -ESTALE (a version
 * not newer, a base version going back), -ENOMEM. */
int bundle_check_install(const struct bundle_frame *f, const uint8_t root_pub[BUNDLE_PUBKEY_LEN],
			 const char *own_id, uint64_t applied_version,
			 uint64_t applied_base_version, struct policy **ret_base, char *err,
			 size_t errsz);

/* ---- Exceptions (parsed by the unprivileged worker only) ---- */

struct bundle_exception {
	char id[BUNDLE_EXCEPTION_ID_MAX + 1];
	uint16_t vendor;
	uint16_t product;
	char *serial; /* NULL = any (only if the base allows it: it does not, see limits) */
	char *descriptor_hash; /* NULL or 64 lowercase hex chars */
	char cls[24];	       /* a block entry name of the base, e.g. "mass_storage" */
	char *users[BUNDLE_MAX_USERS];
	size_t n_users; /* 0 = everyone */
	int64_t from;	/* unix seconds, inclusive */
	int64_t until;	/* unix seconds, exclusive */
	char *purpose;
	char *approved_by;
	char *ledger; /* NULL or a ledger registration number */
};

/* A TOTP secret enrolled centrally for one clerk (docs/fleet.md, "Central TOTP enrollment"),
 * sealed to this terminal's X25519 key: the worker parses the entry, only the monitor (which
 * holds the private key) opens it. */
struct bundle_totp {
	char user[BUNDLE_TOTP_USER_MAX + 1]; /* 1..64 of [A-Za-z0-9._@-], not starting . or - */
	uint64_t gen;	 /* the enrollment's generation: rises on re-enrollment */
	uint8_t *sealed; /* bundle_totp_seal's bytes (base64 in the JSON) */
	size_t sealed_len;
};

struct bundle_exceptions {
	struct bundle_exception *items;
	size_t n;
	/* The optional "totp" list (absent from the JSON when empty), by user, each user once. */
	struct bundle_totp *totp;
	size_t n_totp;
	/* The optional "totp_recovery" list: helpdesk recovery codes, sealed like the secrets
	 * (gen holds the entry's "rid"; sealed with BUNDLE_RECOVERY_GEN + rid, docs/fleet.md). */
	struct bundle_totp *recovery;
	size_t n_recovery;
};

/* Strict: unknown keys, wrong types, bad hex, ids out of [A-Za-z0-9._-], from >= until, more
 * than BUNDLE_MAX_EXCEPTIONS, duplicate ids → -EBADMSG with a reason. */
int bundle_exceptions_parse(const char *json, size_t len, struct bundle_exceptions *ret, char *err,
			    size_t errsz);
/* The canonical JSON text (malloc'd, NUL-terminated). */
int bundle_exceptions_to_json(const struct bundle_exceptions *ex, char **ret);
void bundle_exceptions_free(struct bundle_exceptions *ex);

/* Every exception within the base's limits: cls in base->fleet_grant_classes, serial present,
 * until - from <= grant_max_days * 86400. -EPERM with a reason naming the exception id. */
int bundle_check_limits(const struct policy *base, const struct bundle_exceptions *ex, char *err,
			size_t errsz);

/* Whether exception e applies to the device at trusted time now (from <= now < until,
 * vendor, product, serial and the hash when given). Pure. */
bool bundle_exception_matches(const struct bundle_exception *e, const struct policy_usb_device *dev,
			      int64_t now);

/* Whether exception e opens the blocked interface class block (a decision's block entry, from
 * policy_usb_decide on the installed policy): some base->fleet_grant_classes entry is named
 * e->cls and blocks exactly what block blocks. A name may stand for several entries (cdc_net).
 * Pure. (An addition to the first contract, for the agent.) */
bool bundle_exception_opens(const struct policy *base, const struct bundle_exception *e,
			    const struct policy_usb_class *block);

/* ---- Central TOTP secrets (bundle/totp.c) ----
 *
 * Sealed to a terminal (what the bundle's "totp" entries carry, base64):
 *   u8 1 || ephemeral X25519 public key (32) || nonce (12) || AES-256-GCM ciphertext || tag (16)
 * key = HKDF-SHA256(ikm = X25519(ephemeral, terminal), salt = ephemeral pub || terminal pub,
 *                   info = "mynaguard-totp-seal-v1"), AAD = "mynaguard-totp-seal-v1\0" terminal id
 *   "\0" user "\0" gen (u64 big-endian). The plaintext (also what the collector keeps, encrypted
 *   with its own at-rest key, bundle_aead_*):
 *   u8 1 || u8 digits (6..8) || u16 period (10..300) || i64 enrolled || u8 len (16..64) || secret
 * Nothing may follow. Errors never quote the bytes. */

/* What the uplink sends on GET /v1/policy: the agent's X25519 public key (base64 of 32 bytes,
 * from SPOOL/terminal-key.pub, which the agent's monitor writes). */
#define BUNDLE_TERMINAL_KEY_HEADER "Mynaguard-Terminal-Key"

/* A recovery code is sealed as a secret of 16 ASCII digits with the generation
 * BUNDLE_RECOVERY_GEN + rid (never a secret's generation) and "enrolled" = its end. */
#define BUNDLE_RECOVERY_GEN    (UINT64_C(1) << 62)

#define BUNDLE_TOTP_SECRET_MAX 64
#define BUNDLE_TOTP_SECRET_MIN 16
#define BUNDLE_SEAL_NONCE_LEN  12
#define BUNDLE_SEAL_TAG_LEN    16
#define BUNDLE_TOTP_PLAIN_MAX  (1 + 1 + 2 + 8 + 1 + BUNDLE_TOTP_SECRET_MAX)
#define BUNDLE_SEALED_MAX                                                                          \
	(1 + BUNDLE_X25519_LEN + BUNDLE_SEAL_NONCE_LEN + BUNDLE_TOTP_PLAIN_MAX +                   \
	 BUNDLE_SEAL_TAG_LEN)

struct bundle_totp_secret {
	uint8_t secret[BUNDLE_TOTP_SECRET_MAX];
	size_t secret_len;
	unsigned digits;
	unsigned period;
	int64_t enrolled; /* unix seconds */
};

/* The plaintext's encoding; out holds BUNDLE_TOTP_PLAIN_MAX. -EINVAL when s is out of range. */
int bundle_totp_secret_encode(const struct bundle_totp_secret *s, uint8_t *out, size_t *ret_len);
/* Strict decode (pure, fuzzed): -EBADMSG for any deviation. *ret is wiped on failure. */
int bundle_totp_secret_decode(const uint8_t *buf, size_t len, struct bundle_totp_secret *ret);

/* A sealed payload's framing (pure, fuzzed): views into buf. -EBADMSG when malformed. */
struct bundle_sealed_frame {
	const uint8_t *eph_pub; /* 32 */
	const uint8_t *nonce;	/* 12 */
	const uint8_t *ct;
	size_t ct_len;
	const uint8_t *tag; /* 16 */
};
int bundle_sealed_decode(const uint8_t *buf, size_t len, struct bundle_sealed_frame *ret);

/* X25519 key pairs: raw 32-byte keys. */
int bundle_x25519_generate(uint8_t priv[BUNDLE_X25519_LEN], uint8_t pub[BUNDLE_X25519_LEN]);
int bundle_x25519_public(const uint8_t priv[BUNDLE_X25519_LEN], uint8_t pub[BUNDLE_X25519_LEN]);

/* Seal s to terminal_pub (a fresh ephemeral key each time). *ret malloc'd. */
int bundle_totp_seal(const uint8_t terminal_pub[BUNDLE_X25519_LEN], const char *terminal_id,
		     const char *user, uint64_t gen, const struct bundle_totp_secret *s,
		     uint8_t **ret, size_t *ret_len);
/* Open with the terminal's private key; -EBADMSG when it does not decode, authenticate (another
 * terminal, user or generation) or decode inside. */
int bundle_totp_open(const uint8_t terminal_priv[BUNDLE_X25519_LEN], const char *terminal_id,
		     const char *user, uint64_t gen, const uint8_t *sealed, size_t len,
		     struct bundle_totp_secret *ret);

/* AES-256-GCM with a random nonce: out = nonce (12) || ciphertext || tag (16), malloc'd. For
 * the collector's at-rest encryption. open: -EBADMSG when it does not authenticate. */
int bundle_aead_seal(const uint8_t key[32], const void *aad, size_t aad_len, const uint8_t *pt,
		     size_t pt_len, uint8_t **ret, size_t *ret_len);
int bundle_aead_open(const uint8_t key[32], const void *aad, size_t aad_len, const uint8_t *in,
		     size_t in_len, uint8_t *out, size_t out_size, size_t *ret_len);

/* A user name as the "totp" entries carry it (the TOTP store's rule). */
bool bundle_totp_user_valid(const char *s, size_t len);

/* ---- Request codes ---- */

/* 8 characters of Crockford base32 of SHA-256(terminal_id "\0" vendor "\0" product "\0"
 * serial), vendor/product as 4 lowercase hex digits, serial "" when absent. out holds 9. */
void bundle_request_code(const char *terminal_id, uint16_t vendor, uint16_t product,
			 const char *serial, char out[9]);
