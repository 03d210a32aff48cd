#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# mynaguardctl status against fixture trees (policy, state, TOTP store, spool, passwd, PAM dir,
# USB devices under umockdev-run), and usb allow keeping the install manifest in step.
import base64
import hashlib
import hmac
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib

CTL, UMOCKDEV_RUN = sys.argv[1], sys.argv[2]
failures = []


def check(cond, what, out=""):
    if cond:
        print(f"ok - {what}")
    else:
        print(f"FAIL - {what}\n--- output ---\n{out}\n--------------")
        failures.append(what)


def env():
    e = dict(os.environ)
    # umockdev's preload library with an ASan binary
    e["ASAN_OPTIONS"] = (e.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0").lstrip(":")
    return e


HUB = """P: /devices/pci0000:00/0000:00:14.0/usb1
N: bus/usb/001/001
E: DEVTYPE=usb_device
E: SUBSYSTEM=usb
A: idVendor=1d6b
A: idProduct=0002
A: authorized=1
A: interface_authorized_default=0
A: bDeviceClass=09

"""
STICK = """P: /devices/pci0000:00/0000:00:14.0/usb1/1-1
N: bus/usb/001/002
E: DEVTYPE=usb_device
E: SUBSYSTEM=usb
A: idVendor=0781
A: idProduct=5581
A: serial=4C530001
A: authorized=1

P: /devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0
E: DEVTYPE=usb_interface
E: SUBSYSTEM=usb
A: bInterfaceClass=08
A: bInterfaceSubClass=06
A: bInterfaceProtocol=50
A: authorized={auth}

"""
KEYBOARD = """P: /devices/pci0000:00/0000:00:14.0/usb1/1-2
N: bus/usb/001/003
E: DEVTYPE=usb_device
E: SUBSYSTEM=usb
A: idVendor=046d
A: idProduct=c31c
A: authorized=1

P: /devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0
E: DEVTYPE=usb_interface
E: SUBSYSTEM=usb
A: bInterfaceClass=03
A: bInterfaceSubClass=01
A: bInterfaceProtocol=01
A: authorized=1

"""


def record(seq, payload):
    head = struct.pack("<IIQ", 0x3153474D, len(payload), seq)
    crc = zlib.crc32(payload, zlib.crc32(head)) & 0xFFFFFFFF
    return head + struct.pack("<I", crc) + payload


def ts(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % (int(t * 1000) % 1000)


def event(seq, kind, data, t, clause=()):
    return json.dumps({"v": 1, "terminal": "T-STATUS-1", "seq": seq, "ts": ts(t), "kind": kind,
                       "clause": list(clause), "data": data}, separators=(",", ":")).encode()


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def totp_code(b32, t=None):
    """RFC 6238, SHA-1, 6 digits, 30 s (the code the clerk's app shows)."""
    key = base64.b32decode(b32)
    counter = int((time.time() if t is None else t) // 30)
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    o = mac[-1] & 15
    return "%06d" % ((struct.unpack(">I", mac[o:o + 4])[0] & 0x7fffffff) % 1000000)


class Fixture:
    def __init__(self, top):
        self.top = top
        self.policy = os.path.join(top, "policy.conf")
        self.state = os.path.join(top, "state")
        self.store = os.path.join(self.state, "totp")
        self.spool = os.path.join(top, "spool")
        self.sock = os.path.join(top, "event.sock")
        self.pam = os.path.join(top, "pam.d")
        self.passwd = os.path.join(top, "passwd")
        self.devices = os.path.join(top, "usb.umockdev")
        for d in (self.state, self.spool, self.pam):
            os.makedirs(d)
        os.chmod(self.state, 0o755)
        with open(self.policy, "w") as f:
            f.write("[terminal]\nid = T-STATUS-1\n\n[usb]\nmode = enforce\n\n"
                    "[mfa]\nservices = login\n\n"
                    "[report]\ncollector = https://127.0.0.1:9/\n\n"
                    f"[checks]\npam_dir = {self.pam}\nmin_uid = 1000\n"
                    "usb.default_deny = no\ntime.synchronized = no\n")
        with open(os.path.join(self.pam, "login"), "w") as f:
            f.write("auth required pam_unix.so\nauth required pam_mynaguard.so\n")
        self.write_passwd([])
        # enroll refuses users the system does not know: alice comes from nss_wrapper
        e = env()
        e.update(LD_PRELOAD="libnss_wrapper.so", NSS_WRAPPER_PASSWD=self.passwd,
                 NSS_WRAPPER_GROUP="/dev/null")
        r = subprocess.run([CTL, "--policy", self.policy, "--yes", "totp", "enroll", "alice",
                            "--store", self.store, "--secret-file", "-", "--no-qr"],
                           input="JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n", capture_output=True,
                           text=True, env=e)
        check(r.returncode == 0, "fixture: totp enroll alice", r.stdout + r.stderr)
        # an enrollment counts once verified with a code from the app
        r = subprocess.run([CTL, "--policy", self.policy, "totp", "verify", "alice",
                            "--store", self.store],
                           input=totp_code("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP") + "\n",
                           capture_output=True, text=True, env=e)
        check(r.returncode == 0, "fixture: totp verify alice", r.stdout + r.stderr)
        self.write_manifest()
        now = time.time()
        snap = {"policy_hash": "sha256:" + sha256(self.policy), "policy_path": self.policy,
                "interval_s": 900, "compliant": True,
                "checks": [{"id": "usb.default_deny", "clause": ["2-6-3-a"], "status": "pass",
                            "detail": "1 root hub with interface_authorized_default=0"},
                           {"id": "mfa.enrollment", "clause": ["2-6-3-a"], "status": "pass",
                            "detail": "1 interactive user enrolled"}]}
        self.records = [(1, event(1, "agent.started", {}, now - 120)),
                        (2, event(2, "compliance", snap, now - 60, ["2-6-3-a"])),
                        (3, event(3, "usb.blocked", {"vendor": "0781"}, now - 30))]
        self.write_spool(self.records, acked=1)
        self.write_devices("0")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.listener.bind(self.sock)

    def write_passwd(self, extra):
        with open(self.passwd, "w") as f:
            f.write("root:x:0:0:root:/root:/bin/bash\n"
                    "alice:x:1000:1000:Alice:/home/alice:/bin/bash\n"
                    "svc:x:1001:1001::/nonexistent:/usr/sbin/nologin\n")
            f.writelines(extra)

    def write_manifest(self, extra_lines=""):
        path = os.path.join(self.state, "installed.sha256")
        with open(path, "w") as f:
            f.write("# written by install.sh\n")
            f.write(f"{sha256(self.policy)}  {self.policy}\n")
            f.write(extra_lines)
        os.chmod(path, 0o644)

    def write_spool(self, records, acked):
        for n in os.listdir(self.spool):
            os.unlink(os.path.join(self.spool, n))
        with open(os.path.join(self.spool, "seg-%020d" % records[0][0]), "wb") as f:
            for seq, payload in records:
                f.write(record(seq, payload))
        with open(os.path.join(self.spool, "acked"), "w") as f:
            f.write(f"{acked}\n")

    def write_devices(self, stick_auth):
        with open(self.devices, "w") as f:
            f.write(HUB + STICK.replace("{auth}", stick_auth) + KEYBOARD)

    def status(self, *extra, policy=None):
        cmd = [UMOCKDEV_RUN, "-d", self.devices, "--", CTL, "--policy", policy or self.policy,
               "status", "--state", self.state, "--spool", self.spool, "--socket", self.sock,
               "--passwd", self.passwd, *extra]
        r = subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=30)
        # --json: stdout alone (sanitizers may add a summary on stderr)
        return r.returncode, r.stdout if "--json" in extra else r.stdout + r.stderr


def main():
    with tempfile.TemporaryDirectory() as top:
        fx = Fixture(top)
        rc, out = fx.status()
        check(rc == 0, "compliant fixture: exit 0", out)
        for want in [f"policy:  {fx.policy} (valid)",
                     "terminal T-STATUS-1, usb mode enforce",
                     f"hash sha256:{sha256(fx.policy)}",
                     f"agent:   running, event socket {fx.sock}",
                     "seq 3 usb.blocked",
                     "last compliance snapshot ",
                     "seq 2 (1 min ago): compliant",
                     "  pass            mfa.enrollment             1 interactive user enrolled",
                     "pass            usb.default_deny           1 root hub",
                     "not_applicable  time.synchronized          disabled by policy",
                     "pass            agent.integrity",
                     "pass            usb.no_unapproved_storage",
                     "usb:     mode enforce, 2 devices, 1 blocked interface present (0 of them authorized)",
                     "root hub usb1 interface_authorized_default=0",
                     "mfa:     services login",
                     f"1 enrolled in {fx.store}",
                     "1 interactive user\n",
                     "uplink:  collector https://127.0.0.1:9/",
                     "acked through 1",
                     "backlog 2 records, ",
                     "OK: compliant"]:
            check(want in out, f"compliant fixture shows {want!r}", out)

        rc, out = fx.status("--json")
        try:
            j = json.loads(out)
        except ValueError:
            j = None
        check(rc == 0 and j is not None, "--json: exit 0 and one JSON object", out)
        if j:
            check(j["compliant"] is True and j["problems"] == [], "--json: compliant", out)
            check(j["policy"]["hash"] == "sha256:" + sha256(fx.policy), "--json: policy hash", out)
            check(j["agent"]["running"] is True and j["agent"]["last_compliance"]["seq"] == 2,
                  "--json: agent running, snapshot seq 2", out)
            check(j["uplink"]["backlog_records"] == 2 and j["uplink"]["acked_through"] == 1,
                  "--json: backlog", out)
            check(j["usb"]["root_hubs"] == [{"name": "usb1", "interface_authorized_default": "0"}]
                  and j["usb"]["blocked_interfaces"] == 1, "--json: usb", out)
            check(j["mfa"]["enrolled"] == 1 and j["mfa"]["not_enrolled"] == [],
                  "--json: mfa", out)
            check([c["id"] for c in j["checks"]][0] == "usb.default_deny" and len(j["checks"]) == 7,
                  "--json: seven checks", out)

        # the agent is not running: socket file left behind, then none at all
        fx.listener.close()
        rc, out = fx.status()
        check(rc == 1 and "NOT COMPLIANT:" in out and "agent mynaguardd is not running: nobody listens"
              in out, "stale socket: not running, exit 1", out)
        os.unlink(fx.sock)
        rc, out = fx.status()
        check(rc == 1 and f"agent mynaguardd is not running: no event socket {fx.sock}" in out,
              "no socket: not running, exit 1", out)
        fx.listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        fx.listener.bind(fx.sock)

        # a storage stick whose interface is authorized
        fx.write_devices("1")
        rc, out = fx.status()
        check(rc == 1 and "(1 of them authorized)" in out and
              "  - usb.no_unapproved_storage: 1-1:1.0 (0781:5581 serial=4C530001) authorized" in out,
              "authorized storage: exit 1 with the reason", out)
        fx.write_devices("0")

        # an interactive user without a code
        fx.write_passwd(["bob:x:1002:1002::/home/bob:/bin/sh\n"])
        rc, out = fx.status()
        check(rc == 1 and "2 interactive users, without a code: bob" in out and
              "  - mfa.enrollment: " in out and "bob" in out.split("  - mfa.enrollment: ")[1],
              "unenrolled user: exit 1 with the reason", out)
        fx.write_passwd([])

        # enrollment is counted as mfa.enrollment counts it: a record of a user who is gone
        # is not an enrolled user, and an empty record is a bad one, not an enrolled one
        for name, text in (("gone", "mynaguard-totp 1\n"), ("bob", "")):
            with open(os.path.join(fx.store, name), "w") as f:
                f.write(text)
            os.chmod(os.path.join(fx.store, name), 0o600)
        rc, out = fx.status()
        check(rc == 0 and f"1 enrolled in {fx.store}" in out and "bad records" not in out,
              "stale record of a removed user: not counted as enrolled", out)
        fx.write_passwd(["bob:x:1002:1002::/home/bob:/bin/sh\n"])
        rc, out = fx.status()
        check(rc == 1 and f"1 enrolled in {fx.store}" in out and
              "bad records: bob (empty record)" in out and
              "  - mfa.enrollment: bad record: bob (empty record)" in out,
              "empty record: a bad record, not enrolled, exit 1", out)
        rc, out = fx.status("--json")
        try:
            j = json.loads(out)["mfa"]
        except (ValueError, KeyError):
            j = {}
        check(j.get("enrolled") == 1 and j.get("interactive_users") == 2 and
              j.get("not_enrolled") == [] and j.get("bad_records") == ["bob (empty record)"],
              "--json: enrolled, bad_records", out)
        # a pending enrollment (not verified yet) is not enrolled either, and is named
        with open(os.path.join(fx.store, "bob"), "w") as f:
            f.write("mynaguard-totp 2\ntype totp\nserial -\nenrolled 1764097538\nverified 0\n"
                    "secret JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n")
        rc, out = fx.status()
        check(rc == 1 and f"1 enrolled in {fx.store}" in out and
              "without a code: bob" in out and
              "pending (mynaguardctl totp verify USER): bob" in out and
              "  - mfa.enrollment: not enrolled: bob (enrollment pending verification)" in out,
              "pending enrollment: not enrolled, named as pending, exit 1", out)
        rc, out = fx.status("--json")
        try:
            j = json.loads(out)["mfa"]
        except (ValueError, KeyError):
            j = {}
        check(j.get("enrolled") == 1 and j.get("not_enrolled") == ["bob"] and
              j.get("pending") == ["bob"], "--json: pending", out)
        for name in ("gone", "bob"):
            os.unlink(os.path.join(fx.store, name))
        fx.write_passwd([])

        # an old backlog: the uplink is stuck
        old = time.time() - 3 * 3600
        fx.write_spool([(5, event(5, "agent.started", {}, old)),
                        (6, event(6, "usb.blocked", {"vendor": "0781"}, old + 1))], acked=4)
        rc, out = fx.status()
        check(rc == 1 and "2 events are waiting for the uplink, the oldest since " + ts(old)[:16]
              in out and "no compliance snapshot in the spool" in out,
              "stuck uplink: exit 1 with the reason", out)
        # a compliance snapshot long overdue while the agent runs (all acknowledged)
        fx.write_spool([(7, event(7, "compliance", {"checks": [], "compliant": True}, old))],
                       acked=7)
        rc, out = fx.status()
        check(rc == 1 and "the agent's last compliance snapshot is 180 minutes old (one is due "
              "every 15 minutes)" in out and "backlog 0 records" in out,
              "overdue snapshot: exit 1 with the reason", out)
        os.unlink(os.path.join(fx.spool, "seg-%020d" % 7))
        os.unlink(os.path.join(fx.spool, "acked"))
        rc, out = fx.status()
        check(rc == 0 and "backlog 0 records, 0 bytes" in out and "0 segments" in out,
              "empty spool: exit 0", out)

        # strings from the snapshot are escaped for the terminal by base/escape.c: control
        # bytes as \xHH, '"' and '\\' escaped, Japanese text kept as it is
        hostile = {"checks": [{"id": "usb.no_unapproved_storage", "clause": ["2-6-3-a"],
                               "status": "fail", "detail": "\x1b[31m\u6771\u4eac \"q\" \\"}],
                   "compliant": False}
        fx.write_spool([(8, event(8, "compliance", hostile, time.time() - 10))], acked=8)
        rc, out = fx.status()
        check("\x1b" not in out and '\\x1b[31m\u6771\u4eac \\"q\\" \\\\' in out,
              "snapshot detail: escaped, Japanese kept", out)
        for n in os.listdir(fx.spool):
            os.unlink(os.path.join(fx.spool, n))

        # the policy changed behind the manifest's back, then usb allow keeps it in step
        with open(fx.policy, "a") as f:
            f.write("; edited by hand\n")
        rc, out = fx.status()
        check(rc == 1 and f"  - agent.integrity: modified: {fx.policy}" in out,
              "policy edited: agent.integrity fails", out)
        fx.write_spool(fx.records, acked=2)
        rc, out = fx.status()
        check(rc == 1 and "(taken with another policy, sha256:" in out,
              "policy edited: the snapshot was taken with another policy", out)
        for n in os.listdir(fx.spool):
            os.unlink(os.path.join(fx.spool, n))
        fx.write_manifest(f"{sha256(fx.passwd)}  {fx.passwd}\n")
        man = os.path.join(fx.state, "installed.sha256")
        with open(man) as f:
            before = f.read().splitlines()
        r = subprocess.run([CTL, "--policy", fx.policy, "--yes", "usb", "allow", "0781:5581",
                            "--any-serial", "--state", fx.state], capture_output=True, text=True,
                           env=env())
        check(r.returncode == 0 and
              f"updated its hash in the install manifest {fx.state}/installed.sha256" in r.stdout,
              "usb allow: updates the manifest", r.stdout + r.stderr)
        with open(man) as f:
            after = f.read().splitlines()
        check(after == [before[0], f"{sha256(fx.policy)}  {fx.policy}", before[2]],
              "usb allow: only the policy's line changed, to the new hash", "\n".join(after))
        check(os.stat(man).st_mode & 0o7777 == 0o644, "usb allow: manifest mode kept")
        rc, out = fx.status()
        check(rc == 0 and "allow 0781:5581" not in out, "after usb allow: compliant again", out)
        check("(taken with another policy, sha256:" not in out, "no snapshot, no policy note", out)

        # a manifest that does not list the policy is left alone, and said so
        fx.write_manifest()
        with open(man) as f:
            only = f.read()
        with open(man, "w") as f:
            f.write(only.replace(fx.policy, "/etc/mynaguard/policy.conf"))
        with open(man) as f:
            before_text = f.read()
        r = subprocess.run([CTL, "--policy", fx.policy, "--yes", "usb", "allow", "046d:c31c",
                            "--any-serial", "--state", fx.state], capture_output=True, text=True,
                           env=env())
        with open(man) as f:
            check(r.returncode == 0 and "does not exist or does not list" in r.stdout and
                  f.read() == before_text, "usb allow: manifest without the policy untouched",
                  r.stdout + r.stderr)
        fx.write_manifest()

        # a broken policy
        bad = os.path.join(top, "bad.conf")
        with open(bad, "w") as f:
            f.write("[terminal]\nid = T-1\n[usb]\nmode = sometimes\nbogus = 1\n")
        rc, out = fx.status(policy=bad)
        check(rc == 1 and f"policy:  {bad} (NOT VALID)" in out and f"{bad}:4: " in out and
              f"{bad}:5: " in out and f"  - the policy {bad} is not valid (2 errors)" in out and
              "checks:  not run (the policy is not valid)" in out,
              "broken policy: exit 1 with FILE:LINE lines", out)
        rc, out = fx.status("--json", policy=bad)
        check(rc == 1 and json.loads(out)["policy"]["valid"] is False, "broken policy: --json", out)

        # usage
        r = subprocess.run([CTL, "status", "--bogus"], capture_output=True, text=True, env=env())
        check(r.returncode == 2, "unknown option: exit 2", r.stderr)
        r = subprocess.run([CTL, "status", "extra"], capture_output=True, text=True, env=env())
        check(r.returncode == 2, "extra argument: exit 2", r.stderr)
        fx.listener.close()

    if failures:
        print(f"{len(failures)} failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
