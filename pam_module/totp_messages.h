/* SPDX-License-Identifier: MIT */
/* What the module says to the user, in Japanese and English. The language comes from the PAM
 * environment, then the process environment (LC_ALL, LC_MESSAGES, LANG), without setlocale(). */
#pragma once

enum totp_msg {
	TOTP_MSG_PROMPT,
	TOTP_MSG_LOCKED,
	TOTP_MSG_REPLAY,
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
	},
    [TOTP_LANG_JA] =
	{
	    [TOTP_MSG_PROMPT] = "ワンタイムパスワード: ",
	    [TOTP_MSG_LOCKED] =
		"ワンタイムパスワードの誤りが多すぎます。しばらくしてから再度お試しください。",
	    [TOTP_MSG_REPLAY] = "このコードは使用済みです。次のコードをお待ちください。",
	},
};

/* "ja", "ja_JP.UTF-8", "ja_JP.eucJP" → Japanese; anything else (including "C") → English. */
static inline enum totp_lang totp_lang_from_value(const char *v)
{
	return v && v[0] == 'j' && v[1] == 'a' && (v[2] == '\0' || v[2] == '_' || v[2] == '.')
		   ? TOTP_LANG_JA
		   : TOTP_LANG_EN;
}
