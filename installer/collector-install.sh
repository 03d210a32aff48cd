#!/bin/bash
# SPDX-License-Identifier: MIT
# collector-install.sh: installs mynaguard-collector on the city's collector host: binary, unit,
# user, configuration, data directory, and (with mynaguard-ca) the CA, server certificate and
# dashboard token when none exist. See docs/install.md and mynaguard-install(8).
set -euo pipefail
umask 022

PROG=mynaguard-collector-install
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=""
ROOT=""
CA_DIR=/var/lib/mynaguard-ca
CA_NAME=""
NAMES=()
INGEST_LISTEN=""
DASH_LISTEN=""
ENROLL_LISTEN=""
NO_START=0
UNINSTALL=0
PURGE=0

usage() {
	cat <<'EOF'
Usage: collector-install.sh [OPTIONS]            install or update the collector
       collector-install.sh --uninstall [--purge] remove it (--purge: data, config, user too)

Options:
  --build-dir DIR         where `meson compile` put mynaguard-collector (default: ./build)
  --root DIR              install into DIR instead of / (no systemctl, no --check run)
  --ca-dir DIR            the city CA (default /var/lib/mynaguard-ca); created when missing
  --ca-name NAME          the CA's name when it is created (default "<host> mynaguard CA")
  --server-name NAME|IP   a name the terminals use to reach this host (repeatable; default:
                          the host's full name and its addresses)
  --ingest-listen ADDR    where terminals connect (default 0.0.0.0:8443)
  --dashboard-listen ADDR where browsers connect (default 127.0.0.1:8444)
  --enroll ADDR           also enrollment with one-time tokens and renewal (docs/enrollment.md):
                          mynaguard-signer (own user mynaguard-ca, which then owns the CA
                          directory), mynaguard-collector-token, and [enroll] listen = ADDR
                          (e.g. 0.0.0.0:8445) in a new configuration
  --no-start              install and enable, but do not start
EOF
}
die() {
	echo "$PROG: error: $*" >&2
	exit 1
}
say() { echo "$PROG: $*"; }

while [ $# -gt 0 ]; do
	case $1 in
	--build-dir) BUILD_DIR=${2:?}; shift 2 ;;
	--root) ROOT=${2:?}; shift 2 ;;
	--ca-dir) CA_DIR=${2:?}; shift 2 ;;
	--ca-name) CA_NAME=${2:?}; shift 2 ;;
	--server-name) NAMES+=("${2:?}"); shift 2 ;;
	--ingest-listen) INGEST_LISTEN=${2:?}; shift 2 ;;
	--dashboard-listen) DASH_LISTEN=${2:?}; shift 2 ;;
	--enroll) ENROLL_LISTEN=${2:?}; shift 2 ;;
	--no-start) NO_START=1; shift ;;
	--uninstall) UNINSTALL=1; shift ;;
	--purge) PURGE=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "$PROG: unknown option $1" >&2; usage >&2; exit 2 ;;
	esac
done
# A listen address: HOST:PORT, HOST a DNS name, IPv4 or [IPv6], as collector.conf takes it;
# nothing else, so it is a plain value in the configuration file.
valid_listen() {
	[[ $1 =~ ^([A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\]):([0-9]{1,5})$ ]] &&
		[ "$((10#${BASH_REMATCH[3]}))" -ge 1 ] && [ "$((10#${BASH_REMATCH[3]}))" -le 65535 ]
}
for a in "--ingest-listen=$INGEST_LISTEN" "--dashboard-listen=$DASH_LISTEN" "--enroll=$ENROLL_LISTEN"; do
	if [ -n "${a#*=}" ] && ! valid_listen "${a#*=}"; then
		echo "$PROG: bad ${a%%=*} '${a#*=}': expected HOST:PORT, e.g. 0.0.0.0:8443 or [::1]:8444" >&2
		exit 2
	fi
done
[ "$(id -u)" -eq 0 ] || die "run this as root"
if [ -n "$ROOT" ]; then
	mkdir -p "$ROOT"
	ROOT=$(cd "$ROOT" && pwd)
	[ "$ROOT" != / ] || ROOT=""
fi
HOST=1
[ -z "$ROOT" ] || HOST=0
R() { printf '%s%s' "$ROOT" "$1"; }
USER_=mynaguard-collector
ETC=/etc/mynaguard-collector
TLS=$ETC/tls
DATA=/var/lib/mynaguard-collector
UNIT=/etc/systemd/system/mynaguard-collector.service
SIGNER_UNIT=/etc/systemd/system/mynaguard-signer.service
CA_USER=mynaguard-ca
# The CA directory is given as a host path (it may live outside --root).
CA="$SRC/installer/mynaguard-ca --dir $CA_DIR"
systemd_running() { [ "$HOST" -eq 1 ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }

# Empty (never a failure that set -e would turn into a silent exit) when the file is missing.
uid_of() { awk -F: -v u="$1" '$1 == u { print $3; exit }' "$(R /etc/passwd)" 2>/dev/null || true; }
gid_of() { awk -F: -v g="$1" '$1 == g { print $3; exit }' "$(R /etc/group)" 2>/dev/null || true; }
own() { # own PATH USER GROUP MODE (only when different: a second run changes nothing)
	local want
	want="$(uid_of "$2"):$(gid_of "$3")"
	[ "$(stat -c %u:%g "$1")" = "$want" ] || chown "$want" "$1"
	[ "$(stat -c %a "$1")" = "${4#0}" ] || chmod "$4" "$1"
}
put() { # put SRC DST USER GROUP MODE
	mkdir -p "$(R "$(dirname "$2")")"
	if ! cmp -s "$1" "$(R "$2")"; then
		cat "$1" >"$(R "$2").tmp"
		mv -f "$(R "$2").tmp" "$(R "$2")"
		say "installed $2"
	fi
	own "$(R "$2")" "$3" "$4" "$5"
}

if [ "$UNINSTALL" -eq 1 ]; then
	if systemd_running; then systemctl disable --now mynaguard-collector.service 2>/dev/null || true; fi
	if systemd_running; then systemctl disable --now mynaguard-signer.service 2>/dev/null || true; fi
	rm -f "$(R $UNIT)" "$(R /usr/sbin/mynaguard-collector)" "$(R /usr/sbin/mynaguard-ca)" \
		"$(R $SIGNER_UNIT)" "$(R /usr/sbin/mynaguard-signer)" "$(R /usr/sbin/mynaguard-collector-token)"
	if systemd_running; then systemctl daemon-reload; fi
	if [ "$PURGE" -eq 1 ]; then
		rm -rf "$(R $ETC)" "$(R $DATA)"
		if [ -n "$(uid_of $USER_)" ]; then
			userdel ${ROOT:+--prefix "$ROOT"} "$USER_" 2>/dev/null || true
			[ -z "$(gid_of $USER_)" ] || groupdel ${ROOT:+--prefix "$ROOT"} "$USER_" 2>/dev/null || true
		fi
		say "purged $ETC, $DATA and the $USER_ user; the CA in $CA_DIR is kept"
	else
		say "kept $ETC and $DATA (--purge removes them); the CA in $CA_DIR is kept"
	fi
	say "uninstalled"
	exit 0
fi

# ---- binary and unit --------------------------------------------------------------------------
if [ -z "$BUILD_DIR" ]; then
	for BUILD_DIR in ./build "$SRC/build"; do [ -f "$BUILD_DIR/build.ninja" ] && break; done
fi
[ -f "$BUILD_DIR/collector/mynaguard-collector" ] ||
	die "$BUILD_DIR/collector/mynaguard-collector is missing (meson compile -C build, or --build-dir)"
[ -f "$SRC/installer/systemd/mynaguard-collector.service" ] || die "installer/systemd/mynaguard-collector.service missing"

if [ -z "$(uid_of $USER_)" ]; then
	[ -f "$(R /etc/passwd)" ] && [ -f "$(R /etc/group)" ] ||
		die "${ROOT:+--root $ROOT has no etc/passwd and etc/group: }$(R /etc/passwd) or $(R /etc/group) missing (copy the target's, or a minimal pair)"
	useradd ${ROOT:+--prefix "$ROOT"} --system --user-group --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin --comment "mynaguard collector" "$USER_"
	say "created system user $USER_ (no login)"
fi

put "$BUILD_DIR/collector/mynaguard-collector" /usr/sbin/mynaguard-collector root root 0755
put "$SRC/installer/mynaguard-ca" /usr/sbin/mynaguard-ca root root 0755
put "$SRC/installer/systemd/mynaguard-collector.service" $UNIT root root 0644
mkdir -p "$(R $ETC)" "$(R $TLS)" "$(R $DATA)"
own "$(R $ETC)" root $USER_ 0750
own "$(R $TLS)" root $USER_ 0750
own "$(R $DATA)" $USER_ $USER_ 0700
if [ -n "$ENROLL_LISTEN" ]; then
	# enrollment (docs/enrollment.md): the CA key moves to a user of its own, whose signer the
	# collector asks over a socket; the collector itself never opens the key
	for b in mynaguard-signer mynaguard-collector-token; do
		[ -f "$BUILD_DIR/collector/$b" ] || die "$BUILD_DIR/collector/$b is missing (meson compile -C build)"
		put "$BUILD_DIR/collector/$b" /usr/sbin/$b root root 0755
	done
	put "$SRC/installer/systemd/mynaguard-signer.service" $SIGNER_UNIT root root 0644
	if [ -z "$(uid_of $CA_USER)" ]; then
		useradd ${ROOT:+--prefix "$ROOT"} --system --user-group --no-create-home --home-dir /nonexistent \
			--shell /usr/sbin/nologin --comment "mynaguard CA signer" "$CA_USER"
		say "created system user $CA_USER (no login): it owns $CA_DIR from now on"
	fi
fi

# ---- configuration ----------------------------------------------------------------------------
if [ ! -f "$(R $ETC/collector.conf)" ]; then
	# The values go in as data (ENVIRON), never as part of a program.
	MG_INGEST=$INGEST_LISTEN MG_DASH=$DASH_LISTEN MG_ENROLL=$ENROLL_LISTEN awk '
		ENVIRON["MG_INGEST"] != "" && $0 == "listen = 0.0.0.0:8443" { print "listen = " ENVIRON["MG_INGEST"]; next }
		ENVIRON["MG_DASH"] != "" && $0 == "listen = 127.0.0.1:8444" { print "listen = " ENVIRON["MG_DASH"]; next }
		ENVIRON["MG_ENROLL"] != "" && $0 == ";[enroll]" { print "[enroll]"; next }
		ENVIRON["MG_ENROLL"] != "" && $0 == ";listen = 0.0.0.0:8445" { print "listen = " ENVIRON["MG_ENROLL"]; next }
		ENVIRON["MG_ENROLL"] != "" && $0 == ";signer = /run/mynaguard-signer/signer.sock" { print substr($0, 2); next }
		{ print }' "$SRC/installer/collector.conf.example" >"$(R $ETC/collector.conf)"
	say "installed $ETC/collector.conf (from installer/collector.conf.example)"
else
	[ -z "$INGEST_LISTEN$DASH_LISTEN$ENROLL_LISTEN" ] || say "keeping the existing $ETC/collector.conf: edit listen (and [enroll]) there"
fi
own "$(R $ETC/collector.conf)" root $USER_ 0640

# ---- the CA, the server certificate, the revoked list, the token ------------------------------
if [ ! -f "$CA_DIR/ca.key" ]; then
	$CA init --name "${CA_NAME:-$(hostname -s) mynaguard CA}"
fi
put "$CA_DIR/ca.pem" $TLS/terminals-ca.pem root root 0644
if [ ! -f "$(R $TLS/server.pem)" ]; then
	if [ ${#NAMES[@]} -eq 0 ]; then
		NAMES=("$(hostname -f 2>/dev/null || hostname)")
		for a in $(hostname -I 2>/dev/null); do NAMES+=("$a"); done
		NAMES+=(localhost 127.0.0.1)
	fi
	$CA server "${NAMES[@]}" --out "$(R $TLS)"
fi
own "$(R $TLS/server.pem)" root root 0644
own "$(R $TLS/server.key)" root $USER_ 0640
put "$CA_DIR/revoked-serials" $TLS/revoked.txt root root 0644
grep -q -x -F "$(R $TLS/revoked.txt)" "$CA_DIR/revoked-copies" 2>/dev/null ||
	echo "$(R $TLS/revoked.txt)" >>"$CA_DIR/revoked-copies"
if [ -n "$ENROLL_LISTEN" ]; then
	# the signer writes issued.tsv and certs/; mynaguard-ca, run as root, still works
	[ "$(stat -c %u "$CA_DIR/ca.key")" = "$(uid_of $CA_USER)" ] ||
		chown -R "$(uid_of $CA_USER):$(gid_of $CA_USER)" "$CA_DIR"
fi
if [ ! -s "$(R $ETC/token)" ]; then
	$CA token --out "$(R $ETC/token)"
fi
own "$(R $ETC/token)" root $USER_ 0640

# ---- start --------------------------------------------------------------------------------------
if [ "$HOST" -eq 1 ]; then
	# As the collector user, like the unit's ExecStartPre: --check creates the database, and a
	# database made by root would be read-only for the service.
	setpriv --reuid="$USER_" --regid="$USER_" --clear-groups \
		/usr/sbin/mynaguard-collector --check --config $ETC/collector.conf ||
		die "mynaguard-collector --check failed (see above)"
	# An earlier run (or a root --check by hand) may have left root-owned database files.
	find "$DATA" -mindepth 1 -maxdepth 1 ! -user "$USER_" -exec chown "$USER_:$USER_" {} + 2>/dev/null || true
fi
if systemd_running; then
	systemctl daemon-reload
	systemctl enable mynaguard-collector.service >/dev/null 2>&1
	if [ -n "$ENROLL_LISTEN" ]; then
		systemctl enable mynaguard-signer.service >/dev/null 2>&1
		[ "$NO_START" -eq 1 ] || systemctl restart mynaguard-signer.service ||
			die "the signer did not start: journalctl -u mynaguard-signer"
	fi
	if [ "$NO_START" -eq 0 ]; then
		systemctl restart mynaguard-collector.service || die "the collector did not start: journalctl -u mynaguard-collector"
		say "mynaguard-collector is running"
	fi
elif [ "$HOST" -eq 1 ]; then
	say "systemd is not running: start it yourself: mynaguard-collector --config $ETC/collector.conf"
fi
dash=$(sed -n '/^\[dashboard\]/,/^\[/s/^listen = //p' "$(R $ETC/collector.conf)" | head -1)
cat <<EOF

Collector installed${ROOT:+ into $ROOT}.
  dashboard:   https://${dash:-127.0.0.1:8444}/   token: $ETC/token  (root can read it: cat $ETC/token)
  terminals' CA: $CA_DIR (keep ca.key safe; back it up offline)
Next, for each terminal (see docs/install.md):
  mynaguard-ca --dir $CA_DIR issue TERMINAL_ID        or sign its request: mynaguard-ca --dir $CA_DIR sign terminal.csr
  mynaguard-ca --dir $CA_DIR revoke TERMINAL_ID      (refused by the collector at once)
EOF
