#!/bin/bash
# SPDX-License-Identifier: MIT
# install.sh --root: every file, owner and mode; no lock-out; a second run changes nothing;
# --uninstall restores the tree byte for byte; --csr makes a request that mynaguard-ca signs.
# Usage: test-install.sh SOURCE_ROOT BUILD_ROOT   (as root: owners are checked)
set -euo pipefail
SRC=$(cd "$1" && pwd)
BUILD=$(cd "$2" && pwd)
INSTALL=$SRC/installer/install.sh
CA=$SRC/installer/mynaguard-ca

T=$(mktemp -d /tmp/mg-install-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
n=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
fail() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $*"; }
check() { # check DESCRIPTION COMMAND...
	local d=$1
	shift
	if "$@"; then ok "$d"; else fail "$d"; fi
}
AS_ROOT=0
[ "$(id -u)" -eq 0 ] && AS_ROOT=1

# ---- a build dir: the real binaries where they are built, stand-ins where not yet -------------
FAKE=$T/build
mkdir -p "$FAKE"/{agent,uplink,ctl,pam_module,notify}
touch "$FAKE/build.ninja"
for b in agent/mynaguardd uplink/mynaguard-uplink pam_module/pam_mynaguard.so pam_module/mynaguard-totp-check notify/mynaguard-notify; do
	if [ -f "$BUILD/$b" ]; then cp "$BUILD/$b" "$FAKE/$b"; else printf '#!/bin/sh\nexit 0\n' >"$FAKE/$b"; fi
	chmod 0755 "$FAKE/$b"
done
# mynaguardctl: the real one once `policy check` and `totp status` work, else a stand-in that
# answers those two the way the contract says (status: 0 enrolled, 1 not).
cat >"$T/policy.conf" <<'EOF'
[terminal]
id = term-test
EOF
real_ctl_ok() {
	[ -x "$BUILD/ctl/mynaguardctl" ] &&
		"$BUILD/ctl/mynaguardctl" --policy "$T/policy.conf" policy check >/dev/null 2>&1 &&
		{ "$BUILD/ctl/mynaguardctl" totp status nobody --store "$T" >/dev/null 2>&1; [ $? -eq 1 ]; }
}
if real_ctl_ok; then
	cp "$BUILD/ctl/mynaguardctl" "$FAKE/ctl/mynaguardctl"
	REAL_CTL=1
else
	cat >"$FAKE/ctl/mynaguardctl" <<'EOF'
#!/bin/sh
# stand-in for tests until mynaguardctl policy check / totp status exist
while [ $# -gt 0 ]; do case $1 in --policy) shift 2 ;; *) break ;; esac; done
case "$1 $2" in
"policy check") echo "policy ok"; exit 0 ;;
"totp status") [ -s "$5/$3" ] && exit 0; exit 1 ;;
"totp enroll") mkdir -p "$5"; echo record >"$5/$3"; exit 0 ;;
"totp verify") exit 0 ;;
esac
exit 2
EOF
	REAL_CTL=0
fi
chmod 0755 "$FAKE/ctl/mynaguardctl"
echo "# real mynaguardctl: $REAL_CTL"

# ---- a target root: Debian's common-* files, users, a sudo member ----------------------------
mkroot() {
	local r=$1
	mkdir -p "$r/etc/pam.d" "$r/etc/udev/rules.d" "$r/etc/systemd/system" "$r/usr/lib/x86_64-linux-gnu/security"
	cat >"$r/etc/pam.d/common-auth" <<'EOF'
#
# /etc/pam.d/common-auth - authentication settings common to all services
#
# here are the per-package modules (the "Primary" block)
auth	[success=1 default=ignore]	pam_unix.so nullok
# here's the fallback if no module succeeds
auth	requisite			pam_deny.so
# prime the stack with a positive return value if there isn't one already;
# this avoids us returning an error just because nothing sets a success code
# since the modules above will each just jump around
auth	required			pam_permit.so
# and here are more per-package modules (the "Additional" block)
auth	optional			pam_cap.so 
# end of pam-auth-update config
EOF
	printf '@include common-auth\n@include common-account\n' >"$r/etc/pam.d/login"
	printf '# local\naccount required pam_unix.so\n' >"$r/etc/pam.d/common-account"
	printf 'SUBSYSTEM=="net", GOTO="x"\nLABEL="x"\n' >"$r/etc/udev/rules.d/10-local.rules"
	: >"$r/usr/lib/x86_64-linux-gnu/security/pam_unix.so"
	printf 'root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n' >"$r/etc/passwd"
	printf 'root:x:0:\nsudo:x:27:alice\nalice:x:1000:\n' >"$r/etc/group"
	: >"$r/etc/shadow"
	: >"$r/etc/gshadow"
	chmod 0640 "$r/etc/shadow" "$r/etc/gshadow"
}
# Every path with type, mode, owner, and every file's hash: the whole tree's state.
snapshot() {
	(cd "$1" && find . "${@:2}" -printf '%p %y %m %U %G %l\n' | sort &&
		find . "${@:2}" -type f -print0 | sort -z | xargs -0 -r sha256sum)
}

# ---- the CA and a terminal certificate -------------------------------------------------------
"$CA" --dir "$T/ca" init --name "Test City CA" >/dev/null
"$CA" --dir "$T/ca" issue term-test --out "$T/certs" >/dev/null
check "mynaguard-ca init: ca.key 0600, ca.pem verifies itself" \
	test "$(stat -c %a "$T/ca/ca.key")" = 600 -a -s "$T/ca/ca.pem"
check "mynaguard-ca issue: certificate CN=term-test, signed by the CA, clientAuth" \
	bash -c "openssl verify -CAfile '$T/ca/ca.pem' '$T/certs/term-test.pem' >/dev/null &&
		openssl x509 -in '$T/certs/term-test.pem' -noout -subject | grep -q 'CN *= *term-test' &&
		openssl x509 -in '$T/certs/term-test.pem' -noout -ext extendedKeyUsage | grep -q 'Client Auth'"
check "mynaguard-ca init refuses to replace an existing CA" \
	bash -c "! '$CA' --dir '$T/ca' init 2>/dev/null"
check "mynaguard-ca issue refuses the collector's own source id, says why, writes nothing" \
	bash -c "! '$CA' --dir '$T/ca' issue mynaguard-collector --out '$T/certs' 2>'$T/ca-err' &&
		grep -q 'not mynaguard-collector' '$T/ca-err' && [ ! -e '$T/certs/mynaguard-collector.key' ]"

# ---- 1. no administrator enrolled: everything installed, the code step NOT switched on --------
R=$T/root
mkroot "$R"
before_install=$(snapshot "$R" -path ./var -prune -o -path ./etc/mynaguard -prune -o -regex './etc/\(passwd\|group\|shadow\|gshadow\)-?' -prune -o)
rc=0
out=$("$INSTALL" --root "$R" --build-dir "$FAKE" --policy "$T/policy.conf" \
	--ca "$T/ca/ca.pem" --cert "$T/certs/term-test.pem" --key "$T/certs/term-test.key" 2>&1) || rc=$?
check "no admin enrolled: exit status 3" test "$rc" -eq 3
check "no admin enrolled: says the code step is not switched on" \
	grep -q "NOT switching on the code step" <<<"$out"
check "no admin enrolled: common-auth unchanged" bash -c "! grep -q pam_mynaguard '$R/etc/pam.d/common-auth'"

# ---- every file, owner and mode ---------------------------------------------------------------
MGU=$(awk -F: '$1 == "mynaguard" { print $3 }' "$R/etc/passwd")
MGG=$(awk -F: '$1 == "mynaguard" { print $3 }' "$R/etc/group")
check "service user mynaguard created in the target's passwd (system uid, nologin)" \
	bash -c "[ -n '$MGU' ] && [ '$MGU' -lt 1000 ] && grep -q '^mynaguard:.*:/usr/sbin/nologin\$' '$R/etc/passwd'"
check "worker user mynaguard-agent created (system uid, nologin; mynaguardd(8))" \
	bash -c "grep -q '^mynaguard-agent:x:[0-9]\{1,3\}:.*:/usr/sbin/nologin\$' '$R/etc/passwd'"
expect() { # PATH TYPE MODE UID GID
	local p=$R$1 got want
	if [ ! -e "$p" ]; then fail "$1 exists"; return; fi
	if [ "$AS_ROOT" -eq 1 ]; then
		got=$(stat -c '%F %a %u %g' "$p")
		want="$2 $3 $4 $5"
	else
		got=$(stat -c '%F %a' "$p")
		want="$2 $3"
	fi
	if [ "$got" = "$want" ]; then ok "$1: $want"; else fail "$1: want '$want', got '$got'"; fi
}
F="regular file"
D=directory
expect /usr/sbin/mynaguardd "$F" 755 0 0
expect /usr/sbin/mynaguard-uplink "$F" 755 0 0
expect /usr/sbin/mynaguardctl "$F" 755 0 0
expect /usr/bin/mynaguard-notify "$F" 755 0 0
expect /etc/xdg/autostart/mynaguard-notify.desktop "$F" 644 0 0
check "the autostart file starts mynaguard-notify" \
	grep -q '^Exec=mynaguard-notify$' "$R/etc/xdg/autostart/mynaguard-notify.desktop"
expect /usr/lib/x86_64-linux-gnu/security/pam_mynaguard.so "$F" 644 0 0
expect /usr/share/pam-configs/mynaguard "$F" 644 0 0
expect /etc/mynaguard "$D" 755 0 0
expect /etc/mynaguard/policy.conf "$F" 644 0 0
expect /etc/mynaguard/tls "$D" 770 0 "$MGG"
expect /etc/mynaguard/tls/ca.pem "$F" 644 0 0
expect /etc/mynaguard/tls/terminal.pem "$F" 644 0 0
expect /etc/mynaguard/tls/terminal.key "$F" 640 0 "$MGG"
expect /var/lib/mynaguard "$D" 700 0 0
helper=$(grep -a -o -m1 -E '/[A-Za-z0-9_./-]*/mynaguard-totp-check' "$FAKE/pam_module/pam_mynaguard.so" | head -1) || true
if [ -n "$helper" ]; then
	expect "$helper" "$F" 4755 0 0
fi
expect /var/lib/mynaguard/totp "$D" 700 0 0
expect /var/lib/mynaguard/installed.sha256 "$F" 644 0 0
expect /var/lib/mynaguard/install-backup "$D" 700 0 0
expect /var/spool/mynaguard "$D" 750 0 "$MGG"
expect /var/spool/mynaguard/ack "$D" 770 0 "$MGG"
expect /var/spool/mynaguard/inbox "$D" 770 0 "$MGG"
for f in "$SRC"/installer/udev/*.rules; do
	[ -f "$f" ] && expect "/etc/udev/rules.d/$(basename "$f")" "$F" 644 0 0
done
expect /etc/systemd/system/mynaguardd.service "$F" 644 0 0
expect /etc/systemd/system/mynaguard-uplink.service "$F" 644 0 0
check "the collector's unit is not installed on a terminal" test ! -e "$R/etc/systemd/system/mynaguard-collector.service"
check "installed files are byte-identical to their sources" \
	bash -c "cmp '$FAKE/agent/mynaguardd' '$R/usr/sbin/mynaguardd' && cmp '$T/policy.conf' '$R/etc/mynaguard/policy.conf' &&
		cmp '$SRC/installer/pam-auth-update/mynaguard' '$R/usr/share/pam-configs/mynaguard' &&
		cmp '$T/certs/term-test.key' '$R/etc/mynaguard/tls/terminal.key'"
check "manifest: sha256sum lines for the policy, udev rules and units, and they verify" \
	bash -c "cd '$R' && grep -q '  /etc/mynaguard/policy.conf\$' var/lib/mynaguard/installed.sha256 &&
		sed 's#  /#  #' var/lib/mynaguard/installed.sha256 | sha256sum --quiet -c -"
for f in "$SRC"/installer/udev/*.rules "$SRC"/installer/systemd/mynaguardd.service "$SRC"/installer/systemd/mynaguard-uplink.service; do
	[ -f "$f" ] || continue
	check "manifest lists $(basename "$f")" grep -q "/$(basename "$f")\$" "$R/var/lib/mynaguard/installed.sha256"
done
check "pam-auth-update profile: Additional auth, required pam_mynaguard.so, priority below unix (256)" \
	bash -c "grep -q '^Auth-Type: Additional' '$R/usr/share/pam-configs/mynaguard' &&
		grep -q -P '^\trequired\t+pam_mynaguard.so\$' '$R/usr/share/pam-configs/mynaguard' &&
		[ \$(sed -n 's/^Priority: //p' '$R/usr/share/pam-configs/mynaguard') -lt 256 ]"

# ---- 2. an administrator enrolls; the next run switches the code step on ---------------------
# alice exists in the target's passwd only (nss_wrapper); the secret goes on stdin
echo JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP |
	env LD_PRELOAD=libnss_wrapper.so NSS_WRAPPER_PASSWD="$R/etc/passwd" NSS_WRAPPER_GROUP="$R/etc/group" \
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
		"$FAKE/ctl/mynaguardctl" totp enroll alice --store "$R/var/lib/mynaguard/totp" \
		--secret-file - --no-qr >/dev/null 2>&1
# a pending enrollment does not count for the no-lock-out rule: "totp status", which the
# installer asks (admin_enrolled), says not enrolled (exit 1) until the code is verified
if [ "$REAL_CTL" -eq 1 ]; then
	rc=0
	"$FAKE/ctl/mynaguardctl" totp status alice --store "$R/var/lib/mynaguard/totp" >/dev/null 2>&1 || rc=$?
	check "admin alice enrolled but not verified: totp status exits 1 (does not count)" test "$rc" -eq 1
fi
# alice types a code from the app once (mynaguardctl totp verify)
oathtool --totp -b JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP |
	env LD_PRELOAD=libnss_wrapper.so NSS_WRAPPER_PASSWD="$R/etc/passwd" NSS_WRAPPER_GROUP="$R/etc/group" \
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
		"$FAKE/ctl/mynaguardctl" totp verify alice --store "$R/var/lib/mynaguard/totp" >/dev/null 2>&1
rc=0
out=$("$INSTALL" --root "$R" --build-dir "$FAKE" --policy "$T/policy.conf" 2>&1) || rc=$?
check "admin alice (group sudo) enrolled: exit 0" test "$rc" -eq 0
line_of() { grep -n -E "$1" "$R/etc/pam.d/common-auth" | head -1 | cut -d: -f1; }
check "common-auth: 'auth required pam_mynaguard.so' after pam_unix and pam_permit, before pam_cap" \
	bash -c "[ $(line_of 'pam_mynaguard') -gt $(line_of 'pam_permit') ] &&
		[ $(line_of 'pam_mynaguard') -lt $(line_of 'pam_cap') ] &&
		grep -q -P '^auth\trequired\t+pam_mynaguard.so \$' '$R/etc/pam.d/common-auth'"
check "only common-auth changed in /etc/pam.d" \
	bash -c "[ \"\$(grep -l pam_mynaguard '$R'/etc/pam.d/*)\" = '$R/etc/pam.d/common-auth' ]"

# ---- 3. idempotent: a third run changes nothing at all ----------------------------------------
s1=$(snapshot "$R")
rc=0
"$INSTALL" --root "$R" --build-dir "$FAKE" --policy "$T/policy.conf" \
	--ca "$T/ca/ca.pem" --cert "$T/certs/term-test.pem" --key "$T/certs/term-test.key" >/dev/null 2>&1 || rc=$?
s2=$(snapshot "$R")
check "second run exits 0" test "$rc" -eq 0
if [ "$s1" = "$s2" ]; then ok "second run changes nothing (paths, types, modes, owners, contents)"; else
	fail "second run changed the tree:"
	diff <(echo "$s1") <(echo "$s2") | head -20
fi

# ---- 4. an existing policy is kept -------------------------------------------------------------
printf '[terminal]\nid = other\n' >"$T/policy2.conf"
"$INSTALL" --root "$R" --build-dir "$FAKE" --policy "$T/policy2.conf" >/dev/null 2>&1 || true
check "an existing policy is kept" cmp -s "$T/policy.conf" "$R/etc/mynaguard/policy.conf"

# ---- 5. uninstall restores PAM, udev, systemd and everything else byte for byte ---------------
echo "spooled" >"$R/var/spool/mynaguard/000001.ev"
rc=0
"$INSTALL" --root "$R" --uninstall >/dev/null 2>&1 || rc=$?
check "--uninstall exits 0" test "$rc" -eq 0
after=$(snapshot "$R" -path ./var -prune -o -path ./etc/mynaguard -prune -o -regex './etc/\(passwd\|group\|shadow\|gshadow\)-?' -prune -o)
if [ "$before_install" = "$after" ]; then ok "--uninstall restores /etc/pam.d, udev, systemd, /usr byte for byte"; else
	fail "--uninstall left differences:"
	diff <(echo "$before_install") <(echo "$after") | head -20
fi
check "--uninstall keeps the spool, the policy and the enrolled codes" \
	test -f "$R/var/spool/mynaguard/000001.ev" -a -f "$R/etc/mynaguard/policy.conf" -a -s "$R/var/lib/mynaguard/totp/alice"
check "--uninstall removes the manifest and the backup" \
	test ! -e "$R/var/lib/mynaguard/installed.sha256" -a ! -e "$R/var/lib/mynaguard/install-backup"

# Reinstall, then --purge: the spool, policy, codes and the user go too.
"$INSTALL" --root "$R" --build-dir "$FAKE" --policy "$T/policy.conf" >/dev/null 2>&1 || true
check "reinstall switches the code step on again (codes were kept)" grep -q pam_mynaguard "$R/etc/pam.d/common-auth"
"$INSTALL" --root "$R" --uninstall --purge >/dev/null 2>&1
check "--uninstall --purge removes spool, /etc/mynaguard, /var/lib/mynaguard" \
	test ! -e "$R/var/spool/mynaguard" -a ! -e "$R/etc/mynaguard" -a ! -e "$R/var/lib/mynaguard"
check "--purge removes the mynaguard user and group" \
	bash -c "! grep -q '^mynaguard:' '$R/etc/passwd' && ! grep -q '^mynaguard:' '$R/etc/group'"
check "purge removed the worker user mynaguard-agent too" \
	bash -c "! grep -q '^mynaguard-agent:' '$R/etc/passwd' && ! grep -q '^mynaguard-agent:' '$R/etc/group'"
check "after --purge, /etc/pam.d is as before" \
	bash -c "[ -z \"\$(grep -rl pam_mynaguard '$R/etc/pam.d')\" ]"

# ---- 6. --enroll-later switches on without an enrolled admin, loudly -------------------------
R3=$T/root3
mkroot "$R3"
rc=0
out=$("$INSTALL" --root "$R3" --build-dir "$FAKE" --enroll-later --terminal-id term-9 \
	--collector https://127.0.0.1:8443 2>&1) || rc=$?
check "shipped policy installed with --terminal-id and --collector filled in" \
	bash -c "grep -q -x 'id = term-9' '$R3/etc/mynaguard/policy.conf' &&
		grep -q -x 'collector = https://127.0.0.1:8443' '$R3/etc/mynaguard/policy.conf' &&
		[ \$(diff '$SRC/policy/policy.conf' '$R3/etc/mynaguard/policy.conf' | grep -c '^>') -eq 2 ]"
check "--enroll-later: exit 0, code step on" \
	bash -c "[ $rc -eq 0 ] && grep -q pam_mynaguard '$R3/etc/pam.d/common-auth'"
check "--enroll-later: loud warning" grep -q 'LOCKED OUT' <<<"$out"

# ---- 7. --csr: key and request on the terminal, signed by mynaguard-ca, then installed --------
R2=$T/root2
mkroot "$R2"
rc=0
out=$("$INSTALL" --root "$R2" --build-dir "$FAKE" --policy "$T/policy.conf" --csr --terminal-id term-csr 2>&1) || rc=$?
check "--csr: installs (exit 3: nobody enrolled)" test "$rc" -eq 3
check "--csr: explains how to have the request signed" grep -q 'mynaguard-ca sign' <<<"$out"
R_SAVE=$R
R=$R2
expect /etc/mynaguard/tls/terminal.key "$F" 640 0 "$(awk -F: '$1 == "mynaguard" { print $3 }' "$R2/etc/group")"
expect /etc/mynaguard/tls/terminal.csr "$F" 644 0 0
R=$R_SAVE
check "--csr: the request says CN=term-csr and matches the key" \
	bash -c "openssl req -in '$R2/etc/mynaguard/tls/terminal.csr' -noout -verify -subject 2>&1 | grep -q 'CN *= *term-csr' &&
		[ \"\$(openssl req -in '$R2/etc/mynaguard/tls/terminal.csr' -noout -pubkey)\" = \"\$(openssl pkey -in '$R2/etc/mynaguard/tls/terminal.key' -pubout)\" ]"
key1=$(sha256sum <"$R2/etc/mynaguard/tls/terminal.key")
s1=$(snapshot "$R2")
"$INSTALL" --root "$R2" --build-dir "$FAKE" --policy "$T/policy.conf" --csr --terminal-id term-csr >/dev/null 2>&1 || true
check "--csr twice: nothing changes (same key, same request)" test "$s1" = "$(snapshot "$R2")"
cp "$R2/etc/mynaguard/tls/terminal.csr" "$T/term-csr.csr"
check "mynaguard-ca sign refuses a request for another terminal id" \
	bash -c "! '$CA' --dir '$T/ca' sign '$T/term-csr.csr' --id someone-else >/dev/null 2>&1"
"$CA" --dir "$T/ca" sign "$T/term-csr.csr" --id term-csr --out "$T/term-csr.pem" >/dev/null
check "mynaguard-ca sign: certificate for CN=term-csr verifies against the CA" \
	bash -c "openssl verify -CAfile '$T/ca/ca.pem' '$T/term-csr.pem' >/dev/null"
rc=0
"$INSTALL" --root "$R2" --build-dir "$FAKE" --policy "$T/policy.conf" --ca "$T/ca/ca.pem" --cert "$T/term-csr.pem" >/dev/null 2>&1 || rc=$?
check "install --ca --cert (key made here): certificate installed, key kept, request removed" \
	bash -c "[ $rc -eq 3 ] && cmp -s '$T/term-csr.pem' '$R2/etc/mynaguard/tls/terminal.pem' &&
		[ \"\$(sha256sum <'$R2/etc/mynaguard/tls/terminal.key')\" = '$key1' ] &&
		[ ! -e '$R2/etc/mynaguard/tls/terminal.csr' ]"
check "install refuses a certificate that does not match the key" \
	bash -c "! '$INSTALL' --root '$R2' --build-dir '$FAKE' --ca '$T/ca/ca.pem' --cert '$T/certs/term-test.pem' >/dev/null 2>&1"

# ---- 8. mynaguard-ca revoke, token, list ---------------------------------------------------
serial=$(openssl x509 -in "$T/certs/term-test.pem" -noout -serial | sed 's/serial=//')
"$CA" --dir "$T/ca" revoke term-test >/dev/null
check "revoke by terminal id appends its serial (hex, as openssl prints it) to revoked-serials" \
	grep -q -x "$serial" "$T/ca/revoked-serials"
"$CA" --dir "$T/ca" revoke "$serial" >/dev/null
check "revoking twice does not duplicate the serial" test "$(grep -c -x "$serial" "$T/ca/revoked-serials")" -eq 1
check "list shows term-test revoked and term-csr valid" \
	bash -c "'$CA' --dir '$T/ca' list | grep -q 'term-test *revoked' && '$CA' --dir '$T/ca' list | grep -q 'term-csr *valid'"
check "revoke of an unknown terminal fails" bash -c "! '$CA' --dir '$T/ca' revoke nobody >/dev/null 2>&1"
"$CA" --dir "$T/ca" token --out "$T/token" >/dev/null
tok=$(cat "$T/token")
check "token: 64 hex digits, mode 0600" bash -c "[[ '$tok' =~ ^[0-9a-f]{64}\$ ]] && [ \$(stat -c %a '$T/token') = 600 ]"
"$CA" --dir "$T/ca" token --out "$T/token" >/dev/null
check "token again: kept (no --force)" test "$(cat "$T/token")" = "$tok"
"$CA" --dir "$T/ca" server localhost 127.0.0.1 --out "$T/srv" >/dev/null
check "server certificate: serverAuth, SAN localhost and 127.0.0.1" \
	bash -c "openssl verify -CAfile '$T/ca/ca.pem' '$T/srv/server.pem' >/dev/null &&
		openssl x509 -in '$T/srv/server.pem' -noout -ext subjectAltName | grep -q 'DNS:localhost, IP Address:127.0.0.1'"

# ---- 9. values that reach the policy file are checked, never pasted into a program -----------
R9=$T/root9
mkroot "$R9"
for bad in 'x|e touch PWNED|' '.hidden' "$(printf 'a%.0s' {1..65})" 'term 1' 'a&b'; do
	rc=0
	out=$("$INSTALL" --root "$R9" --build-dir "$FAKE" --enroll-later --terminal-id "${bad//PWNED/$T/pwned}" 2>&1) || rc=$?
	check "--terminal-id '${bad:0:20}': usage error (2) that says why, nothing installed" \
		bash -c "[ $rc -eq 2 ] && grep -q 'bad --terminal-id' <<<'${out//\'/}' && [ ! -e '$R9/etc/mynaguard' ] && [ ! -e '$T/pwned' ]"
done
for bad in 'https://h:1$|e touch PWNED|' 'http://127.0.0.1:8443' 'https://u@h:8443' 'https://h:8443/a b' \
	'https://h:70000' "https://h:8443/&" 'https://h\x'; do
	rc=0
	out=$("$INSTALL" --root "$R9" --build-dir "$FAKE" --enroll-later --collector "${bad//PWNED/$T/pwned}" 2>&1) || rc=$?
	check "--collector '${bad:0:24}': usage error (2) that says why, nothing installed" \
		bash -c "[ $rc -eq 2 ] && grep -q 'bad --collector' <<<'${out//\'/}' && [ ! -e '$R9/etc/mynaguard' ] && [ ! -e '$T/pwned' ]"
done
rc=0
out=$("$INSTALL" --root "$R9" --build-dir "$FAKE" --enroll-later --terminal-id _term.A-1 \
	--collector 'https://[::1]:8443/mynaguard' 2>&1) || rc=$?
check "good --terminal-id and an IPv6 --collector with a path go into the policy as given" \
	bash -c "[ $rc -eq 0 ] && grep -q -x 'id = _term.A-1' '$R9/etc/mynaguard/policy.conf' &&
		grep -q -x 'collector = https://\[::1\]:8443/mynaguard' '$R9/etc/mynaguard/policy.conf'"

# ---- 10. --root into a directory without etc/passwd: an error that says why -----------------
if [ "$AS_ROOT" -eq 1 ]; then
	rc=0
	out=$("$INSTALL" --root "$T/empty-root" --build-dir "$FAKE" --enroll-later 2>&1) || rc=$?
	check "--root without etc/passwd: exit 1 naming etc/passwd (was a silent exit 2)" \
		bash -c "[ $rc -eq 1 ] && grep -q 'has no etc/passwd and etc/group' <<<'${out//\'/}'"
else
	echo "# not root: owners are not looked up, so --root without etc/passwd is not an error here"
fi

echo "1..$n"
[ "$fails" -eq 0 ] || { echo "$fails of $n failed"; exit 1; }
echo "$n passed, 0 failed"
