# shellcheck shell=bash
# SPDX-License-Identifier: MIT
# mynaguard-setup.sh: the terminal's setup logic, shared by installer/install.sh (source
# installs) and the mynaguard-terminal package's maintainer scripts (debian/, which ship this
# file as /usr/share/mynaguard/mynaguard-setup.sh). A library of bash functions: source it, do
# not run it. One copy of: the service users, the policy made from the shipped template, the
# no-lock-out rule for the code step (pam-auth-update), the install manifest, the udev reload.
# See docs/install.md and mynaguard-install(8).
#
# The caller sets: PROG (message prefix), ROOT ("" for the running system), HOST (1: change
# the running system; 0: --root, files only), IS_ROOT (1 when uid 0), QUIET (1: less output),
# BIN_DIR (where mynaguardctl is), ADMINS (array of --admin users), ENROLL_LATER (1: switch the
# code step on without an enrolled administrator). Optional hooks it may define first:
# backup_path PATH (called before a file outside our own directories changes; default: none).

# shellcheck disable=SC2034 # the paths are used by the callers

[ -n "${PROG:-}" ] || PROG=mynaguard-setup
if ! declare -F die >/dev/null; then
	die() {
		echo "$PROG: error: $*" >&2
		exit 1
	}
fi
declare -F say >/dev/null || say() { [ "${QUIET:-0}" -eq 1 ] || echo "$PROG: $*"; }
declare -F warn >/dev/null || warn() { echo "$PROG: warning: $*" >&2; }
declare -F backup_path >/dev/null || backup_path() { :; }

# ---- paths (on the target system; R() puts them under ROOT) -----------------------------------
R() { printf '%s%s' "${ROOT:-}" "$1"; }
ETC=/etc/mynaguard
TLS=$ETC/tls
STATE=/var/lib/mynaguard
STORE=$STATE/totp
SPOOL=/var/spool/mynaguard
MANIFEST=$STATE/installed.sha256
PROFILE=/usr/share/pam-configs/mynaguard
SVC_USER=mynaguard
# mynaguardd's unprivileged worker (mynaguardd(8), PRIVILEGE SEPARATION): owns nothing.
AGENT_USER=mynaguard-agent
PAM_COMMON="common-auth common-account common-password common-session common-session-noninteractive"
: "${BIN_DIR:=/usr/sbin}"

# A terminal id: 1 to 64 of A-Z a-z 0-9 . _ -, not starting with . or - (the wire's rule,
# event_terminal_id_valid in event/event.c; it is also the certificate's common name).
valid_terminal_id() { [[ $1 =~ ^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$ ]]; }
# The collector's URL: https://HOST[:PORT][/PATH], HOST a DNS name, IPv4 or [IPv6]; nothing
# else (no user@, query, quotes, spaces, |, & or \), so it is a plain value in the policy file.
valid_collector_url() {
	[[ $1 =~ ^https://([A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]{0,200})?$ ]] || return 1
	local port=${BASH_REMATCH[3]#:}
	[ -z "$port" ] || { [ "$((10#$port))" -ge 1 ] && [ "$((10#$port))" -le 65535 ]; }
}

# ---- users and owners ------------------------------------------------------------------------
# Numeric ids from the target's own passwd/group, so --root never depends on the host's users.
# Empty (never a failure that set -e would turn into a silent exit) when the file is missing.
uid_of() { awk -F: -v u="$1" '$1 == u { print $3; exit }' "$(R /etc/passwd)" 2>/dev/null || true; }
gid_of() { awk -F: -v g="$1" '$1 == g { print $3; exit }' "$(R /etc/group)" 2>/dev/null || true; }

# set_owner PATH USER GROUP MODE: only when they differ, so a second run touches nothing.
# The owner first: chown clears a setuid bit that chmod set.
set_owner() {
	local p=$1 u=$2 g=$3 m=$4 want
	if [ "$IS_ROOT" -eq 1 ]; then
		want="$(uid_of "$u"):$(gid_of "$g")"
		[ "$want" != ":" ] && [ "${want#:}" = "$want" ] && [ "${want%:}" = "$want" ] ||
			die "no user $u or group $g in $(R /etc/passwd)"
		if [ "$(stat -c %u:%g "$p")" != "$want" ]; then chown -h "$want" "$p"; fi
	fi
	if [ "$(stat -c %a "$p")" != "${m#0}" ]; then chmod "$m" "$p"; fi
}

# ---- the service users ----------------------------------------------------------------------
# ensure_user NAME COMMENT
ensure_user() {
	local user=$1 comment=$2 shell=/usr/sbin/nologin
	[ -n "$(uid_of "$user")" ] && [ -n "$(gid_of "$user")" ] && return 0
	[ "$IS_ROOT" -eq 1 ] || { warn "cannot create user $user without root"; return 0; }
	if [ "$HOST" -eq 0 ]; then
		[ -f "$(R /etc/passwd)" ] && [ -f "$(R /etc/group)" ] ||
			die "--root $ROOT has no etc/passwd and etc/group (copy the target's, or a minimal pair)"
		[ -f "$(R /etc/shadow)" ] || { : >"$(R /etc/shadow)"; chmod 0640 "$(R /etc/shadow)"; }
		[ -f "$(R /etc/gshadow)" ] || { : >"$(R /etc/gshadow)"; chmod 0640 "$(R /etc/gshadow)"; }
		useradd --prefix "$ROOT" --system --user-group --no-create-home --home-dir /nonexistent \
			--shell "$shell" --comment "$comment" "$user"
	else
		useradd --system --user-group --no-create-home --home-dir /nonexistent \
			--shell "$shell" --comment "$comment" "$user"
	fi
	# Outside the backup: a plain --uninstall keeps the users (one owns the spool); --purge reads this.
	grep -q -x -s "$user" "$(R $STATE)/created-user" || echo "$user" >>"$(R $STATE)/created-user"
	say "created system user $user (no login)"
}

# ---- PAM -------------------------------------------------------------------------------------
# Members of group sudo plus --admin users; true if one of them has an enrolled code.
admin_enrolled() {
	local u members rc
	members=$(awk -F: '$1 == "sudo" { print $4 }' "$(R /etc/group)" 2>/dev/null | tr ',' ' ')
	# shellcheck disable=SC2086 # word splitting wanted: user names have no spaces
	ADMIN_LIST=$(echo "${ADMINS[@]+"${ADMINS[@]}"}" $members)
	for u in $ADMIN_LIST; do
		rc=0
		"$(R $BIN_DIR)/mynaguardctl" totp status "$u" --store "$(R $STORE)" >/dev/null 2>&1 || rc=$?
		case $rc in
		0) ENROLLED_ADMIN=$u; return 0 ;;
		1) ;;
		*) # an older mynaguardctl without totp status: look for the record itself
			if [ -s "$(R $STORE)/$u" ]; then ENROLLED_ADMIN=$u; return 0; fi ;;
		esac
	done
	return 1
}

pam_is_on() { grep -q -E '^[[:space:]]*auth[[:space:]].*pam_mynaguard\.so' "$(R /etc/pam.d/common-auth)" 2>/dev/null; }

pam_enable() {
	local f
	for f in $PAM_COMMON; do backup_path /etc/pam.d/$f; done
	if [ "$HOST" -eq 1 ]; then
		for f in seen auth account password session session-noninteractive; do backup_path /var/lib/pam/$f; done
		pam_is_on && return 0
		DEBIAN_FRONTEND=noninteractive pam-auth-update --enable mynaguard ||
			die "pam-auth-update failed"
		pam_is_on || die "pam-auth-update did not add pam_mynaguard to /etc/pam.d/common-auth;" \
			"it leaves files with local edits alone: see pam-auth-update(8), then run me again"
	else
		# What pam-auth-update would write (byte for byte, with its trailing space): the line
		# goes at the head of the "Additional" block (priority 128 sorts before pam_cap's 0),
		# after the password step.
		local ca
		ca=$(R /etc/pam.d/common-auth)
		mkdir -p "$(dirname "$ca")"
		pam_is_on && return 0
		if [ ! -f "$ca" ]; then
			printf 'auth\trequired\t\t\tpam_mynaguard.so \n' >"$ca"
		else
			awk -v line="$(printf 'auth\trequired\t\t\tpam_mynaguard.so ')" '
				{ print }
				/^# and here are more per-package modules/ && !done { print line; done = 1 }
				END { if (!done) exit 3 }' "$ca" >"$ca.mynaguard.tmp" ||
				awk -v line="$(printf 'auth\trequired\t\t\tpam_mynaguard.so ')" '
					/^# end of pam-auth-update config/ && !done { print line; done = 1 }
					{ print }
					END { if (!done) print line }' "$ca" >"$ca.mynaguard.tmp"
			chmod --reference="$ca" "$ca.mynaguard.tmp"
			[ "$IS_ROOT" -eq 0 ] || chown --reference="$ca" "$ca.mynaguard.tmp"
			mv "$ca.mynaguard.tmp" "$ca"
		fi
	fi
	say "switched on the code step: /etc/pam.d/common-auth now requires pam_mynaguard.so after the password"
}

# Which of the policy's [mfa] services do not include common-auth (and so get no code step).
check_services() {
	local s f
	for s in ${MFA_SERVICES:-}; do
		f=$(R /etc/pam.d/"$s")
		[ -f "$f" ] || continue
		grep -q -E '^[[:space:]]*(@include[[:space:]]+common-auth|auth[[:space:]]+(include|substack)[[:space:]]+common-auth)' "$f" ||
			warn "PAM service $s does not include common-auth: add 'auth required pam_mynaguard.so' after its password step by hand"
	done
}


# code_step: the no-lock-out rule. The code step goes on only when an administrator can pass
# it (one of ADMINS or group sudo has an enrolled code), or when ENROLL_LATER=1 says so (with a
# loud warning). Returns 0 when it is on, 3 when it stays off (nothing in PAM changed then).
code_step() {
	if pam_is_on; then
		say "the code step is already on in /etc/pam.d/common-auth"
	elif admin_enrolled; then
		pam_enable
		say "administrator $ENROLLED_ADMIN has an enrolled code"
	elif [ "${ENROLL_LATER:-0}" -eq 1 ]; then
		warn "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
		warn "enroll-later: switching the code step on although NO administrator"
		warn "(${ADMIN_LIST// / }) has an enrolled code. Every user without one is now LOCKED OUT"
		warn "of login, su and sudo. Keep this root shell open and enroll now:"
		warn "    mynaguardctl totp enroll USER     (then: mynaguardctl totp verify USER)"
		warn "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
		pam_enable
	else
		return 3
	fi
	return 0
}

# code_step_off_notice HOW: what to do when code_step returned 3; HOW is how to run the step again.
code_step_off_notice() {
	echo
	echo "$PROG: NOT switching on the code step: no administrator has an enrolled code yet."
	echo "  Administrators checked: ${ADMIN_LIST:-none} (members of group sudo and $1)."
	echo "  Everything else is installed. To finish, enroll at least one administrator:"
	echo "      mynaguardctl totp enroll ADMIN_USER     (scan the QR code with the authenticator app)"
	echo "      mynaguardctl totp verify ADMIN_USER     (type the code the app shows: until then it does not count)"
	echo "  then $2"
}

# ---- the policy ------------------------------------------------------------------------------
# policy_from_template TEMPLATE ID COLLECTOR CTL OUT: the shipped strict policy with its
# placeholder terminal id replaced by ID and its commented-out collector line by COLLECTOR
# (when not empty), checked with CTL (mynaguardctl), written to OUT. Fails with the check's
# messages on stderr.
policy_from_template() {
	local f=$1 id=$2 collector=$3 ctl=$4 out=$5
	valid_terminal_id "$id" || die "'$id' is no terminal id (1 to 64 of A-Z a-z 0-9 . _ -)"
	# The values go in as data (ENVIRON), never as part of a program.
	MG_ID=$id MG_COLLECTOR=$collector awk '
		$0 == "id = CHANGE-ME-terminal-0001" { print "id = " ENVIRON["MG_ID"]; next }
		ENVIRON["MG_COLLECTOR"] != "" && /^;* *collector = https:\/\/mynaguard-collector\.example\.lg\.jp:8443$/ {
			print "collector = " ENVIRON["MG_COLLECTOR"]; next
		}
		{ print }' "$f" >"$out"
	"$ctl" --policy "$out" policy check >/dev/null || {
		"$ctl" --policy "$out" policy check >&2 || true
		rm -f "$out"
		die "the policy $f does not pass 'mynaguardctl policy check'"
	}
}

# policy_wants_strict_usb POLICY: true when [usb] strict_modprobe = yes.
policy_wants_strict_usb() {
	grep -q -E '^[[:space:]]*strict_modprobe[[:space:]]*=[[:space:]]*yes' "$1" 2>/dev/null
}

# policy_mfa_services CTL POLICY: the [mfa] services line of "policy check" ("for: login, sshd.").
policy_mfa_services() {
	"$1" --policy "$2" policy check 2>/dev/null |
		sed -n 's/^ *for: \(.*\)\.$/\1/p' | head -1 | tr ',' ' ' || true
}

# ---- the install manifest --------------------------------------------------------------------
# manifest_write PATH...: sha256sum lines "HASH  PATH" (target paths) of what agent.integrity
# compares against, into MANIFEST (root 0644); an unchanged manifest is not rewritten.
manifest_write() {
	local tmp p
	tmp=$(mktemp "$(R $STATE)/.manifest.XXXXXX")
	for p in "$@"; do
		printf '%s  %s\n' "$(sha256sum <"$(R "$p")" | cut -d' ' -f1)" "$p"
	done >"$tmp"
	set_owner "$tmp" root root 0644
	if cmp -s "$tmp" "$(R $MANIFEST)"; then
		rm -f "$tmp"
	else
		mv "$tmp" "$(R $MANIFEST)"
	fi
}

# ---- udev ------------------------------------------------------------------------------------
# udev_apply: reload the rules and re-run them on present USB devices, so every root hub gets
# interface_authorized_default=0 now (the rule matches "change"; its authorize step only "add",
# so nothing is authorized by this).
udev_apply() {
	command -v udevadm >/dev/null || return 0
	udevadm control --reload-rules || warn "udevadm control --reload-rules failed"
	udevadm trigger --subsystem-match=usb --action=change || warn "udevadm trigger failed"
}

# ---- the package (mynaguard-terminal's maintainer scripts) -----------------------------------
# What install.sh's command line says, a package reads from /etc/mynaguard/setup.conf (no
# debconf): "KEY = VALUE" lines, # comments. Keys: terminal_id, collector, admins (user names,
# space separated), enroll_later (yes|no), strict_usb (yes|no). Missing file: all defaults.
SETUP_CONF=$ETC/setup.conf
PKG_SHARE=/usr/share/mynaguard
PKG_UDEV_RULE=/lib/udev/rules.d/70-mynaguard.rules
PKG_UNITS="/lib/systemd/system/mynaguardd.service /lib/systemd/system/mynaguard-uplink.service"
MODPROBE_CONF=/etc/modprobe.d/mynaguard-storage.conf

read_setup_conf() {
	local f=$1 key value line n=0
	TERMINAL_ID="" COLLECTOR="" ADMINS=() ENROLL_LATER=0 STRICT_USB=0
	[ -f "$f" ] || return 0
	while IFS= read -r line || [ -n "$line" ]; do
		n=$((n + 1))
		[[ $line =~ ^[[:space:]]*(#.*)?$ ]] && continue
		[[ $line =~ ^[[:space:]]*([a-z_]+)[[:space:]]*=[[:space:]]*(.*[^[:space:]])?[[:space:]]*$ ]] ||
			die "$f:$n: expected KEY = VALUE"
		key=${BASH_REMATCH[1]} value=${BASH_REMATCH[2]}
		case $key in
		terminal_id)
			valid_terminal_id "$value" || die "$f:$n: bad terminal_id '$value': 1 to 64 of A-Z a-z 0-9 . _ -, not starting with . or -"
			TERMINAL_ID=$value ;;
		collector)
			valid_collector_url "$value" || die "$f:$n: bad collector '$value': expected https://HOST[:PORT][/PATH]"
			COLLECTOR=$value ;;
		admins)
			[[ $value =~ ^[a-z_][a-z0-9_.\ -]*$ ]] || die "$f:$n: bad admins '$value': user names separated by spaces"
			read -r -a ADMINS <<<"$value" ;;
		enroll_later | strict_usb)
			case $value in
			yes) value=1 ;;
			no) value=0 ;;
			*) die "$f:$n: $key is yes or no, not '$value'" ;;
			esac
			if [ "$key" = enroll_later ]; then ENROLL_LATER=$value; else STRICT_USB=$value; fi ;;
		*) die "$f:$n: unknown key '$key' (terminal_id, collector, admins, enroll_later, strict_usb)" ;;
		esac
	done <"$f"
}

# package_configure: the postinst's "configure" (first install, upgrade, dpkg-reconfigure).
# Users, directories with their owners, the policy when there is none, the optional modprobe
# layer, the manifest, udev, and the code step under the no-lock-out rule. Keeps the spool, the
# TOTP store, the policy and the TLS material as they are. Never fails for the code step:
# without an enrolled administrator it stays off and says how to finish.
package_configure() {
	local tmp id paths rc=0
	ROOT="" HOST=1 IS_ROOT=1 BIN_DIR=/usr/sbin
	read_setup_conf "$SETUP_CONF"
	mkdir -p $STATE
	chmod 0700 $STATE
	ensure_user "$SVC_USER" "mynaguard uplink"
	ensure_user "$AGENT_USER" "mynaguard agent worker"
	mkdir -p $ETC $TLS $STORE $SPOOL/ack
	set_owner $ETC root root 0755
	set_owner $STORE root root 0700
	# 0770: the uplink (group mynaguard) replaces its key and certificate when it renews them
	set_owner $TLS root $SVC_USER 0770
	# Only the agent creates and deletes in the spool; the uplink writes ack/ (docs/spool.md)
	# and the fleet bundle it fetched into inbox/ (docs/fleet.md).
	mkdir -p $SPOOL/inbox
	set_owner $SPOOL root $SVC_USER 0750
	set_owner $SPOOL/ack root $SVC_USER 0770
	set_owner $SPOOL/inbox root $SVC_USER 0770
	if [ ! -f $ETC/policy.conf ]; then
		id=${TERMINAL_ID:-$(hostname -s 2>/dev/null || hostname)}
		valid_terminal_id "$id" || die "the host name '$id' is no terminal id; set terminal_id in $SETUP_CONF"
		tmp=$(mktemp $STATE/.policy.XXXXXX)
		policy_from_template $PKG_SHARE/policy.conf "$id" "$COLLECTOR" $BIN_DIR/mynaguardctl "$tmp"
		set_owner "$tmp" root root 0644
		mv "$tmp" $ETC/policy.conf
		say "made $ETC/policy.conf (terminal id $id) from $PKG_SHARE/policy.conf"
	fi
	paths=($ETC/policy.conf $PKG_UDEV_RULE $PKG_UNITS)
	if [ "$STRICT_USB" -eq 1 ] || policy_wants_strict_usb $ETC/policy.conf; then
		# The optional strict layer: usb-storage and uas can never load.
		if ! cmp -s $PKG_SHARE/modprobe/mynaguard-storage.conf $MODPROBE_CONF; then
			install -m 0644 $PKG_SHARE/modprobe/mynaguard-storage.conf $MODPROBE_CONF
			say "installed $MODPROBE_CONF (run update-initramfs -u)"
		fi
		paths+=($MODPROBE_CONF)
	fi
	manifest_write "${paths[@]}"
	if [ -d /run/udev ]; then udev_apply; fi
	if command -v pam-auth-update >/dev/null; then
		DEBIAN_FRONTEND=noninteractive pam-auth-update --package
	fi
	MFA_SERVICES=$(policy_mfa_services $BIN_DIR/mynaguardctl $ETC/policy.conf)
	code_step || rc=$?
	check_services
	if [ "$rc" -eq 3 ]; then
		code_step_off_notice "admins in $SETUP_CONF" \
			"run: dpkg-reconfigure mynaguard-terminal   (enroll_later = yes in $SETUP_CONF switches it on anyway: risky)"
	fi
	return 0
}

# package_start_uplink: after the units are enabled. The uplink is (re)started only once the
# terminal has its certificate; a running one is restarted (upgrade).
package_start_uplink() {
	[ -d /run/systemd/system ] || return 0
	if systemctl -q is-active mynaguard-uplink.service; then
		deb-systemd-invoke restart mynaguard-uplink.service || warn "mynaguard-uplink did not restart"
	elif [ -f $TLS/terminal.pem ]; then
		deb-systemd-invoke start mynaguard-uplink.service || warn "mynaguard-uplink did not start: journalctl -u mynaguard-uplink"
	else
		say "not starting mynaguard-uplink yet: no terminal certificate in $TLS (docs/install.md)"
	fi
}

# package_deconfigure: the prerm's "remove": the code step out of PAM (pam-auth-update puts
# /etc/pam.d back as it was), the uplink stopped, the modprobe layer and the manifest out. The spool, policy, TLS
# material and codes stay until purge.
package_deconfigure() {
	ROOT="" HOST=1 IS_ROOT=1
	if command -v pam-auth-update >/dev/null; then
		DEBIAN_FRONTEND=noninteractive pam-auth-update --package --remove mynaguard
	fi
	# The uplink's unit is installed --no-start (package_start_uplink starts it), so debhelper's
	# prerm stops only mynaguardd: stop the uplink here (its user goes with purge).
	if [ -d /run/systemd/system ]; then
		deb-systemd-invoke stop mynaguard-uplink.service >/dev/null || true
	fi
	if cmp -s $PKG_SHARE/modprobe/mynaguard-storage.conf $MODPROBE_CONF; then rm -f $MODPROBE_CONF; fi
	rm -f $MANIFEST
}
