#!/bin/sh
# SPDX-License-Identifier: MIT
# mynaguardctl totp: enroll (URI, 160-bit secret, owner/mode, --secret-file, --png, overwrite
# asks, users that do not exist), status, reset, remove; then a record it wrote logs in through
# pam_mynaguard.so (pamtester). The users come from nss_wrapper, not from this machine.
# Usage: test-ctl-totp.sh MYNAGUARDCTL PAM_MODULE
set -eu
ctlbin=$1
module=$2
T=$(mktemp -d /tmp/mg-ctl-totp.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
store=$T/store
for u in alice bob qr carol dave; do
	echo "$u:x:$(id -u):$(id -g):$u:/tmp:/bin/sh"
done >"$T/passwd"
echo "g:x:$(id -g):" >"$T/group"
# An ASan build needs libasan loaded first.
ctl_asan=$(ldd "$ctlbin" | awk '/libasan/ {print $3}')
ctl() {
	env LD_PRELOAD="$ctl_asan libnss_wrapper.so" NSS_WRAPPER_PASSWD="$T/passwd" \
		NSS_WRAPPER_GROUP="$T/group" \
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0:detect_leaks=0" \
		"$ctlbin" "$@"
}

# enroll: URI on the first line, store and record created with the right owner and mode
out=$(ctl totp enroll alice --store "$store" --issuer "Sample City" --no-qr 2>"$T/enroll.err")
uri=$(printf '%s\n' "$out" | head -n1)
printf '%s\n' "$uri" | grep -Eq '^otpauth://totp/Sample%20City:alice\?secret=[A-Z2-7]{32}&issuer=Sample%20City&algorithm=SHA1&digits=6&period=30$' \
	|| fail "URI shape: $uri"
[ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] || fail "--no-qr printed more than the URI"
secret=$(printf '%s\n' "$uri" | sed 's/.*secret=\([A-Z2-7]*\)&.*/\1/')
[ "$(stat -c '%a %u' "$store")" = "700 $(id -u)" ] || fail "store mode/owner $(stat -c '%a %u' "$store")"
[ "$(stat -c '%a %u' "$store/alice")" = "600 $(id -u)" ] || fail "record mode/owner"
head -n1 "$store/alice" | grep -qx 'mynaguard-totp 2' || fail "record header"
grep -qx 'verified 0' "$store/alice" || fail "a new enrollment is not pending"
grep -q 'mynaguardctl totp verify alice' "$T/enroll.err" || fail "enroll does not say to run verify"
grep -qx "secret $secret" "$store/alice" || fail "record secret differs from the URI"

# two enrollments never share a secret
ctl totp enroll bob --store "$store" --no-qr >"$T/bob.out"
grep -q "secret=$secret" "$T/bob.out" && fail "same secret twice"

# without --no-qr a QR code follows the URI
ctl totp enroll qr --store "$store" >"$T/qr.out"
[ "$(wc -l <"$T/qr.out")" -gt 10 ] || fail "no QR code in the terminal"
head -n1 "$T/qr.out" | grep -q '^otpauth://totp/' || fail "QR output: URI not first"

# re-enrolling asks: no answer (stdin not a yes) keeps the record
before=$(cat "$store/alice")
if ctl totp enroll alice --store "$store" --no-qr </dev/null >/dev/null 2>"$T/err"; then
	fail "overwrote without confirmation"
fi
grep -q 'already enrolled' "$T/err" || fail "no question asked"
[ "$(cat "$store/alice")" = "$before" ] || fail "record changed after refusal"
printf 'y\n' | ctl totp enroll alice --store "$store" --no-qr >/dev/null 2>&1 || fail "answer y refused"
[ "$(cat "$store/alice")" != "$before" ] || fail "answer y did not replace"

# a user the system does not know: a clear error, non-zero, nothing written (not even the store)
if ctl totp enroll ghostuser --store "$T/ghost-store" --no-qr >"$T/out" 2>"$T/err"; then
	fail "enrolled a user that does not exist"
fi
grep -q "no user 'ghostuser'" "$T/err" || fail "ghost user message: $(cat "$T/err")"
[ ! -e "$T/ghost-store" ] || fail "store created for a ghost user"
[ ! -s "$T/out" ] || fail "ghost user: printed a URI"
if ctl totp enroll ghostuser --store "$store" --no-qr >/dev/null 2>&1; then fail "ghost user, existing store"; fi
if [ -e "$store/ghostuser" ] || [ -e "$store/.ghostuser.lock" ]; then fail "ghost user: files written"; fi

# the secret never on the command line: the old spelling fails and says what to use instead
for spelling in "--secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP" "--secret JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP" "--secret -" "--secret"; do
	# shellcheck disable=SC2086 # the spelling is split on purpose
	if ctl --yes totp enroll dave --no-qr --store "$store" $spelling </dev/null >/dev/null 2>"$T/err"; then
		fail "accepted $spelling"
	fi
	grep -q -- '--secret no longer takes the secret on the command line.*--secret-file -.*--secret-file FILE' "$T/err" \
		|| fail "$spelling: message: $(cat "$T/err")"
	[ ! -e "$store/dave" ] || fail "$spelling wrote a record"
done

# --secret-file - reads the first line of stdin (lower case, spaces, padding accepted); --yes
# answers the question
printf 'jbsw y3dp ehpk 3pxp jbsw y3dp ehpk 3pxp====\n' |
	ctl --yes totp enroll alice --no-qr --secret-file - --store "$store" >"$T/imp"
grep -q 'secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&' "$T/imp" || fail "import URI"
grep -qx 'secret JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP' "$store/alice" || fail "import record"
# ... and the question after it is answered from the next line of stdin
printf 'MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U\nn\n' |
	ctl totp enroll alice --no-qr --secret-file - --store "$store" >/dev/null 2>&1 && fail "answer n replaced"
grep -qx 'secret JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP' "$store/alice" || fail "answer n changed the record"
printf 'MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U\r\ny\n' |
	ctl totp enroll bob --no-qr --secret-file - --store "$store" >/dev/null 2>&1 || fail "stdin secret, answer y"
grep -qx 'secret MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U' "$store/bob" || fail "stdin secret (CRLF) + y"
# --secret-file FILE
printf 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n' >"$T/secret"
ctl --yes totp enroll bob --no-qr --secret-file "$T/secret" --store "$store" >/dev/null || fail "--secret-file FILE"
grep -qx 'secret JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP' "$store/bob" || fail "--secret-file record"
if ctl --yes totp enroll dave --no-qr --secret-file "$T/missing" --store "$store" >/dev/null 2>"$T/err"; then
	fail "missing secret file accepted"
fi
grep -q "cannot read the secret from $T/missing" "$T/err" || fail "missing file message"
for bad in JBSWY3DPEHPK3PXP 'NOT*BASE32' '' "$(printf 'A%.0s' $(seq 300))"; do
	if printf '%s\n' "$bad" | ctl --yes totp enroll dave --no-qr --secret-file - --store "$store" >/dev/null 2>"$T/err"; then
		fail "accepted the secret '$bad'"
	fi
	grep -q 'must be base32' "$T/err" || fail "bad secret message: $(cat "$T/err")"
done
[ ! -e "$store/dave" ] || fail "a bad secret wrote a record"
if ctl totp enroll ../evil --store "$store" --no-qr >/dev/null 2>&1; then
	fail "accepted a bad user name"
fi

# --png writes a new PNG, mode 0600 whatever the umask (it holds the secret)
(umask 0 && ctl --yes totp enroll carol --store "$store" --no-qr --png "$T/carol.png" >/dev/null)
[ "$(head -c 8 "$T/carol.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "PNG header"
[ "$(stat -c '%a %u' "$T/carol.png")" = "600 $(id -u)" ] || fail "PNG mode"
# ... and never into a file that exists, whoever made it, nor through a symlink; nothing written
png_refused() { # FILE WHAT
	if ctl --yes totp enroll dave --store "$store" --no-qr --png "$1" >"$T/out" 2>"$T/err"; then
		fail "--png $2 accepted"
	fi
	grep -q "will not write the QR image to $1" "$T/err" || fail "--png $2: message: $(cat "$T/err")"
	[ ! -e "$store/dave" ] || fail "--png $2: record written"
	[ ! -s "$T/out" ] || fail "--png $2: URI printed"
}
echo planted >"$T/planted.png"
chmod 0666 "$T/planted.png"
png_refused "$T/planted.png" "an existing file"
[ "$(cat "$T/planted.png")" = planted ] || fail "existing file written"
[ "$(stat -c %a "$T/planted.png")" = 666 ] || fail "existing file's mode changed"
if id -u nobody >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
	chown nobody "$T/planted.png"
	png_refused "$T/planted.png" "a file of another user"
	[ "$(cat "$T/planted.png")" = planted ] || fail "another user's file written"
fi
ln -s "$T/planted.png" "$T/link.png"
png_refused "$T/link.png" "a symlink to a file"
[ "$(cat "$T/planted.png")" = planted ] || fail "written through a symlink"
ln -s "$T/new-target.png" "$T/dangling.png"
png_refused "$T/dangling.png" "a dangling symlink"
[ ! -e "$T/new-target.png" ] || fail "created a file through a dangling symlink"
png_refused "$T/no-such-dir/x.png" "in a missing directory"
# a refused re-enrollment leaves no image behind
if ctl totp enroll carol --store "$store" --no-qr --png "$T/carol2.png" </dev/null >/dev/null 2>&1; then
	fail "re-enrolled carol without an answer"
fi
[ ! -e "$T/carol2.png" ] || fail "image left after a refused enrollment"

# the record it wrote works in the module, and the code is one-time
mkdir "$T/svc"
echo "auth required $module store=$store socket=$T/none.sock" >"$T/svc/mg"
echo "auth required /usr/lib/x86_64-linux-gnu/security/pam_deny.so" >"$T/svc/other"
# An ASan build of the module needs libasan loaded first into pamtester.
asan_lib=$(ldd "$module" | awk '/libasan/ {print $3}')
pam() {
	env LD_PRELOAD="$asan_lib libpam_wrapper.so libnss_wrapper.so" PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$T/svc" \
		UID_WRAPPER_DISABLE_DEEPBIND=1 \
		NSS_WRAPPER_PASSWD="$T/passwd" NSS_WRAPPER_GROUP="$T/group" \
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0:detect_leaks=0" \
		pamtester mg alice authenticate
}
# Codes of this step and the one before: keep clear of a step boundary.
while [ $(($(date +%s) % 30)) -ge 27 ]; do sleep 1; done
now=$(date +%s)
code=$(oathtool --totp -b JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP --now "@$now")
prev=$(oathtool --totp -b JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP --now "@$((now - 30))")
# pending (not verified): refused at login, status exits 1
if echo "$code" | pam >/dev/null 2>&1; then fail "a pending enrollment logged in"; fi
rc=0
ctl totp status alice --store "$store" >"$T/st" || rc=$?
[ "$rc" -eq 1 ] || fail "status of a pending enrollment exits $rc"
grep -q '^verified no (pending' "$T/st" || fail "status does not say pending"
# verify: a wrong code keeps it pending; the right one makes it count
if echo 000000 | ctl totp verify alice --store "$store" >"$T/out" 2>"$T/err"; then
	fail "verify accepted a wrong code"
fi
grep -q 'wrong code; the enrollment stays pending' "$T/err" || fail "verify wrong: $(cat "$T/err")"
grep -qx 'verified 0' "$store/alice" || fail "a wrong code verified"
echo "$prev" | ctl totp verify alice --store "$store" >"$T/out" 2>"$T/err" || fail "verify: $(cat "$T/err")"
grep -q 'alice: code accepted; the enrollment is verified' "$T/out" || fail "verify output"
grep -qx 'verified 0' "$store/alice" && fail "verify did not record it"
ctl totp status alice --store "$store" >/dev/null || fail "status after verify"
ctl totp verify alice --store "$store" </dev/null | grep -q 'already verified' || fail "verify twice"
echo "$code" | pam >"$T/pamout" 2>&1 || fail "enrolled record did not log in: $(cat "$T/pamout")"
if echo "$code" | pam >/dev/null 2>&1; then fail "code accepted twice"; fi

# status (never the secret), reset keeps last_step, remove keeps the lock file
ctl totp status alice --store "$store" >"$T/st"
grep -qx 'user alice' "$T/st" || fail "status user"
grep -q '^last_used 20' "$T/st" || fail "status last_used"
grep -q JBSWY3DP "$T/st" && fail "status shows the secret"
for _ in 1 2 3 4 5; do echo 000000 | pam >/dev/null 2>&1 || true; done
ctl totp status --store "$store" alice | grep -q '^locked until ' || fail "status does not show the lock"
ctl totp reset alice --store "$store" >/dev/null || fail "reset"
ctl totp status alice --store "$store" | grep -qx 'locked no' || fail "reset did not unlock"
ctl totp status alice --store "$store" | grep -qx 'failures 0' || fail "reset failures"
ctl totp status alice --store "$store" | grep -q '^last_used 20' || fail "reset cleared last_step"
echo "$code" | pam >/dev/null 2>&1 && fail "code accepted again after reset"
ctl totp remove alice --store "$store" >/dev/null || fail "remove"
[ ! -e "$store/alice" ] || fail "record still there"
[ -e "$store/.alice.lock" ] || fail "lock file was unlinked"
if ctl totp status alice --store "$store" >/dev/null 2>&1; then fail "status of a removed user"; fi
if ctl totp remove alice --store "$store" >/dev/null 2>&1; then fail "remove twice"; fi
if ctl totp frob alice >/dev/null 2>&1; then fail "unknown subcommand"; fi
ctl totp status 2>/dev/null && fail "status without user"
echo "ok"
