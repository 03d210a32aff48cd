#!/bin/bash
# SPDX-License-Identifier: MIT
# README command 1 as a test: scripts/demo.sh --once --no-setup --no-build against this build.
# Checks what it shows (login accepted, replay and wrong code refused, stick blocked, keyboard
# allowed, events delivered, dashboard summary) and that the host's PAM, udev and systemd
# configuration is untouched.  Usage: test-demo.sh SOURCE_ROOT BUILD_ROOT
set -euo pipefail
SRC=$(cd "$1" && pwd)
BUILD=$(cd "$2" && pwd)
for b in agent/mynaguardd uplink/mynaguard-uplink ctl/mynaguardctl collector/mynaguard-collector pam_module/pam_mynaguard.so; do
	[ -f "$BUILD/$b" ] || { echo "1..0 # SKIP $b not built"; exit 77; }
done
for t in umockdev-wrapper pamtester oathtool curl; do
	command -v "$t" >/dev/null || { echo "1..0 # SKIP $t missing"; exit 77; }
done
host_state() {
	for d in /etc/pam.d /etc/udev/rules.d /etc/systemd/system /usr/share/pam-configs; do
		[ -d "$d" ] && find "$d" -printf '%p %y %m %U %G %l\n' | sort
		[ -d "$d" ] && find "$d" -type f -print0 | sort -z | xargs -0 -r sha256sum
	done
	true
}
before=$(host_state)
out=$(mktemp /tmp/mg-demo-test.XXXXXX)
trap 'rm -f "$out"' EXIT
rc=0
timeout 110 "$SRC/scripts/demo.sh" --once --no-setup --no-build --build-dir "$BUILD" >"$out" 2>&1 || rc=$?
n=0
fails=0
has() {
	n=$((n + 1))
	if grep -q -E -- "$2" "$out"; then echo "ok $n - $1"; else fails=$((fails + 1)); echo "not ok $n - $1 (no /$2/)"; fi
}
n=$((n + 1))
if [ "$rc" -eq 0 ]; then echo "ok $n - demo.sh --once exits 0"; else fails=$((fails + 1)); echo "not ok $n - demo.sh --once exited $rc"; fi
has "numbered steps 1 to 9" '^9\. The dashboard'
has "the dashboard refuses a request without the token" 'answers HTTP 401'
has "login with password + fresh code accepted" 'password \+ code [0-9]{6} +-> .*successfully authenticated'
has "the same code again is refused" 'the same code again +-> .*(already used|Authentication failure)'
has "a wrong code is refused" 'a wrong code [0-9]{6} +-> .*Authentication failure'
has "the stick is blocked by the agent" 'mynaguardd: +usb\.blocked port=1-1 .*class=08'
has "the stick's interface stays unauthorized" 'stick interface authorized=0 \(blocked\)'
has "the keyboard is allowed" 'keyboard interface authorized=1 \(allowed\)'
has "the uplink delivered and the collector acknowledged" 'uplink\.sent events=[0-9]+ .*acked_through=[0-9]+'
has "dashboard summary: one blocked USB device, one failed login" 'blocked USB devices \(24 h\): 1 +failed logins \(24 h\): 1'
has "event list shows the login, the block and the keyboard" 'auth\.success +clerk logged in'
has "event list shows usb.blocked" 'usb\.blocked +0781:5581'
has "event list shows usb.allowed" 'usb\.allowed +046d:c31c'
has "the compliance report reached the dashboard" '^ *\| +2 .*compliance +7 checks'
n=$((n + 1))
if ! grep -q 'failing agent.integrity' "$out"; then echo "ok $n - agent.integrity passes with the demo's manifest"; else
	fails=$((fails + 1)); echo "not ok $n - agent.integrity fails"; fi
n=$((n + 1))
if [ "$before" = "$(host_state)" ]; then echo "ok $n - host PAM, udev, systemd configuration unchanged"; else
	fails=$((fails + 1)); echo "not ok $n - the demo changed the host's configuration"; fi
if [ "$fails" -ne 0 ]; then
	echo "---- demo output"
	cat "$out"
fi
echo "1..$n"
[ "$fails" -eq 0 ]
