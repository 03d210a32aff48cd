#!/bin/bash
# SPDX-License-Identifier: MIT
# collector-install.sh --root: files, owners, modes; CA, server certificate and token made once;
# a second run changes nothing; mynaguard-ca revoke reaches the collector's revoked list;
# the installed configuration passes mynaguard-collector --check.
# Usage: test-collector-install.sh SOURCE_ROOT BUILD_ROOT   (as root)
set -euo pipefail
SRC=$(cd "$1" && pwd)
BUILD=$(cd "$2" && pwd)
T=$(mktemp -d /tmp/mg-collector-install.XXXXXX)
trap 'rm -rf "$T"' EXIT
n=0
fails=0
check() {
	local d=$1
	shift
	n=$((n + 1))
	if "$@"; then echo "ok $n - $d"; else fails=$((fails + 1)); echo "not ok $n - $d"; fi
}
if [ "$(id -u)" -ne 0 ]; then echo "1..0 # SKIP needs root (chown)"; exit 77; fi
mkdir -p "$T/build/collector"
touch "$T/build/build.ninja"
if [ -f "$BUILD/collector/mynaguard-collector" ]; then
	cp "$BUILD/collector/mynaguard-collector" "$T/build/collector/"
else
	printf '#!/bin/sh\nexit 0\n' >"$T/build/collector/mynaguard-collector"
	chmod 0755 "$T/build/collector/mynaguard-collector"
fi
R=$T/root
mkdir -p "$R/etc"
printf 'root:x:0:0:root:/root:/bin/bash\n' >"$R/etc/passwd"
printf 'root:x:0:\n' >"$R/etc/group"
: >"$R/etc/shadow"
: >"$R/etc/gshadow"
CI=$SRC/installer/collector-install.sh
out=$("$CI" --root "$R" --build-dir "$T/build" --ca-dir "$T/ca" --ca-name "Test City" \
	--server-name collector.test --server-name 127.0.0.1 --ingest-listen 127.0.0.1:18443 2>&1)
check "first run succeeds and names the dashboard and the token" grep -q 'token: /etc/mynaguard-collector/token' <<<"$out"
U=$(awk -F: '$1 == "mynaguard-collector" { print $3 }' "$R/etc/passwd")
G=$(awk -F: '$1 == "mynaguard-collector" { print $3 }' "$R/etc/group")
check "system user mynaguard-collector with nologin" bash -c "[ -n '$U' ] && grep -q '^mynaguard-collector:.*:/usr/sbin/nologin\$' '$R/etc/passwd'"
expect() {
	local got
	got=$(stat -c '%a %u %g' "$R$1" 2>/dev/null || echo missing)
	check "$1: $2 $3 $4 (got $got)" test "$got" = "$2 $3 $4"
}
expect /usr/sbin/mynaguard-collector 755 0 0
expect /usr/sbin/mynaguard-ca 755 0 0
expect /etc/systemd/system/mynaguard-collector.service 644 0 0
expect /etc/mynaguard-collector 750 0 "$G"
expect /etc/mynaguard-collector/collector.conf 640 0 "$G"
expect /etc/mynaguard-collector/tls 750 0 "$G"
expect /etc/mynaguard-collector/tls/server.pem 644 0 0
expect /etc/mynaguard-collector/tls/server.key 640 0 "$G"
expect /etc/mynaguard-collector/tls/terminals-ca.pem 644 0 0
expect /etc/mynaguard-collector/tls/revoked.txt 644 0 0
expect /etc/mynaguard-collector/token 640 0 "$G"
expect /var/lib/mynaguard-collector 700 "$U" "$G"
check "the ingest listen address was set" grep -q -x 'listen = 127.0.0.1:18443' "$R/etc/mynaguard-collector/collector.conf"
check "server certificate signed by the new CA, for collector.test and 127.0.0.1" \
	bash -c "openssl verify -CAfile '$T/ca/ca.pem' '$R/etc/mynaguard-collector/tls/server.pem' >/dev/null &&
		openssl x509 -in '$R/etc/mynaguard-collector/tls/server.pem' -noout -ext subjectAltName | grep -q 'DNS:collector.test, IP Address:127.0.0.1'"
check "token: 64 hex digits" grep -q -x -E '[0-9a-f]{64}' "$R/etc/mynaguard-collector/token"
snap() { (cd "$R" && find . -printf '%p %m %U %G\n' | sort && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
s1=$(snap)
"$CI" --root "$R" --build-dir "$T/build" --ca-dir "$T/ca" >/dev/null 2>&1
check "second run changes nothing (same certificate, token, modes)" test "$s1" = "$(snap)"
"$SRC/installer/mynaguard-ca" --dir "$T/ca" issue term-1 --out "$T/t" >/dev/null
serial=$(openssl x509 -in "$T/t/term-1.pem" -noout -serial | sed 's/serial=//')
"$SRC/installer/mynaguard-ca" --dir "$T/ca" revoke term-1 >/dev/null
check "mynaguard-ca revoke updates the collector's revoked.txt (mode kept)" \
	bash -c "grep -q -x '$serial' '$R/etc/mynaguard-collector/tls/revoked.txt' && [ \$(stat -c %a '$R/etc/mynaguard-collector/tls/revoked.txt') = 644 ]"
if [ -f "$BUILD/collector/mynaguard-collector" ]; then
	sed "s#/etc/mynaguard-collector#$R/etc/mynaguard-collector#g; s#/var/lib/mynaguard-collector#$R/var/lib/mynaguard-collector#g" \
		"$R/etc/mynaguard-collector/collector.conf" >"$T/check.conf"
	check "mynaguard-collector --check accepts the installed configuration" \
		bash -c "'$BUILD/collector/mynaguard-collector' --check --config '$T/check.conf' >/dev/null 2>&1 ||
			{ '$BUILD/collector/mynaguard-collector' --check --config '$T/check.conf'; false; }"
fi
"$CI" --root "$R" --uninstall --purge >/dev/null
check "--uninstall --purge removes binary, unit, config, data, user" \
	bash -c "[ ! -e '$R/usr/sbin/mynaguard-collector' ] && [ ! -e '$R/etc/mynaguard-collector' ] &&
		[ ! -e '$R/var/lib/mynaguard-collector' ] && ! grep -q mynaguard-collector '$R/etc/passwd' '$R/etc/group' &&
		[ -f '$T/ca/ca.key' ]"
# --enroll: the signer and the token tool, the signer's user owns the CA, [enroll] configured
if [ -f "$BUILD/collector/mynaguard-signer" ] && [ -f "$BUILD/collector/mynaguard-collector-token" ]; then
	cp "$BUILD/collector/mynaguard-signer" "$BUILD/collector/mynaguard-collector-token" "$T/build/collector/"
	R=$T/root-enroll
	mkdir -p "$R/etc"
	printf 'root:x:0:0:root:/root:/bin/bash\n' >"$R/etc/passwd"
	printf 'root:x:0:\n' >"$R/etc/group"
	: >"$R/etc/shadow"
	: >"$R/etc/gshadow"
	out=$("$CI" --root "$R" --build-dir "$T/build" --ca-dir "$T/ca-enroll" --server-name collector.test \
		--enroll 0.0.0.0:8445 2>&1)
	CU=$(awk -F: '$1 == "mynaguard-ca" { print $3 }' "$R/etc/passwd")
	G=$(awk -F: '$1 == "mynaguard-collector" { print $3 }' "$R/etc/group")
	check "--enroll: system user mynaguard-ca" test -n "$CU"
	expect /usr/sbin/mynaguard-signer 755 0 0
	expect /usr/sbin/mynaguard-collector-token 755 0 0
	expect /etc/systemd/system/mynaguard-signer.service 644 0 0
	check "--enroll: the CA directory and key belong to mynaguard-ca, the key 0600" \
		bash -c "[ \$(stat -c %u '$T/ca-enroll') = '$CU' ] && [ \"\$(stat -c '%u %a' '$T/ca-enroll/ca.key')\" = '$CU 600' ]"
	check "--enroll: [enroll] listen and signer in the new configuration, no CA key named" \
		bash -c "sed -n '/^\[enroll\]/,/^\[/p' '$R/etc/mynaguard-collector/collector.conf' | grep -q -x 'listen = 0.0.0.0:8445' &&
			grep -q -x 'signer = /run/mynaguard-signer/signer.sock' '$R/etc/mynaguard-collector/collector.conf' &&
			! grep -q 'ca.key' '$R/etc/mynaguard-collector/collector.conf'"
	s1=$(snap)
	"$CI" --root "$R" --build-dir "$T/build" --ca-dir "$T/ca-enroll" --enroll 0.0.0.0:8445 >/dev/null 2>&1
	check "--enroll: second run changes nothing" test "$s1" = "$(snap)"
	if [ -f "$BUILD/collector/mynaguard-collector" ]; then
		sed "s#/etc/mynaguard-collector#$R/etc/mynaguard-collector#g; s#/var/lib/mynaguard-collector#$R/var/lib/mynaguard-collector#g" \
			"$R/etc/mynaguard-collector/collector.conf" >"$T/check-enroll.conf"
		check "--enroll: mynaguard-collector --check accepts the configuration" \
			bash -c "'$BUILD/collector/mynaguard-collector' --check --config '$T/check-enroll.conf' >/dev/null 2>&1 ||
				{ '$BUILD/collector/mynaguard-collector' --check --config '$T/check-enroll.conf'; false; }"
	fi
	# a configuration made earlier without [enroll]: --enroll adds the section, keeps the rest
	conf=$R/etc/mynaguard-collector/collector.conf
	grep -v -e '^;*\[enroll\]$' -e '^;*listen = 0.0.0.0:8445$' -e '^;*signer = ' "$conf" >"$T/noenroll.conf"
	cat "$T/noenroll.conf" >"$conf"
	"$CI" --root "$R" --build-dir "$T/build" --ca-dir "$T/ca-enroll" --enroll 0.0.0.0:8446 >/dev/null 2>&1
	check "--enroll on a configuration without [enroll]: the section added, the rest kept" \
		bash -c "head -n \$(wc -l <'$T/noenroll.conf') '$conf' | cmp -s - '$T/noenroll.conf' &&
			[ \"\$(tail -n 3 '$conf' | tr '\n' '|')\" = '[enroll]|listen = 0.0.0.0:8446|signer = /run/mynaguard-signer/signer.sock|' ]"
	"$CI" --root "$R" --uninstall --purge >/dev/null
	check "--enroll: --uninstall removes the signer, its unit and the token tool" \
		bash -c "[ ! -e '$R/usr/sbin/mynaguard-signer' ] && [ ! -e '$R/usr/sbin/mynaguard-collector-token' ] &&
			[ ! -e '$R/etc/systemd/system/mynaguard-signer.service' ] && [ -f '$T/ca-enroll/ca.key' ]"
fi
# listen addresses are checked, never pasted into a program; an empty root says what is missing
for bad in '127.0.0.1:1|e touch PWNED|' '127.0.0.1' 'h:0' 'a b:1' 'h:8443&'; do
	rc=0
	out=$("$CI" --root "$T/root-bad" --build-dir "$T/build" --ca-dir "$T/ca2" --ingest-listen "${bad//PWNED/$T/pwned}" 2>&1) || rc=$?
	check "--ingest-listen '$bad': usage error (2) that says why, nothing installed" \
		bash -c "[ $rc -eq 2 ] && grep -q 'bad --ingest-listen' <<<'${out//\'/}' && [ ! -e '$T/root-bad' ] && [ ! -e '$T/pwned' ]"
done
rc=0
out=$("$CI" --root "$T/root-bad" --build-dir "$T/build" --ca-dir "$T/ca2" --dashboard-listen '[::1]:x' 2>&1) || rc=$?
check "--dashboard-listen '[::1]:x': usage error (2)" bash -c "[ $rc -eq 2 ] && grep -q 'bad --dashboard-listen' <<<'${out//\'/}'"
rc=0
out=$("$CI" --root "$T/root-empty" --build-dir "$T/build" --ca-dir "$T/ca2" 2>&1) || rc=$?
check "--root without etc/passwd: exit 1 naming etc/passwd" \
	bash -c "[ $rc -eq 1 ] && grep -q 'has no etc/passwd and etc/group' <<<'${out//\'/}'"

echo "1..$n"
[ "$fails" -eq 0 ] || { echo "$fails of $n failed"; exit 1; }
echo "$n passed, 0 failed"
