/* SPDX-License-Identifier: MIT */
/* mynaguard-uplink: enrollment (--enroll: key made here, CSR + one-time token to the collector,
 * certificate back) and renewal of the terminal's certificate over mutual TLS. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct policy;
struct uplink_claim;
struct uplink_client;
struct uplink_tls;

/* true when argv asks for enrollment (--enroll): main hands the whole run to uplink_enroll_main */
bool uplink_enroll_requested(int argc, char **argv);
/* mynaguard-uplink --enroll URL --token-file FILE --ca-fingerprint SHA256 [--policy FILE]
 * [--user NAME] [--timeout SEC]. Exit status: 0 enrolled, 1 refused or failed, 2 usage. */
int uplink_enroll_main(int argc, char **argv);

/* ---- shared by enrollment and renewal (enroll.c) ---- */

/* One HTTPS request (POST JSON when body): cainfo NULL does not verify the server; cert/key NULL
 * send no client certificate. Returns the HTTP status (err says why when >= 400) or -1 (err set);
 * *ret_body malloc'd (may be NULL). */
long uplink_https(const char *url, const char *cainfo, const char *cert, const char *key,
		  const char *body, long timeout, char **ret_body, size_t *ret_len, char *err,
		  size_t errsz);
/* A new P-256 key and a request for CN=terminal: both PEM, malloc'd (the key wiped by the
 * caller with secmem_free_string). */
int uplink_make_request(const char *terminal, char **ret_key_pem, char **ret_csr_pem);
/* Checks an answer {"certificate","ca","serial","not_after"}: the certificate parses, names
 * terminal, carries our key and is signed by the CA in ca_pem. ret_cert_pem malloc'd. */
int uplink_check_answer(const char *body, size_t len, const char *terminal, const char *key_pem,
			const char *ca_pem, char **ret_cert_pem, char *err, size_t errsz);
/* Replaces key and certificate: writes KEY.new and CERT.new, then renames the key, then the
 * certificate. uid/gid (-1: unchanged) own the key (0600); the certificate is 0644. */
int uplink_install_pair(const char *key_path, const char *key_pem, const char *cert_path,
			const char *cert_pem, uid_t uid, gid_t gid);
/* Finishes or undoes a swap cut short (crash, power loss) between the steps above. */
void uplink_recover_pair(const char *key_path, const char *cert_path);
/* not_before and not_after of a PEM certificate file (unix seconds). */
int uplink_cert_dates(const char *path, int64_t *ret_not_before, int64_t *ret_not_after);

/* ---- renewal (renew.c) ---- */

struct uplink_renew {
	const struct policy *p;
	unsigned percent; /* of the certificate's life at which to renew (before the stagger) */
	int64_t not_before, not_after, due; /* due 0 = no renewal (no readable certificate) */
};

/* The stagger: from 0 to a twelfth of the life at 67 % (percent/800 of it), fixed per id. */
int64_t uplink_renew_due(int64_t not_before, int64_t not_after, unsigned percent,
			 const char *terminal);
void uplink_renew_init(struct uplink_renew *rn, const struct policy *p, unsigned percent);
/* Milliseconds until renewal is due (0 when due), -1 when none is planned. */
int uplink_renew_wait_ms(const struct uplink_renew *rn);
/* Makes the renewal due now (--renew-now); -ENOENT when no certificate could be read. */
int uplink_renew_now(struct uplink_renew *rn);
/* When due: renews over the client's mutual TLS, tells the claim thread (claim, NULL = none) and
 * replaces *client by one that uses the new certificate. Logs what happened; on failure plans a
 * retry. 1 renewed, 0 not due, <0 failed. */
int uplink_renew_tick(struct uplink_renew *rn, struct uplink_client **client,
		      const struct uplink_tls *tls, long timeout_sec, struct uplink_claim *claim);
