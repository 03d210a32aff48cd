#!/bin/bash
# SPDX-License-Identifier: MIT
# demo.sh: the whole system on one machine, in a temporary directory: a collector with a fresh
# CA, the agent on a simulated USB bus, a clerk's login through the real PAM module, the uplink,
# the dashboard. Changes nothing on the host's PAM, udev or services. README command 1.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)

ONCE=0
SETUP=1
BUILD=1
BUILD_DIR=build
KEEP=0
usage() {
	cat <<'EOF'
Usage: scripts/demo.sh [--once] [--no-setup] [--no-build] [--build-dir DIR] [--keep]

Installs the packages it needs (scripts/setup-deps.sh), builds into build/, then shows the
whole system working in a temporary directory, step by step, and leaves the dashboard running
until Ctrl-C.
  --once          exit after the summary instead of leaving the dashboard running
  --no-setup      do not install packages (they are there already)
  --no-build      do not run meson; use the binaries already in the build directory
  --build-dir DIR the build directory (default: build)
  --keep          keep the temporary directory (its path is printed)
Nothing outside the temporary directory is changed: no PAM, udev or systemd configuration,
no real USB device; the network is 127.0.0.1 only.
EOF
}
while [ $# -gt 0 ]; do
	case $1 in
	--once) ONCE=1; shift ;;
	--no-setup) SETUP=0; shift ;;
	--no-build) BUILD=0; shift ;;
	--build-dir) BUILD_DIR=${2:?--build-dir needs a directory}; shift 2 ;;
	--keep) KEEP=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "demo: unknown option $1" >&2; usage >&2; exit 2 ;;
	esac
done

STEP=0
step() {
	STEP=$((STEP + 1))
	if [ -t 1 ]; then
		printf '\n\033[1m%d. %s\033[0m\n' "$STEP" "$*"
	else
		printf '\n%d. %s\n' "$STEP" "$*"
	fi
}
info() { printf '   %s\n' "$*"; }
show() { sed 's/^/   | /'; }
die() {
	echo "demo: FAILED: $*" >&2
	exit 1
}

# ---- 1. packages and build -------------------------------------------------------------------
step "Packages and build"
if [ "$SETUP" -eq 1 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		die "run as root (sudo ./scripts/demo.sh) so that missing packages can be installed, or use --no-setup"
	fi
	MYNAGUARD_NO_BROWSER=1 scripts/setup-deps.sh | tail -1 | show
else
	info "skipped package installation (--no-setup)"
fi
if [ "$BUILD" -eq 1 ]; then
	[ -f "$BUILD_DIR/build.ninja" ] || meson setup "$BUILD_DIR" >/dev/null
	meson compile -C "$BUILD_DIR" >"${TMPDIR:-/tmp}/mynaguard-demo-build.log" 2>&1 ||
		{ tail -30 "${TMPDIR:-/tmp}/mynaguard-demo-build.log" >&2; die "build failed"; }
	info "built into $BUILD_DIR/ (meson compile)"
else
	info "using the binaries in $BUILD_DIR/ (--no-build)"
fi
B=$(cd "$BUILD_DIR" && pwd)
AGENT=$B/agent/mynaguardd
UPLINK=$B/uplink/mynaguard-uplink
CTL=$B/ctl/mynaguardctl
COLLECTOR=$B/collector/mynaguard-collector
PAMMOD=$B/pam_module/pam_mynaguard.so
for f in "$AGENT" "$UPLINK" "$CTL" "$COLLECTOR" "$PAMMOD"; do
	[ -f "$f" ] || die "$f is missing (build first, or drop --no-build)"
done
PY=/usr/bin/python3
MULTIARCH=$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
PAM_WRAPPER_LIB=$(ls /usr/lib/"$MULTIARCH"/libpam_wrapper.so* 2>/dev/null | head -1)
NSS_WRAPPER_LIB=$(ls /usr/lib/"$MULTIARCH"/libnss_wrapper.so* 2>/dev/null | head -1)
PAM_MATRIX=/usr/lib/$MULTIARCH/pam_wrapper/pam_matrix.so
for t in umockdev-wrapper pamtester oathtool openssl curl; do
	command -v "$t" >/dev/null || die "the $t command is missing (run without --no-setup)"
done
[ -n "$PAM_WRAPPER_LIB" ] && [ -n "$NSS_WRAPPER_LIB" ] && [ -f "$PAM_MATRIX" ] ||
	die "pam_wrapper/nss_wrapper are missing (apt-get install libpam-wrapper libnss-wrapper)"

# ---- the temporary directory and cleanup ------------------------------------------------------
W=$(mktemp -d "${TMPDIR:-/tmp}/mynaguard-demo.XXXXXX")
chmod 0755 "$W"
PIDS=()
cleanup() {
	local p
	trap - EXIT INT TERM
	[ -z "${USBCMD_OPEN:-}" ] || echo quit >&9 2>/dev/null || true
	sleep 0.3
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ "$KEEP" -eq 1 ]; then
		echo "demo: kept $W"
	else
		rm -rf "$W"
	fi
}
trap cleanup EXIT
trap 'echo; echo "demo: stopping"; exit 0' INT TERM

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...: poll every 0.1 s
	local n=$(($1 * 10)) what=$2
	shift 2
	while ! "$@" >/dev/null 2>&1; do
		n=$((n - 1))
		[ "$n" -gt 0 ] || die "timed out waiting for $what"
		sleep 0.1
	done
}
TERMINAL=demo-terminal-01
INGEST_PORT=$(free_port)
DASH_PORT=$(free_port)
while [ "$DASH_PORT" = "$INGEST_PORT" ]; do DASH_PORT=$(free_port); done

# ---- 2. the city CA -------------------------------------------------------------------------
step "A fresh certificate authority for the city (mynaguard-ca)"
CA="$SRC/installer/mynaguard-ca --dir $W/ca"
$CA init --name "Demo City mynaguard CA" | sed -n 1p | show
mkdir -p "$W/collector" "$W/terminal"
$CA server localhost 127.0.0.1 --out "$W/collector" | sed -n 1p | show
$CA issue "$TERMINAL" --out "$W/terminal" | sed -n 1p | show
$CA token --out "$W/collector/dashboard.token" | show
TOKEN=$(cat "$W/collector/dashboard.token")

# ---- 3. the collector -----------------------------------------------------------------------
step "The collector: mutual-TLS ingest on 127.0.0.1:$INGEST_PORT, dashboard on 127.0.0.1:$DASH_PORT"
cat >"$W/collector/collector.conf" <<EOF
[ingest]
listen = 127.0.0.1:$INGEST_PORT
certificate = $W/collector/server.pem
key = $W/collector/server.key
client_ca = $W/ca/ca.pem
revoked_serials = $W/ca/revoked-serials

[dashboard]
listen = 127.0.0.1:$DASH_PORT
token_file = $W/collector/dashboard.token

[store]
database = $W/collector/collector.db
EOF
"$COLLECTOR" --config "$W/collector/collector.conf" --check >/dev/null ||
	{ "$COLLECTOR" --config "$W/collector/collector.conf" --check >&2 || true; die "collector configuration"; }
"$COLLECTOR" --config "$W/collector/collector.conf" >"$W/collector.log" 2>&1 &
PIDS+=($!)
DASH=https://127.0.0.1:$DASH_PORT
api() { curl -sS --fail --max-time 5 --cacert "$W/ca/ca.pem" -H "Authorization: Bearer $TOKEN" "$DASH$1"; }
wait_for 20 "the collector's dashboard" api /v1/terminals
info "mynaguard-collector is running (database $W/collector/collector.db)"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$W/ca/ca.pem" "$DASH/v1/terminals" || true)
info "without the token the dashboard API answers HTTP $code"

# ---- 4. the terminal's policy -----------------------------------------------------------------
step "The terminal's policy: the shipped strict default, with this demo's id, collector and paths"
mkdir -p "$W/spool" "$W/state" "$W/totp" "$W/run"
chmod 0700 "$W/totp"
sed -e "s|^id = CHANGE-ME-terminal-0001\$|id = $TERMINAL|" \
	-e "s|^;* *collector = https://mynaguard-collector.example.lg.jp:8443\$|collector = https://127.0.0.1:$INGEST_PORT|" \
	-e "s|^ca = .*|ca = $W/ca/ca.pem|" \
	-e "s|^cert = .*|cert = $W/terminal/$TERMINAL.pem|" \
	-e "s|^key = .*|key = $W/terminal/$TERMINAL.key|" \
	-e "s|^interval = .*|interval = 1m|" \
	-e "s|^services = .*|services = demo-login|" \
	policy/policy.conf >"$W/policy.conf"
# What the installer records for agent.integrity (the udev rule and units are not installed here).
(cd / && sha256sum "$W/policy.conf") >"$W/state/installed.sha256"
chmod 0644 "$W/state/installed.sha256"
"$CTL" --policy "$W/policy.conf" policy check | sed -n '1,4p;/^USB/,/^ *- still/p;/^Login/,/for:/p' | show

# ---- 5. the agent on a simulated USB bus ------------------------------------------------------
step "The agent mynaguardd on a simulated USB bus (umockdev: no real device, no real /sys)"
mkfifo "$W/usb.cmd"
exec 9<>"$W/usb.cmd"
USBCMD_OPEN=1
SOCK=$W/run/event.sock
umockdev-wrapper "$PY" "$SRC/scripts/demo-usb.py" "$W/usb.cmd" -- \
	"$AGENT" --policy "$W/policy.conf" --socket "$SOCK" --spool "$W/spool" --state "$W/state" \
	--foreground >"$W/agent.log" 2>&1 &
PIDS+=($!)
wait_for 30 "the agent (READY)" grep -q '^usb-sim: ready' "$W/agent.log"
info "mynaguardd follows udev events (it printed READY); one root hub with interface_authorized_default=0"

# ---- 6. a clerk logs in: password, then a one-time code ---------------------------------------
step "A clerk logs in through the real PAM module: password, then a fresh 6-digit code"
SECRET=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP
mkdir -p "$W/pam"
printf 'clerk:x:%d:%d:Clerk:/nonexistent:/bin/sh\n' "$(id -u)" "$(id -g)" >"$W/passwd"
printf 'clerk:x:%d:\n' "$(id -g)" >"$W/group"
# The clerk exists only in nss_wrapper's passwd (enroll refuses unknown users); the secret goes
# on stdin, never on the command line.
CTL_SAN_LIBS=$(ldd "$CTL" 2>/dev/null | awk '/lib(asan|ubsan)\.so/ { printf "%s ", $3 }')
printf '%s\n' "$SECRET" |
	env LD_PRELOAD="$CTL_SAN_LIBS$NSS_WRAPPER_LIB" NSS_WRAPPER_PASSWD="$W/passwd" NSS_WRAPPER_GROUP="$W/group" \
		"$CTL" totp enroll clerk --store "$W/totp" --secret-file - --issuer "Demo City" --no-qr 2>&1 |
	sed 's/secret=[A-Z2-7]*/secret=(hidden)/' | sed -n 1,3p | show
# The clerk types a code from the app once (the one of the step before, so that the login below
# can use the current one): until then the enrollment is pending and does not count.
oathtool --totp -b "$SECRET" --now "@$(($(date +%s) - 30))" |
	env LD_PRELOAD="$CTL_SAN_LIBS$NSS_WRAPPER_LIB" NSS_WRAPPER_PASSWD="$W/passwd" NSS_WRAPPER_GROUP="$W/group" \
		"$CTL" totp verify clerk --store "$W/totp" 2>&1 | sed 's/^Code now shown in [^:]*: //' | show
printf 'clerk:Heisei-31-password:demo-login\n' >"$W/passdb"
cat >"$W/pam/demo-login" <<EOF
auth     required  $PAM_MATRIX passdb=$W/passdb
auth     required  $PAMMOD store=$W/totp policy=$W/policy.conf socket=$SOCK
account  required  $PAM_MATRIX passdb=$W/passdb
EOF
printf 'auth required pam_deny.so\naccount required pam_deny.so\n' >"$W/pam/other"
# A sanitizer build's module needs its runtime loaded first in the (uninstrumented) pamtester.
SAN_LIBS=$(ldd "$PAMMOD" 2>/dev/null | awk '/lib(asan|ubsan)\.so/ { printf "%s ", $3 }')
pam_login() { # pam_login PASSWORD CODE
	printf '%s\n%s\n' "$1" "$2" | env LD_PRELOAD="$SAN_LIBS$PAM_WRAPPER_LIB $NSS_WRAPPER_LIB" PAM_WRAPPER=1 \
		PAM_WRAPPER_SERVICE_DIR="$W/pam" NSS_WRAPPER_PASSWD="$W/passwd" NSS_WRAPPER_GROUP="$W/group" \
		pamtester demo-login clerk authenticate 2>&1
}
CODE=$(oathtool --totp -b "$SECRET")
info "the authenticator app shows: $CODE   (oathtool --totp, RFC 6238)"
oneline() { tr '\n' ' ' | sed -e 's/  */ /g' -e 's/ $//'; }
info "pamtester demo-login clerk authenticate (pam_matrix checks the password, pam_mynaguard the code):"
if out=$(pam_login Heisei-31-password "$CODE"); then
	info "  password + code $CODE  -> $(oneline <<<"$out")"
else
	info "  $(oneline <<<"$out")"
	die "the clerk's login with a correct code was refused"
fi
if out=$(pam_login Heisei-31-password "$CODE"); then
	die "the same code was accepted twice"
else
	info "  the same code again   -> $(oneline <<<"$out")"
fi
WRONG=$(printf '%06d' $(((10#$CODE + 500000) % 1000000)))
if out=$(pam_login Heisei-31-password "$WRONG"); then
	die "a wrong code was accepted"
else
	info "  a wrong code $WRONG   -> $(oneline <<<"$out")"
fi

# ---- 7. USB devices ---------------------------------------------------------------------------
step "USB: a stick is plugged in (blocked), then a keyboard (allowed)"
echo stick >&9
wait_for 10 "the agent's verdict on the stick" grep -q '^usb\.[a-z]* port=1-1 ' "$W/agent.log"
echo keyboard >&9
wait_for 10 "the agent's verdict on the keyboard" grep -q '^usb\.[a-z]* port=1-2 ' "$W/agent.log"
echo show >&9
wait_for 10 "the interfaces' state" grep -q 'usb-sim: keyboard interface' "$W/agent.log"
grep -E '^(usb-sim: (plugged|stick|keyboard)|usb\.(blocked|allowed) port=1-)' "$W/agent.log" |
	sed -e 's/^usb-sim: /simulated bus: /' -e 's/^\(usb\.[a-z]*\) /mynaguardd:    \1 /' | show
grep -q 'usb-sim: stick interface authorized=0' "$W/agent.log" || die "the USB stick was not blocked"
grep -q 'usb-sim: keyboard interface authorized=1' "$W/agent.log" || die "the keyboard was not allowed"
info "the stick's interface stays unauthorized: no driver can bind, no file can be copied out"

# ---- 8. the uplink delivers -------------------------------------------------------------------
step "The uplink sends the spool to the collector over mutual TLS (client certificate CN=$TERMINAL)"
UPLINK_AS=()
if [ "$(id -u)" -eq 0 ] && getent group nogroup >/dev/null && command -v setpriv >/dev/null; then
	# As on a terminal, the network-facing uplink runs unprivileged (nobody here, mynaguard there):
	# it reads the spool and the key through their group.
	chgrp nogroup "$W/spool" "$W/spool"/* "$W/terminal/$TERMINAL.key"
	chmod 0770 "$W/spool"
	chmod 0640 "$W/terminal/$TERMINAL.key" "$W/spool"/seg-* 2>/dev/null || true
	UPLINK_AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
	info "mynaguard-uplink runs as user nobody (on a terminal: user mynaguard)"
fi
"${UPLINK_AS[@]}" "$UPLINK" --policy "$W/policy.conf" --spool "$W/spool" --verbose >"$W/uplink.log" 2>&1 &
PIDS+=($!)
NEVENTS=$(grep -c '^event seq=' "$W/agent.log")
delivered() {
	api /v1/terminals | "$PY" -c '
import json, sys
t = [x for x in json.load(sys.stdin).get("terminals", []) if x.get("id") == sys.argv[1]]
sys.exit(0 if t and t[0].get("last_seq", 0) >= int(sys.argv[2]) else 1)' "$TERMINAL" "$NEVENTS"
}
wait_for 60 "the events to reach the collector" delivered
grep -v '^uplink.warning' "$W/uplink.log" | sed -n 1,6p | show
info "$NEVENTS events delivered and acknowledged; the uplink deletes only what the collector acknowledged"

# ---- 9. the dashboard -------------------------------------------------------------------------
step "The dashboard's summary (GET /v1/terminals with the bearer token)"
api /v1/terminals >"$W/terminals.json"
"$PY" - "$W/terminals.json" <<'PYEOF' | show
import json, sys
d = json.load(open(sys.argv[1]))
s = d.get("summary", {})
print("terminals: %s total, %s compliant, %s not compliant, %s stale" % (
    s.get("total"), s.get("compliant"), s.get("noncompliant"), s.get("stale")))
for t in d.get("terminals", []):
    print("")
    print("%s: %s" % (t.get("id"), t.get("status", "").upper()))
    print("  last seen %s, last seq %s, gaps %s, clock drift %s ms" % (
        t.get("last_seen"), t.get("last_seq"), t.get("gaps"), t.get("clock_drift_ms")))
    print("  blocked USB devices (24 h): %s   failed logins (24 h): %s" % (
        t.get("usb_blocked_24h"), t.get("auth_failures_24h")))
    for c in t.get("failing", []):
        print("  failing %-26s [%s] %s" % (c.get("id"), ",".join(c.get("clause", [])), c.get("detail")))
PYEOF
info "the failing checks look at the host's real files (udev rule, /etc/pam.d, install manifest,"
info "clock, users); the demo installs none of them, so they fail here and pass on an installed terminal."
echo "   events (GET /v1/events):"
api "/v1/events?limit=50" | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
for e in d.get("events", []):
    data = e.get("data", {})
    what = {
        "auth.success": lambda: "%s logged in to %s (password + code)" % (data.get("user"), data.get("service")),
        "auth.replay": lambda: "%s: a used code was refused" % data.get("user"),
        "auth.failure": lambda: "%s: wrong code (%s)" % (data.get("user"), data.get("reason")),
        "usb.blocked": lambda: "%s:%s %s %s blocked (%s)" % (data.get("vendor"), data.get("product"), data.get("manufacturer"), data.get("product_name"), data.get("rule")),
        "usb.allowed": lambda: "%s:%s %s %s allowed (%s)" % (data.get("vendor"), data.get("product"), data.get("manufacturer"), data.get("product_name"), data.get("rule")),
        "compliance": lambda: "%d checks, %d failing" % (len(data.get("checks", [])), sum(1 for c in data.get("checks", []) if c.get("status") in ("fail", "error"))),
    }.get(e.get("kind"), lambda: "")()
    print("%3s %s %-13s %s" % (e.get("seq"), e.get("ts"), e.get("kind"), what))
' | show

echo
if [ "$ONCE" -eq 1 ]; then
	echo "demo: done (--once)."
	exit 0
fi
echo "The dashboard stays up until Ctrl-C:"
echo "   URL:    $DASH/#token=$TOKEN"
echo "   token:  $TOKEN"
echo "   CA:     $W/ca/ca.pem (the browser will warn: the certificate is from the demo's own CA)"
echo "   API:    curl --cacert $W/ca/ca.pem -H 'Authorization: Bearer $TOKEN' $DASH/v1/terminals"
while :; do sleep 1; done
