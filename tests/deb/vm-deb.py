#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The Debian packages on a real Debian 12 booted with systemd, in QEMU (Debian's kernel, TCG).

On the host: builds the packages twice from the tree (scripts/build-debs.sh: the changelog's
version and a newer local one, 0.1.0 and 0.1.0+vmtest1 with --version; the tree is not
changed) and makes one signed repository of both (scripts/make-apt-repo.sh, a key generated
for the test). The guest is the installer test's (tests/installer/vm-install.py: the cached
mmdebstrap root, built the same way when missing). vm-deb-guest.sh then: installs from the
repository with apt (signed-by), the code step stays off until an administrator is enrolled,
the collector package installs with enrollment switched on by its setup.conf (the signer
running) and backs up, the terminal enrolls with a one-time token (a second use is refused), a
stick is blocked, the upgrade runs while the agent runs and a second stick is plugged in the
middle of it (no usb-storage bind, no disk, at any time), the spool, codes, policy and TLS
files survive, login with the code works after it, the certificate is renewed
(--renew-now) and events keep arriving with the old one revoked, and purge leaves /etc/pam.d (and udev, systemd, modprobe) byte for byte as before.

Usage: vm-deb.py SOURCE_ROOT [--timeout S] [--keep] [--fallback-cache DIR]
Exit 0 pass, 1 fail, 77 skip (no QEMU, kernel, mmdebstrap or network for the first build).
"""
import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile

NEW_VERSION = '0.1.0+vmtest1'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('source')
    ap.add_argument('--timeout', type=int, default=1500)
    ap.add_argument('--keep', action='store_true')
    ap.add_argument('--fallback-cache')
    args = ap.parse_args()
    src = os.path.abspath(args.source)
    spec = importlib.util.spec_from_file_location(
        'vm_install', os.path.join(src, 'tests', 'installer', 'vm-install.py'))
    vm_install = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(vm_install)

    work = tempfile.mkdtemp(prefix='mynaguard-vm-deb-')
    try:
        for out, extra in (('v1', []), ('v2', ['--version', NEW_VERSION])):
            r = subprocess.run([os.path.join(src, 'scripts', 'build-debs.sh'),
                                os.path.join(work, out)] + extra,
                               stdout=subprocess.DEVNULL)
            if r.returncode != 0:
                print('vm-deb: FAIL: scripts/build-debs.sh failed', flush=True)
                return 1
        debs = [os.path.join(work, v, f) for v in ('v1', 'v2')
                for f in sorted(os.listdir(os.path.join(work, v)))
                if f.endswith('.deb') and '-dbgsym_' not in f]
        r = subprocess.run([os.path.join(src, 'scripts', 'make-apt-repo.sh'),
                            '--gnupghome', os.path.join(work, 'gnupg'),
                            '--new-key', 'mynaguard vm test archive <archive@example.lg.jp>',
                            os.path.join(work, 'repo')] + debs)
        if r.returncode != 0:
            print('vm-deb: FAIL: scripts/make-apt-repo.sh failed', flush=True)
            return 1

        def populate(tree):
            shutil.copytree(os.path.join(work, 'repo'), os.path.join(tree, 'srv', 'mynaguard-repo'))
            with open(os.path.join(tree, 'root', 'new-version'), 'w') as f:
                f.write(NEW_VERSION + '\n')

        return vm_install.boot_debian(src, args, populate,
                                      os.path.join(src, 'tests', 'deb', 'vm-deb-guest.sh'),
                                      sticks=3)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
