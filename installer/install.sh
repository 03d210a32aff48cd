#!/bin/bash
# SPDX-License-Identifier: MIT
# install.sh: installs (or with --uninstall removes) mynaguard on one terminal. Every file it
# changes or creates is backed up first, so the uninstall restores PAM, udev and systemd as they were.
# See mynaguard-install(8) and docs/install.md.
set -euo pipefail
umask 022

PROG=mynaguard-install
SRC=$(cd "$(dirname "$0")/.." && pwd)

# ---- options ---------------------------------------------------------------------------------
BUILD_DIR=""
ROOT=""
POLICY_SRC=""
CA_SRC="" CERT_SRC="" KEY_SRC=""
DO_CSR=0
TERMINAL_ID=""
ADMINS=()
ENROLL_LATER=0
NO_START=0
UNINSTALL=0
PURGE=0
PAM_DIR_OPT=""
BIN_DIR=/usr/sbin
# mynaguard-notify runs in every desktop session (XDG autostart), as the user: not in sbin.
USER_BIN_DIR=/usr/bin
AUTOSTART_DIR=/etc/xdg/autostart
QUIET=0
STRICT_USB=0
COLLECTOR=""

usage() {
	cat <<'EOF'
Usage: install.sh [OPTIONS]            install or update mynaguard on this terminal
       install.sh --uninstall [--purge] restore PAM, udev and systemd as they were before

Options:
  --build-dir DIR     where `meson compile` put the binaries (default: ./build)
  --root DIR          install into DIR instead of / (for inspection and tests): no systemctl,
                      no udevadm, and the common-auth edit that pam-auth-update would make is
                      written directly into DIR/etc/pam.d/common-auth
  --policy FILE       policy to install when none exists yet (default: the shipped strict policy)
  --ca FILE --cert FILE --key FILE
                      TLS material for the uplink (CA certificate, this terminal's certificate
                      and key); --key may be left out when the key was made here with --csr
  --csr               make a key and a certificate request here (CN = terminal id) for the
                      collector's admin to sign with `mynaguard-ca sign`
  --terminal-id ID    the terminal's id, for the shipped policy and --csr (default: host name)
  --collector URL     the collector's https:// URL, written into the shipped policy
  --admin USER        an administrator who must have an enrolled code before the code step is
                      switched on (repeatable; members of group sudo always count)
  --enroll-later      switch the code step on even though no administrator is enrolled yet
                      (anyone without an enrolled code is then locked out: read the warning)
  --pam-dir DIR       PAM module directory (default: where pam_unix.so is)
  --no-start          install and enable, but do not start or restart the services
  --strict-usb        also install the modprobe layer that refuses usb-storage and uas entirely
                      (only when the policy allows no USB stick; run update-initramfs -u after)
  --uninstall         remove mynaguard; keeps the spool, the policy, TLS material and codes
  --purge             with --uninstall: remove those too, and the mynaguard user
  -q, --quiet         less output
  -h, --help          this text

Exit status: 0 installed (and the code step is on), 1 error, 2 usage error,
             3 installed but the code step is NOT on because no administrator is enrolled.
EOF
}

die() {
	echo "$PROG: error: $*" >&2
	exit 1
}
say() {
	[ "$QUIET" -eq 1 ] || echo "$PROG: $*"
}
warn() {
	echo "$PROG: warning: $*" >&2
}
# The logic shared with the mynaguard-terminal package's maintainer scripts: users, the policy
# template, the no-lock-out rule, the manifest, udev (installer/mynaguard-setup.sh).
# shellcheck source=installer/mynaguard-setup.sh
. "$SRC/installer/mynaguard-setup.sh"

while [ $# -gt 0 ]; do
	case $1 in
	--build-dir) BUILD_DIR=${2:?--build-dir needs a directory}; shift 2 ;;
	--root) ROOT=${2:?--root needs a directory}; shift 2 ;;
	--policy) POLICY_SRC=${2:?--policy needs a file}; shift 2 ;;
	--ca) CA_SRC=${2:?--ca needs a file}; shift 2 ;;
	--cert) CERT_SRC=${2:?--cert needs a file}; shift 2 ;;
	--key) KEY_SRC=${2:?--key needs a file}; shift 2 ;;
	--csr) DO_CSR=1; shift ;;
	--terminal-id) TERMINAL_ID=${2:?--terminal-id needs an id}; shift 2 ;;
	--admin) ADMINS+=("${2:?--admin needs a user name}"); shift 2 ;;
	--enroll-later) ENROLL_LATER=1; shift ;;
	--pam-dir) PAM_DIR_OPT=${2:?--pam-dir needs a directory}; shift 2 ;;
	--no-start) NO_START=1; shift ;;
	--strict-usb) STRICT_USB=1; shift ;;
	--collector) COLLECTOR=${2:?--collector needs a URL}; shift 2 ;;
	--uninstall) UNINSTALL=1; shift ;;
	--purge) PURGE=1; shift ;;
	-q | --quiet) QUIET=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "$PROG: unknown option: $1" >&2; usage >&2; exit 2 ;;
	esac
done

if [ -n "$TERMINAL_ID" ] && ! valid_terminal_id "$TERMINAL_ID"; then
	echo "$PROG: bad --terminal-id '$TERMINAL_ID': 1 to 64 of A-Z a-z 0-9 . _ -, not starting with . or -" >&2
	exit 2
fi
if [ -n "$COLLECTOR" ] && ! valid_collector_url "$COLLECTOR"; then
	echo "$PROG: bad --collector '$COLLECTOR': expected https://HOST[:PORT][/PATH], e.g. https://mynaguard-collector.example.lg.jp:8443" >&2
	exit 2
fi

if [ -n "$ROOT" ]; then
	mkdir -p "$ROOT"
	ROOT=$(cd "$ROOT" && pwd)
	[ "$ROOT" != / ] || ROOT=""
fi
[ "$PURGE" -eq 0 ] || [ "$UNINSTALL" -eq 1 ] || { echo "$PROG: --purge goes with --uninstall" >&2; exit 2; }
if [ -n "$CA_SRC$CERT_SRC$KEY_SRC" ] && [ "$DO_CSR" -eq 1 ]; then
	echo "$PROG: --csr and --ca/--cert/--key exclude each other (sign the request first)" >&2
	exit 2
fi

IS_ROOT=0
[ "$(id -u)" -eq 0 ] && IS_ROOT=1
if [ "$IS_ROOT" -eq 0 ]; then
	[ -n "$ROOT" ] || die "run this as root (or use --root DIR to install into a directory)"
	warn "not root: owners are not set (modes are)"
fi
# Host mode changes the running system; --root mode only writes files.
HOST=1
[ -z "$ROOT" ] || HOST=0

# ---- paths (on the target system; R() puts them under --root) ---------------------------------
# ETC, TLS, STATE, STORE, SPOOL, MANIFEST, PROFILE, the users: installer/mynaguard-setup.sh.
BACKUP=$STATE/install-backup
UDEV_DIR=/etc/udev/rules.d
UNIT_DIR=/etc/systemd/system
# The terminal's units (installer/systemd/ also holds the collector's, for collector-install.sh).
TERMINAL_UNITS="mynaguardd.service mynaguard-uplink.service"

# ---- backup records --------------------------------------------------------------------------
# BACKUP/list holds one line per path touched: "saved PATH" (copy in BACKUP/files/PATH) or
# "absent PATH" (did not exist: the uninstall deletes it) or "dir PATH" (a directory we made).
# A path is recorded once, at its first change: later runs never overwrite the original.
backup_init() {
	if [ ! -d "$(R $BACKUP)" ]; then
		mkdir -p "$(R $BACKUP)/files"
		chmod 0700 "$(R $BACKUP)"
	fi
	[ -f "$(R $BACKUP)/list" ] || : >"$(R $BACKUP)/list"
}
recorded() { grep -q -F -x -e "saved $1" -e "absent $1" -e "dir $1" "$(R $BACKUP)/list"; }
backup_path() {
	local p=$1
	case $p in
	"$ETC"/* | "$STATE"/* | "$SPOOL"/*) return 0 ;; # ours: kept by --uninstall, removed by --purge
	esac
	recorded "$p" && return 0
	if [ -e "$(R "$p")" ] || [ -L "$(R "$p")" ]; then
		mkdir -p "$(R $BACKUP)/files$(dirname "$p")"
		cp -a "$(R "$p")" "$(R $BACKUP)/files$p"
		echo "saved $p" >>"$(R $BACKUP)/list"
	else
		echo "absent $p" >>"$(R $BACKUP)/list"
	fi
}

# make_parents PATH: create missing directories (0755 root), remember the ones we made;
# existing directories are left exactly as they are.
make_parents() {
	local parts="" d comps
	IFS=/ read -r -a comps <<<"${1#/}"
	for d in "${comps[@]}"; do
		[ -n "$d" ] || continue
		parts="$parts/$d"
		if [ ! -d "$(R "$parts")" ]; then
			mkdir -m 0755 "$(R "$parts")"
			[ ! -f "$(R $BACKUP)/list" ] || recorded "$parts" || echo "dir $parts" >>"$(R $BACKUP)/list"
		fi
	done
}
# make_dir PATH USER GROUP MODE: one of our own directories, with its owner and mode.
make_dir() {
	make_parents "$1"
	set_owner "$(R "$1")" "$2" "$3" "$4"
}

# put_file SRC DST USER GROUP MODE: install only if the content differs; back up first.
put_file() {
	local src=$1 dst=$2 tmp
	if [ -f "$(R "$dst")" ] && cmp -s "$src" "$(R "$dst")"; then
		set_owner "$(R "$dst")" "$3" "$4" "$5"
		return 0
	fi
	make_parents "$(dirname "$dst")"
	backup_path "$dst"
	tmp=$(mktemp "$(R "$(dirname "$dst")")/.mynaguard.XXXXXX")
	cat "$src" >"$tmp"
	set_owner "$tmp" "$3" "$4" "$5"
	mv -f "$tmp" "$(R "$dst")"
	say "installed $dst"
}

# ---- finding things --------------------------------------------------------------------------
find_build() {
	local b=${BUILD_DIR:-}
	if [ -z "$b" ]; then
		for b in ./build "$SRC/build"; do
			[ -f "$b/build.ninja" ] && break
		done
	fi
	[ -d "$b" ] || die "no build directory ${b:-./build} (meson setup build && meson compile -C build, or --build-dir)"
	BUILD_DIR=$(cd "$b" && pwd)
}

# The system's PAM module directory: where pam_unix.so is (Debian 12: /lib/<triplet>/security,
# Ubuntu: /usr/lib/<triplet>/security), else the multiarch default.
find_pam_dir() {
	local d t
	if [ -n "$PAM_DIR_OPT" ]; then
		PAM_DIR=$PAM_DIR_OPT
		return
	fi
	for d in "$(R /usr/lib)"/*/security "$(R /lib)"/*/security "$(R /usr/lib/security)" "$(R /lib/security)"; do
		if [ -f "$d/pam_unix.so" ]; then
			PAM_DIR=${d#"$ROOT"}
			return
		fi
	done
	for d in /usr/lib/*/security /lib/*/security; do
		if [ -f "$d/pam_unix.so" ]; then
			PAM_DIR=$d
			return
		fi
	done
	t=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
	PAM_DIR=/usr/lib/$t/security
}

# ---- TLS -------------------------------------------------------------------------------------
install_tls() {
	local key=$TLS/terminal.key tmp
	# 0770: the uplink (group mynaguard) replaces its key and certificate when it renews them
	make_dir $TLS root $SVC_USER 0770
	if [ "$DO_CSR" -eq 1 ]; then
		[ -n "$TERMINAL_ID" ] || TERMINAL_ID=$(hostname -s 2>/dev/null || hostname)
		valid_terminal_id "$TERMINAL_ID" || die "the host name '$TERMINAL_ID' is no terminal id; give --terminal-id"
		if [ ! -f "$(R $key)" ]; then
			tmp=$(mktemp "$(R $TLS)/.key.XXXXXX")
			openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp" 2>/dev/null
			set_owner "$tmp" root $SVC_USER 0640
			mv "$tmp" "$(R $key)"
			say "made a new private key $key (it never leaves this terminal)"
		fi
		if [ ! -f "$(R $TLS/terminal.csr)" ] ||
			[ "$(openssl req -in "$(R $TLS/terminal.csr)" -noout -subject -nameopt multiline |
				sed -n 's/^ *commonName *= *//p')" != "$TERMINAL_ID" ]; then
			openssl req -new -key "$(R $key)" -subj "/CN=$TERMINAL_ID" -out "$(R $TLS/terminal.csr)"
		fi
		set_owner "$(R $key)" root $SVC_USER 0640
		set_owner "$(R $TLS/terminal.csr)" root root 0644
		CSR_MADE=1
	fi
	if [ -n "$CA_SRC$CERT_SRC$KEY_SRC" ]; then
		[ -n "$CA_SRC" ] && [ -n "$CERT_SRC" ] || die "--ca and --cert go together (and --key unless made with --csr)"
		[ -f "$CA_SRC" ] && [ -f "$CERT_SRC" ] || die "cannot read $CA_SRC or $CERT_SRC"
		if [ -z "$KEY_SRC" ]; then
			[ -f "$(R $key)" ] || die "--key missing and no key made here with --csr"
			KEY_SRC=$(R $key)
		fi
		[ -f "$KEY_SRC" ] || die "cannot read $KEY_SRC"
		openssl verify -CAfile "$CA_SRC" "$CERT_SRC" >/dev/null 2>&1 ||
			die "$CERT_SRC is not signed by $CA_SRC"
		[ "$(openssl x509 -in "$CERT_SRC" -noout -pubkey)" = "$(openssl pkey -in "$KEY_SRC" -pubout)" ] ||
			die "$CERT_SRC does not belong to the key $KEY_SRC"
		put_file "$CA_SRC" $TLS/ca.pem root root 0644
		put_file "$CERT_SRC" $TLS/terminal.pem root root 0644
		if [ "$KEY_SRC" != "$(R $key)" ]; then put_file "$KEY_SRC" $key root $SVC_USER 0640; fi
		set_owner "$(R $key)" root $SVC_USER 0640
		rm -f "$(R $TLS/terminal.csr)"
	fi
}

# ---- the policy ------------------------------------------------------------------------------
# An existing policy is kept. Otherwise --policy FILE or the shipped strict default
# (policy/policy.conf), whose placeholder terminal id becomes --terminal-id (default: the host
# name) and whose commented-out collector line becomes --collector URL.
install_policy() {
	local f=$POLICY_SRC tmp id
	if [ -f "$(R $ETC/policy.conf)" ]; then
		[ -z "$POLICY_SRC" ] || cmp -s "$POLICY_SRC" "$(R $ETC/policy.conf)" ||
			warn "keeping the existing $ETC/policy.conf (not replaced by $POLICY_SRC)"
		[ -z "$COLLECTOR" ] || warn "keeping the existing $ETC/policy.conf: set [report] collector there yourself"
		set_owner "$(R $ETC/policy.conf)" root root 0644
	else
		[ -n "$f" ] || f=$SRC/policy/policy.conf
		[ -f "$f" ] || die "no policy $f; give --policy FILE"
		id=${TERMINAL_ID:-$(hostname -s 2>/dev/null || hostname)}
		valid_terminal_id "$id" || die "the host name '$id' is no terminal id; give --terminal-id"
		tmp=$(mktemp "$(R $STATE)/.policy.XXXXXX")
		policy_from_template "$f" "$id" "$COLLECTOR" "$BUILD_DIR/ctl/mynaguardctl" "$tmp"
		put_file "$tmp" $ETC/policy.conf root root 0644
		rm -f "$tmp"
	fi
	policy_wants_strict_usb "$(R $ETC/policy.conf)" && STRICT_USB=1
	# Only for the warning of check_services.
	MFA_SERVICES=$(policy_mfa_services "$BUILD_DIR/ctl/mynaguardctl" "$(R $ETC/policy.conf)")
	return 0
}

# ---- systemd / udev --------------------------------------------------------------------------
systemd_running() { [ "$HOST" -eq 1 ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }
UNITS=()

activate_services() {
	local u
	if ! systemd_running; then
		[ "$HOST" -eq 0 ] || warn "systemd is not running: services not enabled or started"
		return 0
	fi
	for u in "${UNITS[@]}"; do
		backup_path "$UNIT_DIR/multi-user.target.wants/$u"
	done
	systemctl daemon-reload
	# Re-run the rules on present USB devices so root hubs get interface_authorized_default=0.
	udev_apply
	systemctl enable "${UNITS[@]}" >/dev/null 2>&1 || warn "systemctl enable failed"
	[ "$NO_START" -eq 0 ] || return 0
	for u in "${UNITS[@]}"; do
		if [ "$u" = mynaguard-uplink.service ] && [ ! -f "$(R $TLS/terminal.pem)" ]; then
			say "not starting $u yet: no terminal certificate (see --ca/--cert/--key)"
			continue
		fi
		if [ "${CHANGED:-0}" -eq 1 ]; then
			systemctl restart "$u" || warn "$u did not start: journalctl -u $u"
		else
			systemctl start "$u" || warn "$u did not start: journalctl -u $u"
		fi
	done
}

# ---- install ---------------------------------------------------------------------------------
do_install() {
	local f b name rc=0 before after
	find_build
	find_pam_dir
	local bins=("agent/mynaguardd" "uplink/mynaguard-uplink" "ctl/mynaguardctl" "pam_module/pam_mynaguard.so")
	for b in "${bins[@]}"; do
		[ -f "$BUILD_DIR/$b" ] || die "$BUILD_DIR/$b is missing: build first (meson compile -C $BUILD_DIR)"
	done
	[ -f "$SRC/installer/pam-auth-update/mynaguard" ] || die "installer files missing under $SRC/installer"

	if [ -n "$ROOT" ] && [ "$IS_ROOT" -eq 1 ] && { [ ! -f "$(R /etc/passwd)" ] || [ ! -f "$(R /etc/group)" ]; }; then
		die "--root $ROOT has no etc/passwd and etc/group: owners are looked up in the target's own files (copy the target's, or a minimal pair)"
	fi
	make_parents $STATE
	backup_init
	# 0700 as the agent's unit (StateDirectoryMode=0700) keeps it, so a later run changes nothing.
	make_dir $STATE root root 0700
	before=none
	[ ! -f "$(R $MANIFEST)" ] || before=$(sha256sum <"$(R $MANIFEST)")

	ensure_user "$SVC_USER" "mynaguard uplink"
	ensure_user "$AGENT_USER" "mynaguard agent worker"
	make_dir $ETC root root 0755
	make_dir $STORE root root 0700
	# Only the agent creates and deletes in the spool; the uplink reads it and writes its
	# acknowledged sequence number into ack/ (docs/spool.md) and the fleet bundle it fetched
	# into inbox/ (docs/fleet.md).
	make_dir $SPOOL root $SVC_USER 0750
	make_dir $SPOOL/ack root $SVC_USER 0770
	make_dir $SPOOL/inbox root $SVC_USER 0770

	put_file "$BUILD_DIR/agent/mynaguardd" $BIN_DIR/mynaguardd root root 0755
	put_file "$BUILD_DIR/uplink/mynaguard-uplink" $BIN_DIR/mynaguard-uplink root root 0755
	put_file "$BUILD_DIR/ctl/mynaguardctl" $BIN_DIR/mynaguardctl root root 0755
	# The desktop side of the agent's notices (mynaguard-notify(1)): started in every desktop
	# session by XDG autostart. Built only with libsystemd (sd-bus).
	if [ -f "$BUILD_DIR/notify/mynaguard-notify" ]; then
		put_file "$BUILD_DIR/notify/mynaguard-notify" $USER_BIN_DIR/mynaguard-notify root root 0755
		put_file "$SRC/notify/mynaguard-notify.desktop" $AUTOSTART_DIR/mynaguard-notify.desktop root root 0644
	else
		warn "$BUILD_DIR/notify/mynaguard-notify is missing (built without libsystemd): no desktop notices"
	fi
	put_file "$BUILD_DIR/pam_module/pam_mynaguard.so" "$PAM_DIR/pam_mynaguard.so" root root 0644
	# The module's setuid helper (screen lockers run PAM as the user): at the path compiled
	# into the module (meson's prefix/libexecdir, /usr/local/libexec by default).
	HELPER=$(grep -a -o -m1 -E '/[A-Za-z0-9_./-]*/mynaguard-totp-check' \
		"$BUILD_DIR/pam_module/pam_mynaguard.so" | head -1) || true
	if [ -n "$HELPER" ]; then
		[ -f "$BUILD_DIR/pam_module/mynaguard-totp-check" ] ||
			die "$BUILD_DIR/pam_module/mynaguard-totp-check is missing (the module needs it at $HELPER)"
		put_file "$BUILD_DIR/pam_module/mynaguard-totp-check" "$HELPER" root root 4755
	fi

	install_policy

	install_tls

	for f in "$SRC"/installer/udev/*.rules; do
		[ -f "$f" ] || continue
		put_file "$f" "$UDEV_DIR/$(basename "$f")" root root 0644
	done
	if [ "$STRICT_USB" -eq 1 ]; then
		# The optional strict layer: usb-storage and uas can never load (no allowed sticks then).
		for f in "$SRC"/installer/modprobe/*.conf; do
			[ -f "$f" ] || continue
			put_file "$f" "/etc/modprobe.d/$(basename "$f")" root root 0644
		done
	fi
	for name in $TERMINAL_UNITS; do
		f=$SRC/installer/systemd/$name
		[ -f "$f" ] || die "$f is missing"
		put_file "$f" "$UNIT_DIR/$name" root root 0644
		UNITS+=("$name")
	done
	put_file "$SRC/installer/pam-auth-update/mynaguard" $PROFILE root root 0644

	write_manifest
	after=$(sha256sum <"$(R $MANIFEST)")
	CHANGED=0
	[ "$before" = "$after" ] || CHANGED=1

	# No lock-out: the code step goes on only when an administrator can pass it (code_step).
	code_step || rc=$?
	check_services

	activate_services

	if [ "${CSR_MADE:-0}" -eq 1 ] && [ ! -f "$(R $TLS/terminal.pem)" ]; then
		echo
		echo "Certificate request for terminal '$TERMINAL_ID': $TLS/terminal.csr"
		echo "  1. copy it to the collector's admin, who runs:  mynaguard-ca sign terminal.csr --id $TERMINAL_ID"
		echo "  2. bring back terminal.pem and ca.pem, then run:"
		echo "     install.sh --ca ca.pem --cert terminal.pem"
	fi
	if [ "$rc" -eq 3 ]; then
		code_step_off_notice "--admin USER" "run this installer again. (--enroll-later switches it on anyway: risky.)"
	fi
	if [ "$HOST" -eq 1 ] && [ "$QUIET" -eq 0 ]; then
		echo
		"$BIN_DIR/mynaguardctl" status || true
	else
		say "installed into ${ROOT:-/}"
	fi
	exit $rc
}

# sha256sum lines "HASH  PATH" (target paths) of what agent.integrity compares against.
write_manifest() {
	local p paths=()
	while read -r p; do paths+=("$p"); done < <(
		printf '%s\n' $ETC/policy.conf
		for p in "$SRC"/installer/udev/*.rules; do
			if [ -f "$p" ]; then echo "$UDEV_DIR/$(basename "$p")"; fi
		done
		if [ "$STRICT_USB" -eq 1 ]; then
			for p in "$SRC"/installer/modprobe/*.conf; do
				if [ -f "$p" ]; then echo "/etc/modprobe.d/$(basename "$p")"; fi
			done
		fi
		for p in $TERMINAL_UNITS; do echo "$UNIT_DIR/$p"; done
	)
	manifest_write "${paths[@]}"
}

# ---- uninstall -------------------------------------------------------------------------------
do_uninstall() {
	local kind p list units=() u
	list=$(R $BACKUP)/list
	[ -f "$list" ] || die "nothing to uninstall: $BACKUP/list is missing (was mynaguard installed with install.sh?)"

	for p in $TERMINAL_UNITS; do
		if [ -f "$(R $UNIT_DIR)/$p" ]; then units+=("$p"); fi
	done
	if systemd_running && [ ${#units[@]} -gt 0 ]; then
		systemctl disable --now "${units[@]}" >/dev/null 2>&1 || warn "systemctl disable failed"
	fi
	if [ "$HOST" -eq 1 ] && [ -f "$PROFILE" ] && command -v pam-auth-update >/dev/null; then
		DEBIAN_FRONTEND=noninteractive pam-auth-update --remove mynaguard || warn "pam-auth-update --remove failed"
	fi

	# Undo in reverse order: restore saved files, delete the ones that did not exist.
	tac "$list" | while read -r kind p; do
		case $kind in
		saved)
			rm -rf "$(R "$p")"
			cp -a "$(R $BACKUP)/files$p" "$(R "$p")"
			say "restored $p"
			;;
		absent)
			if [ -e "$(R "$p")" ] || [ -L "$(R "$p")" ]; then
				rm -f "$(R "$p")"
				say "removed $p"
			fi
			;;
		dir)
			case $p in
			"$ETC" | "$ETC"/* | "$STATE" | "$STATE"/* | "$SPOOL" | "$SPOOL"/*) ;; # below
			*) rmdir "$(R "$p")" 2>/dev/null || true ;;
			esac
			;;
		*) warn "unknown backup record: $kind $p" ;;
		esac
	done
	rm -f "$(R $MANIFEST)" "$(R $TLS/terminal.csr)"

	if [ "$PURGE" -eq 1 ]; then
		rm -rf "$(R $SPOOL)" "$(R $ETC)"
		for u in "$SVC_USER" "$AGENT_USER"; do
			grep -q -x -s "$u" "$(R $STATE)/created-user" || continue
			if [ "$HOST" -eq 1 ]; then
				userdel "$u" 2>/dev/null || warn "userdel $u failed"
			else
				userdel --prefix "$ROOT" "$u" 2>/dev/null || warn "userdel $u failed"
			fi
			if [ -n "$(gid_of "$u")" ]; then
				groupdel ${ROOT:+--prefix "$ROOT"} "$u" 2>/dev/null || true
			fi
		done
		rm -rf "$(R $STATE)"
		say "purged the spool, policy, TLS material, enrolled codes and the $SVC_USER and $AGENT_USER users"
	else
		rm -rf "$(R $BACKUP)"
		say "kept $SPOOL, $ETC (policy, TLS) and $STORE (enrolled codes); --purge removes them"
	fi
	if systemd_running; then
		systemctl daemon-reload
		command -v udevadm >/dev/null && udevadm control --reload-rules || true
	fi
	say "uninstalled: PAM, udev and systemd configuration are as they were before the install"
}

if [ "$UNINSTALL" -eq 1 ]; then
	do_uninstall
else
	do_install
fi
