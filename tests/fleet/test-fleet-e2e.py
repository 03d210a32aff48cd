#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# The fleet channel end to end (docs/fleet.md), every part real: mynaguard-collector with [fleet]
# on 127.0.0.1 (throwaway CA, mutual TLS), a root key made with `mynaguardctl fleet keygen`, a base
# signed with `fleet sign-base` and uploaded with `fleet policy upload`; mynaguardd with
# --fleet-key on a umockdev USB bus (scripts/demo-usb.py); mynaguard-uplink with --poll.
# A stick is blocked, its request granted with `fleet request grant`, the stick opens (the time
# from the grant's return to authorized=1 is printed), the exception expires with the collector
# stopped, another exception is revoked, a refused request never opens its stick. Every step is
# asserted at the collector (GET /v1/events).
# Usage: test-fleet-e2e.py --ctl BIN --collector BIN --agent BIN --uplink BIN [--poll SEC]
#        Runs with /usr/bin/python3 (python3-gi, gir1.2-umockdev-1.0) under umockdev-wrapper.
import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(HERE, "..", "collector"))
from collectorlib import PKI, Collector, TestDir  # noqa: E402

TERMINAL = "fleet-e2e-01"
GROUP = "e2e"


def log(msg):
    print("[fleet-e2e] " + msg, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait(what, cond, timeout):
    deadline = time.monotonic() + timeout
    while True:
        r = cond()
        if r:
            return r
        if time.monotonic() > deadline:
            raise AssertionError("timed out (%d s) waiting for %s" % (timeout, what))
        time.sleep(0.1)


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class Terminal:
    """mynaguardd on a simulated USB bus (scripts/demo-usb.py) and mynaguard-uplink."""

    def __init__(self, a, d, policy, spool, state, fleet_key):
        self.d = d
        self.fifo = os.path.join(d, "usb.cmd")
        os.mkfifo(self.fifo)
        self.agent_log = os.path.join(d, "agent.log")
        self.uplink_log = os.path.join(d, "uplink.log")
        self.policy, self.spool = policy, spool
        self.a = a
        wrapper = shutil.which("umockdev-wrapper")
        assert wrapper, "umockdev-wrapper is missing"
        with open(self.agent_log, "wb") as out:
            self.sim = subprocess.Popen(
                [wrapper, "/usr/bin/python3", os.path.join(SRC, "scripts", "demo-usb.py"),
                 self.fifo, "--", a.agent, "--policy", policy, "--socket",
                 os.path.join(d, "event.sock"), "--spool", spool, "--state", state,
                 "--fleet-key", fleet_key, "--foreground"],
                stdout=out, stderr=subprocess.STDOUT)
        self.cmd = open(self.fifo, "w")
        wait("the agent (usb-sim: ready)", lambda: "usb-sim: ready" in self.log(), 30)
        self.uplink = None

    def start_uplink(self, poll):
        args = [self.a.uplink, "--policy", self.policy, "--spool", self.spool, "--verbose",
                "--retry-min", "200", "--retry-max", "1000"]
        if poll:
            args += ["--poll", str(poll)]
        self.uplink_out = open(self.uplink_log, "ab")
        self.uplink = subprocess.Popen(args, stdout=self.uplink_out, stderr=subprocess.STDOUT)

    def send(self, line):
        self.cmd.write(line + "\n")
        self.cmd.flush()

    def log(self):
        with open(self.agent_log, "rb") as f:
            return f.read().decode(errors="replace")

    def authorized(self, name):
        """The interface's authorized attribute as demo-usb.py reads it now."""
        mark = "usb-sim: %s interface authorized=" % name
        before = self.log().count(mark)
        self.send("show")
        wait("show " + name, lambda: self.log().count(mark) > before, 10)
        last = self.log().rsplit(mark, 1)[1]
        return last[:1]

    def wait_authorized(self, name, value, timeout):
        return wait("%s authorized=%s" % (name, value),
                    lambda: self.authorized(name) == value, timeout)

    def stop(self):
        if self.uplink and self.uplink.poll() is None:
            self.uplink.send_signal(signal.SIGTERM)
            self.uplink.wait(20)
        try:
            self.send("quit")
            self.cmd.close()
        except OSError:
            pass
        try:
            self.sim.wait(30)
        except subprocess.TimeoutExpired:
            self.sim.kill()
            self.sim.wait()


def main():
    ap = argparse.ArgumentParser()
    for o in ("ctl", "collector", "agent", "uplink"):
        ap.add_argument("--" + o, required=True)
    ap.add_argument("--poll", type=int, default=1)
    a = ap.parse_args()
    os.environ["COLLECTOR"] = a.collector
    with TestDir("fleet-e2e") as d:
        os.chmod(d, 0o755)
        run(a, d, steps)
    print("ok")


def run(a, d, body, interval="1m"):
    """Sets the whole system up in d, runs body(a, c, t, ctl, events, wait_event, ingest_port)
    (also used by tests/bench/fleet/bench-grant-latency.py)."""
    pki = PKI(d)
    term = pki.terminal(TERMINAL)
    os.chmod(term[1], 0o600)

    # keys: the root key offline (mynaguardctl fleet keygen), the grant key on the collector
    root = os.path.join(d, "root")
    subprocess.run([a.ctl, "fleet", "keygen", "--out", root], check=True, capture_output=True)
    grant = os.path.join(d, "grant")
    subprocess.run([a.ctl, "fleet", "keygen", "--out", grant], check=True, capture_output=True)
    with open(grant + ".pub") as f:
        grant_b64 = f.read().strip()

    ingest_port = free_port()
    c = Collector(d, pki)
    with open(c.conf) as f:
        conf = f.read()
    # a fixed ingest port: the collector is stopped and started again, the policy names it
    conf = conf.replace("listen = 127.0.0.1:0", "listen = 127.0.0.1:%d" % ingest_port, 1)
    with open(c.conf, "w") as f:
        f.write(conf + "\n[fleet]\ngrant_key = %s.key\nroot_key = %s.pub\n" % (grant, root))
    c.start()
    tok = os.path.join(d, "token")

    def ctl(*args):
        # the dashboard's port is new after a restart
        conn = ["--collector", "https://127.0.0.1:%d" % c.dashboard[1], "--token-file", tok,
                "--ca", pki.p("server-ca.pem")]
        r = subprocess.run([a.ctl, "fleet", *args, *conn], capture_output=True, text=True)
        assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
        return r.stdout + r.stderr

    def events(kind):
        st, body, _ = c.get("/v1/events?order=newest&limit=500&kind=" + kind)
        assert st == 200, (st, body)
        return body["events"]

    def wait_event(kind, pred=lambda e: True, timeout=30):
        return wait("event %s at the collector" % kind,
                    lambda: [e for e in events(kind) if pred(e)], timeout)[0]

    # the terminal's policy: the shipped default with this test's id, collector and paths
    spool, state = os.path.join(d, "spool"), os.path.join(d, "state")
    os.makedirs(spool)
    os.makedirs(state)
    with open(os.path.join(SRC, "policy", "policy.conf")) as f:
        shipped = f.read()
    report = shipped
    for k, v in (("collector", "https://127.0.0.1:%d" % ingest_port),
                 ("ca", pki.p("server-ca.pem")), ("cert", term[0]), ("key", term[1]),
                 ("services", "e2e-login"), ("interval", interval)):
        report = re.sub(r"(?m)^;* *%s = .*$" % k, "%s = %s" % (k, v), report, count=1)
    policy = os.path.join(d, "policy.conf")
    with open(policy, "w") as f:
        f.write(report.replace("id = CHANGE-ME-terminal-0001", "id = " + TERMINAL))

    # the group's base: the same policy without the id, with [fleet]; signed, uploaded
    base = os.path.join(d, "base.conf")
    with open(base, "w") as f:
        f.write(re.sub(r"(?m)^id = .*\n", "", report).replace(
            "[terminal]\n", "[terminal]\ncontact = 情報政策課 内線 1234\n", 1))
        f.write("\n[fleet]\ngroup = %s\nversion = 1\nissued = %s\nterminals = fleet-e2e-*\n"
                "grant_key = %s\ngrant_classes = mass_storage\ngrant_max_days = 30\n"
                % (GROUP, rfc3339(time.time() - 60), grant_b64))
    subprocess.run([a.ctl, "fleet", "sign-base", "--key", root + ".key", "--out",
                    base + ".signed", base], check=True, capture_output=True)
    ctl("group", "create", GROUP)
    ctl("group", "add", GROUP, TERMINAL)
    assert "base version 1 uploaded" in ctl("policy", "upload", GROUP, base + ".signed")

    t = Terminal(a, d, policy, spool, state, root + ".pub")
    try:
        t.start_uplink(a.poll)
        body(a, c, t, ctl, events, wait_event, ingest_port)
    except BaseException:
        for name in ("agent.log", "uplink.log", "collector.log"):
            try:
                with open(os.path.join(d, name), "rb") as f:
                    sys.stderr.write("---- %s (tail)\n%s\n" % (
                        name, f.read()[-6000:].decode(errors="replace")))
            except OSError:
                pass
        raise
    finally:
        t.stop()
        if c.alive():
            c.stop()


def steps(a, c, t, ctl, events, wait_event, ingest_port):
    # 1. the bundle is fetched, checked and applied; the compliance snapshot names it
    ev = wait_event("bundle.applied", timeout=30)
    assert ev["data"]["group"] == GROUP and ev["data"]["base_version"] == 1, ev
    log("bundle applied: %s" % ev["data"])

    # 2. a stick: blocked, with a request code; the request is pending at the collector
    t.send("stick")
    blocked = wait_event("usb.blocked", lambda e: e["data"].get("request_code"))
    code = blocked["data"]["request_code"]
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{8}", code), code
    wait_event("fleet.request", lambda e: code in str(e["data"]))
    wait("request %s pending" % code,
         lambda: code in ctl("request", "list", "--state", "pending"), 30)
    assert t.authorized("stick") == "0"
    log("stick blocked, request %s pending" % code)

    # 3. granted for 30 s: the stick opens; the time from the grant's return is measured
    until = int(time.time()) + 30
    out = ctl("request", "grant", code, "--until", rfc3339(until), "--purpose", "e2e 持ち出し",
              "--approved-by", "sato")
    t0 = time.monotonic()
    m = re.search(r"exception (EX-[A-Za-z0-9._-]+)", out)
    assert m, out
    ex = m.group(1)
    t.wait_authorized("stick", "1", 60)
    latency = time.monotonic() - t0
    log("GRANT TO USABLE: %.2f s (uplink --poll %s)" % (latency, a.poll))
    print("grant-to-usable-seconds %.2f" % latency, flush=True)
    wait_event("fleet.grant", lambda e: ex in str(e["data"]))
    allowed = wait_event("usb.allowed", lambda e: (e["data"].get("exception") or {}).get("id")
                         == ex)
    assert ex in allowed["data"].get("rule", ""), allowed["data"]

    # 4. the collector goes away; the exception still ends on time (offline expiry)
    assert c.stop() == 0
    left = until - time.time()
    assert left > 2, "the grant took too long to test the offline expiry (%.1f s left)" % left
    t.wait_authorized("stick", "0", left + 15)
    assert time.time() >= until - 1, "closed before until"
    log("exception %s expired offline (%.1f s after until)" % (ex, time.time() - until))
    c.start()
    assert c.ingest[1] == ingest_port
    ev = wait_event("usb.exception_expired", timeout=40)
    assert ev["data"]["exception"]["id"] == ex and ev["data"]["action"] == "deauthorized", ev
    assert ev["data"]["classes"] == ["08:06:50"], ev

    # 5. a refused request never opens its stick
    t.send("stick REFUSED01")
    ev = wait_event("usb.blocked", lambda e: e["data"].get("serial") == "REFUSED01")
    rcode = ev["data"]["request_code"]
    wait("request %s pending" % rcode,
         lambda: rcode in ctl("request", "list", "--state", "pending"), 30)
    assert "refused" in ctl("request", "refuse", rcode, "--reason", "私物")
    wait_event("fleet.refuse")

    # 6. another stick granted, then revoked: closed after the next fetch
    t.send("stick REVOKE01")
    ev = wait_event("usb.blocked", lambda e: e["data"].get("serial") == "REVOKE01")
    vcode = ev["data"]["request_code"]
    wait("request %s pending" % vcode,
         lambda: vcode in ctl("request", "list", "--state", "pending"), 30)
    out = ctl("request", "grant", vcode, "--until", rfc3339(time.time() + 3600),
              "--purpose", "e2e revoke")
    ex2 = re.search(r"exception (EX-[A-Za-z0-9._-]+)", out).group(1)
    t.wait_authorized("stick-REVOKE01", "1", 60)
    assert t.authorized("stick-REFUSED01") == "0", "a refused request opened its stick"
    ctl("exception", "revoke", ex2, "--reason", "返却")
    t.wait_authorized("stick-REVOKE01", "0", 60)
    wait_event("fleet.revoke")
    ev = wait_event("usb.exception_revoked", timeout=40)
    assert ev["data"]["exception"]["id"] == ex2, ev["data"]
    assert t.authorized("stick-REFUSED01") == "0", "a refused request opened its stick"
    log("revoked %s closed its stick; the refused stick stayed closed" % ex2)

    # 7. the compliance snapshots after the bundle (every [report] interval = 1m) name it
    snap = wait_event("compliance", lambda e: e["data"].get("bundle"), timeout=75)
    b = snap["data"]["bundle"]
    assert b["group"] == GROUP and b["base_version"] == 1 and b["version"] >= 1, b
    assert re.fullmatch(r"[0-9a-f]{64}", b["policy_sha256"].removeprefix("sha256:")), b


if __name__ == "__main__":
    main()
