#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Boots Debian's own kernel in QEMU (TCG) with a busybox + udev initramfs and runs one scenario.

The guest drives the timing: a scenario script (busybox sh, see guest/lib.sh) writes requests
on its second serial port (ttyS1); this script runs them through QMP (hot-plug with device_add /
device_del) and answers, collects the guest's PASS/FAIL results, and kills QEMU on timeout.

Exit status: 0 all checks passed, 1 a check failed or the guest never finished, 77 skipped (no
kernel and no way to fetch one, no QEMU, or the scenario needs mynaguardd and none was given).

Reusable parts: ensure_kernel() (fetch + cache Debian's kernel without installing it on the
host), Cpio and Initramfs (a newc archive written without root), Vm (QEMU with a console, a
control port and QMP).
"""

import argparse
import fcntl
import json
import os
import re
import select
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))

# Modules loaded by the guest's /init before udevd starts (all of USB, SCSI and HID are modules in
# Debian's kernel). usb_storage, uas, cdc_ether and rndis_host are loaded on purpose: a device
# that stays unbound must stay so because of authorization, not because its driver is missing.
GUEST_MODULES = ['xhci_pci', 'usb_storage', 'uas', 'sd_mod', 'usbhid', 'hid_generic', 'evdev',
                 'vfat', 'nls_cp437', 'nls_ascii', 'nls_utf8', 'nls_iso8859_1',
                 'cdc_ether', 'rndis_host', 'snd_usb_audio']


def log(msg):
    print(f'vmtest: {msg}', flush=True)


def skip(msg):
    log(f'SKIP: {msg}')
    sys.exit(SKIP)


# --------------------------------------------------------------------------------------------
# Kernel: Debian's linux-image-6.1.*-amd64, downloaded with apt-get and unpacked into a cache.

def default_cache_dirs(fallback):
    dirs = [os.environ.get('MYNAGUARD_VM_CACHE'), '/var/cache/mynaguard-vm', fallback]
    return [d for d in dirs if d]


def pick_cache_dir(dirs):
    for d in dirs:
        try:
            os.makedirs(d, exist_ok=True)
        except OSError:
            continue
        if os.access(d, os.W_OK | os.X_OK):
            return d
    return None


def cached_kernels(cache):
    """Kernel dirs in cache that finished unpacking, newest version last."""
    found = []
    try:
        names = os.listdir(cache)
    except OSError:
        return []
    for name in names:
        d = os.path.join(cache, name)
        if os.path.isfile(os.path.join(d, 'ready')):
            found.append(d)

    def key(d):
        return [int(x) if x.isdigit() else x for x in re.split(r'[.-]', os.path.basename(d))]
    return sorted(found, key=key)


def apt_kernel_package():
    """Name of the package that linux-image-amd64 depends on (e.g. linux-image-6.1.0-56-amd64)."""
    def query():
        try:
            out = subprocess.run(['apt-cache', 'depends', 'linux-image-amd64'],
                                 capture_output=True, text=True, timeout=60).stdout
        except (OSError, subprocess.TimeoutExpired):
            return None
        m = re.search(r'Depends:\s*(linux-image-\d\S*-amd64)\s*$', out, re.M)
        return m.group(1) if m else None
    pkg = query()
    if pkg is None and os.geteuid() == 0 and shutil.which('apt-get'):
        log('apt-cache knows no linux-image-amd64; running apt-get update')
        subprocess.run(['apt-get', 'update', '-q'], stdout=subprocess.DEVNULL, timeout=300)
        pkg = query()
    return pkg


def fetch_kernel(cache):
    """Download and unpack the kernel package into cache/<kver>/; returns that dir or None."""
    if not shutil.which('apt-get') or not shutil.which('dpkg-deb'):
        return None
    pkg = apt_kernel_package()
    if pkg is None:
        return None
    tmp = tempfile.mkdtemp(prefix='fetch-', dir=cache)
    try:
        log(f'downloading {pkg} into {cache}')
        r = subprocess.run(['apt-get', 'download', '-q', pkg], cwd=tmp, timeout=600,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        debs = [f for f in os.listdir(tmp) if f.endswith('.deb')]
        if r.returncode != 0 or not debs:
            log(f'apt-get download {pkg} failed: {r.stderr.strip()}')
            return None
        root = os.path.join(tmp, 'root')
        subprocess.run(['dpkg-deb', '-x', os.path.join(tmp, debs[0]), root], check=True)
        images = [f for f in os.listdir(os.path.join(root, 'boot')) if f.startswith('vmlinuz-')]
        if not images:
            log(f'{debs[0]} holds no vmlinuz')
            return None
        kver = images[0][len('vmlinuz-'):]
        dest = os.path.join(cache, kver)
        if os.path.isfile(os.path.join(dest, 'ready')):
            return dest
        shutil.rmtree(dest, ignore_errors=True)
        os.makedirs(os.path.join(dest, 'lib', 'modules'))
        os.rename(os.path.join(root, 'boot', images[0]), os.path.join(dest, 'vmlinuz'))
        os.rename(os.path.join(root, 'boot', 'config-' + kver), os.path.join(dest, 'config'))
        os.rename(os.path.join(root, 'lib', 'modules', kver),
                  os.path.join(dest, 'lib', 'modules', kver))
        subprocess.run(['depmod', '-b', dest, kver], check=True)
        with open(os.path.join(dest, 'ready'), 'w') as f:
            f.write(debs[0] + '\n')
        log(f'kernel {kver} cached in {dest}')
        return dest
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def ensure_kernel(cache_dirs):
    """A kernel dir (vmlinuz, lib/modules/<kver>/) from the first usable cache, fetching it
    there under a lock if none is cached yet. None if there is neither a cache nor apt."""
    for d in cache_dirs:
        k = cached_kernels(d)
        if k:
            return k[-1]
    cache = pick_cache_dir(cache_dirs)
    if cache is None:
        return None
    with open(os.path.join(cache, '.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel tests: one downloads, the others wait
        k = cached_kernels(cache)
        if k:
            return k[-1]
        return fetch_kernel(cache)


def kernel_version(kdir):
    return os.listdir(os.path.join(kdir, 'lib', 'modules'))[0]


# --------------------------------------------------------------------------------------------
# Initramfs: a newc cpio written directly (no root, no fakeroot: every entry is owned by 0:0).

class Cpio:
    def __init__(self):
        self.entries = {}  # guest path -> (mode, bytes)

    def _parents(self, path):
        parent = os.path.dirname(path)
        while parent not in ('/', ''):
            if parent not in self.entries:
                self.entries[parent] = (0o040755, b'')
            parent = os.path.dirname(parent)

    def dir(self, path, mode=0o755):
        self._parents(path)
        self.entries[path] = (0o040000 | mode, b'')

    def file(self, path, data, mode=0o644):
        if isinstance(data, str):
            data = data.encode()
        self._parents(path)
        self.entries[path] = (0o100000 | mode, data)

    def symlink(self, path, target):
        self._parents(path)
        self.entries[path] = (0o120777, target.encode())

    def write(self, out):
        ino = 1
        for path in sorted(self.entries, key=lambda p: p.count('/')) + ['TRAILER!!!']:
            if path == 'TRAILER!!!':
                mode, data, name = 0, b'', b'TRAILER!!!\0'
            else:
                mode, data = self.entries[path]
                name = path.lstrip('/').encode() + b'\0'
            hdr = '070701' + ''.join(f'{v:08x}' for v in (
                ino, mode, 0, 0, 2 if mode & 0o040000 else 1, 0, len(data), 0, 0, 0, 0,
                len(name), 0))
            out.write(hdr.encode() + name)
            out.write(b'\0' * (-(110 + len(name)) % 4))
            out.write(data)
            out.write(b'\0' * (-len(data) % 4))
            ino += 1


class Initramfs(Cpio):
    """A Cpio that mirrors the host's layout (usrmerge links) and copies host binaries with the
    closure of their shared libraries, so that binaries built on the host run in the guest."""

    def __init__(self):
        super().__init__()
        for top in ('/bin', '/sbin', '/lib', '/lib64'):
            if os.path.islink(top):
                self.symlink(top, os.readlink(top))
        for d in ('/dev', '/proc', '/sys', '/run', '/tmp', '/mnt', '/etc', '/root', '/var'):
            self.dir(d)
        self.dir('/tmp', 0o1777)

    @staticmethod
    def canon(path):
        """The host path with its directory resolved (/lib/x -> /usr/lib/x on usrmerge)."""
        return os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))

    def add_host(self, path, guest=None, mode=None):
        """Copy a host file (following and recreating symlinks) to the same place in the guest,
        or to guest if given (then symlinks are followed)."""
        if guest is not None:
            with open(path, 'rb') as f:
                self.file(guest, f.read(), mode if mode is not None else
                          os.stat(path).st_mode & 0o7777)
            return
        g = self.canon(path)
        if g in self.entries:
            return
        if os.path.islink(g):
            target = os.readlink(g)
            self.symlink(g, target)
            self.add_host(target if os.path.isabs(target)
                          else os.path.join(os.path.dirname(g), target))
            return
        with open(g, 'rb') as f:
            self.file(g, f.read(), os.stat(g).st_mode & 0o7777)

    def add_binary(self, path, guest=None, libdirs=()):
        """A dynamically linked host binary with the libraries ldd finds for it. Libraries found
        in libdirs (e.g. unpacked from a .deb that is not installed) go to the guest's
        standard library directory."""
        self.add_host(path, guest, 0o755)
        env = dict(os.environ)
        if libdirs:
            env['LD_LIBRARY_PATH'] = ':'.join(os.path.abspath(d) for d in libdirs)
        out = subprocess.run(['ldd', path], capture_output=True, text=True, env=env).stdout
        if 'not found' in out:
            raise RuntimeError(f'ldd {path}: a library is missing:\n{out}')
        libdir = self.canon('/lib/x86_64-linux-gnu')
        for line in out.splitlines():
            m = re.search(r'(?:=>\s*)?(/\S+)\s+\(0x', line)
            if not m:
                continue
            lib = m.group(1)
            if any(os.path.realpath(lib).startswith(os.path.realpath(d) + '/') for d in libdirs):
                self.add_host(lib, os.path.join(libdir, os.path.basename(lib)), 0o644)
            else:
                self.add_host(lib)

    def add_busybox(self, busybox):
        self.add_host(busybox)
        bb = self.canon(busybox)
        applets = subprocess.run([busybox, '--list-full'], capture_output=True,
                                 text=True).stdout.split()
        for a in applets:
            g = self.canon('/' + a) if os.path.isdir(os.path.dirname('/' + a)) else '/' + a
            if g not in self.entries:
                self.symlink(g, bb)

    def add_modules(self, kdir, modules, workdir):
        """The modprobe --show-depends closure of modules, with a fresh depmod."""
        kver = kernel_version(kdir)
        stage = os.path.join(workdir, 'modroot')
        src = os.path.join(kdir, 'lib', 'modules', kver)
        dst = os.path.join(stage, 'lib', 'modules', kver)
        os.makedirs(dst, exist_ok=True)
        for f in ('modules.order', 'modules.builtin', 'modules.builtin.modinfo'):
            if os.path.exists(os.path.join(src, f)):
                shutil.copy(os.path.join(src, f), dst)
        for mod in modules:
            out = subprocess.run(['modprobe', '-d', kdir, '-S', kver, '--show-depends', mod],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                raise RuntimeError(f'modprobe --show-depends {mod}: {out.stderr.strip()}')
            for line in out.stdout.splitlines():
                m = re.match(r'insmod (\S+)', line)
                if m:
                    rel = os.path.relpath(os.path.realpath(m.group(1)), os.path.realpath(src))
                    os.makedirs(os.path.dirname(os.path.join(dst, rel)), exist_ok=True)
                    shutil.copy(m.group(1), os.path.join(dst, rel))
        subprocess.run(['depmod', '-b', stage, kver], check=True)
        moddir = self.canon('/lib/modules')
        for root, _, files in os.walk(dst):
            for f in files:
                p = os.path.join(root, f)
                with open(p, 'rb') as fh:
                    self.file(os.path.join(moddir, kver, os.path.relpath(p, dst)), fh.read())


# --------------------------------------------------------------------------------------------
# QEMU with a console (ttyS0), a control port (ttyS1) and QMP, all on unix sockets.

class Vm:
    def __init__(self, workdir, kernel, initrd, append, extra_args, accel='tcg'):
        self.workdir = workdir
        self.sock = {n: os.path.join(workdir, n + '.sock') for n in ('qmp', 'ctl', 'con')}
        qemu = shutil.which('qemu-system-x86_64')
        self.argv = [
            qemu, '-M', 'q35', '-accel', accel, '-cpu', 'max', '-m', '512', '-smp', '1',
            '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
            '-kernel', kernel, '-initrd', initrd, '-append', append,
            '-chardev', f'socket,id=qmp,path={self.sock["qmp"]},server=on,wait=off',
            '-mon', 'chardev=qmp,mode=control',
            '-chardev', f'socket,id=ctl,path={self.sock["ctl"]},server=on,wait=off',
            # The console waits for us, so that no early line is lost.
            '-chardev', f'socket,id=con,path={self.sock["con"]},server=on,wait=on',
            '-serial', 'chardev:con', '-serial', 'chardev:ctl',
        ] + extra_args
        self.proc = None
        self.qmp = None
        self.qmp_buf = b''

    def _connect(self, path, deadline):
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(path)
                return s
            except OSError:
                s.close()
                if self.proc.poll() is not None:
                    raise RuntimeError(f'QEMU exited with status {self.proc.returncode}')
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def start(self):
        log('qemu: ' + ' '.join(shlex.quote(a) for a in self.argv))
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        self.con = self._connect(self.sock['con'], deadline)
        self.ctl = self._connect(self.sock['ctl'], deadline)
        self.qmp = self._connect(self.sock['qmp'], deadline)
        self._qmp_read()  # greeting
        self.qmp_cmd('qmp_capabilities')

    def _qmp_read(self):
        while b'\n' not in self.qmp_buf:
            r, _, _ = select.select([self.qmp], [], [], 60)
            if not r:
                raise TimeoutError('QMP did not answer')
            chunk = self.qmp.recv(65536)
            if not chunk:
                raise EOFError('QMP closed')
            self.qmp_buf += chunk
        line, self.qmp_buf = self.qmp_buf.split(b'\n', 1)
        return json.loads(line)

    def qmp_cmd(self, cmd, **args):
        msg = {'execute': cmd}
        if args:
            msg['arguments'] = args
        self.qmp.sendall(json.dumps(msg).encode() + b'\n')
        while True:
            r = self._qmp_read()
            if 'event' in r:
                continue
            if 'error' in r:
                raise RuntimeError(r['error'].get('desc', str(r['error'])))
            return r.get('return')

    def hmp(self, command_line):
        """Run a human monitor command; (ok, output). HMP reports errors as output text."""
        try:
            out = self.qmp_cmd('human-monitor-command', **{'command-line': command_line})
        except (RuntimeError, OSError, EOFError, TimeoutError) as e:
            return False, str(e)
        out = (out or '').strip()
        return not out.lower().startswith('error') and 'error:' not in out.lower(), out

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()  # by PID: only the QEMU that we started
        if self.proc:
            self.proc.wait()


def run_guest(vm, timeout, console_log):
    """Serve the guest's requests until it powers off or the deadline passes.
    Returns (passed, failed, finished)."""
    deadline = time.monotonic() + timeout
    passed = failed = 0
    finished = False
    ctl_buf = b''
    con_buf = b''
    socks = [vm.con, vm.ctl]
    while socks:
        left = deadline - time.monotonic()
        if left <= 0:
            log(f'TIMEOUT after {timeout} s: killing QEMU')
            break
        r, _, _ = select.select(socks, [], [], min(left, 1.0))
        if not r and vm.proc.poll() is not None:
            break
        for s in r:
            try:
                chunk = s.recv(65536)
            except OSError:
                chunk = b''
            if not chunk:
                socks.remove(s)
                continue
            if s is vm.con:
                con_buf += chunk
                *lines, con_buf = con_buf.split(b'\n')
                for line in lines:
                    text = line.decode('utf-8', 'replace').rstrip('\r')
                    console_log.write(text + '\n')
                    print('guest| ' + text, flush=True)
                continue
            ctl_buf += chunk
            *lines, ctl_buf = ctl_buf.split(b'\n')
            for line in lines:
                text = line.decode('utf-8', 'replace').strip()
                if text.startswith('HMP '):
                    ok, out = vm.hmp(text[4:])
                    out1 = ' '.join(out.split())
                    log(f'hmp {text[4:]!r} -> {"OK" if ok else "ERR"} {out1}')
                    vm.ctl.sendall(f'{"OK" if ok else "ERR"} {out1}\n'.encode())
                elif text.startswith('RESULT PASS'):
                    passed += 1
                elif text.startswith('RESULT FAIL'):
                    failed += 1
                elif text == 'END':
                    finished = True
                elif text:
                    log(f'guest control: {text}')
    if con_buf:
        print('guest| ' + con_buf.decode('utf-8', 'replace'), flush=True)
    return passed, failed, finished


# --------------------------------------------------------------------------------------------

def parse_scenario(path):
    """Directives in a scenario's comments: '#@qemu ARGS' (added to QEMU's command line),
    '#@agent' (needs mynaguardd), '#@policy LINE' (a line of the guest's policy file),
    '#@udev-first' (udevd starts before the USB drivers load, as in an initramfs)."""
    directives = {'qemu': [], 'agent': False, 'policy': [], 'udev-first': False}
    with open(path) as f:
        for line in f:
            m = re.match(r'#@([\w-]+)\s?(.*)$', line.rstrip('\n'))
            if not m:
                continue
            key, val = m.groups()
            if key == 'qemu':
                directives['qemu'] += shlex.split(val)
            elif key == 'agent':
                directives['agent'] = True
            elif key == 'udev-first':
                directives['udev-first'] = True
            elif key == 'policy':
                directives['policy'].append(val)
            else:
                raise ValueError(f'{path}: unknown directive #@{key}')
    return directives


def build_initramfs(args, kdir, directives, workdir):
    img = Initramfs()
    # kmod before busybox: busybox's own modprobe applet must not take the name.
    for tool in ('/sbin/modprobe', '/sbin/insmod', '/sbin/rmmod', '/sbin/lsmod'):
        img.add_host(tool)
    img.add_binary(os.path.realpath('/bin/kmod'))
    img.add_busybox(shutil.which('busybox') or '/bin/busybox')
    udevadm = shutil.which('udevadm') or '/bin/udevadm'
    img.add_binary(udevadm)
    for udevd in ('/lib/systemd/systemd-udevd', '/usr/lib/systemd/systemd-udevd'):
        if os.path.exists(udevd):
            img.add_host(udevd)
            break
    img.add_modules(kdir, GUEST_MODULES, workdir)
    img.file('/etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n')
    img.file('/etc/group', 'root:x:0:\ndisk:x:6:\ninput:x:101:\nplugdev:x:46:\n')
    img.dir('/etc/udev/rules.d')
    if args.rules:
        # The agent's compliance check expects the rule at this path.
        img.add_host(args.rules, '/etc/udev/rules.d/70-mynaguard.rules', 0o644)
    if args.agent:
        img.add_binary(args.agent, '/usr/sbin/mynaguardd')
    if directives['policy']:
        img.file('/etc/mynaguard/policy.conf', '\n'.join(directives['policy']) + '\n')
    img.add_host(os.path.join(HERE, 'guest', 'init.sh'), '/init', 0o755)
    img.add_host(os.path.join(HERE, 'guest', 'lib.sh'), '/vmtest/lib.sh', 0o644)
    img.add_host(args.scenario, '/vmtest/scenario.sh', 0o644)
    img.file('/vmtest/modules', '\n'.join(GUEST_MODULES) + '\n')
    img.file('/vmtest/env', f'VM_HAVE_AGENT={1 if args.agent else 0}\n'
             f'VM_HAVE_RULES={1 if args.rules else 0}\n'
             f'VM_UDEV_FIRST={1 if directives["udev-first"] else 0}\n')
    for extra in args.file or []:
        host, guest = extra.split('=', 1)
        img.add_host(host, guest)
    for extra in args.binary or []:
        host, guest = extra.split('=', 1)
        img.add_binary(host, guest, args.libdir or ())
    path = os.path.join(workdir, 'initrd.cpio')
    with open(path, 'wb') as f:
        img.write(f)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--scenario', required=True, help='guest scenario (busybox sh)')
    ap.add_argument('--rules', help='udev rules file installed as 70-mynaguard.rules')
    ap.add_argument('--agent', help='the built mynaguardd (scenarios marked #@agent need it)')
    ap.add_argument('--cache', action='append', help='kernel cache dir (first usable wins)')
    ap.add_argument('--fallback-cache', help='cache dir used when /var/cache is not writable')
    ap.add_argument('--timeout', type=int, default=480, help='kill QEMU after this many seconds')
    ap.add_argument('--file', action='append', help='HOST=GUEST: an extra file for the guest')
    ap.add_argument('--binary', action='append',
                    help='HOST=GUEST: an extra binary for the guest, with its libraries')
    ap.add_argument('--libdir', action='append',
                    help='where --binary finds libraries the host has not installed')
    ap.add_argument('--keep', action='store_true', help='keep the work dir')
    args = ap.parse_args()

    directives = parse_scenario(args.scenario)
    if args.agent and not os.path.exists(args.agent):
        log(f'no {args.agent} (not built): running without the agent')
        args.agent = None
    if directives['agent'] and not args.agent:
        skip('scenario needs mynaguardd, none was built')
    if not shutil.which('qemu-system-x86_64'):
        skip('qemu-system-x86_64 not installed')
    kdir = ensure_kernel(args.cache or default_cache_dirs(args.fallback_cache))
    if kdir is None:
        skip('no cached Debian kernel and no way to fetch one with apt-get')
    log(f'kernel {kernel_version(kdir)} from {kdir}')

    workdir = tempfile.mkdtemp(prefix='mynaguard-vm-')
    vm = None
    try:
        t0 = time.monotonic()
        initrd = build_initramfs(args, kdir, directives, workdir)
        log(f'initramfs {os.path.getsize(initrd) // 1024} KiB in {time.monotonic() - t0:.1f} s')
        drives = []
        for n in range(1, 9):
            img = os.path.join(workdir, f'stick{n}.img')
            subprocess.run(['mkfs.vfat', '-C', '-n', f'STICK{n}', img, '16384'], check=True,
                           stdout=subprocess.DEVNULL)
            drives += ['-drive', f'if=none,id=stick{n},format=raw,file={img}']
        extra = ['-device', 'qemu-xhci,id=xhci'] + drives + directives['qemu']
        append = 'console=ttyS0 panic=-1 loglevel=4 rdinit=/init'
        vm = Vm(workdir, os.path.join(kdir, 'vmlinuz'), initrd, append, extra)
        vm.start()
        with open(os.path.join(workdir, 'console.log'), 'w') as console_log:
            passed, failed, finished = run_guest(vm, args.timeout, console_log)
        vm.stop()
        log(f'guest ran {time.monotonic() - t0:.0f} s')
        if not finished:
            log('FAIL: the guest did not finish its scenario')
            failed += 1
        if passed == 0 and failed == 0:
            log('FAIL: the guest reported no result')
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


if __name__ == '__main__':
    sys.exit(main())
