#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Central TOTP enrollment end to end (docs/fleet.md, "Central TOTP enrollment"), every part real:
# mynaguard-collector with [fleet] totp_key on 127.0.0.1 (throwaway CA, mutual TLS), two
# terminals (mynaguardd on its own umockdev bus, own state, spool and TOTP store; mynaguard-uplink
# --poll 1), `mynaguardctl fleet totp` against the dashboard API, and pam_mynaguard.so through
# pam_wrapper (pamtester) on each terminal's store.
# One enrollment logs in on both terminals; a terminal outside the enrollment's groups never gets
# it; revocation removes it everywhere (also from a terminal that was offline at the time) and a
# re-enrollment replaces the secret everywhere (the old codes stop working); a code accepted
# offline on two terminals is a double use, a problem of both on the dashboard until the
# authenticator is revoked or enrolled again. A claim is answered online while the terminal's
# uplink is stuck in a slow upload (a proxy of this test holds B's upload of a backlog: the claim
# thread has a connection of its own). Finally every file
# of the collector and of both terminals, and this test's captured output, is searched for the
# secret (base32, hex, raw bytes): it may be only in the two root-only stores.
# Usage: test-fleet-totp.py --ctl BIN --collector BIN --agent BIN --uplink BIN --pam MODULE
import argparse
import base64
import csv
import importlib.machinery
import io
import json
import os
import re
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(HERE, "..", "collector"))
from collectorlib import PKI, Collector, TestDir  # noqa: E402
import fleetlib  # noqa: E402

e2e = importlib.machinery.SourceFileLoader(
    "fleet_e2e", os.path.join(HERE, "test-fleet-e2e.py")).load_module()
wait, rfc3339, Terminal = e2e.wait, e2e.rfc3339, e2e.Terminal

GROUP, OTHER = "kyoku", "honcho"
TERMINALS = ("fleet-totp-a", "fleet-totp-b", "fleet-totp-c")  # c is in OTHER
USER = "clerk1"
USER2 = "clerk2"  # enrolled for OTHER, never verified
BACKLOG = 300  # events of B's slow upload

# Everything this test prints goes through here, and is kept to be searched for the secret.
OUT = io.StringIO()


def log(msg):
    line = "[fleet-totp] " + msg
    OUT.write(line + "\n")
    print(line, flush=True)


class StallProxy:
    """A loopback TCP proxy in front of the collector's ingest port, for one terminal's uplink.
    Armed, it holds the first connection that sends STALL_BYTES or more at once towards the
    collector (an upload of a backlog: TLS handshakes, bundle fetches and claims are a few hundred
    bytes to a kilobyte): nothing more is forwarded on it, either way, until release()."""
    STALL_BYTES = 4096

    def __init__(self, upstream_port):
        self.upstream = upstream_port
        self.ls = socket.create_server(("127.0.0.1", 0))
        self.port = self.ls.getsockname()[1]
        self.lock = threading.Lock()
        self.armed = False
        self.stalled = None  # the held connection
        self.held = 0  # bytes held back
        self.released = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self):
        with self.lock:
            self.armed = True
            self.stalled = None
            self.released.clear()

    def release(self):
        with self.lock:
            self.armed = False
        self.released.set()

    def _accept(self):
        while True:
            try:
                cs, _ = self.ls.accept()
            except OSError:
                return
            try:
                us = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
                us.settimeout(None)
            except OSError:
                cs.close()  # the collector is down: as if it refused
                continue
            conn = object()
            threading.Thread(target=self._pump, args=(conn, cs, us, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(conn, us, cs, False), daemon=True).start()

    def _pump(self, conn, src, dst, up):
        try:
            while True:
                data = src.recv(65536)
                hold = False
                with self.lock:
                    if up and self.armed and self.stalled is None and \
                            len(data) >= self.STALL_BYTES:
                        self.stalled = conn
                    if self.stalled is conn and not self.released.is_set():
                        hold = True
                        if up:
                            self.held += len(data)
                if hold:
                    self.released.wait()
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for x in (src, dst):
                try:
                    x.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def clear_of_boundary(period=30, margin=4):
    while int(time.time()) % period >= period - margin:
        time.sleep(0.5)


def main():
    ap = argparse.ArgumentParser()
    for o in ("ctl", "collector", "agent", "uplink", "pam"):
        ap.add_argument("--" + o, required=True)
    a = ap.parse_args()
    a.pam = os.path.abspath(a.pam)
    os.environ["COLLECTOR"] = a.collector
    with TestDir("fleet-totp") as d:
        os.chmod(d, 0o755)
        run(a, d)
    print("ok")


def run(a, d):
    pki = PKI(d)
    root = os.path.join(d, "root")
    grant = os.path.join(d, "grant")
    for k in (root, grant):
        subprocess.run([a.ctl, "fleet", "keygen", "--out", k], check=True, capture_output=True)
    with open(grant + ".pub") as f:
        grant_b64 = f.read().strip()
    # the at-rest key: 64 hex digits, readable by the collector's user only
    totp_key = os.path.join(d, "totp.key")
    with open(totp_key, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    os.chmod(totp_key, 0o644)

    ingest_port = e2e.free_port()
    # B's uplink reaches the collector through this proxy (see the slow upload below)
    proxy = StallProxy(ingest_port)
    c = Collector(d, pki)
    with open(c.conf) as f:
        conf = f.read().replace("listen = 127.0.0.1:0", "listen = 127.0.0.1:%d" % ingest_port, 1)
    with open(c.conf, "w") as f:
        f.write(conf + "\n[fleet]\ngrant_key = %s.key\nroot_key = %s.pub\ntotp_key = %s\n"
                % (grant, root, totp_key))
    # a key others may read is refused: the collector does not start
    try:
        c.start(timeout=10)
        raise AssertionError("the collector started with a world-readable totp_key")
    except RuntimeError:
        pass
    assert "group or others may read it" in c.logtext(), c.logtext()[-2000:]
    c.stop()
    os.chmod(totp_key, 0o600)
    c.start()
    tok = os.path.join(d, "token")

    def ctl_raw(*args):
        conn = ["--collector", "https://127.0.0.1:%d" % c.dashboard[1], "--token-file", tok,
                "--ca", pki.p("server-ca.pem")]
        return subprocess.run([a.ctl, "fleet", *args, *conn], capture_output=True, text=True)

    def ctl(*args):
        r = ctl_raw(*args)
        assert r.returncode == 0, (args, r.returncode, r.stderr)
        OUT.write(r.stdout + r.stderr)
        return r.stdout + r.stderr

    def events(kind):
        st, body, _ = c.get("/v1/events?order=newest&limit=500&kind=" + kind)
        assert st == 200, (st, body)
        return body["events"]

    # the terminals' policies, bases of two groups (signed, uploaded)
    with open(os.path.join(SRC, "policy", "policy.conf")) as f:
        shipped = f.read()
    terms = {}
    for tid in TERMINALS:
        td = os.path.join(d, tid)
        os.makedirs(td)
        cert = pki.terminal(tid)
        os.chmod(cert[1], 0o600)
        report = shipped
        port = proxy.port if tid == TERMINALS[1] else ingest_port
        for k, v in (("collector", "https://127.0.0.1:%d" % port),
                     ("ca", pki.p("server-ca.pem")), ("cert", cert[0]), ("key", cert[1]),
                     ("services", "mg"), ("interval", "1m")):
            report = re.sub(r"(?m)^;* *%s = .*$" % k, "%s = %s" % (k, v), report, count=1)
        policy = os.path.join(td, "policy.conf")
        with open(policy, "w") as f:
            f.write(report.replace("id = CHANGE-ME-terminal-0001", "id = " + tid))
        terms[tid] = {"d": td, "policy": policy, "spool": os.path.join(td, "spool"),
                      "state": os.path.join(td, "state"), "cert": cert}
        os.makedirs(terms[tid]["spool"])
        os.makedirs(terms[tid]["state"])
    for g, pattern in ((GROUP, "fleet-totp-[ab]"), (OTHER, "fleet-totp-c")):
        base = os.path.join(d, g + ".conf")
        with open(base, "w") as f:
            f.write(re.sub(r"(?m)^id = .*\n", "", report))
            f.write("\n[fleet]\ngroup = %s\nversion = 1\nissued = %s\nterminals = %s\n"
                    "grant_key = %s\ngrant_classes = mass_storage\ngrant_max_days = 30\n"
                    % (g, rfc3339(time.time() - 60), pattern, grant_b64))
        subprocess.run([a.ctl, "fleet", "sign-base", "--key", root + ".key", "--out",
                        base + ".signed", base], check=True, capture_output=True)
        ctl("group", "create", g)
        ctl("policy", "upload", g, base + ".signed")
    ctl("group", "add", GROUP, TERMINALS[0], TERMINALS[1])
    ctl("group", "add", OTHER, TERMINALS[2])

    # PAM through pam_wrapper, one service per terminal, users from nss_wrapper
    svc = os.path.join(d, "svc")
    os.makedirs(svc)
    with open(os.path.join(d, "passwd"), "w") as f:
        f.write("%s:x:%d:%d::/nonexistent:/bin/false\n" % (USER, 4242, os.getgid()))
    with open(os.path.join(d, "group"), "w") as f:
        f.write("g:x:%d:\n" % os.getgid())
    for tid, t in terms.items():
        with open(os.path.join(svc, tid), "w") as f:
            f.write("auth required %s store=%s/totp policy=%s socket=%s claim=%s/inbox/claim.sock\n"
                    % (a.pam, t["state"], t["policy"], os.path.join(t["d"], "event.sock"),
                       t["spool"]))
    with open(os.path.join(svc, "other"), "w") as f:
        f.write("auth required /usr/lib/x86_64-linux-gnu/security/pam_deny.so\n")
    pam_log = open(os.path.join(d, "pam.log"), "ab")

    def login(tid, code):
        env = dict(os.environ, LD_PRELOAD="libpam_wrapper.so libnss_wrapper.so", PAM_WRAPPER="1",
                   PAM_WRAPPER_SERVICE_DIR=svc, UID_WRAPPER_DISABLE_DEEPBIND="1",
                   NSS_WRAPPER_PASSWD=os.path.join(d, "passwd"),
                   NSS_WRAPPER_GROUP=os.path.join(d, "group"))
        r = subprocess.run(["pamtester", tid, USER, "authenticate"], input=(code + "\n").encode(),
                           stdout=pam_log, stderr=pam_log, env=env, timeout=30)
        return r.returncode == 0

    started = []
    try:
        for tid in TERMINALS:
            t = terms[tid]
            t["t"] = Terminal(a, t["d"], t["policy"], t["spool"], t["state"], root + ".pub")
            started.append(t["t"])
            # the monitor made the terminal's X25519 key (root only) and published its half
            st = os.stat(os.path.join(t["state"], "terminal-key"))
            assert st.st_mode & 0o777 == 0o600 and st.st_size == 32, oct(st.st_mode)
            with open(os.path.join(t["spool"], "terminal-key.pub")) as f:
                assert len(base64.b64decode(f.read().strip())) == 32
            t["t"].start_uplink(1)
        for tid in TERMINALS:
            wait("bundle.applied from " + tid, lambda: [
                e for e in events("bundle.applied") if e["terminal"] == tid], 40)
        log("three terminals applied their bases")

        # refused enrollments: a group that does not exist, a bad user name, no groups
        r = ctl_raw("totp", "enroll", USER, "--groups", "nosuchgroup")
        assert r.returncode == 1 and "no group nosuchgroup" in r.stderr, r.stderr
        r = ctl_raw("totp", "enroll", "-bad", "--groups", GROUP)
        assert r.returncode != 0, r.stderr
        assert not [e for e in events("fleet.totp")], "a refused enrollment made an event"

        # the API refuses what it does not understand, and stores nothing
        for bad in ({"user": USER, "groups": [GROUP], "digits": 9},
                    {"user": USER, "groups": []}, {"user": USER, "groups": [GROUP, GROUP]},
                    {"user": USER, "groups": [GROUP], "extra": 1}, {"groups": [GROUP]},
                    {"user": "a/b", "groups": [GROUP]}):
            st, body, _ = fleetlib.call(c, "POST", "/v1/totp", bad)
            assert st == 400, (bad, st, body)
        st, body, _ = fleetlib.call(c, "GET", "/v1/totp/%s/revoke" % USER)
        assert st == 405, (st, body)
        st, body, _ = fleetlib.call(c, "GET", "/v1/totp")
        assert st == 200 and body["totp"] == [], body
        conn = c.ingest_conn(cert=terms[TERMINALS[0]]["cert"])
        for method, body in (("POST", b'{"user":"clerk1"}'), ("POST", b'{"user":"-x","step":1}'),
                             ("POST", b'{"user":"clerk1","step":0}'), ("GET", None)):
            conn.request(method, "/v1/totp/claim", body=body,
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            assert resp.status == (405 if method == "GET" else 400), (body, resp.status)
        conn.close()

        # 1. one central enrollment for GROUP: the URI is shown once (kept in memory here)
        r = ctl_raw("totp", "enroll", USER, "--groups", GROUP)
        assert r.returncode == 0, r.stderr
        OUT.write(r.stderr)
        uri = r.stdout.strip()
        q = urllib.parse.parse_qs(urllib.parse.urlparse(uri).query)
        b32 = q["secret"][0]
        secret = base64.b32decode(b32 + "=" * (-len(b32) % 8))
        assert len(secret) == 20 and q["digits"] == ["6"] and q["period"] == ["30"], q
        ev = wait("fleet.totp enroll", lambda: events("fleet.totp"), 10)[0]
        assert ev["data"]["action"] == "enroll" and ev["data"]["user"] == USER, ev["data"]
        log("enrolled %s for group %s (generation %d)" % (USER, GROUP, ev["data"]["gen"]))
        assert "fleet totp verify " + USER in r.stderr, r.stderr
        lst = ctl("totp", "list")
        assert re.search(r"(?m)^%s +pending +1 " % USER, lst), lst

        # pending until verified: in no bundle (the terminals fetch every second)
        time.sleep(4)
        for tid in TERMINALS[:2]:
            assert not os.path.exists(os.path.join(terms[tid]["state"], "totp", USER)), \
                "a pending enrollment reached " + tid
        # verify: refused shapes, a wrong code (counted, still pending), the right code
        for bad in ({}, {"code": 123456}, {"code": "1" * 17}, {"code": "123456", "x": 1}):
            st, body, _ = fleetlib.call(c, "POST", "/v1/totp/%s/verify" % USER, bad)
            assert st == 400, (bad, st, body)
        st, body, _ = fleetlib.call(c, "POST", "/v1/totp/nobody-enrolled/verify",
                                    {"code": "123456"})
        assert st == 404, (st, body)
        clear_of_boundary()
        now = time.time()
        wrong = "%06d" % ((int(fleetlib.totp(secret, now)) + 1) % 1000000)
        assert wrong not in (fleetlib.totp(secret, now - 30), fleetlib.totp(secret, now + 30))
        r = ctl_raw("totp", "verify", USER, wrong)
        assert r.returncode == 1 and "wrong code" in r.stderr and "1 of 5" in r.stderr, r.stderr
        st, body, _ = fleetlib.call(c, "GET", "/v1/totp")
        row = body["totp"][0]
        assert row["state"] == "pending" and row["verify_failures"] == 1 and \
            row["verified_at"] is None, row
        ev = wait("fleet.totp verify_failed", lambda: [
            e for e in events("fleet.totp") if e["data"]["action"] == "verify_failed"], 10)[0]
        assert ev["data"]["failures"] == 1 and ev["data"]["user"] == USER, ev["data"]
        # the code on stdin (as typed at the prompt)
        p = subprocess.run([a.ctl, "fleet", "totp", "verify", USER, "--collector",
                            "https://127.0.0.1:%d" % c.dashboard[1], "--token-file", tok,
                            "--ca", pki.p("server-ca.pem")],
                           input=fleetlib.totp(secret, now) + "\n", capture_output=True, text=True)
        assert p.returncode == 0 and "code accepted" in p.stdout, (p.stdout, p.stderr)
        r = ctl_raw("totp", "verify", USER, fleetlib.totp(secret, now))
        assert r.returncode == 0 and "already verified" in r.stdout, (r.stdout, r.stderr)
        st, body, _ = fleetlib.call(c, "GET", "/v1/totp")
        row = body["totp"][0]
        assert row["state"] == "active" and row["verified_at"], row
        assert re.search(r"(?m)^%s +active +1 " % USER, ctl("totp", "list"))
        ev = wait("fleet.totp verified", lambda: [
            e for e in events("fleet.totp") if e["data"]["action"] == "verified"], 10)[0]
        assert ev["data"]["user"] == USER, ev["data"]
        log("the enrollment stayed pending (in no bundle) until one right code verified it")
        # five wrong codes: the enrollment must be made again (even the right code is refused)
        r = ctl_raw("totp", "enroll", USER2, "--groups", OTHER)
        assert r.returncode == 0, r.stderr
        b32_3 = urllib.parse.parse_qs(urllib.parse.urlparse(r.stdout.strip()).query)["secret"][0]
        secret3 = base64.b32decode(b32_3 + "=" * (-len(b32_3) % 8))
        right3 = fleetlib.totp(secret3, time.time())
        wrong3 = "%06d" % ((int(right3) + 1) % 1000000)
        for i in range(1, 6):
            st, body, _ = fleetlib.call(c, "POST", "/v1/totp/%s/verify" % USER2, {"code": wrong3})
            assert st == 422 and "%d of 5" % i in body["error"], (i, st, body)
        r = ctl_raw("totp", "verify", USER2, right3)
        assert r.returncode == 1 and "enroll %s again" % USER2 in r.stderr, r.stderr
        st, body, _ = fleetlib.call(c, "GET", "/v1/totp")
        row = [t for t in body["totp"] if t["user"] == USER2][0]
        assert row["state"] == "pending" and row["verify_failures"] == 5, row
        log("five wrong codes: %s stays pending until enrolled again" % USER2)

        for tid in TERMINALS[:2]:
            rec = os.path.join(terms[tid]["state"], "totp", USER)
            wait("the record on " + tid, lambda: os.path.exists(rec), 40)
            st = os.stat(rec)
            assert st.st_mode & 0o777 == 0o600 and st.st_uid == 0, oct(st.st_mode)
            wait("totp.installed from " + tid, lambda: [
                e for e in events("totp.installed") if e["terminal"] == tid
                and e["data"]["action"] == "installed"], 30)
        log("both terminals of %s installed the secret" % GROUP)

        # the code used to verify is used up: refused on a terminal (the collector says used)
        vstep = int(now) // 30
        assert int(time.time()) // 30 <= vstep + 1, "the installation took more than a step"
        assert not login(TERMINALS[0], fleetlib.totp(secret, now)), "A accepted the verify code"
        wait("auth.replay used_elsewhere (the verify code) from A", lambda: [
            e for e in events("auth.replay") if e["terminal"] == TERMINALS[0]
            and e["data"].get("reason") == "used_elsewhere"
            and e["data"].get("step") == vstep], 30)
        # from here on: A the current step, B the next, both after the verify's
        while int(time.time()) // 30 <= vstep:
            time.sleep(0.5)
        # B's uplink is busy with a slow upload: a backlog of BACKLOG events (written while the
        # uplink is stopped, so that they leave in one large batch), its upload held by the
        # proxy (the main loop waits in it); claims must not wait behind it
        tb = terms[TERMINALS[1]]["t"]
        tb.uplink.send_signal(signal.SIGSTOP)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            for i in range(BACKLOG):
                s.sendto(json.dumps({
                    "v": 1, "kind": "auth.failure", "ts_ms": int(time.time() * 1000),
                    "data": {"user": "backlog", "service": "login", "rhost": "",
                             "tty": "tty%d" % i, "reason": "bad_code"}}).encode(),
                    os.path.join(terms[TERMINALS[1]]["d"], "event.sock"))

        def spooled(marker):
            sp = terms[TERMINALS[1]]["spool"]
            for n in os.listdir(sp):
                if n.startswith("seg-"):
                    with open(os.path.join(sp, n), "rb") as f:
                        if marker in f.read():
                            return True
            return False
        wait("the backlog in B's spool", lambda: spooled(b'"tty%d"' % (BACKLOG - 1)), 30)
        proxy.arm()
        tb.uplink.send_signal(signal.SIGCONT)
        wait("B's upload held by the proxy", lambda: proxy.stalled, 30)
        clear_of_boundary(margin=10)
        now = time.time()
        astep = int(now) // 30
        assert login(TERMINALS[0], fleetlib.totp(secret, now)), "the enrollment did not log in on A"
        assert not login(TERMINALS[0], fleetlib.totp(secret, now)), "A accepted a code twice"
        # the code A used is refused on B while the collector is up (B has not used its step),
        # asked at the collector while B's upload is still held
        assert proxy.stalled and not proxy.released.is_set() and proxy.held >= proxy.STALL_BYTES
        assert not login(TERMINALS[1], fleetlib.totp(secret, now)), "B accepted the code A used"
        with open(os.path.join(terms[TERMINALS[1]]["d"], "uplink.log")) as f:
            blog = f.read()
        assert "uplink.claim user=%s step=%d result=used" % (USER, astep) in blog, blog[-2000:]
        assert not proxy.released.is_set()
        proxy.release()
        wait("the backlog from B", lambda: len([
            e for e in events("auth.failure") if e["terminal"] == TERMINALS[1]
            and e["data"].get("user") == "backlog"]) == BACKLOG, 60)
        log("B's claim was answered by the collector while its upload of %d events was held "
            "(%d bytes)" % (BACKLOG, proxy.held))
        wait("auth.replay used_elsewhere from B", lambda: [
            e for e in events("auth.replay") if e["terminal"] == TERMINALS[1]
            and e["data"].get("reason") == "used_elsewhere"], 30)
        assert login(TERMINALS[1], fleetlib.totp(secret, now + 30)), "the enrollment did not log in on B"
        log("one enrollment logged in on both terminals; a code is one-time on each")
        wait("auth.success claim ok from A and B", lambda: {
            e["terminal"] for e in events("auth.success")
            if e["data"].get("claim") == "ok"} >= set(TERMINALS[:2]), 30)
        log("the code used on A was refused on B (claimed at the collector)")
        # the terminal of the other group never got it
        assert not os.path.exists(os.path.join(terms[TERMINALS[2]]["state"], "totp", USER))
        assert not login(TERMINALS[2], fleetlib.totp(secret, time.time())), "C accepted the secret"
        # nor the pending enrollment of its own group
        assert not os.path.exists(os.path.join(terms[TERMINALS[2]]["state"], "totp", USER2))

        # 2. re-enrollment replaces the secret everywhere, once verified. Steps so far: the
        # verify's (vstep), A's (astep), B's (astep + 1). From astep + 2 on: the verify takes
        # the current step, A the next, B the one before (its own claim, or unused).
        while int(time.time()) // 30 < astep + 2:
            time.sleep(0.5)
        clear_of_boundary(margin=8)
        r = ctl_raw("totp", "enroll", USER, "--groups", GROUP)
        assert r.returncode == 0 and "re-enrolled" in r.stderr, r.stderr
        OUT.write(r.stderr)
        b32_2 = urllib.parse.parse_qs(urllib.parse.urlparse(r.stdout.strip()).query)["secret"][0]
        secret2 = base64.b32decode(b32_2 + "=" * (-len(b32_2) % 8))
        assert secret2 != secret
        st, body, _ = fleetlib.call(c, "GET", "/v1/totp")
        row = body["totp"][0]
        assert row["state"] == "pending" and row["verify_failures"] == 0, row
        now = time.time()
        # the old secret's code does not verify the new enrollment
        r = ctl_raw("totp", "verify", USER, fleetlib.totp(secret, now))
        assert r.returncode == 1 and "wrong code" in r.stderr, r.stderr
        r = ctl_raw("totp", "verify", USER, fleetlib.totp(secret2, now))
        assert r.returncode == 0 and "code accepted" in r.stdout, (r.stdout, r.stderr)
        for tid in TERMINALS[:2]:
            wait("generation 2 on " + tid, lambda: [
                e for e in events("totp.installed") if e["terminal"] == tid
                and e["data"].get("gen") == 2], 40)
        now = now + 30  # the next step: not used yet on either terminal
        assert not login(TERMINALS[0], fleetlib.totp(secret, now)), "the old secret still works on A"
        assert login(TERMINALS[0], fleetlib.totp(secret2, now)), "the new secret does not log in on A"
        # (B: the step before the verify's, which B itself claimed with the old secret)
        assert login(TERMINALS[1], fleetlib.totp(secret2, now - 60)), "the new secret does not log in on B"
        log("re-enrollment replaced the secret on both terminals once verified")

        # what a claim adds to a login: the round trip PAM -> uplink -> collector -> back
        lat = []
        for i in range(20):
            with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
                t0 = time.monotonic()
                s.connect(os.path.join(terms[TERMINALS[0]]["spool"], "inbox", "claim.sock"))
                s.send(struct.pack(">Q", 1000 + i) + b"bench-user")
                rep = s.recv(8)
                lat.append((time.monotonic() - t0) * 1000)
            assert rep == b"n", rep  # not enrolled centrally: the terminal decides alone
        lat.sort()
        with open(os.path.join(terms[TERMINALS[0]]["d"], "uplink.log")) as f:
            assert "uplink.claim user=bench-user step=1019 result=unknown" in f.read()
        log("CLAIM ROUND TRIP: p50 %.1f ms, p90 %.1f ms, max %.1f ms (20 claims)"
            % (lat[10], lat[18], lat[19]))

        # the collector down: both terminals accept the same code once, and the collector
        # flags the double use when they reconnect
        while int(time.time()) // 30 == int(now - 30) // 30:
            time.sleep(0.5)  # a step neither terminal used: the one after A's
        clear_of_boundary()
        assert c.stop() == 0
        code = fleetlib.totp(secret2, time.time() + 30)
        t0 = time.monotonic()
        assert login(TERMINALS[0], code), "A refused offline"
        offline_ms = (time.monotonic() - t0) * 1000
        assert login(TERMINALS[1], code), "B refused offline"
        assert not login(TERMINALS[0], code), "A accepted the code twice offline"
        log("collector down: A and B each accepted the same code once (a login took %.0f ms)"
            % offline_ms)
        c.start()
        assert c.ingest[1] == ingest_port
        ev = wait("fleet.totp double_use", lambda: [
            e for e in events("fleet.totp") if e["data"]["action"] == "double_use"], 60)[0]
        assert ev["data"]["user"] == USER and sorted(ev["data"]["terminals"]) == sorted(
            TERMINALS[:2]), ev["data"]
        log("after the reconnect the collector flagged the double use: %s" % ev["data"]["problem"])
        # the dashboard: both terminals are a problem for it, the third one is not
        for tid in TERMINALS:
            st, body, _ = c.get("/v1/terminals/" + tid)
            bad = tid in TERMINALS[:2]
            assert st == 200 and body["totp_double_use"] is bad, (tid, body)
            assert body["problem"] or not bad, (tid, body)
        st, body, _ = c.get("/v1/terminals?status=problem")
        assert {t["id"] for t in body["terminals"]} >= set(TERMINALS[:2]), body
        st, raw, _ = c.get("/v1/terminals.csv?sort=id&limit=100", raw=True)
        rows = list(csv.reader(io.StringIO(raw[3:].decode("utf-8"), newline="")))
        assert st == 200 and rows[0][-1] == "確認コード", rows[0]
        assert {r[0] for r in rows[1:] if r[-1] == "二重使用"} == set(TERMINALS[:2]), rows
        st, body, _ = c.get("/v1/totp")
        assert st == 200 and {r["user"]: r["double_uses"] for r in body["totp"]}.get(USER) == 1 and sum(
            r["double_uses"] for r in body["totp"]) == 1, body
        log("the dashboard shows the double use as a problem of both terminals")

        # 3. revocation while B is offline: A drops it at its next fetch, B when it is back
        # (B's uplink is stopped, not restarted: the bases of this test carry one terminal's
        # [report] cert, which a restarted uplink of the other terminal would read)
        tb.uplink.send_signal(signal.SIGSTOP)
        out = ctl("totp", "revoke", USER, "--reason", "lost phone")
        assert "revoked" in out, out
        # where the claim path is online, a revoked clerk's code is refused at once, before
        # any bundle: the collector answers revoked
        conn = c.ingest_conn(cert=terms[TERMINALS[1]]["cert"])
        conn.request("POST", "/v1/totp/claim", body=json.dumps({"user": USER, "step": 7}),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read())["result"] == "revoked"
        conn.close()
        assert re.search(r"(?m)^%s +revoked " % USER, ctl("totp", "list"))
        ev = wait("fleet.totp revoke", lambda: [
            e for e in events("fleet.totp") if e["data"]["action"] == "revoke"], 10)[0]
        assert ev["data"]["reason"] == "lost phone", ev["data"]
        reca = os.path.join(terms[TERMINALS[0]]["state"], "totp", USER)
        wait("the record gone from A", lambda: not os.path.exists(reca), 40)
        clear_of_boundary()
        now = time.time() + 60
        assert not login(TERMINALS[0], fleetlib.totp(secret2, now)), "A accepted a revoked secret"
        recb = os.path.join(terms[TERMINALS[1]]["state"], "totp", USER)
        assert os.path.exists(recb), "B changed while offline"
        tb.uplink.send_signal(signal.SIGCONT)
        wait("the record gone from B", lambda: not os.path.exists(recb), 40)
        assert not login(TERMINALS[1], fleetlib.totp(secret2, now)), "B accepted a revoked secret"
        wait("totp.installed removed from B", lambda: [
            e for e in events("totp.installed") if e["terminal"] == TERMINALS[1]
            and e["data"]["action"] == "removed"], 30)
        log("revocation reached A at once and B when it came back online")
        # the double use ends with the authenticator used twice: no longer a problem
        for tid in TERMINALS[:2]:
            st, body, _ = c.get("/v1/terminals/" + tid)
            assert st == 200 and body["totp_double_use"] is False, (tid, body)
        log("the revocation ended the double-use problem of A and B")
        r = ctl_raw("totp", "revoke", USER)
        assert r.returncode == 1 and "no enrollment in force" in r.stderr, r.stderr

        # 4. a helpdesk recovery code for the clerk who lost the phone: once, offline too
        r = ctl_raw("totp", "recovery", "nobody-enrolled")
        assert r.returncode == 1 and "never enrolled" in r.stderr, r.stderr
        r = ctl_raw("totp", "recovery", USER, "--hours", "2")
        assert r.returncode == 0, r.stderr
        OUT.write(r.stderr)
        shown = r.stdout.strip()
        assert re.fullmatch(r"\d{4}-\d{4}-\d{4}-\d{4}", shown), "not a recovery code"
        recovery = shown.replace("-", "")
        ev = wait("fleet.totp recovery", lambda: [
            e for e in events("fleet.totp") if e["data"]["action"] == "recovery"], 10)[0]
        assert ev["data"]["user"] == USER and "code" not in ev["data"], ev["data"]
        for tid in TERMINALS[:2]:
            f = os.path.join(terms[tid]["state"], "totp", "." + USER + ".recovery")
            wait("the recovery code on " + tid, lambda: os.path.exists(f), 40)
            assert os.stat(f).st_mode & 0o777 == 0o600
        assert not os.path.exists(os.path.join(terms[TERMINALS[2]]["state"], "totp",
                                               "." + USER + ".recovery"))
        # online: once across terminals (A uses it, B is refused: the collector says used)
        assert not login(TERMINALS[0], "1234-5678-9012-3456"), "a wrong recovery code worked"
        assert login(TERMINALS[0], shown), "the recovery code did not log in on A"
        assert not login(TERMINALS[0], shown), "the recovery code worked twice on A"
        assert not login(TERMINALS[1], recovery), "B accepted the recovery code A used"
        wait("auth.replay used_elsewhere (recovery) from B", lambda: [
            e for e in events("auth.replay") if e["terminal"] == TERMINALS[1]
            and e["data"].get("reason") == "used_elsewhere"
            and e["data"].get("step", 0) >= 1 << 62], 30)
        # a second code replaces the first; B is offline (its uplink stopped): B decides alone,
        # and the collector flags the second use when B is back
        r = ctl_raw("totp", "recovery", USER)
        assert r.returncode == 0, r.stderr
        OUT.write(r.stderr)
        shown2 = r.stdout.strip()
        rid2 = int(re.search(r"recovery code (\d+)", r.stderr).group(1))
        for tid in TERMINALS[:2]:
            wait("the second recovery code on " + tid, lambda: [
                e for e in events("totp.installed") if e["terminal"] == tid
                and e["data"].get("rid") == rid2], 40)
        tb.uplink.send_signal(signal.SIGSTOP)
        assert not login(TERMINALS[0], shown), "the replaced recovery code still works"
        assert login(TERMINALS[0], shown2), "the second recovery code did not log in on A"
        assert login(TERMINALS[1], shown2), "the recovery code did not log in on offline B"
        assert not login(TERMINALS[1], shown2), "the recovery code worked twice on B"
        tb.uplink.send_signal(signal.SIGCONT)
        for tid in TERMINALS[:2]:
            wait("auth.success (recovery) from " + tid, lambda: [
                e for e in events("auth.success") if e["terminal"] == tid
                and e["data"].get("reason") == "recovery"], 30)
        replays = [e for e in events("auth.replay") if e["data"].get("reason") == "recovery_used"]
        assert {e["terminal"] for e in replays} == set(TERMINALS[:2]), replays
        ev = wait("fleet.totp double_use of the recovery code", lambda: [
            e for e in events("fleet.totp") if e["data"]["action"] == "double_use"
            and e["data"]["step"] == (1 << 62) + rid2], 60)[0]
        assert sorted(ev["data"]["terminals"]) == sorted(TERMINALS[:2]), ev["data"]
        log("a recovery code works once across terminals online; offline it worked once on "
            "each and the collector flagged the second use")
        # a double use after the revocation is a problem again, until a new enrollment
        for tid in TERMINALS:
            st, body, _ = c.get("/v1/terminals/" + tid)
            assert st == 200 and body["totp_double_use"] is (tid in TERMINALS[:2]), (tid, body)
        r = ctl_raw("totp", "enroll", USER, "--groups", GROUP)
        assert r.returncode == 0, r.stderr
        OUT.write(r.stderr)
        b32_4 = urllib.parse.parse_qs(urllib.parse.urlparse(r.stdout.strip()).query)["secret"][0]
        secret4 = base64.b32decode(b32_4 + "=" * (-len(b32_4) % 8))
        wait("fleet.totp enroll after the revocation", lambda: [
            e for e in events("fleet.totp") if e["data"]["action"] in ("enroll", "reenroll")
            and e["data"].get("gen", 0) > 2], 10)
        for tid in TERMINALS[:2]:
            st, body, _ = c.get("/v1/terminals/" + tid)
            assert st == 200 and body["totp_double_use"] is False, (tid, body)
        log("enrolling the clerk again ended the double-use problem of A and B")
    except BaseException:
        for name in ["collector.log", "pam.log"] + [
                os.path.join(t, n) for t in TERMINALS for n in ("agent.log", "uplink.log")]:
            try:
                with open(os.path.join(d, name), "rb") as f:
                    sys.stderr.write("---- %s (tail)\n%s\n" % (
                        name, f.read()[-4000:].decode(errors="replace")))
            except OSError:
                pass
        raise
    finally:
        proxy.release()  # a held upload would keep B's uplink from stopping
        for t in started:
            t.stop()
        if c.alive():
            c.stop()
        pam_log.close()

    # 4. the secrets are nowhere in clear but in the terminals' root-only stores
    needles = []
    needles += [recovery.encode(), shown.encode(), shown2.encode(),
                shown2.replace("-", "").encode()]
    for s in (secret, secret2, secret4):
        b = base64.b32encode(s).decode().rstrip("=")
        needles += [b.encode(), b.lower().encode(), s.hex().encode(), s.hex().upper().encode(),
                    s, base64.b64encode(s)]
    allowed = {os.path.join(terms[t]["state"], "totp", n) for t in TERMINALS
               for n in (USER, "." + USER + ".recovery")}
    searched = 0
    for dirpath, _, files in os.walk(d):
        for name in files:
            p = os.path.join(dirpath, name)
            if p in allowed or not stat.S_ISREG(os.lstat(p).st_mode):
                continue  # the stores; fifos, sockets, links
            with open(p, "rb") as f:
                data = f.read()
            searched += 1
            for n in needles:
                assert n not in data, "a secret is in clear in %s" % p
    text = OUT.getvalue().encode()
    for n in needles:
        assert n not in text, "a secret is in the test's output"
    log("searched %d files and the test's output: no secret in clear" % searched)


if __name__ == "__main__":
    main()
