#!/bin/sh
# SPDX-License-Identifier: MIT
# mynaguardctl totp: enroll (URI, 160-bit secret, owner/mode, --secret, --png, overwrite asks),
# status, reset, remove; then a record it wrote logs in through pam_mynaguard.so (pamtester).
# Usage: test-ctl-totp.sh MYNAGUARDCTL PAM_MODULE
set -eu
ctl=$1
module=$2
T=$(mktemp -d /tmp/mg-ctl-totp.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
store=$T/store

# enroll: URI on the first line, store and record created with the right owner and mode
out=$("$ctl" totp enroll alice --store "$store" --issuer "Sample City" --no-qr)
uri=$(printf '%s\n' "$out" | head -n1)
printf '%s\n' "$uri" | grep -Eq '^otpauth://totp/Sample%20City:alice\?secret=[A-Z2-7]{32}&issuer=Sample%20City&algorithm=SHA1&digits=6&period=30$' \
	|| fail "URI shape: $uri"
[ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] || fail "--no-qr printed more than the URI"
secret=$(printf '%s\n' "$uri" | sed 's/.*secret=\([A-Z2-7]*\)&.*/\1/')
[ "$(stat -c '%a %u' "$store")" = "700 $(id -u)" ] || fail "store mode/owner $(stat -c '%a %u' "$store")"
[ "$(stat -c '%a %u' "$store/alice")" = "600 $(id -u)" ] || fail "record mode/owner"
head -n1 "$store/alice" | grep -qx 'mynaguard-totp 1' || fail "record header"
grep -qx "secret $secret" "$store/alice" || fail "record secret differs from the URI"

# two enrollments never share a secret
"$ctl" totp enroll bob --store "$store" --no-qr >"$T/bob.out"
grep -q "secret=$secret" "$T/bob.out" && fail "same secret twice"

# without --no-qr a QR code follows the URI
"$ctl" totp enroll qr --store "$store" >"$T/qr.out"
[ "$(wc -l <"$T/qr.out")" -gt 10 ] || fail "no QR code in the terminal"
head -n1 "$T/qr.out" | grep -q '^otpauth://totp/' || fail "QR output: URI not first"

# re-enrolling asks: no answer (stdin not a yes) keeps the record
before=$(cat "$store/alice")
if "$ctl" totp enroll alice --store "$store" --no-qr </dev/null >/dev/null 2>"$T/err"; then
	fail "overwrote without confirmation"
fi
grep -q 'already enrolled' "$T/err" || fail "no question asked"
[ "$(cat "$store/alice")" = "$before" ] || fail "record changed after refusal"
printf 'y\n' | "$ctl" totp enroll alice --store "$store" --no-qr >/dev/null 2>&1 || fail "answer y refused"
[ "$(cat "$store/alice")" != "$before" ] || fail "answer y did not replace"

# --secret imports (lower case, spaces, padding accepted); --yes answers the question
"$ctl" --yes totp enroll alice --no-qr --secret 'jbsw y3dp ehpk 3pxp jbsw y3dp ehpk 3pxp' --store "$store" >"$T/imp"
grep -q 'secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&' "$T/imp" || fail "import URI"
grep -qx 'secret JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP' "$store/alice" || fail "import record"
if "$ctl" --yes totp enroll alice --no-qr --secret JBSWY3DPEHPK3PXP --store "$store" >/dev/null 2>&1; then
	fail "accepted an 80-bit secret"
fi
if "$ctl" --yes totp enroll alice --no-qr --secret 'NOT*BASE32' --store "$store" >/dev/null 2>&1; then
	fail "accepted a bad secret"
fi
if "$ctl" totp enroll ../evil --store "$store" --no-qr >/dev/null 2>&1; then
	fail "accepted a bad user name"
fi

# --png writes a PNG (mode 0600: it holds the secret)
"$ctl" --yes totp enroll carol --store "$store" --no-qr --png "$T/carol.png" >/dev/null
[ "$(head -c 8 "$T/carol.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "PNG header"
[ "$(stat -c %a "$T/carol.png")" = 600 ] || fail "PNG mode"

# the record it wrote works in the module, and the code is one-time
mkdir "$T/svc"
echo "auth required $module store=$store socket=$T/none.sock" >"$T/svc/mg"
echo "auth required /usr/lib/x86_64-linux-gnu/security/pam_deny.so" >"$T/svc/other"
echo "alice:x:$(id -u):$(id -g):A:/tmp:/bin/sh" >"$T/passwd"
echo "g:x:$(id -g):" >"$T/group"
# An ASan build of the module needs libasan loaded first into pamtester.
asan_lib=$(ldd "$module" | awk '/libasan/ {print $3}')
pam() {
	env LD_PRELOAD="$asan_lib libpam_wrapper.so libnss_wrapper.so" PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$T/svc" \
		UID_WRAPPER_DISABLE_DEEPBIND=1 \
		NSS_WRAPPER_PASSWD="$T/passwd" NSS_WRAPPER_GROUP="$T/group" \
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0:detect_leaks=0" \
		pamtester mg alice authenticate
}
code=$(oathtool --totp -b JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP)
echo "$code" | pam >/dev/null 2>&1 || fail "enrolled record did not log in"
if echo "$code" | pam >/dev/null 2>&1; then fail "code accepted twice"; fi

# status (never the secret), reset keeps last_step, remove keeps the lock file
"$ctl" totp status alice --store "$store" >"$T/st"
grep -qx 'user alice' "$T/st" || fail "status user"
grep -q '^last_used 20' "$T/st" || fail "status last_used"
grep -q JBSWY3DP "$T/st" && fail "status shows the secret"
for i in 1 2 3 4 5; do echo 000000 | pam >/dev/null 2>&1 || true; done
"$ctl" totp status --store "$store" alice | grep -q '^locked until ' || fail "status does not show the lock"
"$ctl" totp reset alice --store "$store" >/dev/null || fail "reset"
"$ctl" totp status alice --store "$store" | grep -qx 'locked no' || fail "reset did not unlock"
"$ctl" totp status alice --store "$store" | grep -qx 'failures 0' || fail "reset failures"
"$ctl" totp status alice --store "$store" | grep -q '^last_used 20' || fail "reset cleared last_step"
echo "$code" | pam >/dev/null 2>&1 && fail "code accepted again after reset"
"$ctl" totp remove alice --store "$store" >/dev/null || fail "remove"
[ ! -e "$store/alice" ] || fail "record still there"
[ -e "$store/.alice.lock" ] || fail "lock file was unlinked"
if "$ctl" totp status alice --store "$store" >/dev/null 2>&1; then fail "status of a removed user"; fi
if "$ctl" totp remove alice --store "$store" >/dev/null 2>&1; then fail "remove twice"; fi
if "$ctl" totp frob alice >/dev/null 2>&1; then fail "unknown subcommand"; fi
"$ctl" totp status 2>/dev/null && fail "status without user"
echo "ok"
