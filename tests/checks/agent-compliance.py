#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Integration: the real mynaguardd runs its compliance checks at start against fixture trees and
# spools one "compliance" event whose data matches what the fixtures should give.
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

AGENT = os.environ["MYNAGUARDD"]
IDS = ["usb.default_deny", "usb.no_unapproved_storage", "mfa.pam_stack", "mfa.enrollment",
       "time.synchronized", "agent.integrity", "net.isolation"]


def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def sysfs(root):
    dev = os.path.join(root, "sys/bus/usb/devices")
    for hub, iad in (("usb1", "0"), ("usb2", "1")):
        write(f"{dev}/{hub}/idVendor", "1d6b\n")
        write(f"{dev}/{hub}/idProduct", "0002\n")
        write(f"{dev}/{hub}/interface_authorized_default", iad + "\n")
    # a USB stick whose storage interface is authorized, not on the allow-list
    write(f"{dev}/1-1/idVendor", "0781\n")
    write(f"{dev}/1-1/idProduct", "5581\n")
    write(f"{dev}/1-1/serial", "4C530001\n")
    for attr, val in (("bInterfaceClass", "08"), ("bInterfaceSubClass", "06"),
                      ("bInterfaceProtocol", "50"), ("authorized", "1")):
        write(f"{dev}/1-1/1-1:1.0/{attr}", val + "\n")


def spooled_events(spool):
    """Every JSON event object in the spool segments (framing bytes skipped)."""
    dec = json.JSONDecoder()
    out = []
    for name in sorted(n for n in os.listdir(spool) if n.startswith("seg-")):
        data = open(os.path.join(spool, name), "rb").read().decode("utf-8", "replace")
        i = data.find('{"v":')
        while i >= 0:
            try:
                obj, end = dec.raw_decode(data, i)
                out.append(obj)
                i = data.find('{"v":', end)
            except ValueError:
                i = data.find('{"v":', i + 1)
    return out


def main():
    with tempfile.TemporaryDirectory(prefix="mg-checks-agent-") as tmp:
        policy = os.path.join(tmp, "etc/policy.conf")
        state = os.path.join(tmp, "state")
        spool = os.path.join(tmp, "spool")
        pam = os.path.join(tmp, "pam.d")
        sys_root = os.path.join(tmp, "sysroot")
        os.makedirs(spool)
        os.makedirs(os.path.join(state, "totp"), mode=0o700)
        sysfs(sys_root)
        write(f"{pam}/login", "auth required pam_unix.so\nauth required pam_mynaguard.so\n")
        write(policy, "[terminal]\nid = checks-it\n[mfa]\nservices = login\n"
              f"[report]\ninterval = 1h\n[checks]\npam_dir = {pam}\n")
        digest = hashlib.sha256(open(policy, "rb").read()).hexdigest()
        write(os.path.join(state, "installed.sha256"), f"{digest}  {policy}\n")

        event, err = run_agent(tmp, policy, state, spool, sys_root, [])
        check_event(event, err, policy, digest)

        # The checks that read root-only files (install manifest, TOTP store) run in the
        # monitor: with the worker as another user the results are the same.
        if os.geteuid() == 0:
            os.chmod(tmp, 0o755)  # the worker reads the policy, pam.d and sysfs fixtures
            shutil.rmtree(spool)
            os.mkdir(spool, 0o700)
            event2, err2 = run_agent(tmp, policy, state, spool, sys_root, ["--user", "nobody"])
            assert "worker.started" in err2 and "uid=65534" in err2, err2
            check_event(event2, err2, policy, digest)
            assert event2["data"]["checks"] == event["data"]["checks"], (
                event["data"]["checks"], event2["data"]["checks"])
        else:
            print("note: not root, the run with the worker as another user is left out")
    print("ok: compliance event spooled with the expected checks")
    return 0


def run_agent(tmp, policy, state, spool, sys_root, extra):
    if True:
        proc = subprocess.Popen(
            [AGENT, "--policy", policy, "--state", state, "--spool", spool,
             "--socket", os.path.join(tmp, "event.sock"), "--sysfs-root", sys_root,
             "--foreground"] + extra,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            ready = proc.stdout.readline().strip()
            assert ready == "READY", f"agent said {ready!r}: {proc.stderr.read()}"
            event = None
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and event is None:
                event = next((e for e in spooled_events(spool) if e.get("kind") == "compliance"),
                             None)
                if event is None:
                    time.sleep(0.1)
            assert event is not None, "no compliance event in the spool within 20 s"
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                _, err = proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
        return event, err


def check_event(event, err, policy, digest):
    if True:
        assert "kind=compliance" in err, err

        assert event["terminal"] == "checks-it"
        data = event["data"]
        checks = {c["id"]: c for c in data["checks"]}
        assert [c["id"] for c in data["checks"]] == IDS, data["checks"]
        for c in data["checks"]:
            assert c["status"] in ("pass", "fail", "not_applicable", "error"), c
            assert isinstance(c["clause"], list) and c["clause"], c
            assert isinstance(c["detail"], str), c
        assert data["policy_hash"] == "sha256:" + digest, data["policy_hash"]
        assert data["policy_path"] == policy
        assert data["interval_s"] == 3600, data
        dd = checks["usb.default_deny"]
        assert dd["status"] == "fail" and "usb2: interface_authorized_default=1" in dd["detail"], dd
        st = checks["usb.no_unapproved_storage"]
        assert st["status"] == "fail" and "1-1:1.0 (0781:5581 serial=4C530001)" in st["detail"], st
        assert checks["mfa.pam_stack"]["status"] == "pass", checks["mfa.pam_stack"]
        assert checks["agent.integrity"]["status"] == "pass", checks["agent.integrity"]
        assert checks["net.isolation"]["status"] == "not_applicable", checks["net.isolation"]
        assert checks["net.isolation"]["detail"] == "disabled by policy"
        assert data["compliant"] is False
        for clause in ("2-6-3-a", "2-3-2", "2-6-6", "2-2-7", "2-6-7"):
            assert clause in event["clause"], event["clause"]


if __name__ == "__main__":
    sys.exit(main())
