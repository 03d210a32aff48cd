#!/bin/sh
# SPDX-License-Identifier: MIT
# mynaguardctl totp verify, list [--json] and import: a pending enrollment until a code is typed,
# the list of who is enrolled (type, serial, state, last use, lock), a vendor seed file imported
# all or nothing (a bad line refused with its number and nothing stored), a record of a newer
# version named, and no secret ever in the output (every captured byte is grepped for them).
# The users come from nss_wrapper, not from this machine.
# Usage: test-totp-lifecycle.sh MYNAGUARDCTL
set -eu
ctlbin=$1
T=$(mktemp -d /tmp/mg-totp-life.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
store=$T/store
out=$T/all-output # everything the commands printed, grepped for secrets at the end
: >"$out"
for u in alice bob carol dave erin frank; do
	echo "$u:x:$(id -u):$(id -g):$u:/tmp:/bin/sh"
done >"$T/passwd"
echo "g:x:$(id -g):" >"$T/group"
printf '[terminal]\nid = t-life\n[mfa]\nwindow = 1\nmax_failures = 2\nlockout = 10m\n' >"$T/policy.conf"
ctl_asan=$(ldd "$ctlbin" | awk '/libasan/ {print $3}')
# ctl ARGS...: run it, keep stdout in $T/o and stderr in $T/e, append both to $out, return its
# exit status
ctl() {
	rc=0
	env LD_PRELOAD="$ctl_asan libnss_wrapper.so" NSS_WRAPPER_PASSWD="$T/passwd" \
		NSS_WRAPPER_GROUP="$T/group" \
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0:detect_leaks=0" \
		"$ctlbin" --policy "$T/policy.conf" "$@" >"$T/o" 2>"$T/e" || rc=$?
	cat "$T/o" "$T/e" >>"$out"
	return $rc
}
json() { # json PYTHON-EXPRESSION-ON-j: true or fail
	python3 -c "import json,sys; j=json.load(open('$T/o')); sys.exit(0 if ($1) else 1)"
}
A_B32=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP
B_B32=MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U
C_HEX=3132333435363738393031323334353637383930
D_B32=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA
E_HEX=00112233445566778899aabbccddeeff00112233

# ---- verify ----
echo "$A_B32" | ctl totp enroll alice --store "$store" --secret-file - --no-qr || fail "enroll alice"
grep -q 'mynaguardctl totp verify alice --store' "$T/e" || fail "enroll does not name verify"
ctl totp list --store "$store" || fail "list: $(cat "$T/e")"
grep -Eq '^alice +totp +- +20[0-9-]+T[0-9:]+Z +pending +never +no$' "$T/o" || fail "list pending: $(cat "$T/o")"
# a wrong code: still pending; no code at all: still pending
echo 123456 | ctl totp verify alice --store "$store" && fail "verify took a wrong code"
grep -q 'wrong code; the enrollment stays pending' "$T/e" || fail "wrong code message: $(cat "$T/e")"
ctl totp verify alice --store "$store" </dev/null && fail "verify without a code"
grep -q 'alice stays pending' "$T/e" || fail "no code message: $(cat "$T/e")"
ctl totp status alice --store "$store" && fail "status 0 while pending"
# the right code ("123 456" spacing allowed)
while [ $(($(date +%s) % 30)) -ge 28 ]; do sleep 1; done
code=$(oathtool --totp -b "$A_B32")
printf '%s %s\n' "$(echo "$code" | cut -c1-3)" "$(echo "$code" | cut -c4-6)" |
	ctl totp verify alice --store "$store" || fail "verify: $(cat "$T/e")"
grep -q '^alice: code accepted; the enrollment is verified' "$T/o" || fail "verify output"
ctl totp status alice --store "$store" || fail "status after verify"
grep -q '^verified 20' "$T/o" || fail "status verified line"
# the code just used is used up
echo "$code" | ctl totp verify alice --store "$store" || fail "verify again"
grep -q 'already verified' "$T/o" || fail "verify twice"
ctl totp verify nobody --store "$store" </dev/null && fail "verify a user without a record"
grep -q 'nobody: not enrolled' "$T/e" || fail "verify unenrolled: $(cat "$T/e")"

# wrong codes at verify count towards the lock (max_failures 2 in this policy)
echo "$B_B32" | ctl totp enroll bob --store "$store" --secret-file - --no-qr || fail "enroll bob"
echo 000000 | ctl totp verify bob --store "$store" && fail "bob wrong 1"
echo 000000 | ctl totp verify bob --store "$store" && fail "bob wrong 2"
oathtool --totp -b "$B_B32" | ctl totp verify bob --store "$store" && fail "verify while locked"
grep -q 'bob is locked until 20.*mynaguardctl totp reset bob' "$T/e" || fail "locked verify: $(cat "$T/e")"

# ---- list ----
ctl totp list --store "$store" || fail "list"
grep -Eq '^alice +totp +- +20[0-9-]+T[0-9:]+Z +verified +20[0-9-]+T[0-9:]+Z +no$' "$T/o" || fail "list alice: $(cat "$T/o")"
grep -Eq '^bob +totp +- +20[0-9-]+T[0-9:]+Z +pending +never +until 20[0-9-]+T[0-9:]+Z$' "$T/o" || fail "list bob: $(cat "$T/o")"
ctl totp list --json --store "$store" || fail "list --json"
json "j['store'] == '$store' and [r['user'] for r in j['records']] == ['alice', 'bob']" || fail "json users: $(cat "$T/o")"
json "j['records'][0]['state'] == 'verified' and j['records'][0]['type'] == 'totp' and j['records'][0]['serial'] is None and j['records'][0]['locked'] is False and j['records'][0]['locked_until'] is None and j['records'][0]['last_used'].endswith('Z') and j['records'][0]['verified'].endswith('Z')" || fail "json alice: $(cat "$T/o")"
json "j['records'][1]['state'] == 'pending' and j['records'][1]['verified'] is None and j['records'][1]['last_used'] is None and j['records'][1]['locked'] is True and j['records'][1]['failures'] == 2 and j['records'][1]['locked_until'].endswith('Z')" || fail "json bob: $(cat "$T/o")"
ctl totp reset bob --store "$store" >/dev/null || fail "reset bob"
ctl totp list --json --store "$store" || fail "list after reset"
json "j['records'][1]['locked'] is False" || fail "reset did not show in the list"
# an empty store, a missing one
mkdir -m 0700 "$T/empty"
ctl totp list --store "$T/empty" || fail "list of an empty store"
grep -q 'nobody is enrolled' "$T/o" || fail "empty list"
ctl totp list --json --store "$T/empty" && json "j['records'] == []" || fail "empty json"
ctl totp list --store "$T/missing" && fail "list of a missing store"

# ---- import (the file starts with a byte order mark, as a spreadsheet writes it) ----
seeds=$T/seeds.csv
printf '\357\273\277# vendor: Example Tokens, batch 7\ncarol,TK-0001,%s\r\n\ndave,TK-0002,%s,8,60\n' "$C_HEX" "$D_B32" >"$seeds"
chmod 0600 "$seeds"
ctl totp import "$seeds" --store "$store" || fail "import: $(cat "$T/e")"
grep -q 'readable' "$T/e" && fail "warned about a 0600 file"
grep -q '^carol: hardware token TK-0001 imported (pending' "$T/o" || fail "import output: $(cat "$T/o")"
grep -q 'then delete .*seeds.csv' "$T/e" || fail "import does not say to delete the file"
[ "$(stat -c '%a' "$store/carol")" = 600 ] || fail "imported record mode"
head -n5 "$store/dave" | tr '\n' ' ' | grep -q '^mynaguard-totp 2 type hardware serial TK-0002 enrolled [0-9]* verified 0 $' || fail "dave's record: $(head -n5 "$store/dave")"
grep -qx 'digits 8' "$store/dave" && grep -qx 'period 60' "$store/dave" || fail "dave's digits/period"
ctl totp list --json --store "$store" || fail "list after import"
json "[(r['user'], r['type'], r['serial'], r['state']) for r in j['records']][2:] == [('carol', 'hardware', 'TK-0001', 'pending'), ('dave', 'hardware', 'TK-0002', 'pending')]" || fail "json after import: $(cat "$T/o")"
# the tokens' codes verify them (hex seed; 8 digits every 60 s)
oathtool --totp "$C_HEX" | ctl totp verify carol --store "$store" || fail "verify carol: $(cat "$T/e")"
while [ $(($(date +%s) % 60)) -ge 58 ]; do sleep 1; done
oathtool --totp -d 8 -s 60 -b "$D_B32" | ctl totp verify dave --store "$store" || fail "verify dave: $(cat "$T/e")"

# a bad line: refused with its number, nothing stored (erin on line 1 is fine)
before=$(ls -a "$store" | tr '\n' ' ')
printf 'erin,TK-0005,%s\nfrank,TK-0006,%s,9\nfrank,TK-0006,ZZZ*\n' "$E_HEX" "$E_HEX" >"$T/bad.csv"
chmod 0600 "$T/bad.csv"
ctl totp import "$T/bad.csv" --store "$store" && fail "imported a bad file"
grep -q "bad.csv:2: digits must be 6, 7 or 8" "$T/e" || fail "bad line 2: $(cat "$T/e")"
grep -q "bad.csv:3: .*neither hex nor base32" "$T/e" || fail "bad line 3: $(cat "$T/e")"
grep -q "bad.csv:3: user frank already on line 2" "$T/e" && fail "a bad line 2 counted as an entry"
grep -q 'nothing imported' "$T/e" || fail "bad file: nothing imported not said"
[ "$(ls -a "$store" | tr '\n' ' ')" = "$before" ] || fail "a refused file changed the store"
# duplicates, a user the system does not know, a user already enrolled: all refused, nothing stored
printf 'erin,TK-0005,%s\nerin,TK-0006,%s\n' "$E_HEX" "$E_HEX" >"$T/dup.csv"
ctl totp import "$T/dup.csv" --store "$store" && fail "duplicate user"
grep -q "dup.csv:2: user erin already on line 1" "$T/e" || fail "duplicate message: $(cat "$T/e")"
printf 'erin,TK-0005,%s\nghost,TK-0007,%s\n' "$E_HEX" "$E_HEX" >"$T/ghost.csv"
ctl totp import "$T/ghost.csv" --store "$store" && fail "unknown user imported"
grep -q "ghost.csv:2: no user 'ghost' on this system" "$T/e" || fail "ghost message: $(cat "$T/e")"
printf 'erin,TK-0005,%s\ncarol,TK-0008,%s\n' "$E_HEX" "$E_HEX" >"$T/again.csv"
ctl totp import "$T/again.csv" --store "$store" && fail "re-imported an enrolled user"
grep -q "again.csv:2: carol is already enrolled" "$T/e" || fail "enrolled message: $(cat "$T/e")"
[ "$(ls -a "$store" | tr '\n' ' ')" = "$before" ] || fail "a refused import changed the store"
# an empty file; a file others may read is imported with a warning
printf '# nothing\n' >"$T/none.csv"
ctl totp import "$T/none.csv" --store "$store" && fail "empty file"
grep -q 'no entries' "$T/e" || fail "empty file message"
printf 'erin,TK-0005,%s\n' "$E_HEX" >"$T/open.csv"
chmod 0644 "$T/open.csv"
ctl totp import "$T/open.csv" --store "$store" || fail "import of a 0644 file"
grep -q 'open.csv is readable or writable by group or others (mode 0644)' "$T/e" || fail "no warning: $(cat "$T/e")"
ctl totp import --store "$store" && fail "import without FILE"
ctl totp import "$T/missing.csv" --store "$store" && fail "missing file"

# ---- a version 1 record (written before verification existed): verified, listed ----
python3 - "$store/frank" <<'PY'
import os, sys, zlib
def slot(i, seq, last):
    l = "state%d %020d %020d %04d %020d " % (i, seq, last, 0, 0)
    return l + "%08x\n" % zlib.crc32(l[:-1].encode())
with open(sys.argv[1], "w") as f:
    f.write("mynaguard-totp 1\nsecret JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\ndigits 6\nperiod 30\n"
            "enrolled 1700000000\n" + slot(0, 2, 58949040) + slot(1, 1, 0))
os.chmod(sys.argv[1], 0o600)
PY
ctl totp list --json --store "$store" || fail "list with a version 1 record"
json "[(r['type'], r['state'], r['enrolled'], r['verified'], r['last_used']) for r in j['records'] if r['user'] == 'frank'] == [('totp', 'verified', '2023-11-14T22:13:20Z', '2023-11-14T22:13:20Z', '2026-01-15T10:00:00Z')]" || fail "json v1: $(cat "$T/o")"
ctl totp status frank --store "$store" || fail "status of a version 1 record"
ctl totp verify frank --store "$store" </dev/null || fail "verify of a version 1 record"
grep -q 'already verified' "$T/o" || fail "a version 1 record is not verified"
head -n1 "$store/frank" | grep -qx 'mynaguard-totp 1' || fail "the version 1 record was rewritten"

# ---- a record of a version this build does not know ----
printf 'mynaguard-totp 3\nwhatever\n' >"$store/frank"
chmod 0600 "$store/frank"
ctl totp list --store "$store" && fail "list exit 0 with an unreadable record"
grep -q '^frank .*unreadable: record was written by a newer mynaguard.*upgrade' "$T/o" || fail "list newer: $(cat "$T/o")"
ctl totp list --json --store "$store" && fail "json exit 0 with an unreadable record"
json "[r for r in j['records'] if r['user'] == 'frank'][0]['error'].startswith('was written by a newer')" || fail "json newer"
ctl totp status frank --store "$store" && fail "status of a newer record"
grep -q 'written by a newer mynaguard' "$T/e" || fail "status newer: $(cat "$T/e")"
ctl totp verify frank --store "$store" </dev/null && fail "verify of a newer record"
grep -q 'written by a newer mynaguard' "$T/e" || fail "verify newer: $(cat "$T/e")"
rm "$store/frank"

# ---- no secret, in any spelling, in anything printed ----
lower_b32() { echo "$1" | tr 'A-Z' 'a-z'; }
upper_hex() { echo "$1" | tr 'a-f' 'A-F'; }
b32_of_hex() { python3 -c "import base64,sys; print(base64.b32encode(bytes.fromhex(sys.argv[1])).decode().rstrip('='))" "$1"; }
for s in "$C_HEX" "$D_B32" "$E_HEX" "$(upper_hex "$C_HEX")" "$(upper_hex "$E_HEX")" \
	"$(lower_b32 "$D_B32")" "$(b32_of_hex "$C_HEX")" "$(b32_of_hex "$E_HEX")"; do
	grep -qi -- "$s" "$out" && fail "a secret ($s) was printed"
	# and no long piece of it either
	piece=$(echo "$s" | cut -c1-16)
	grep -qi -- "$piece" "$out" && fail "a piece of a secret ($piece) was printed"
done
# alice's and bob's secrets were printed once, on purpose: by enroll, in the URI for the QR code
[ "$(grep -c "$A_B32" "$out")" -eq 1 ] || fail "alice's secret printed outside the enrollment URI"
[ "$(grep -c "$B_B32" "$out")" -eq 1 ] || fail "bob's secret printed outside the enrollment URI"
echo ok
