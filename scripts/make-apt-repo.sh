#!/bin/sh
# SPDX-License-Identifier: MIT
# Turns built .deb files (scripts/build-debs.sh) into a signed apt repository directory, to copy
# to the city's internal mirror or file server (docs/install.md, "Debian packages").
#
# Usage: scripts/make-apt-repo.sh [OPTIONS] OUTDIR DEB...
#   --key ID          sign with this gpg key (fingerprint, id or e-mail) from the keyring
#   --gnupghome DIR   the gpg home that holds the key (default: $GNUPGHOME or ~/.gnupg)
#   --new-key NAME    make a signing key NAME (ed25519, no passphrase) in --gnupghome when it
#                     holds none yet, and sign with it (tests, or a first setup on an offline
#                     build machine: keep that directory safe)
#   --codename NAME   the distribution name in sources.list (default: mynaguard)
#
# OUTDIR gets pool/main/*.deb, dists/NAME/{Release,Release.gpg,InRelease},
# dists/NAME/main/binary-ARCH/Packages{,.gz} and mynaguard-archive-keyring.gpg (the public key,
# for signed-by=). A terminal then uses, with the key in /etc/apt/keyrings/:
#   deb [signed-by=/etc/apt/keyrings/mynaguard-archive-keyring.gpg] URL NAME main
# Running it again with more .deb files adds them (old versions stay in the pool).
set -eu
key="" newkey="" codename=mynaguard own_home=""
while [ $# -gt 0 ]; do
	case $1 in
	--key) key=${2:?--key needs a key id}; shift 2 ;;
	--gnupghome) GNUPGHOME=${2:?--gnupghome needs a directory}; export GNUPGHOME; own_home=1; shift 2 ;;
	--new-key) newkey=${2:?--new-key needs a name}; shift 2 ;;
	--codename) codename=${2:?--codename needs a name}; shift 2 ;;
	-h | --help) sed -n '3,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "make-apt-repo: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
[ $# -ge 2 ] || { echo "usage: make-apt-repo.sh [--key ID | --new-key NAME] [--gnupghome DIR] OUTDIR DEB..." >&2; exit 2; }
case $codename in
*[!A-Za-z0-9._-]* | "") echo "make-apt-repo: bad --codename '$codename'" >&2; exit 2 ;;
esac
[ -n "$key$newkey" ] || { echo "make-apt-repo: give --key ID (or --new-key NAME)" >&2; exit 2; }
for t in apt-ftparchive gpg dpkg-deb; do
	command -v $t >/dev/null || { echo "make-apt-repo: $t missing (apt-utils, gnupg, dpkg)" >&2; exit 2; }
done
out=$1
shift
for deb in "$@"; do
	dpkg-deb -f "$deb" Package >/dev/null 2>&1 || { echo "make-apt-repo: $deb is no .deb file" >&2; exit 1; }
done

if [ -n "$own_home" ]; then
	mkdir -p "$GNUPGHOME" && chmod 0700 "$GNUPGHOME"
	GNUPGHOME=$(cd "$GNUPGHOME" && pwd)
	# the gpg-agent this started for that home ends with the script
	trap 'gpgconf --kill gpg-agent 2>/dev/null || true' EXIT
fi
if [ -n "$newkey" ] && [ -z "$key" ]; then
	if ! gpg --batch --list-secret-keys "$newkey" >/dev/null 2>&1; then
		gpg --batch --quiet --passphrase '' --quick-generate-key "$newkey" ed25519 sign never
		echo "make-apt-repo: made the signing key '$newkey' in ${GNUPGHOME:-~/.gnupg}"
	fi
	key=$newkey
fi
fpr=$(gpg --batch --with-colons --list-secret-keys "$key" 2>/dev/null | awk -F: '$1 == "fpr" { print $10; exit }')
[ -n "$fpr" ] || { echo "make-apt-repo: no secret key '$key' in ${GNUPGHOME:-~/.gnupg}" >&2; exit 1; }

mkdir -p "$out/pool/main"
for deb in "$@"; do cp "$deb" "$out/pool/main/"; done
cd "$out"
archs=$(for d in pool/main/*.deb; do dpkg-deb -f "$d" Architecture; done | sort -u | grep -v '^all$' || true)
[ -n "$archs" ] || archs=amd64
rm -rf "dists/$codename"
for a in $archs; do
	d=dists/$codename/main/binary-$a
	mkdir -p "$d"
	apt-ftparchive --arch "$a" packages pool/main >"$d/Packages"
	gzip -9nk "$d/Packages"
done
apt-ftparchive \
	-o APT::FTPArchive::Release::Origin=mynaguard \
	-o APT::FTPArchive::Release::Label=mynaguard \
	-o APT::FTPArchive::Release::Suite="$codename" \
	-o APT::FTPArchive::Release::Codename="$codename" \
	-o APT::FTPArchive::Release::Architectures="$(echo "$archs" | tr '\n' ' ' | sed 's/ $//')" \
	-o APT::FTPArchive::Release::Components=main \
	-o APT::FTPArchive::Release::Description="mynaguard packages" \
	release "dists/$codename" >"dists/$codename/Release.tmp"
mv "dists/$codename/Release.tmp" "dists/$codename/Release"
gpg --batch --yes --quiet --local-user "$fpr" --armor --detach-sign \
	--output "dists/$codename/Release.gpg" "dists/$codename/Release"
gpg --batch --yes --quiet --local-user "$fpr" --clearsign \
	--output "dists/$codename/InRelease" "dists/$codename/Release"
gpg --batch --yes --export "$fpr" >mynaguard-archive-keyring.gpg
echo "make-apt-repo: $(pwd): $(ls pool/main | wc -l) packages, signed by $fpr"
echo "  on a terminal: copy mynaguard-archive-keyring.gpg to /etc/apt/keyrings/ and add"
echo "  deb [signed-by=/etc/apt/keyrings/mynaguard-archive-keyring.gpg] URL-OF-THIS-DIRECTORY $codename main"
