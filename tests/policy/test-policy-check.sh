#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs the built mynaguardctl on the shipped policy and on broken files:
# exit 0 + summary, exit 1 + exact "FILE:LINE: message" lines on stderr, exit 2 on usage errors.
# Usage: test-policy-check.sh MYNAGUARDCTL SHIPPED_POLICY [MAN_PAGE]
set -eu

ctl=$1
shipped=$2
manpage=${3:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

# run EXPECTED_RC ARGS...: runs mynaguardctl, keeps stdout/stderr in $tmp/out, $tmp/err.
run() {
	want=$1
	shift
	rc=0
	"$ctl" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
	if [ "$rc" -ne "$want" ]; then
		fail "mynaguardctl $*: exit $rc, expected $want"
		sed 's/^/  stdout: /' "$tmp/out" >&2
		sed 's/^/  stderr: /' "$tmp/err" >&2
	fi
}

expect_out() {
	grep -qF -- "$1" "$tmp/out" || fail "stdout lacks: $1"
}

expect_empty() {
	[ ! -s "$tmp/$1" ] || {
		fail "$1 not empty:"
		sed 's/^/  /' "$tmp/$1" >&2
	}
}

expect_err_exact() {
	if ! diff -u "$1" "$tmp/err" >&2; then
		fail "stderr differs from the expected lines"
	fi
}

# 1. The shipped policy is valid and explained.
run 0 --policy "$shipped" policy check
expect_empty err
expect_out "$shipped: valid."
expect_out "Terminal: CHANGE-ME-terminal-0001"
expect_out "(still the shipped placeholder: give each terminal its own id)"
expect_out "USB (mode enforce)"
expect_out "- mass_storage (08): USB sticks, external disks and memory-card readers"
expect_out "- mtp: phones and media players in MTP mode"
expect_out "- cdc_net (02, 0a)"
expect_out "Never blocked: hubs (09), keyboards and mice (HID, 03) and smart-card readers"
expect_out "Allow-list: empty; no device is exempt."
expect_out "- vendor_net (ff:ff:00): vendor-class USB network adapters (Realtek RTL8153, ASIX AX88179)"
expect_out "- usbmux (ff:fe:02): iPhone and iPad file access and sync (Apple usbmux)"
expect_out "- adb (ff:42:01): Android debugging"
expect_out "- vendor_specific (ff): every other vendor-specific function"
expect_out "Card and NFC readers (4; their vendor-specific functions are allowed, MTP is not):"
expect_out "- line 47: 054c:06c1 (Sony PaSoRi RC-S380/S)"
expect_out "054c:0dc9 (Sony PaSoRi RC-S300/P)"
grep -q "No reader is listed" "$tmp/out" && fail "shipped policy: warns of no reader"
grep -qx "  for: login, gdm-password, sshd." "$tmp/out" || fail "no line '  for: SERVICES.' (install.sh reads it)"
expect_out "After 5 wrong codes in a row the second factor is locked for 15 minutes."
expect_out "Users without an enrolled authenticator cannot log in (nullok = no)."
expect_out "Reports: no collector set"
expect_out "usb.default_deny           on  2-6-3-a, 2-3-2"
expect_out "net.isolation              off 2-6-3-a"

# 1b. Blocking every vendor-specific function without a reader says what stops working.
printf '[terminal]\nid = t\n[usb]\nblock = mass_storage, ff\n' >"$tmp/noreader.conf"
run 0 --policy "$tmp/noreader.conf" policy check
expect_out "No reader is listed: NFC card readers of the vendor-specific class (e.g. Sony PaSoRi)"
printf '[terminal]\nid = t\n[usb]\nreader = 054c:06c1\nreader = 054c:06c1 name=again\n' >"$tmp/dupreader.conf"
run 1 --policy "$tmp/dupreader.conf" policy check
printf '%s\n' "$tmp/dupreader.conf:5: [usb] reader: same device as the reader entry on line 4" >"$tmp/want"
expect_err_exact "$tmp/want"

# 1c. An installed fleet policy (a base with the id put in) and a contact.
printf '[terminal]\nid = fukushi-01\ncontact = 情報政策課 内線 1234\n[fleet]\ngroup = fukushi\nversion = 7\nissued = 2026-12-01T09:00:00Z\nterminals = fukushi-*\ngrant_key = AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\ngrant_classes = mass_storage\n' >"$tmp/fleet.conf"
run 0 --policy "$tmp/fleet.conf" policy check
expect_out "  Contact (shown when a device is blocked or an account locked): 情報政策課 内線 1234"
expect_out "  Managed by the fleet: group fukushi, base version 7; exceptions may open mass_storage (at most 366 days)"

# 2. A policy with allow entries, a collector, audit mode.
cat >"$tmp/audit.conf" <<'CONF'
[terminal]
id = kuyakusho-1F-03
description = 市民課 窓口 3
[usb]
mode = audit
block = mass_storage, 0xe0:01:03
allow = 0781:5581 serial=4C530001 name=総務課 USB 1
allow = 090c:1000
[mfa]
services = login
window = 2
lockout = 1h
nullok = yes
[report]
collector = https://collector.example.lg.jp:8443
interval = 5m
spool_max = 1G
CONF
run 0 --policy "$tmp/audit.conf" policy check
expect_empty err
expect_out "Terminal: kuyakusho-1F-03"
grep -q "placeholder" "$tmp/out" && fail "a real id is called a placeholder"
expect_out "市民課 窓口 3"
expect_out "USB (mode audit): nothing is blocked."
expect_out "- class e0:01:03"
expect_out "Allow-list (2 devices; their blocked functions are allowed):"
expect_out "- line 7: 0781:5581, serial 4C530001 (総務課 USB 1)"
expect_out "- line 8: 090c:1000, any serial"
expect_out "2 steps"
grep -qx "  for: login." "$tmp/out" || fail "no line '  for: login.'"
expect_out "locked for 1 hour."
expect_out "nullok = yes: users WITHOUT an enrolled authenticator log in with the password alone."
expect_out "every 5 minutes go to https://collector.example.lg.jp:8443"
expect_out "The spool keeps at most 1 GiB"

# 3. A broken policy: every error, with its line, on stderr; nothing on stdout.
cat >"$tmp/broken.conf" <<'CONF'
; broken on purpose
[terminal]
id = two words
[usb]
mode = strict
block = mass_storage, hid
mode = audit
  continued
[network]
x = 1
[mfa]
lockout = forever
window = 99
junk
[report]
collector = http://collector.example.lg.jp
CONF
cat >"$tmp/want" <<WANT
$tmp/broken.conf:3: [terminal] id: bad value "two words": expected 1 to 64 letters, digits, '.', '_' or '-'
$tmp/broken.conf:5: [usb] mode: bad value "strict": expected enforce or audit
$tmp/broken.conf:6: [usb] block: "hid": class 03 (hid) cannot be blocked: hubs, keyboards, mice and My Number card readers must keep working
$tmp/broken.conf:7: [usb] mode: duplicate key (first set on line 5): it may appear only once
$tmp/broken.conf:8: line starts with white space: continuation lines are not supported; write KEY = VALUE on one line, starting at the first column
$tmp/broken.conf:9: unknown section [network]: expected [terminal], [usb], [mfa], [report], [checks] or [fleet]
$tmp/broken.conf:12: [mfa] lockout: bad value "forever": expected a duration like 900, 15m or 1h, from 1m to 1d
$tmp/broken.conf:13: [mfa] window: bad value "99": expected a whole number from 0 to 10
$tmp/broken.conf:14: expected KEY = VALUE, a [section] line, or a comment starting with ';' or '#'
$tmp/broken.conf:16: [report] collector: bad value "http://collector.example.lg.jp": expected an https:// URL like https://collector.example.jp:8443
WANT
run 1 --policy "$tmp/broken.conf" policy check
expect_empty out
expect_err_exact "$tmp/want"

# 4. Missing id: an error about the whole file (no line number).
printf '[usb]\nmode = audit\n' >"$tmp/noid.conf"
printf "%s: [terminal] id is missing: every policy must name its terminal (id = 1 to 64 letters, digits, '.', '_' or '-')\n" \
	"$tmp/noid.conf" >"$tmp/want"
run 1 --policy "$tmp/noid.conf" policy check
expect_err_exact "$tmp/want"

# 5. Over-long line.
{
	printf '[terminal]\nid = t\ndescription = '
	head -c 1100 /dev/zero | tr '\0' x
	printf '\n'
} >"$tmp/long.conf"
printf '%s:3: line too long (1114 bytes): at most 1024\n' "$tmp/long.conf" >"$tmp/want"
run 1 --policy "$tmp/long.conf" policy check
expect_err_exact "$tmp/want"

# 6. Unreadable file.
printf '%s: cannot read the policy: No such file or directory\n' "$tmp/nope.conf" >"$tmp/want"
run 1 --policy "$tmp/nope.conf" policy check
expect_empty out
expect_err_exact "$tmp/want"

# 7. More errors than are kept: the rest are counted.
{
	printf '[terminal]\nid = t\n'
	i=0
	while [ $i -lt 105 ]; do
		echo "junk$i"
		i=$((i + 1))
	done
} >"$tmp/many.conf"
run 1 --policy "$tmp/many.conf" policy check
[ "$(wc -l <"$tmp/err")" -eq 101 ] || fail "many errors: expected 101 lines on stderr"
grep -qxF "$tmp/many.conf:3: expected KEY = VALUE, a [section] line, or a comment starting with ';' or '#'" "$tmp/err" ||
	fail "many errors: first error missing"
tail -n 1 "$tmp/err" | grep -qxF "$tmp/many.conf: ... and 5 more errors" || fail "many errors: no count of the rest"

# 8. Usage errors exit 2.
run 2 --policy "$shipped" policy
run 2 --policy "$shipped" policy frobnicate
run 2 --policy "$shipped" policy check extra
run 2 --policy "$shipped" policy check --bogus
run 0 policy --help
expect_out "Usage: mynaguardctl [--policy FILE] policy check"

# 9. Every key the parser knows is documented in mynaguard-policy.conf(5). The parser names the
#    keys of a section when it meets an unknown one.
if [ -n "$manpage" ]; then
	for sec in terminal usb mfa report checks checks. fleet; do
		key=zzz
		[ "$sec" = checks. ] && key=zz.z
		printf '[terminal]\nid = t\n[%s]\n%s = 1\n' "${sec%.}" "$key" >"$tmp/keys.conf"
		run 1 --policy "$tmp/keys.conf" policy check
		keys=$(sed -n 's/.*unknown key "[^"]*": expected \(a check id: \)\{0,1\}//p' "$tmp/err" |
			sed 's/ or a check id like .*//; s/ or /, /' | tr -d ',')
		[ -n "$keys" ] || fail "[$sec]: no key list in: $(cat "$tmp/err")"
		for k in $keys; do
			grep -qE "^\.B[IR]? \"?$k = " "$manpage" || fail "[$sec] $k is not in $manpage"
		done
	done
fi

if [ "$failures" -gt 0 ]; then
	echo "$failures check(s) failed" >&2
	exit 1
fi
echo "policy check: all cases passed"
