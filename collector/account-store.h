/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: the dashboard's personal accounts in the collector's database: password
 * hashes (PBKDF2-HMAC-SHA256), TOTP secrets checked by the PAM module's rules (totp_verify),
 * login sessions and scoped script tokens (both stored as SHA-256 only), and an outbox of
 * account.* events written by the admin commands. Used by auth.c (dashboard thread) and main.c
 * (the --account-* commands). Never logs. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACCOUNT_STORE_ERROR_MAX 512

/* The schema's step 3 → 4 (store.c applies it with the other migrations). */
#define ACCOUNT_STORE_SCHEMA                                                                       \
	"CREATE TABLE accounts ("                                                                  \
	"  name TEXT PRIMARY KEY,"                                                                 \
	"  role INTEGER NOT NULL," /* enum auth_role */                                            \
	"  hide_personal INTEGER NOT NULL DEFAULT 0,"                                              \
	"  disabled INTEGER NOT NULL DEFAULT 0,"                                                   \
	"  password TEXT NOT NULL,"    /* pbkdf2-sha256$ITER$SALT$HASH (hex) */                    \
	"  totp_secret BLOB NOT NULL," /* sealed under [accounts] secret_key (account-store.c) */  \
	"  totp_last_step INTEGER NOT NULL DEFAULT 0,"                                             \
	"  failures INTEGER NOT NULL DEFAULT 0,"                                                   \
	"  locked_until INTEGER NOT NULL DEFAULT 0," /* Unix seconds, 0 = not locked */            \
	"  created INTEGER NOT NULL);"                                                             \
	"CREATE TABLE account_sessions ("                                                          \
	"  id_sha256 TEXT PRIMARY KEY,"                                                            \
	"  name TEXT NOT NULL REFERENCES accounts(name),"                                          \
	"  csrf TEXT NOT NULL,"                                                                    \
	"  created INTEGER NOT NULL,"                                                              \
	"  last_used INTEGER NOT NULL);"                                                           \
	"CREATE TABLE account_tokens ("                                                            \
	"  id_sha256 TEXT PRIMARY KEY,"                                                            \
	"  name TEXT NOT NULL REFERENCES accounts(name),"                                          \
	"  scope INTEGER NOT NULL," /* enum auth_role */                                           \
	"  created INTEGER NOT NULL);"                                                             \
	"CREATE TABLE account_outbox ("                                                            \
	"  id INTEGER PRIMARY KEY,"                                                                \
	"  kind TEXT NOT NULL,"                                                                    \
	"  data TEXT NOT NULL);"

enum auth_role {
	AUTH_AUDITOR = 1, /* reads everything (personal data hidden when hide_personal) */
	AUTH_APPROVER,	  /* + grants and refuses USB requests, exceptions, the media ledger */
	AUTH_ADMIN,	  /* + groups, policies */
};

#define ACCOUNT_NAME_MAX       64
#define ACCOUNT_PASSWORD_MIN   12
#define ACCOUNT_PASSWORD_MAX   256
#define ACCOUNT_PBKDF2_ITER    600000 /* OWASP 2023 for PBKDF2-HMAC-SHA256 */
#define ACCOUNT_SECRET_BYTES   20
#define ACCOUNT_TOTP_DIGITS    6
#define ACCOUNT_TOTP_PERIOD    30
#define ACCOUNT_ID_HEX	       64 /* a session id, a CSRF token: 256 random bits */
#define ACCOUNT_TOKEN_PREFIX   "mgt_"
#define ACCOUNT_TOKEN_LEN      (4 + ACCOUNT_ID_HEX)
#define ACCOUNT_SECRET_B32_MAX 64
#define ACCOUNT_SESSIONS_MAX   16 /* per account: the oldest goes first */

struct account {
	char name[ACCOUNT_NAME_MAX + 1];
	enum auth_role role;
	bool hide_personal;
	bool disabled;
};

/* The PAM module's rules (policy.conf's defaults): window 1 step, 5 failures lock 15 minutes.
 * A wrong password counts as a failure like a wrong code. */
#define ACCOUNT_TOTP_WINDOW  1
#define ACCOUNT_MAX_FAILURES 5
#define ACCOUNT_LOCKOUT_SEC  900

enum account_login_result {
	ACCOUNT_LOGIN_OK,
	ACCOUNT_LOGIN_WRONG,  /* unknown name, disabled, wrong password or code */
	ACCOUNT_LOGIN_REPLAY, /* the code's time step was used already */
	ACCOUNT_LOGIN_LOCKED, /* too many failures: nothing was checked */
};

struct account_store;

/* A connection of its own to the (migrated) database. key_path is [accounts] secret_key, the
 * at-rest key of the TOTP secrets (docs/accounts.md): made (0600, the database's owner) when
 * missing and nothing is sealed yet; clear secrets of schema 6 are sealed here. err gets the
 * reason of a key problem: -ENOKEY (missing while secrets are sealed), -EKEYREJECTED (does not
 * open them), or the file's (-EACCES: others may read it, -EBADMSG: not 64 hex digits).
 * Without strict (the admin commands), a key that does not open the secrets is not fatal: 0,
 * with err saying so (--account-reset seals a new secret under it). */
int account_store_open(const char *path, const char *key_path, bool strict,
		       struct account_store **ret, char *err, size_t errsz);
void account_store_close(struct account_store *s);

/* 1..64 of [A-Za-z0-9._@-], not starting with '.' or '-' (the PAM module's user names). */
bool account_name_valid(const char *name);
/* "auditor", "approver", "admin"; the reverse accepts "read"/"approve" for token scopes too. */
const char *account_role_name(enum auth_role r);
int account_role_from_name(const char *s, enum auth_role *ret);

/* A new account with a new TOTP secret; ret_uri gets the otpauth:// URI (the only copy of the
 * secret that leaves the database; the caller wipes it). -EEXIST, -EINVAL (name, password). */
int account_create(struct account_store *s, const char *name, enum auth_role role,
		   bool hide_personal, const char *password, int64_t now, char *ret_uri,
		   size_t urisz);
/* A new password and TOTP secret, unlocked and enabled; every session ends. -ENOENT. */
int account_reset(struct account_store *s, const char *name, const char *password, int64_t now,
		  char *ret_uri, size_t urisz);
/* Disabled: its sessions and tokens stop working at once. -ENOENT. */
int account_disable(struct account_store *s, const char *name);
/* A script token of scope (at most the account's role): "mgt_" + 64 hex, shown once.
 * -ENOENT, -EPERM (scope above the role). */
int account_token_create(struct account_store *s, const char *name, enum auth_role scope,
			 int64_t now, char ret[static ACCOUNT_TOKEN_LEN + 1]);
/* The accounts as a JSON array (no secrets). */
int account_list_json(struct account_store *s, json_t **ret);

/* One login attempt at now; *ret_account is filled on ACCOUNT_LOGIN_OK and, when the name is
 * known, on the others too (for the event). The password is checked outside the write lock
 * (it is slow on purpose), the code and the counters inside it. */
int account_login(struct account_store *s, const char *name, const char *password, const char *code,
		  int64_t now, enum account_login_result *ret, struct account *ret_account);

/* A new session: ret_id goes into the cookie (only its SHA-256 is stored), ret_csrf into the
 * X-CSRF-Token header of every change. */
int account_session_create(struct account_store *s, const char *name, int64_t now,
			   char ret_id[static ACCOUNT_ID_HEX + 1],
			   char ret_csrf[static ACCOUNT_ID_HEX + 1]);
/* The session's account when it lives (idle and absolute expiry, account enabled); refreshes
 * its last use. -ENOENT otherwise (an expired session is deleted). */
int account_session_find(struct account_store *s, const char *id, int64_t now, int64_t idle,
			 int64_t max, struct account *ret,
			 char ret_csrf[static ACCOUNT_ID_HEX + 1]);
int account_session_delete(struct account_store *s, const char *id);
/* The token's account and scope; -ENOENT when unknown or the account is disabled. */
int account_token_find(struct account_store *s, const char *token, struct account *ret,
		       enum auth_role *ret_scope);

/* The outbox: events for the collector's writer that a process without it (an admin command)
 * wants in the store. add takes data. drain hands each to fn (which takes it) and deletes it. */
int account_outbox_add(struct account_store *s, const char *kind, json_t *data);
int account_outbox_drain(struct account_store *s,
			 void (*fn)(const char *kind, json_t *data, void *userdata),
			 void *userdata);
