#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The installer on a real Debian 12 booted with systemd, in QEMU (Debian's kernel, TCG).

Builds (once, cached) a Debian root file system with mmdebstrap, puts the built binaries and
the installer into it, boots it, and lets a oneshot unit run vm-guest.sh: install.sh refuses
to switch the code step on before an admin is enrolled, services start, a login through
pamtester (real /etc/pam.d, pam_unix + pam_mynaguard) asks for the code and accepts it, a USB
stick is blocked and a keyboard works, a second run changes nothing, --uninstall restores
/etc/pam.d, udev and systemd byte for byte. Reuses tests/vm/vmtest.py (kernel cache, QEMU,
the HMP/RESULT/END protocol). The guest is its own collector host too: collector-install.sh
with a fresh CA, and the uplink delivers the blocked stick to the dashboard.

Usage: vm-install.py SOURCE_ROOT BUILD_ROOT [--timeout S] [--keep]
Exit 0 pass, 1 fail, 77 skip (no QEMU, kernel, mmdebstrap or network for the first build).
"""
import argparse
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time

SKIP = 77
ROOTFS_PACKAGES = [
    'systemd-sysv', 'udev', 'kmod', 'libpam-runtime', 'libpam-modules', 'pamtester', 'oathtool',
    'openssl', 'passwd', 'login', 'procps', 'util-linux', 'libinih1', 'libjansson4', 'libcurl4',
    'liboath0', 'libqrencode4', 'libpng16-16', 'libssl3', 'libsystemd0', 'libudev1',
    'libevent-2.1-7', 'libevent-openssl-2.1-7', 'libevent-pthreads-2.1-7', 'libsqlite3-0', 'curl',
    'libpq5',  # the collector links libpq (the PostgreSQL store, docs/postgresql.md)
]
MIRRORS = ['deb http://deb.debian.org/debian bookworm main',
           'deb http://deb.debian.org/debian-security bookworm-security main']
BINARIES = ['agent/mynaguardd', 'uplink/mynaguard-uplink', 'ctl/mynaguardctl',
            'pam_module/pam_mynaguard.so', 'pam_module/mynaguard-totp-check',
            'collector/mynaguard-collector']


def log(msg):
    print(f'vm-install: {msg}', flush=True)


def skip(msg):
    log(f'SKIP: {msg}')
    sys.exit(SKIP)


def ensure_rootfs(cache):
    """A tarball of the Debian root file system, keyed by its package list; built once."""
    key = hashlib.sha256(('\n'.join(ROOTFS_PACKAGES + MIRRORS)).encode()).hexdigest()[:16]
    tar = os.path.join(cache, f'installer-rootfs-{key}.tar')
    if os.path.exists(tar):
        return tar
    if os.geteuid() != 0 or not shutil.which('mmdebstrap'):
        return None
    os.makedirs(cache, exist_ok=True)
    with open(os.path.join(cache, '.lock'), 'a') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(tar):
            return tar
        tmp = tar + '.tmp'
        log(f'building the Debian root file system with mmdebstrap (once): {tar}')
        r = subprocess.run(['mmdebstrap', '--variant=minbase', '--format=tar', '--include=' + ','.join(ROOTFS_PACKAGES),
                            '--aptopt=Acquire::Retries "3"', 'bookworm', tmp] + MIRRORS)
        if r.returncode != 0:
            if os.path.exists(tmp):
                os.unlink(tmp)
            return None
        os.rename(tmp, tar)
    return tar


INIT = r'''#!/bin/sh
# initramfs: load the disk drivers, mount the root file system, hand over to systemd
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev
for m in $(cat /modules); do /sbin/modprobe "$m" || echo "init: modprobe $m failed"; done
n=0
while [ ! -b /dev/vda ] && [ $n -lt 100 ]; do /bin/busybox sleep 0.1; n=$((n + 1)); done
/bin/busybox mkdir -p /newroot
/bin/busybox mount -t ext4 -o rw /dev/vda /newroot || { echo "init: cannot mount /dev/vda"; /bin/busybox poweroff -f; }
/bin/busybox umount /proc /sys
/bin/busybox mount --move /dev /newroot/dev
exec /bin/busybox switch_root /newroot /lib/systemd/systemd
'''

UNIT = '''[Unit]
Description=mynaguard installer test (vm-guest.sh)
After=systemd-user-sessions.service systemd-udev-settle.service
Wants=systemd-udev-settle.service

[Service]
Type=oneshot
ExecStart=/bin/bash /root/vmtest/vm-guest.sh
StandardOutput=tty
StandardError=tty
TTYPath=/dev/console
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
'''


def boot_debian(src, args, populate, guest_script, sticks=1, hostname='vm-terminal'):
    """Build the guest (the cached Debian root, the kernel's modules, populate(tree), the guest
    script as /root/vmtest/<name> run by a oneshot unit), boot it with `sticks` USB stick
    drives declared (stick1..N, plugged by the guest through vm_hmp), and return the exit
    status. Shared with tests/deb/vm-deb.py. Skips (77) like main() when something is missing."""
    sys.path.insert(0, os.path.join(src, 'tests', 'vm'))
    import vmtest  # noqa: E402

    if os.geteuid() != 0:
        skip('needs root (file owners in the guest image)')
    for t in ('qemu-system-x86_64', 'mke2fs', 'mkfs.vfat', 'busybox'):
        if not shutil.which(t) and not os.path.exists('/bin/' + t):
            skip(f'{t} not installed')
    kdir = vmtest.ensure_kernel(vmtest.default_cache_dirs(args.fallback_cache))
    if kdir is None:
        skip('no Debian kernel (cache empty and apt-get download impossible)')
    kver = vmtest.kernel_version(kdir)
    cache = os.environ.get('MYNAGUARD_VM_CACHE', '/var/cache/mynaguard-vm')
    rootfs = ensure_rootfs(cache)
    if rootfs is None:
        skip('no Debian root file system (mmdebstrap missing or no network)')

    workdir = tempfile.mkdtemp(prefix='mynaguard-vm-install-')
    vm = None
    try:
        t0 = time.monotonic()
        tree = os.path.join(workdir, 'tree')
        os.mkdir(tree)
        subprocess.run(['tar', '-C', tree, '-xf', rootfs], check=True)
        # The kernel's modules, then what the test puts in.
        os.makedirs(os.path.join(tree, 'usr', 'lib', 'modules'), exist_ok=True)
        subprocess.run(['cp', '-a', os.path.join(kdir, 'lib', 'modules', kver),
                        os.path.join(tree, 'usr', 'lib', 'modules', kver)], check=True)
        populate(tree)
        vt = os.path.join(tree, 'root', 'vmtest')
        os.makedirs(vt, exist_ok=True)
        shutil.copy(os.path.join(src, 'tests', 'vm', 'guest', 'lib.sh'), vt)
        shutil.copy(guest_script, os.path.join(vt, 'vm-guest.sh'))
        unit = os.path.join(tree, 'etc', 'systemd', 'system', 'mynaguard-vmtest.service')
        with open(unit, 'w') as f:
            f.write(UNIT)
        wants = os.path.join(tree, 'etc', 'systemd', 'system', 'multi-user.target.wants')
        os.makedirs(wants, exist_ok=True)
        os.symlink('/etc/systemd/system/mynaguard-vmtest.service',
                   os.path.join(wants, 'mynaguard-vmtest.service'))
        with open(os.path.join(tree, 'etc', 'fstab'), 'w') as f:
            f.write('/dev/vda / ext4 rw,errors=remount-ro 0 1\n')
        with open(os.path.join(tree, 'etc', 'hostname'), 'w') as f:
            f.write(hostname + '\n')
        # No login prompt on the console: the test's output goes there.
        os.symlink('/dev/null', os.path.join(tree, 'etc', 'systemd', 'system', 'serial-getty@ttyS0.service'))
        img = os.path.join(workdir, 'root.img')
        subprocess.run(['mke2fs', '-q', '-t', 'ext4', '-d', tree, img, '1536M'], check=True)
        shutil.rmtree(tree)

        initrd = vmtest.Initramfs()
        for tool in ('/sbin/modprobe', '/sbin/insmod'):
            initrd.add_host(tool)
        initrd.add_binary(os.path.realpath('/bin/kmod'))
        initrd.add_busybox(shutil.which('busybox') or '/bin/busybox')
        mods = ['virtio_pci', 'virtio_blk', 'ext4']
        initrd.add_modules(kdir, mods, workdir)
        initrd.file('/init', INIT, 0o755)
        initrd.file('/modules', '\n'.join(mods) + '\n')
        initrd_path = os.path.join(workdir, 'initrd.cpio')
        with open(initrd_path, 'wb') as f:
            initrd.write(f)
        extra = ['-m', '1024', '-drive', f'file={img},if=virtio,format=raw',
                 '-device', 'qemu-xhci,id=xhci']
        for n in range(1, sticks + 1):
            stick = os.path.join(workdir, f'stick{n}.img')
            subprocess.run(['mkfs.vfat', '-C', '-n', f'STICK{n}', stick, '16384'], check=True,
                           stdout=subprocess.DEVNULL)
            extra += ['-drive', f'if=none,id=stick{n},format=raw,file={stick}']
        log(f'image and initramfs ready in {time.monotonic() - t0:.0f} s')

        append = 'console=ttyS0 panic=-1 loglevel=4 rdinit=/init systemd.show_status=0'
        vm = vmtest.Vm(workdir, os.path.join(kdir, 'vmlinuz'), initrd_path, append, extra)
        vm.start()
        with open(os.path.join(workdir, 'console.log'), 'w') as console_log:
            passed, failed, finished = vmtest.run_guest(vm, args.timeout, console_log)
        vm.stop()
        log(f'guest ran {time.monotonic() - t0:.0f} s')
        if not finished:
            log('FAIL: the guest did not finish')
            failed += 1
        if passed == 0 and failed == 0:
            failed += 1
        print(f'{passed} passed, {failed} failed', flush=True)
        return 1 if failed else 0
    finally:
        if vm:
            vm.stop()
        if args.keep:
            log(f'work dir kept: {workdir}')
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('source')
    ap.add_argument('build')
    ap.add_argument('--timeout', type=int, default=900)
    ap.add_argument('--keep', action='store_true')
    ap.add_argument('--fallback-cache')
    args = ap.parse_args()
    src = os.path.abspath(args.source)
    build = os.path.abspath(args.build)
    for b in BINARIES:
        if not os.path.exists(os.path.join(build, b)):
            skip(f'{b} not built')

    def populate(tree):
        # The tree to install from: the installer, the shipped policy, the built binaries.
        mg = os.path.join(tree, 'root', 'mynaguard')
        os.makedirs(os.path.join(mg, 'policy'))
        shutil.copytree(os.path.join(src, 'installer'), os.path.join(mg, 'installer'))
        shutil.copy(os.path.join(src, 'policy', 'policy.conf'), os.path.join(mg, 'policy'))
        for b in BINARIES:
            os.makedirs(os.path.join(mg, 'build', os.path.dirname(b)), exist_ok=True)
            shutil.copy2(os.path.join(build, b), os.path.join(mg, 'build', b))
        open(os.path.join(mg, 'build', 'build.ninja'), 'w').close()

    return boot_debian(src, args, populate, os.path.join(src, 'tests', 'installer', 'vm-guest.sh'))


if __name__ == '__main__':
    sys.exit(main())
