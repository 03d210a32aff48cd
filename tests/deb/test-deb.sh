#!/bin/bash
# SPDX-License-Identifier: MIT
# The Debian packages: built from the tree with dpkg-buildpackage (scripts/build-debs.sh),
# their contents and maintainer scripts, lintian with no error or warning, and
# scripts/make-apt-repo.sh: a signed repository that apt (with a private configuration, nothing
# of the host's apt touched) accepts, and refuses once a signed file is changed.
# Usage: test-deb.sh SOURCE_ROOT
set -uo pipefail
SRC=$(cd "$1" && pwd)
T=$(mktemp -d /tmp/mg-deb-test.XXXXXX)
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

# ---- build ----------------------------------------------------------------------------------
if ! "$SRC/scripts/build-debs.sh" "$T/out" >"$T/build.log" 2>&1; then
	cat "$T/build.log"
	fail "dpkg-buildpackage -us -uc -b builds the packages from the tree"
	echo "1..$n"
	exit 1
fi
ok "dpkg-buildpackage -us -uc -b builds the packages from the tree"
version=$(dpkg-parsechangelog -l "$SRC/debian/changelog" -S Version)
TERM_DEB=$T/out/mynaguard-terminal_${version}_amd64.deb
COLL_DEB=$T/out/mynaguard-collector_${version}_amd64.deb
check "mynaguard-terminal and mynaguard-collector $version are built" test -f "$TERM_DEB" -a -f "$COLL_DEB"

# ---- contents -------------------------------------------------------------------------------
dpkg-deb -c "$TERM_DEB" | awk '{ print $1, $2, $6 }' >"$T/term.list"
dpkg-deb -c "$COLL_DEB" | awk '{ print $1, $2, $6 }' >"$T/coll.list"
for f in ./usr/sbin/mynaguardd ./usr/sbin/mynaguard-uplink ./usr/sbin/mynaguardctl \
	./lib/systemd/system/mynaguardd.service ./lib/systemd/system/mynaguard-uplink.service \
	./lib/udev/rules.d/70-mynaguard.rules ./usr/share/pam-configs/mynaguard \
	./usr/share/mynaguard/mynaguard-setup.sh ./usr/share/mynaguard/policy.conf \
	./usr/share/mynaguard/modprobe/mynaguard-storage.conf ./usr/share/man/man8/mynaguardd.8.gz; do
	check "mynaguard-terminal ships $f" grep -q " $f\$" "$T/term.list"
done
check "mynaguard-terminal ships the PAM module next to Debian 12's pam_unix.so" \
	grep -q ' ./lib/x86_64-linux-gnu/security/pam_mynaguard.so$' "$T/term.list"
check "the helper is setuid root (4755 root/root)" \
	grep -q '^-rwsr-xr-x root/root ./usr/libexec/mynaguard-totp-check$' "$T/term.list"
check "no policy in /etc (the postinst makes it with the terminal's id)" \
	bash -c "! grep -q ' ./etc/mynaguard' '$T/term.list'"
for f in ./usr/sbin/mynaguard-collector ./usr/sbin/mynaguard-ca \
	./lib/systemd/system/mynaguard-collector.service ./usr/share/mynaguard-collector/collector.conf.example \
	./usr/share/mynaguard-collector/mynaguard-collector-setup.sh ./usr/share/man/man8/mynaguard-collector.8.gz; do
	check "mynaguard-collector ships $f" grep -q " $f\$" "$T/coll.list"
done
check "the terminal's files are not in the collector package" bash -c "! grep -q 'mynaguardd\|pam_mynaguard' '$T/coll.list'"

# The maintainer scripts run the installer's own logic (installer/mynaguard-setup.sh), not a copy.
dpkg-deb -e "$TERM_DEB" "$T/term.ctl"
dpkg-deb -x "$TERM_DEB" "$T/term.root"
check "the shipped setup logic is installer/mynaguard-setup.sh byte for byte" \
	cmp -s "$T/term.root/usr/share/mynaguard/mynaguard-setup.sh" "$SRC/installer/mynaguard-setup.sh"
check "install.sh sources the same file" grep -q '^\. "$SRC/installer/mynaguard-setup.sh"' "$SRC/installer/install.sh"
check "postinst runs package_configure from it" \
	bash -c "grep -q '^\s*\. /usr/share/mynaguard/mynaguard-setup.sh' '$T/term.ctl/postinst' && grep -q 'package_configure' '$T/term.ctl/postinst'"
check "prerm takes the code step out of PAM on remove (pam-auth-update --remove)" \
	bash -c "grep -q 'package_deconfigure' '$T/term.ctl/prerm' && grep -q 'pam-auth-update --package --remove mynaguard' '$SRC/installer/mynaguard-setup.sh'"
check "prerm does not stop the agent on upgrade (only on remove)" \
	bash -c "grep -q 'deb-systemd-invoke stop' '$T/term.ctl/prerm' && grep -B1 'deb-systemd-invoke stop' '$T/term.ctl/prerm' | grep -q '\"\$1\" = remove'"
check "the postinst restarts the agent on upgrade" grep -q "_dh_action=restart" "$T/term.ctl/postinst"
check "removal stops the uplink too (its unit is --no-start)" \
	grep -q 'deb-systemd-invoke stop mynaguard-uplink.service' "$T/term.root/usr/share/mynaguard/mynaguard-setup.sh"
check "the pam-auth-update profile is off by default (Default: no)" \
	grep -q '^Default: no$' "$T/term.root/usr/share/pam-configs/mynaguard"
check "maintainer scripts pass bash -n" bash -c "for f in postinst prerm postrm; do bash -n '$T/term.ctl/'\$f || exit 1; done"
dpkg-deb -e "$COLL_DEB" "$T/coll.ctl"
check "the collector's postinst runs collector-install.sh's logic (mynaguard-collector-setup.sh)" \
	bash -c "grep -q 'mynaguard-collector-setup.sh' '$T/coll.ctl/postinst' && grep -q '^\. \"\$SRC/installer/mynaguard-collector-setup.sh\"' '$SRC/installer/collector-install.sh'"

check "the collector's prerm stops the signer on remove, its postinst restarts an enabled one" \
	bash -c "grep -q \"deb-systemd-invoke stop 'mynaguard-signer.service'\" '$T/coll.ctl/prerm' &&
		grep -q \"deb-systemd-invoke \\\$_dh_action 'mynaguard-signer.service'\" '$T/coll.ctl/postinst'"
check "the collector's postinst enables the signer only for enroll_listen (setup.conf)" \
	bash -c "grep -q 'read_collector_setup_conf' '$T/coll.ctl/postinst' && grep -B2 'deb-systemd-helper enable mynaguard-signer' '$T/coll.ctl/postinst' | grep -q 'ENROLL_LISTEN'"
# the collector's setup.conf: checked like collector-install.sh's options
cat >"$T/csetup-check.sh" <<'EOS'
set -e
PROG=t
. "$1"
read_collector_setup_conf "$2"
echo "names=${NAMES[*]} ca=$CA_NAME ingest=$INGEST_LISTEN dash=$DASH_LISTEN enroll=$ENROLL_LISTEN"
EOS
printf '# test\nserver_names = c.example.lg.jp 10.0.0.5\nca_name = Test City CA\ningest_listen = 0.0.0.0:9443\ndashboard_listen = 127.0.0.1:9444\nenroll_listen = 0.0.0.0:8445\n' >"$T/csetup.conf"
check "collector setup.conf: every key read" \
	bash -c "[ \"\$(bash '$T/csetup-check.sh' '$SRC/installer/mynaguard-collector-setup.sh' '$T/csetup.conf')\" = 'names=c.example.lg.jp 10.0.0.5 ca=Test City CA ingest=0.0.0.0:9443 dash=127.0.0.1:9444 enroll=0.0.0.0:8445' ]"
printf '\nenroll_listen = 0.0.0.0:8445;touch x\n' >"$T/cbad.conf"
check "collector setup.conf: a bad enroll_listen is refused with the line number" \
	bash -c "! bash '$T/csetup-check.sh' '$SRC/installer/mynaguard-collector-setup.sh' '$T/cbad.conf' 2>'$T/err' && grep -q 'cbad.conf:2: bad enroll_listen' '$T/err'"
printf 'enroll = yes\n' >"$T/cbad.conf"
check "collector setup.conf: an unknown key is refused" \
	bash -c "! bash '$T/csetup-check.sh' '$SRC/installer/mynaguard-collector-setup.sh' '$T/cbad.conf' 2>'$T/err' && grep -q \"unknown key 'enroll'\" '$T/err'"

# setup.conf: the package's settings are checked like install.sh's options.
cat >"$T/setup-check.sh" <<'EOS'
set -e
PROG=t
. "$1"
read_setup_conf "$2"
echo "id=$TERMINAL_ID collector=$COLLECTOR admins=${ADMINS[*]} later=$ENROLL_LATER strict=$STRICT_USB"
EOS
printf '# test\nterminal_id = shimin-01\ncollector = https://c.example.lg.jp:8443\nadmins = alice bob\nenroll_later = no\nstrict_usb = yes\n' >"$T/setup.conf"
check "setup.conf: every key read" \
	bash -c "[ \"\$(bash '$T/setup-check.sh' '$SRC/installer/mynaguard-setup.sh' '$T/setup.conf')\" = 'id=shimin-01 collector=https://c.example.lg.jp:8443 admins=alice bob later=0 strict=1' ]"
printf 'terminal_id = ../x\n' >"$T/bad.conf"
check "setup.conf: a bad terminal id is refused with the line number" \
	bash -c "! bash '$T/setup-check.sh' '$SRC/installer/mynaguard-setup.sh' '$T/bad.conf' 2>'$T/err' && grep -q 'bad.conf:1: bad terminal_id' '$T/err'"
printf 'enroll_later = sure\n' >"$T/bad.conf"
check "setup.conf: enroll_later is yes or no" \
	bash -c "! bash '$T/setup-check.sh' '$SRC/installer/mynaguard-setup.sh' '$T/bad.conf' 2>'$T/err' && grep -q 'yes or no' '$T/err'"
printf 'collector = http://evil;rm\n' >"$T/bad.conf"
check "setup.conf: a bad collector URL is refused" \
	bash -c "! bash '$T/setup-check.sh' '$SRC/installer/mynaguard-setup.sh' '$T/bad.conf' 2>/dev/null"

# ---- lintian --------------------------------------------------------------------------------
lintian --pedantic -I --fail-on error,warning \
	"$T/out/mynaguard_${version}_amd64.changes" >"$T/lintian.log" 2>&1
rc=$?
sed 's/^/lintian| /' "$T/lintian.log" | grep -v '^lintian| N:'
check "lintian: no error and no warning (overrides explained in debian/*.lintian-overrides)" test "$rc" -eq 0
check "lintian: no override without a comment" \
	bash -c "for f in '$SRC'/debian/*.lintian-overrides; do awk '/^[^#]/ && prev !~ /^#/ { exit 1 } { prev = \$0 }' \"\$f\" || exit 1; done"

# ---- the signed repository ------------------------------------------------------------------
GNUPGHOME=$T/gnupg "$SRC/scripts/make-apt-repo.sh" --gnupghome "$T/gnupg" \
	--new-key "mynaguard test archive <archive@example.lg.jp>" "$T/repo" "$TERM_DEB" "$COLL_DEB" >"$T/repo.log" 2>&1
check "make-apt-repo.sh makes the repository" test $? -eq 0 -a -f "$T/repo/dists/mynaguard/InRelease"
# apt with a private root: its own sources, lists, cache and status; the host's are untouched.
A=$T/apt
mkdir -p "$A/etc/apt/sources.list.d" "$A/etc/apt/preferences.d" "$A/etc/apt/apt.conf.d" "$A/etc/apt/keyrings" \
	"$A/var/lib/apt/lists/partial" "$A/var/cache/apt/archives/partial" "$A/var/lib/dpkg"
: >"$A/var/lib/dpkg/status"
cp "$T/repo/mynaguard-archive-keyring.gpg" "$A/etc/apt/keyrings/"
echo "deb [signed-by=$A/etc/apt/keyrings/mynaguard-archive-keyring.gpg] file:$T/repo mynaguard main" \
	>"$A/etc/apt/sources.list"
apt_() {
	apt-get -o Dir="$A" -o Dir::State::status="$A/var/lib/dpkg/status" -o Dir::Etc="$A/etc/apt" \
		-o Debug::NoLocking=1 -o APT::Sandbox::User=root "$@"
}
apt_cache() {
	apt-cache -o Dir="$A" -o Dir::State::status="$A/var/lib/dpkg/status" -o Dir::Etc="$A/etc/apt" "$@"
}
apt_ update >"$T/apt.log" 2>&1
rc=$?
sed 's/^/apt| /' "$T/apt.log"
check "apt update accepts the signed repository (signed-by)" \
	bash -c "[ $rc -eq 0 ] && ! grep -q '^[WE]:' '$T/apt.log'"
check "apt sees mynaguard-terminal $version in it" \
	bash -c "apt-cache -o Dir='$A' -o Dir::State::status='$A/var/lib/dpkg/status' -o Dir::Etc='$A/etc/apt' policy mynaguard-terminal | grep -q 'Candidate: $version'"
# A changed Packages file no longer matches the signed Release: apt refuses it.
rm -rf "$A/var/lib/apt/lists" && mkdir -p "$A/var/lib/apt/lists/partial"
echo "Package: evil" >>"$T/repo/dists/mynaguard/main/binary-amd64/Packages"
gzip -9nkf "$T/repo/dists/mynaguard/main/binary-amd64/Packages"
apt_ update >"$T/apt2.log" 2>&1
check "apt refuses the repository once a signed file is changed" grep -q -i 'hash sum mismatch\|File has unexpected size' "$T/apt2.log"
# A repository signed by another key is refused.
rm -rf "$A/var/lib/apt/lists" "$T/repo" && mkdir -p "$A/var/lib/apt/lists/partial"
"$SRC/scripts/make-apt-repo.sh" --gnupghome "$T/gnupg2" --new-key "someone else <x@example.lg.jp>" \
	"$T/repo" "$TERM_DEB" >/dev/null 2>&1
apt_ update >"$T/apt3.log" 2>&1
check "apt refuses the repository signed by another key" grep -q 'NO_PUBKEY\|not signed' "$T/apt3.log"
unset -f apt_cache

echo "1..$n"
[ "$fails" -eq 0 ]
