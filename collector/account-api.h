/* SPDX-License-Identifier: MIT */
/* mynaguard-collector: /v1/accounts, the administrators' account page (mynaguard-collector(8)):
 * GET lists the accounts, POST creates one ({"name","role","password","hide_personal"}),
 * POST /v1/accounts/NAME/reset ({"password"}) gives it a new password and TOTP secret,
 * POST /v1/accounts/NAME/disable ends its sessions and tokens. Administrators only (403 for
 * the other roles), changes with the session's CSRF token and Origin (auth_request); each
 * change is an account.* event with "by". Creation and reset answer the otpauth URI and its
 * QR code (SVG) this once. */
#pragma once

#include <event2/http.h>
#include <stdbool.h>
#include <stddef.h>

struct worker;

bool account_api_path(const char *path);
void account_api_handle(struct evhttp_request *req, struct worker *w);

/* text as a QR code (error correction M), one SVG document; NULL when it does not fit or out
 * of memory. The caller wipes and frees it (an enrollment's code holds the secret). */
char *account_qr_svg(const char *text, size_t *ret_len);
