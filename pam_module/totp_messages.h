/* SPDX-License-Identifier: MIT */
/* What the module says to the user, in Japanese and English. The language comes from the PAM
 * environment, then the process environment (LC_ALL, LC_MESSAGES, LANG), without setlocale(). */
#pragma once

#include <stdio.h>
#include <string.h>

enum totp_msg {
	TOTP_MSG_PROMPT,
	TOTP_MSG_LOCKED,
	TOTP_MSG_REPLAY,
	/* The lockout message is put together: LOCKED_HEAD MINUTES LOCKED_TAIL, when the minutes
	 * left are known (else LOCKED), then ASK_HEAD CONTACT ASK_TAIL, or ASK_ADMIN without a
	 * [terminal] contact in the policy. */
	TOTP_MSG_LOCKED_HEAD,
	TOTP_MSG_LOCKED_TAIL,
	TOTP_MSG_ASK_HEAD,
	TOTP_MSG_ASK_TAIL,
	TOTP_MSG_ASK_ADMIN,
	_TOTP_MSG_MAX,
};

enum totp_lang {
	TOTP_LANG_EN,
	TOTP_LANG_JA,
	_TOTP_LANG_MAX,
};

static const char *const totp_messages[_TOTP_LANG_MAX][_TOTP_MSG_MAX] = {
    [TOTP_LANG_EN] =
	{
	    [TOTP_MSG_PROMPT] = "One-time code: ",
	    [TOTP_MSG_LOCKED] = "Too many wrong codes. Try again later.",
	    [TOTP_MSG_REPLAY] = "This code was already used. Wait for the next code.",
	    [TOTP_MSG_LOCKED_HEAD] = "Too many wrong codes. Locked for ",
	    [TOTP_MSG_LOCKED_TAIL] = " more minute(s).",
	    [TOTP_MSG_ASK_HEAD] = " To unlock sooner, ask ",
	    [TOTP_MSG_ASK_TAIL] = ".",
	    [TOTP_MSG_ASK_ADMIN] = " To unlock sooner, ask your administrator.",
	},
    [TOTP_LANG_JA] =
	{
	    [TOTP_MSG_PROMPT] = "ワンタイムパスワード: ",
	    [TOTP_MSG_LOCKED] =
		"ワンタイムパスワードの誤りが多すぎます。しばらくしてから再度お試しください。",
	    [TOTP_MSG_REPLAY] = "このコードは使用済みです。次のコードをお待ちください。",
	    [TOTP_MSG_LOCKED_HEAD] = "ワンタイムパスワードの誤りが多すぎます。あと",
	    [TOTP_MSG_LOCKED_TAIL] = "分間ロックされています。",
	    [TOTP_MSG_ASK_HEAD] = "すぐに解除が必要な場合は",
	    [TOTP_MSG_ASK_TAIL] = "にお問い合わせください。",
	    [TOTP_MSG_ASK_ADMIN] = "すぐに解除が必要な場合は管理者にお問い合わせください。",
	},
};

/* "ja", "ja_JP.UTF-8", "ja_JP.eucJP" → Japanese; anything else (including "C") → English. */
static inline enum totp_lang totp_lang_from_value(const char *v)
{
	return v && v[0] == 'j' && v[1] == 'a' && (v[2] == '\0' || v[2] == '_' || v[2] == '.')
		   ? TOTP_LANG_JA
		   : TOTP_LANG_EN;
}

/* The lockout message into buf: minutes 0 = unknown; contact "" = none (then the
 * administrator). */
static inline void totp_locked_message(enum totp_lang lang, unsigned minutes, const char *contact,
				       char *buf, size_t size)
{
	const char *const *m = totp_messages[lang];

	if (minutes > 0)
		snprintf(buf, size, "%s%u%s", m[TOTP_MSG_LOCKED_HEAD], minutes,
			 m[TOTP_MSG_LOCKED_TAIL]);
	else
		snprintf(buf, size, "%s", m[TOTP_MSG_LOCKED]);
	if (contact && contact[0])
		snprintf(buf + strlen(buf), size - strlen(buf), "%s%s%s", m[TOTP_MSG_ASK_HEAD],
			 contact, m[TOTP_MSG_ASK_TAIL]);
	else
		snprintf(buf + strlen(buf), size - strlen(buf), "%s", m[TOTP_MSG_ASK_ADMIN]);
}
