# shellcheck shell=bash
# SPDX-License-Identifier: MIT
# mynaguard-collector-setup.sh: the collector host's setup logic, shared by
# installer/collector-install.sh (source installs) and the mynaguard-collector package's
# postinst (shipped as /usr/share/mynaguard-collector/mynaguard-collector-setup.sh). A library of
# bash functions: source it, do not run it. See docs/install.md.
#
# The caller sets: PROG, ROOT ("" for the running system), CA (the mynaguard-ca command with
# its --dir), CA_DIR, CA_NAME, NAMES (array of server names), INGEST_LISTEN, DASH_LISTEN,
# ENROLL_LISTEN (empty: the example's; ENROLL_LISTEN empty: no enrollment listener and no
# signer user), EXAMPLE (collector.conf.example).

# shellcheck disable=SC2034 # the paths are used by the callers
declare -F die >/dev/null || die() {
	echo "$PROG: error: $*" >&2
	exit 1
}
declare -F say >/dev/null || say() { echo "$PROG: $*"; }
R() { printf '%s%s' "${ROOT:-}" "$1"; }
USER_=mynaguard-collector
ETC=/etc/mynaguard-collector
TLS=$ETC/tls
DATA=/var/lib/mynaguard-collector
CA_USER=mynaguard-ca

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

# A listen address: HOST:PORT, HOST a DNS name, IPv4 or [IPv6], as collector.conf takes it;
# nothing else, so it is a plain value in the configuration file.
valid_listen() {
	[[ $1 =~ ^([A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\]):([0-9]{1,5})$ ]] &&
		[ "$((10#${BASH_REMATCH[3]}))" -ge 1 ] && [ "$((10#${BASH_REMATCH[3]}))" -le 65535 ]
}

# ---- the package (mynaguard-collector's postinst) --------------------------------------------
# What collector-install.sh's options say, the package reads from
# /etc/mynaguard-collector/setup.conf (no debconf): "KEY = VALUE" lines, # comments. Keys:
# ca_name, server_names (names and addresses, space separated), ingest_listen,
# dashboard_listen, enroll_listen. Missing file: all defaults (no enrollment).
COLLECTOR_SETUP_CONF=/etc/mynaguard-collector/setup.conf
read_collector_setup_conf() {
	local f=$1 key value line n=0
	CA_NAME="" NAMES=() INGEST_LISTEN="" DASH_LISTEN="" ENROLL_LISTEN=""
	[ -f "$f" ] || return 0
	while IFS= read -r line || [ -n "$line" ]; do
		n=$((n + 1))
		[[ $line =~ ^[[:space:]]*(#.*)?$ ]] && continue
		[[ $line =~ ^[[:space:]]*([a-z_]+)[[:space:]]*=[[:space:]]*(.*[^[:space:]])?[[:space:]]*$ ]] ||
			die "$f:$n: expected KEY = VALUE"
		key=${BASH_REMATCH[1]} value=${BASH_REMATCH[2]}
		case $key in
		ca_name)
			[[ $value =~ ^[[:alnum:]\ ._-]{1,64}$ ]] || die "$f:$n: bad ca_name '$value': 1 to 64 of letters, digits, space . _ -"
			CA_NAME=$value ;;
		server_names)
			[[ $value =~ ^[A-Za-z0-9.:\ -]+$ ]] || die "$f:$n: bad server_names '$value': DNS names and addresses separated by spaces"
			read -r -a NAMES <<<"$value" ;;
		ingest_listen | dashboard_listen | enroll_listen)
			valid_listen "$value" || die "$f:$n: bad $key '$value': expected HOST:PORT, e.g. 0.0.0.0:8445"
			case $key in
			ingest_listen) INGEST_LISTEN=$value ;;
			dashboard_listen) DASH_LISTEN=$value ;;
			*) ENROLL_LISTEN=$value ;;
			esac ;;
		*) die "$f:$n: unknown key '$key' (ca_name, server_names, ingest_listen, dashboard_listen, enroll_listen)" ;;
		esac
	done <"$f"
}

# enroll_section FILE: FILE (a collector.conf) on stdout with its [enroll] section switched on
# at ENROLL_LISTEN: the example's commented-out lines uncommented, or a section appended when
# they are gone. The value goes in as data (ENVIRON), never as part of a program.
enroll_section() {
	MG_ENROLL=$ENROLL_LISTEN awk '
		$0 == ";[enroll]" { print "[enroll]"; on = 1; next }
		$0 == ";listen = 0.0.0.0:8445" { print "listen = " ENVIRON["MG_ENROLL"]; next }
		$0 == ";signer = /run/mynaguard-signer/signer.sock" { print substr($0, 2); next }
		{ print }
		END {
			if (!on) {
				print ""
				print "[enroll]"
				print "listen = " ENVIRON["MG_ENROLL"]
				print "signer = /run/mynaguard-signer/signer.sock"
			}
		}' "$1"
}

# collector_user: the system user mynaguard-collector (no login).
collector_user() {
	if [ -z "$(uid_of $USER_)" ]; then
		[ -f "$(R /etc/passwd)" ] && [ -f "$(R /etc/group)" ] ||
			die "${ROOT:+--root $ROOT has no etc/passwd and etc/group: }$(R /etc/passwd) or $(R /etc/group) missing (copy the target's, or a minimal pair)"
		useradd ${ROOT:+--prefix "$ROOT"} --system --user-group --no-create-home --home-dir /nonexistent \
			--shell /usr/sbin/nologin --comment "mynaguard collector" "$USER_"
		say "created system user $USER_ (no login)"
	fi
}

# collector_configure: directories, collector.conf from EXAMPLE when there is none, and (with
# mynaguard-ca) the CA, the server certificate, the revoked list and the dashboard token when
# they do not exist. Never replaces an existing one.
collector_configure() {
	local a
	mkdir -p "$(R $ETC)" "$(R $TLS)" "$(R $DATA)"
	own "$(R $ETC)" root $USER_ 0750
	own "$(R $TLS)" root $USER_ 0750
	own "$(R $DATA)" $USER_ $USER_ 0700
	if [ -n "${ENROLL_LISTEN:-}" ] && [ -z "$(uid_of $CA_USER)" ]; then
		# enrollment (docs/enrollment.md): the CA key belongs to a user of its own
		useradd ${ROOT:+--prefix "$ROOT"} --system --user-group --no-create-home --home-dir /nonexistent \
			--shell /usr/sbin/nologin --comment "mynaguard CA signer" "$CA_USER"
		say "created system user $CA_USER (no login): it owns $CA_DIR from now on"
	fi

	# configuration
	if [ ! -f "$(R $ETC/collector.conf)" ]; then
		# The values go in as data (ENVIRON), never as part of a program.
		MG_INGEST=$INGEST_LISTEN MG_DASH=$DASH_LISTEN awk '
			ENVIRON["MG_INGEST"] != "" && $0 == "listen = 0.0.0.0:8443" { print "listen = " ENVIRON["MG_INGEST"]; next }
			ENVIRON["MG_DASH"] != "" && $0 == "listen = 127.0.0.1:8444" { print "listen = " ENVIRON["MG_DASH"]; next }
			{ print }' "$EXAMPLE" >"$(R $ETC/collector.conf).tmp"
		if [ -n "${ENROLL_LISTEN:-}" ]; then
			enroll_section "$(R $ETC/collector.conf).tmp" >"$(R $ETC/collector.conf).tmp2"
			mv -f "$(R $ETC/collector.conf).tmp2" "$(R $ETC/collector.conf).tmp"
		fi
		mv -f "$(R $ETC/collector.conf).tmp" "$(R $ETC/collector.conf)"
		say "installed $ETC/collector.conf (from $EXAMPLE)"
	elif [ -n "${ENROLL_LISTEN:-}" ] && ! grep -q '^\[enroll\]' "$(R $ETC/collector.conf)"; then
		# enrollment asked for later (dpkg-reconfigure, or the installer run again): only the
		# [enroll] section is added; everything else stays as the admin left it
		enroll_section "$(R $ETC/collector.conf)" >"$(R $ETC/collector.conf).tmp"
		mv -f "$(R $ETC/collector.conf).tmp" "$(R $ETC/collector.conf)"
		say "switched on [enroll] listen = $ENROLL_LISTEN in $ETC/collector.conf"
	else
		[ -z "$INGEST_LISTEN$DASH_LISTEN" ] || say "keeping the existing $ETC/collector.conf: edit listen there"
	fi
	own "$(R $ETC/collector.conf)" root $USER_ 0640

	# the CA, the server certificate, the revoked list, the token
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
	if [ -n "${ENROLL_LISTEN:-}" ]; then
		# the signer writes issued.tsv and certs/; mynaguard-ca, run as root, still works
		[ "$(stat -c %u "$CA_DIR/ca.key")" = "$(uid_of $CA_USER)" ] ||
			chown -R "$(uid_of $CA_USER):$(gid_of $CA_USER)" "$CA_DIR"
	fi
	if [ ! -s "$(R $ETC/token)" ]; then
		$CA token --out "$(R $ETC/token)"
	fi
	own "$(R $ETC/token)" root $USER_ 0640
}

# collector_check: the configuration checked as the collector user, like the unit's
# ExecStartPre; the first run creates the database (owned by that user).
collector_check() {
	# As the collector user, like the unit's ExecStartPre: --check creates the database, and a
	# database made by root would be read-only for the service.
	setpriv --reuid="$USER_" --regid="$USER_" --clear-groups \
		/usr/sbin/mynaguard-collector --check --config $ETC/collector.conf ||
		die "mynaguard-collector --check failed (see above)"
	# An earlier run (or a root --check by hand) may have left root-owned database files.
	find "$DATA" -mindepth 1 -maxdepth 1 ! -user "$USER_" -exec chown "$USER_:$USER_" {} + 2>/dev/null || true
}
