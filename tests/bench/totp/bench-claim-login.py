#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Benchmark (not a test): what the cross-terminal claim (docs/fleet.md, "One-time across
# terminals") costs a whole login. The real pam_mynaguard.so through real libpam
# (tests/bench/pam/bench-pam.c --claim: pam_start_confdir + pam_authenticate + pam_end, the clock
# faked with libfaketime, a fresh step every login), a real mynaguard-uplink serving the claim
# socket and a real mynaguard-collector with central TOTP on 127.0.0.1; the user "root" is
# enrolled and verified centrally, so every claim is a new (user, step) row at the collector.
# Rows, interleaved: claim=none (local only); collector up; collector stopped (connection
# refused); collector hung (SIGSTOP: the uplink's connection stays open and nobody answers, the
# bounded wait). Needs root (the module checks the store's owner against the euid),
# libfaketime, libpam-oath's liboath (scripts/setup-deps.sh --bench).
# Usage: tests/bench/totp/bench-claim-login.py [--build DIR] [-n N] [--hung N]
import argparse
import base64
import os
import re
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "collector"))
from collectorlib import PKI, Collector  # noqa: E402
import fleetlib  # noqa: E402

FAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
TERMINAL = "bench-claim"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(SRC, "build"))
    ap.add_argument("-n", type=int, default=100, help="logins per row (default 100)")
    ap.add_argument("--hung", type=int, default=5, help="logins with the collector hung")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    module = os.path.join(build, "pam_module", "pam_mynaguard.so")
    for p in (module, FAKETIME):
        if not os.path.exists(p):
            sys.exit("missing %s" % p)
    os.environ["COLLECTOR"] = os.path.join(build, "collector", "mynaguard-collector")
    ctl = os.path.join(build, "ctl", "mynaguardctl")
    d = tempfile.mkdtemp(prefix="mg-bench-claim.")
    pamdir = tempfile.mkdtemp(prefix="mg-bench-claim.", dir="/dev/shm")
    c = uplink = None
    try:
        bench = os.path.join(d, "bench-pam")
        subprocess.run(["cc", "-O2", "-Wall", "-o", bench,
                        os.path.join(SRC, "tests", "bench", "pam", "bench-pam.c"),
                        "-lpam", "-loath", "-lz"], check=True)
        pki = PKI(d)
        for k in ("root", "grant"):
            subprocess.run([ctl, "fleet", "keygen", "--out", os.path.join(d, k)], check=True,
                           capture_output=True)
        totp_key = os.path.join(d, "totp.key")
        with open(totp_key, "w") as f:
            f.write(os.urandom(32).hex() + "\n")
        os.chmod(totp_key, 0o600)
        c = Collector(d, pki)
        with open(c.conf, "a") as f:
            f.write("\n[fleet]\ngrant_key = %s/grant.key\nroot_key = %s/root.pub\n"
                    "totp_key = %s\n" % (d, d, totp_key))
        c.start()
        ingest_port = c.ingest[1]
        with open(c.conf) as f:
            conf = f.read().replace("listen = 127.0.0.1:0", "listen = 127.0.0.1:%d" % ingest_port,
                                    1)
        with open(c.conf, "w") as f:
            f.write(conf)

        # the central enrollment of root, verified (an unverified one is in no bundle, but the
        # claim answers for it all the same; verified is what a terminal sees in service)
        st, body, _ = fleetlib.call(c, "POST", "/v1/groups", {"name": "bench"})
        assert st == 201, (st, body)
        st, body, _ = fleetlib.call(c, "POST", "/v1/totp", {"user": "root", "groups": ["bench"]})
        assert st == 201, (st, body)
        b32 = urllib.parse.parse_qs(urllib.parse.urlparse(body["otpauth"]).query)["secret"][0]
        secret = base64.b32decode(b32 + "=" * (-len(b32) % 8))
        st, body, _ = fleetlib.call(c, "POST", "/v1/totp/root/verify",
                                    {"code": fleetlib.totp(secret, time.time())})
        assert st == 200, (st, body)

        # the uplink of one terminal, its claim socket
        cert = pki.terminal(TERMINAL)
        os.chmod(cert[1], 0o600)
        with open(os.path.join(SRC, "policy", "policy.conf")) as f:
            policy = f.read()
        for k, v in (("collector", "https://127.0.0.1:%d" % ingest_port),
                     ("ca", pki.p("server-ca.pem")), ("cert", cert[0]), ("key", cert[1]),
                     ("services", "mg"), ("interval", "1m")):
            policy = re.sub(r"(?m)^;* *%s = .*$" % k, "%s = %s" % (k, v), policy, count=1)
        policy = policy.replace("id = CHANGE-ME-terminal-0001", "id = " + TERMINAL)
        with open(os.path.join(d, "policy.conf"), "w") as f:
            f.write(policy)
        spool = os.path.join(d, "spool")
        os.makedirs(spool)
        ulog = open(os.path.join(d, "uplink.log"), "ab")
        uplink = subprocess.Popen([os.path.join(build, "uplink", "mynaguard-uplink"), "--policy",
                                   os.path.join(d, "policy.conf"), "--spool", spool,
                                   "--verbose"], stdout=ulog, stderr=subprocess.STDOUT)
        sock = os.path.join(spool, "inbox", "claim.sock")
        deadline = time.time() + 20
        while not os.path.exists(sock):
            assert time.time() < deadline, "no claim socket"
            time.sleep(0.2)
        # one claim first: the uplink's TLS connection is open, as on a terminal in service
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
            s.connect(sock)
            s.send(struct.pack(">Q", 1) + b"warm-up")
            assert s.recv(8) == b"n"

        env = dict(os.environ, LD_PRELOAD=FAKETIME, FAKETIME="2026-01-15 10:00:10",
                   FAKETIME_NO_CACHE="1", DONT_FAKE_MONOTONIC="1", TZ="UTC")
        start = [1768471210]

        def row(label, claim, n):
            start[0] += 10 ** 7  # steps no row used before
            r = subprocess.run([bench, "--claim", module, pamdir, str(n), claim, label,
                                str(start[0])], env=env, capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
            sys.stdout.write(r.stdout)
            sys.stdout.flush()

        fs = subprocess.run(["findmnt", "-no", "FSTYPE", "-T", d], capture_output=True,
                            text=True).stdout.strip()
        print("# %s %s, %d CPUs, load %s; collector database on %s, PAM state on tmpfs; "
              "pam_mynaguard %s" % (
                  time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()), os.uname().release,
                  os.cpu_count(), " ".join("%.1f" % x for x in os.getloadavg()), fs or "?",
            subprocess.run(["git", "-C", SRC, "rev-parse", "--short", "HEAD"],
                           capture_output=True, text=True).stdout.strip() or "?"))
        print()
        print("| fs    | claim                  | code  |    N |  median |     p90 |     p99 "
              "|    mean |   ok |")
        print("| ----- | ---------------------- | ----- | ---- | ------- | ------- | ------- "
              "| ------- | ---- |")
        for _ in range(2):
            row("none (local only)", "none", a.n // 2)
            row("collector up", sock, a.n // 2)
        db = sqlite3.connect(c.db)
        claimed = db.execute("SELECT count(*) FROM fleet_totp_claims WHERE terminal = ?",
                             (TERMINAL,)).fetchone()[0]
        db.close()
        assert claimed == 2 * (a.n // 2), "claims at the collector: %d" % claimed
        assert c.stop() == 0
        row("collector stopped", sock, a.n // 2)
        c.start()
        row("collector up again", sock, a.n // 2)
        c.proc.send_signal(signal.SIGSTOP)
        try:
            row("collector hung", sock, a.hung)
        finally:
            c.proc.send_signal(signal.SIGCONT)
        print()
        print("# claims recorded at the collector while it was up: %d of %d logins"
              % (claimed, 2 * (a.n // 2)))
    finally:
        if uplink:
            uplink.terminate()
            uplink.wait()
        if c:
            c.stop()
        shutil.rmtree(pamdir, ignore_errors=True)
        if os.environ.get("BENCH_KEEP"):
            print("# kept " + d)
        else:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
