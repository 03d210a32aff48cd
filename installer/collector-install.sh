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
                          (e.g. 0.0.0.0:8445) in the configuration (added when it
                          has no [enroll] section)
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
# The logic shared with the mynaguard-collector package's postinst: user, configuration, CA,
# server certificate, revoked list, token, the first --check, valid_listen
# (installer/mynaguard-collector-setup.sh).
# shellcheck source=installer/mynaguard-collector-setup.sh
. "$SRC/installer/mynaguard-collector-setup.sh"
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
# R(), USER_, ETC, TLS, DATA: installer/mynaguard-collector-setup.sh (sourced above).
UNIT=/etc/systemd/system/mynaguard-collector.service
SIGNER_UNIT=/etc/systemd/system/mynaguard-signer.service
# The CA directory is given as a host path (it may live outside --root).
CA="$SRC/installer/mynaguard-ca --dir $CA_DIR"
systemd_running() { [ "$HOST" -eq 1 ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }

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

collector_user

put "$BUILD_DIR/collector/mynaguard-collector" /usr/sbin/mynaguard-collector root root 0755
put "$SRC/installer/mynaguard-ca" /usr/sbin/mynaguard-ca root root 0755
put "$SRC/installer/systemd/mynaguard-collector.service" $UNIT root root 0644
if [ -n "$ENROLL_LISTEN" ]; then
	# enrollment (docs/enrollment.md): the CA key moves to a user of its own, whose signer the
	# collector asks over a socket; the collector itself never opens the key
	for b in mynaguard-signer mynaguard-collector-token; do
		[ -f "$BUILD_DIR/collector/$b" ] || die "$BUILD_DIR/collector/$b is missing (meson compile -C build)"
		put "$BUILD_DIR/collector/$b" /usr/sbin/$b root root 0755
	done
	put "$SRC/installer/systemd/mynaguard-signer.service" $SIGNER_UNIT root root 0644
fi
EXAMPLE=$SRC/installer/collector.conf.example
collector_configure

# ---- start --------------------------------------------------------------------------------------
if [ "$HOST" -eq 1 ]; then collector_check; fi
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
