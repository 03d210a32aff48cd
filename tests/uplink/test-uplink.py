#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Integration tests of mynaguard-uplink on 127.0.0.1 with a throwaway CA: backlog after an
# outage, kill -9 of uplink and collector during uploads, a rogue server, 429 + Retry-After,
# idle without polling, wake on new records. Usage: test-uplink.py SCENARIO --uplink BIN
# --spool-tool BIN [--collector-cmd fake|real] ...
import argparse
import errno
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

A = None
TERMINAL = "T-01"


def log(msg):
    sys.stderr.write("[test-uplink] %s\n" % msg)
    sys.stderr.flush()


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def make_pki(d):
    """CA, server cert for 127.0.0.1, client cert CN=T-01, and a rogue CA with its own server cert."""
    def key(name):
        run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", os.path.join(d, name + ".key")])

    def ca(name):
        key(name)
        run(["openssl", "req", "-x509", "-new", "-key", os.path.join(d, name + ".key"),
             "-out", os.path.join(d, name + ".pem"), "-days", "2", "-subj", "/CN=" + name])

    def leaf(name, cn, issuer, ext):
        key(name)
        csr = os.path.join(d, name + ".csr")
        extf = os.path.join(d, name + ".ext")
        with open(extf, "w") as f:
            f.write(ext)
        run(["openssl", "req", "-new", "-key", os.path.join(d, name + ".key"), "-out", csr,
             "-subj", "/CN=" + cn])
        run(["openssl", "x509", "-req", "-in", csr, "-CA", os.path.join(d, issuer + ".pem"),
             "-CAkey", os.path.join(d, issuer + ".key"), "-CAcreateserial",
             "-out", os.path.join(d, name + ".pem"), "-days", "2", "-extfile", extf])

    ca("ca")
    ca("rogue-ca")
    leaf("server", "127.0.0.1", "ca",
         "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    leaf("client", TERMINAL, "ca", "extendedKeyUsage=clientAuth\n")
    leaf("rogue-server", "127.0.0.1", "rogue-ca",
         "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    # from the right CA, but for another name: the host check must refuse it
    leaf("wrongname-server", "collector.example", "ca",
         "subjectAltName=DNS:collector.example,IP:192.0.2.1\nextendedKeyUsage=serverAuth\n")
    os.chmod(os.path.join(d, "client.key"), 0o600)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Env:
    def __init__(self, tmp, batch_max=200):
        self.tmp = tmp
        self.spool = os.path.join(tmp, "spool")
        os.mkdir(self.spool)
        make_pki(tmp)
        self.port = free_port()
        self.store = os.path.join(tmp, "store.jsonl")
        self.db = os.path.join(tmp, "collector.db")
        self.reqlog = os.path.join(tmp, "requests.log")
        self.policy = os.path.join(tmp, "policy.conf")
        with open(self.policy, "w") as f:
            f.write("[terminal]\nid = %s\n[report]\ncollector = https://127.0.0.1:%d\n"
                    "ca = %s/ca.pem\ncert = %s/client.pem\nkey = %s/client.key\n"
                    "batch_max = %d\n[checks]\npam_dir = %s/pam.d\nsysfs_root = %s/sys\n"
                    % (TERMINAL, self.port, tmp, tmp, tmp, batch_max, tmp, tmp))
        self.uplink = None
        self.collector = None
        self.uplink_log = open(os.path.join(tmp, "uplink.log"), "ab")
        self.collector_log = open(os.path.join(tmp, "collector.log"), "ab")

    def fill(self, n, sleep_us=0, background=False, sync_every=1, max_bytes=0):
        cmd = [A.spool_tool, "fill", self.spool, TERMINAL, str(n), str(sleep_us),
               str(max_bytes), str(sync_every)]
        if background:
            return subprocess.Popen(cmd, stdout=subprocess.PIPE)
        return int(run(cmd).stdout)

    def start_uplink(self, extra=()):
        self.uplink = subprocess.Popen(
            [A.uplink, "--policy", self.policy, "--spool", self.spool, "--retry-min", "100",
             "--retry-max", "1000", "--timeout", "10", *extra],
            stdout=self.uplink_log, stderr=self.uplink_log)
        # until it has blocked SIGTERM (it then arrives through its signalfd), a SIGTERM from
        # the test would kill it with the default action
        deadline = time.time() + 10
        while time.time() < deadline and self.uplink.poll() is None:
            try:
                with open("/proc/%d/status" % self.uplink.pid) as f:
                    blk = [l for l in f if l.startswith("SigBlk:")]
                if blk and int(blk[0].split()[1], 16) & (1 << (signal.SIGTERM - 1)):
                    break
            except OSError:
                pass
            time.sleep(0.005)

    def start_collector(self, cert="server", extra=()):
        if A.collector:
            return self.start_real_collector(cert, "".join(x + "\n" for x in extra))
        self.collector = subprocess.Popen(
            [sys.executable, A.fake, "--port", str(self.port), "--ca", self.tmp + "/ca.pem",
             "--cert", "%s/%s.pem" % (self.tmp, cert), "--key", "%s/%s.key" % (self.tmp, cert),
             "--store", self.store, "--reqlog", self.reqlog, *extra],
            stdout=self.collector_log, stderr=self.collector_log)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("collector did not start")

    def start_real_collector(self, cert, ingest_extra="", tail=""):
        """The real mynaguard-collector on the same fixed port (the policy names it)."""
        conf = os.path.join(self.tmp, "collector.conf")
        tok = os.path.join(self.tmp, "token")
        with open(tok, "w") as f:
            f.write("test-token-0123456789abcdef\n")
        os.chmod(tok, 0o600)
        with open(conf, "w") as f:
            f.write("[ingest]\nlisten = 127.0.0.1:%d\ncertificate = %s/%s.pem\nkey = %s/%s.key\n"
                    "client_ca = %s/ca.pem\nworkers = 2\n%s[dashboard]\nlisten = 127.0.0.1:0\n"
                    "token_file = %s\n[store]\ndatabase = %s\n%s"
                    % (self.port, self.tmp, cert, self.tmp, cert, self.tmp, ingest_extra, tok,
                       self.db, tail))
        self.collector = subprocess.Popen([A.collector, "--config", conf],
                                          stdout=subprocess.PIPE, stderr=self.collector_log)
        line = self.collector.stdout.readline()
        if not line.startswith(b"READY "):
            raise RuntimeError("collector did not start: %r" % line)
        parts = dict(x.split("=", 1) for x in line.decode().split()[1:])
        host, port = parts["dashboard"].rsplit(":", 1)
        self.dashboard = (host, int(port))

    def dashboard_get(self, path):
        import http.client
        import ssl
        ctx = ssl.create_default_context(cafile=os.path.join(self.tmp, "ca.pem"))
        conn = http.client.HTTPSConnection(self.dashboard[0], self.dashboard[1], timeout=30,
                                           context=ctx)
        conn.request("GET", path, headers={"Authorization": "Bearer test-token-0123456789abcdef"})
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        assert resp.status == 200, (path, resp.status, body)
        return json.loads(body)

    def kill(self, which, sig=signal.SIGKILL):
        p = getattr(self, which)
        if p and p.poll() is None:
            p.send_signal(sig)
            p.wait()
        setattr(self, which, None)

    def acked(self):
        try:
            with open(os.path.join(self.spool, "ack", "acked")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return 0

    def wait_acked(self, n, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.acked() >= n:
                return
            if self.uplink is not None and self.uplink.poll() is not None:
                raise AssertionError("uplink exited with %d" % self.uplink.returncode)
            time.sleep(0.05)
        raise AssertionError("acked %d, want %d" % (self.acked(), n))

    def stored(self):
        if A.collector:
            if not os.path.exists(self.db):
                return []
            con = sqlite3.connect(self.db, timeout=30)
            try:
                return [r[0] for r in con.execute(
                    "SELECT e.seq FROM events e JOIN terminals t ON t.id = e.tid "
                    "WHERE t.name = ?", (TERMINAL,))]
            except sqlite3.OperationalError:
                return []
            finally:
                con.close()
        seqs = []
        if os.path.exists(self.store):
            with open(self.store) as f:
                for line in f:
                    if line.strip():
                        ev = json.loads(line)
                        assert ev["terminal"] == TERMINAL
                        seqs.append(ev["seq"])
        return seqs

    def requests(self):
        out = []
        if os.path.exists(self.reqlog):
            with open(self.reqlog) as f:
                for line in f:
                    t, status, n, tls = line.split()
                    out.append((float(t), int(status), int(n), tls))
        return out

    def close(self):
        self.kill("uplink", signal.SIGTERM)
        self.kill("collector")

    def dump_logs(self):
        for name in ("uplink.log", "collector.log"):
            p = os.path.join(self.tmp, name)
            if os.path.exists(p):
                with open(p, "rb") as f:
                    data = f.read()[-4000:]
                log("---- %s (tail) ----\n%s" % (name, data.decode(errors="replace")))


def assert_exactly_once(env, n):
    seqs = env.stored()
    assert len(seqs) == n, "stored %d events, want %d" % (len(seqs), n)
    assert sorted(seqs) == list(range(1, n + 1)), "stored sequence numbers are not 1..%d once each" % n


def segments(env):
    return sorted(x for x in os.listdir(env.spool) if x.startswith("seg-"))


def scenario_backlog(env):
    """10,000 events while the collector is down, then it comes up: all stored exactly once."""
    last = env.fill(10000, sync_every=100, max_bytes=16 << 20)  # 1 MiB segments
    assert last == 10000
    env.start_uplink(["--retry-max", "500"])
    time.sleep(1.5)  # the uplink fails and backs off meanwhile
    assert env.acked() == 0
    env.start_collector()
    env.wait_acked(10000, timeout=120)
    assert_exactly_once(env, 10000)
    if not A.collector:
        reqs = [r for r in env.requests() if r[1] == 200]
        assert all(r[2] <= 200 for r in reqs), "a batch exceeded batch_max"
        assert all(r[3] == "TLSv1.3" for r in reqs), "TLS 1.3 not negotiated"
        assert len(reqs) >= 50, "expected at least 50 batches of at most 200"
    # the uplink deletes nothing; the agent removes the acknowledged segments, not the newest
    assert len(segments(env)) > 1, segments(env)
    out = run([A.spool_tool, "trim", env.spool]).stdout.decode()
    assert out.startswith("acked=10000 ") and " refused=0 " in out, out
    assert len(segments(env)) == 1, segments(env)
    with open(os.path.join(env.tmp, "uplink.log")) as f:
        text = f.read()
    assert text.count("uplink.unreachable") >= 1, "no unreachable line"
    assert "uplink.recovered" in text


def scenario_kill(env):
    """kill -9 of uplink and collector at random moments during uploads, 10 rounds."""
    rnd = random.Random(int(os.environ.get("MG_TEST_SEED", "5")))
    total = 4000
    env.start_collector()
    env.start_uplink()
    writer = env.fill(total, sleep_us=300, background=True)
    for round_ in range(10):
        time.sleep(rnd.uniform(0.05, 0.4))
        which = "uplink" if round_ % 2 == 0 else "collector"
        if rnd.random() < 0.3:
            which = "uplink" if which == "collector" else "collector"
        log("round %d: kill -9 %s (acked %d)" % (round_, which, env.acked()))
        env.kill(which)
        time.sleep(rnd.uniform(0.0, 0.3))
        if which == "uplink":
            env.start_uplink()
        else:
            env.start_collector()
    out, _ = writer.communicate(timeout=120)
    assert writer.returncode == 0
    assert int(out) == total
    env.wait_acked(total, timeout=120)
    assert_exactly_once(env, total)
    log("kill rounds done: %d requests, %d events stored once" % (len(env.requests()), total))


def scenario_rogue(env):
    """A server whose certificate is not from the CA gets nothing."""
    env.fill(20)
    env.start_collector(cert="rogue-server")
    env.start_uplink()
    time.sleep(2.5)
    assert env.uplink.poll() is None, "uplink must keep running"
    assert env.requests() == [], "a request reached the rogue server"
    if A.collector:
        # the real collector refuses the handshake too (our client cert is from another CA
        # than its server cert): the proof is the uplink's error and an empty store
        pass
    assert env.stored() == []
    assert env.acked() == 0
    with open(os.path.join(env.tmp, "uplink.log")) as f:
        text = f.read()
    assert "uplink.unreachable" in text, text
    # one boundary line per distinct error, not one per retry
    assert text.count("uplink.unreachable") <= 2, text
    # the right CA but a certificate for another name: refused as well
    env.kill("collector")
    n_before = len(env.requests())
    env.start_collector(cert="wrongname-server")
    time.sleep(2.0)
    assert len(env.requests()) == n_before, "a request reached a server with the wrong name"
    with open(os.path.join(env.tmp, "uplink.log")) as f:
        text = f.read()
    assert "subject name" in text, text
    assert env.stored() == [] and env.acked() == 0
    # the real one comes up: everything goes
    env.kill("collector")
    env.start_collector()
    env.wait_acked(20, timeout=30)
    assert_exactly_once(env, 20)


def scenario_throttle(env):
    """429 with Retry-After: 2 is honoured."""
    env.fill(50)
    env.start_collector(extra=["--throttle", "1", "--retry-after", "2"])
    env.start_uplink(["--retry-min", "50", "--retry-max", "100"])
    env.wait_acked(50, timeout=30)
    reqs = env.requests()
    assert reqs[0][1] == 429, reqs
    assert reqs[1][1] == 200, reqs
    gap = reqs[1][0] - reqs[0][0]
    assert gap >= 1.95, "retried after %.2f s despite Retry-After: 2" % gap
    assert gap < 4.0, "waited %.2f s" % gap
    assert_exactly_once(env, 50)


def ctx_switches(pid):
    with open("/proc/%d/status" % pid) as f:
        vals = {}
        for line in f:
            k, _, v = line.partition(":")
            vals[k] = v.strip()
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(vals["voluntary_ctxt_switches"]), int(vals["nonvoluntary_ctxt_switches"]),
            int(fields[11]) + int(fields[12]))


def scenario_idle(env):
    """Idle means asleep (no polling); new records wake it (inotify)."""
    env.fill(10)
    env.start_collector()
    env.start_uplink()
    env.wait_acked(10)
    time.sleep(0.5)
    before = ctx_switches(env.uplink.pid)
    time.sleep(2.0)
    after = ctx_switches(env.uplink.pid)
    assert before == after, "uplink woke up while idle: %s -> %s" % (before, after)
    n_req = len(env.requests())
    t0 = time.time()
    env.fill(5)
    env.wait_acked(15, timeout=5)
    log("woken by inotify after %.3f s" % (time.time() - t0))
    if not A.collector:
        assert n_req + 1 <= len(env.requests()) <= n_req + 5
    assert_exactly_once(env, 15)
    # --once exits when everything is sent
    env.kill("uplink", signal.SIGTERM)
    env.fill(7)
    r = subprocess.run([A.uplink, "--policy", env.policy, "--spool", env.spool, "--once"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert r.returncode == 0, r.stderr
    assert env.acked() == 22
    assert_exactly_once(env, 22)


def scenario_check(env):
    """--check validates the policy and TLS files; a bad policy fails with FILE:LINE."""
    r = subprocess.run([A.uplink, "--policy", env.policy, "--check"], stderr=subprocess.PIPE)
    assert r.returncode == 0, r.stderr
    bad = os.path.join(env.tmp, "bad.conf")
    with open(bad, "w") as f:
        f.write("[terminal]\nid = T-01\n[report]\ncollector = http://127.0.0.1:1\n")
    r = subprocess.run([A.uplink, "--policy", bad, "--check"], stderr=subprocess.PIPE)
    assert r.returncode == 1 and b"https://" in r.stderr, r.stderr
    with open(bad, "w") as f:
        f.write("[terminal]\nid = T-01\nbogus = 1\n")
    r = subprocess.run([A.uplink, "--policy", bad, "--check"], stderr=subprocess.PIPE)
    assert r.returncode == 1 and b"bad.conf:3" in r.stderr, r.stderr


def kinds_stored(env):
    con = sqlite3.connect(env.db, timeout=30)
    try:
        return [(r[0], json.loads(r[1])) for r in con.execute(
            "SELECT kind, data FROM events ORDER BY seq")]
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()


def scenario_e2e(env):
    """The whole path: PAM datagram → mynaguardd → spool → uplink → mynaguard-collector → SQLite."""
    assert A.collector and A.agent, "e2e needs --collector and --agent"
    for d in ("pam.d", "sys", "state"):
        os.makedirs(os.path.join(env.tmp, d), exist_ok=True)
    sock = os.path.join(env.tmp, "event.sock")
    agent_log = open(os.path.join(env.tmp, "agent.log"), "ab")
    agent = subprocess.Popen([A.agent, "--policy", env.policy, "--socket", sock, "--spool",
                              env.spool, "--state", os.path.join(env.tmp, "state"),
                              "--sysfs-root", os.path.join(env.tmp, "sys")],
                             stdout=subprocess.PIPE, stderr=agent_log)
    try:
        assert agent.stdout.readline() == b"READY\n"
        env.start_collector()
        env.start_uplink()
        dg = {"v": 1, "kind": "auth.failure", "ts_ms": int(time.time() * 1000),
              "data": {"user": "alice", "service": "login", "rhost": "", "tty": "tty1",
                       "reason": "bad_code"}}
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.sendto(json.dumps(dg).encode(), sock)
        s.close()
        deadline = time.time() + 20
        while time.time() < deadline:
            got = [d for k, d in kinds_stored(env) if k == "auth.failure"]
            if got:
                break
            time.sleep(0.1)
        assert got, "auth.failure did not reach the collector: %s" % kinds_stored(env)
        assert got[0]["user"] == "alice" and got[0]["sender"]["pid"] == os.getpid()
        kinds = [k for k, _ in kinds_stored(env)]
        assert "agent.started" in kinds and "compliance" in kinds, kinds
        if os.getuid() == 0:
            # a local user forges a failed login of root dated in the year 9999: it arrives
            # marked, with the agent's time, and is not root's failed login on the dashboard
            forged = dict(dg, ts_ms=253402300799999, data=dict(dg["data"], user="root"))
            os.chmod(env.tmp, 0o755)  # the socket's directory, as /run/mynaguard
            pid = os.fork()
            if pid == 0:
                try:
                    os.setgroups([])
                    os.setgid(65534)
                    os.setuid(65534)
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                    s.sendto(json.dumps(forged).encode(), sock)
                finally:
                    os._exit(0)
            os.waitpid(pid, 0)
            deadline = time.time() + 20
            while time.time() < deadline:
                got = [d for k, d in kinds_stored(env) if k == "auth.failure"]
                if len(got) == 2:
                    break
                time.sleep(0.1)
            assert len(got) == 2, got
            assert got[1]["user"] == "root" and got[1]["sender"]["uid"] == 65534
            assert got[1]["sender"]["unprivileged"] is True, got[1]
            con = sqlite3.connect(env.db, timeout=30)
            newest = con.execute("SELECT max(ts) FROM events").fetchone()[0]
            con.close()
            assert newest < (time.time() + 60) * 1000, newest
            terms = env.dashboard_get("/v1/terminals")["terminals"]
            assert terms[0]["auth_failures_24h"] == 1, terms
            detail = env.dashboard_get("/v1/terminals/" + TERMINAL)
            marked = [e for e in detail["recent_events"]
                      if e["data"].get("sender", {}).get("unprivileged") is True]
            assert len(marked) == 1 and marked[0]["data"]["user"] == "root", detail
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=20)
        agent_log.close()
    assert agent.returncode == 0
    # agent.stopped follows through the uplink as well
    deadline = time.time() + 20
    while time.time() < deadline and "agent.stopped" not in [k for k, _ in kinds_stored(env)]:
        time.sleep(0.1)
    assert "agent.stopped" in [k for k, _ in kinds_stored(env)]
    seqs = env.stored()
    assert sorted(seqs) == list(range(1, len(seqs) + 1)), seqs


def scenario_forbidden(env):
    """A terminal id that is not the certificate's identity: 403, retried, nothing deleted."""
    with open(env.policy) as f:
        text = f.read()
    with open(env.policy, "w") as f:
        f.write(text.replace("id = %s" % TERMINAL, "id = T-99"))
    subprocess.run([A.spool_tool, "fill", env.spool, "T-99", "30"], check=True,
                   stdout=subprocess.DEVNULL)
    # the collector's reason is logged escaped by base/escape.c (first line only)
    hostile = "no match \x1b[31m\u6771\u4eac \"T\" \\\nsecond line"
    env.start_collector(extra=() if A.collector else ("--forbidden-reason", hostile))
    env.start_uplink()
    time.sleep(2.0)
    assert env.uplink.poll() is None
    assert env.acked() == 0
    assert env.stored() == []
    assert len(segments(env)) == 1
    with open(os.path.join(env.tmp, "uplink.log")) as f:
        log_text = f.read()
    assert "HTTP 403" in log_text, log_text
    if not A.collector:
        assert "\x1b" not in log_text and "second line" not in log_text, log_text
        assert 'HTTP 403: no match \\x1b[31m\u6771\u4eac \\"T\\" \\\\' in log_text, log_text
    assert log_text.count("uplink.unreachable") == 1, log_text
    if not A.collector:
        assert len([r for r in env.requests() if r[1] == 403]) >= 3


def as_user(uid, gid, fn):
    """Run fn() in a child process with uid/gid; returns what it returned (a short string)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        out = b"exception"
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            out = fn().encode()
        finally:
            os.write(w, out)
            os._exit(0)
    os.close(w)
    out = os.read(r, 200).decode()
    os.close(r)
    os.waitpid(pid, 0)
    return out


def scenario_unprivileged(env):
    """The uplink as an unprivileged user (uid/gid 65534) on a spool laid out as installed:
    directory root:GROUP 0750, ack/ root:GROUP 0770, segments root:GROUP 0640 written by root.
    It reads, sends and writes ack/acked; it deletes nothing and cannot create anything beside
    ack/. The agent (here spool-tool, the same spool_writer code) deletes what was acknowledged
    and refuses an acknowledgement beyond what it stored: recording goes on, nothing is lost."""
    if os.getuid() != 0:
        log("skipping: needs root")
        return
    uid = gid = 65534
    os.chmod(env.tmp, 0o755)
    os.chown(env.spool, 0, gid)
    os.chmod(env.spool, 0o750)
    os.chown(os.path.join(env.tmp, "client.key"), uid, gid)
    # as root, like the agent; 128 KiB segments (spool_max 2M) so that several get trimmed
    last = env.fill(3000, sync_every=100, max_bytes=2 << 20)
    nsegs = len(segments(env))
    assert nsegs > 3
    for seg in segments(env):
        st = os.stat(os.path.join(env.spool, seg))
        assert st.st_uid == 0 and st.st_gid == gid and st.st_mode & 0o777 == 0o640, (seg, st)
    st = os.stat(os.path.join(env.spool, "ack"))
    assert st.st_uid == 0 and st.st_gid == gid and st.st_mode & 0o7777 == 0o770, st
    env.start_collector()

    def drop():
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)

    r = subprocess.run([A.uplink, "--policy", env.policy, "--spool", env.spool, "--once"],
                       preexec_fn=drop, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 0, r.stderr
    assert env.acked() == last
    assert_exactly_once(env, last)
    st = os.stat(os.path.join(env.spool, "ack", "acked"))
    assert st.st_uid == uid, st
    assert len(segments(env)) == nsegs, "the uplink deleted segments"
    out = run([A.spool_tool, "trim", env.spool]).stdout.decode()
    assert out.startswith("acked=%d " % last) and " refused=0 " in out, out
    assert len(segments(env)) == 1, segments(env)

    # what the uplink's user may try: plant a segment, delete one, claim a huge ack
    seg0 = os.path.join(env.spool, segments(env)[0])

    def attack():
        res = []
        for f in (lambda: open(os.path.join(env.spool, "seg-99999999999999999999"), "w"),
                  lambda: os.unlink(seg0),
                  lambda: os.rename(os.path.join(env.spool, "ack"), env.spool + "/x")):
            try:
                f()
                res.append("done")
            except PermissionError:
                res.append("refused")
        with open(os.path.join(env.spool, "ack", "acked.tmp"), "w") as f:
            f.write("9223372036854775807\n")
        os.rename(os.path.join(env.spool, "ack", "acked.tmp"),
                  os.path.join(env.spool, "ack", "acked"))
        return ",".join(res)

    assert as_user(uid, gid, attack) == "refused,refused,refused"
    assert os.path.exists(seg0)
    # the agent keeps recording; the claim is refused and deletes nothing
    assert env.fill(5) == last + 5
    out = run([A.spool_tool, "trim", env.spool]).stdout.decode()
    assert out == "acked=0 removed=0 refused=%d claimed=9223372036854775807\n" % errno.ERANGE, out
    assert len(segments(env)) == 1, segments(env)

    # back to an honest uplink: it sends the rest exactly once (nothing was lost)
    def honest():
        with open(os.path.join(env.spool, "ack", "acked"), "w") as f:
            f.write("%d\n" % last)
        return "ok"

    assert as_user(uid, gid, honest) == "ok"
    r = subprocess.run([A.uplink, "--policy", env.policy, "--spool", env.spool, "--once"],
                       preexec_fn=drop, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 0, r.stderr
    assert_exactly_once(env, last + 5)


def dashboard_call(env, method, path, body):
    import http.client
    import ssl
    ctx = ssl.create_default_context(cafile=os.path.join(env.tmp, "ca.pem"))
    conn = http.client.HTTPSConnection(env.dashboard[0], env.dashboard[1], timeout=30,
                                       context=ctx)
    h = {"Authorization": "Bearer test-token-0123456789abcdef"}
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    conn.request(method, path, body=body, headers=h)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    assert resp.status in (200, 201), (path, resp.status, data)


def scenario_fleet(env):
    """The fleet bundle: fetched into SPOOL/inbox atomically (0640, with its ETag), kept on 304,
    replaced when the collector has a newer version, left alone while the collector is down."""
    assert A.collector, "fleet needs --collector"
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                    "collector"))
    import fleetlib
    root_pem, root_pub, _ = fleetlib.keygen(env.tmp, "root")
    grant_pem, _, grant_raw = fleetlib.keygen(env.tmp, "grant")
    env.start_real_collector("server", tail=fleetlib.fleet_conf(grant_pem, root_pub))
    dashboard_call(env, "POST", "/v1/groups", {"name": "g1"})
    dashboard_call(env, "PUT", "/v1/groups/g1/terminals/" + TERMINAL, b"")
    dashboard_call(env, "PUT", "/v1/groups/g1/policy", fleetlib.signed_base(
        env.tmp, root_pem, fleetlib.base_text("g1", 1, grant_raw, terminals="T-*")))
    inbox = os.path.join(env.spool, "inbox")
    bundle, etag = os.path.join(inbox, "bundle"), os.path.join(inbox, "etag")

    env.fill(3)
    env.start_uplink(["--poll", "1", "--verbose"])
    env.wait_acked(3)
    deadline = time.time() + 15
    while time.time() < deadline and not os.path.exists(etag):
        time.sleep(0.1)
    with open(etag) as f:
        assert f.read() == '"1"\n'
    st = os.stat(bundle)
    assert st.st_mode & 0o777 == 0o640, oct(st.st_mode)
    with open(bundle, "rb") as f:
        first = f.read()
    assert fleetlib.decode_bundle(first)["version"] == 1
    assert sorted(n for n in os.listdir(inbox) if n != "claim.sock") == ["bundle", "etag"], \
        os.listdir(inbox)  # claim.sock: the claim socket (docs/fleet.md)

    # 304: several polls later the same file (same inode, same bytes)
    time.sleep(2.5)
    st2 = os.stat(bundle)
    assert (st2.st_ino, st2.st_mtime_ns) == (st.st_ino, st.st_mtime_ns)
    with open(os.path.join(env.tmp, "uplink.log"), "rb") as f:
        assert b"uplink.fleet status=304" in f.read()

    # something changes for this terminal: a new version replaces the file (rename)
    dashboard_call(env, "POST", "/v1/exceptions", {
        "scope": "group", "group": "g1", "vendor": "0781", "product": "5581",
        "serial": "S1", "class": "mass_storage", "until": int(time.time()) + 86400,
        "purpose": "test"})
    deadline = time.time() + 15
    while time.time() < deadline:
        with open(etag) as f:
            if f.read() == '"2"\n':
                break
        time.sleep(0.1)
    with open(bundle, "rb") as f:
        second = f.read()
    b2 = fleetlib.decode_bundle(second)
    assert b2["version"] == 2 and b2["json"]["exceptions"][0]["serial"] == "S1", b2["json"]
    assert os.stat(bundle).st_ino != st.st_ino
    assert sorted(n for n in os.listdir(inbox) if n != "claim.sock") == ["bundle", "etag"], \
        os.listdir(inbox)

    # the collector is down: nothing changes, the uplink carries on
    env.kill("collector")
    time.sleep(3)
    with open(bundle, "rb") as f:
        assert f.read() == second
    with open(etag) as f:
        assert f.read() == '"2"\n'
    assert env.uplink.poll() is None
    with open(os.path.join(env.tmp, "uplink.log"), "rb") as f:
        text = f.read()
    assert text.count(b"uplink.fleet op=fetch") == 1, text[-2000:]


def scenario_fleet_default(env):
    """Without --poll, an idle uplink (nothing to upload, [report] interval 15m) still fetches a
    new bundle within 30 s: a grant reaches an online terminal in under a minute."""
    assert A.collector, "fleet-default needs --collector"
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                    "collector"))
    import fleetlib
    root_pem, root_pub, _ = fleetlib.keygen(env.tmp, "root")
    grant_pem, _, grant_raw = fleetlib.keygen(env.tmp, "grant")
    env.start_real_collector("server", tail=fleetlib.fleet_conf(grant_pem, root_pub))
    dashboard_call(env, "POST", "/v1/groups", {"name": "g1"})
    dashboard_call(env, "PUT", "/v1/groups/g1/terminals/" + TERMINAL, b"")
    dashboard_call(env, "PUT", "/v1/groups/g1/policy", fleetlib.signed_base(
        env.tmp, root_pem, fleetlib.base_text("g1", 1, grant_raw, terminals="T-*")))
    etag = os.path.join(env.spool, "inbox", "etag")
    env.start_uplink(["--verbose"])
    deadline = time.time() + 15
    while time.time() < deadline and not os.path.exists(etag):
        time.sleep(0.1)
    with open(etag) as f:
        assert f.read() == '"1"\n'
    dashboard_call(env, "POST", "/v1/exceptions", {
        "scope": "group", "group": "g1", "vendor": "0781", "product": "5581",
        "serial": "S1", "class": "mass_storage", "until": int(time.time()) + 86400,
        "purpose": "test"})
    t0 = time.time()
    while time.time() < t0 + 40:
        with open(etag) as f:
            if f.read() == '"2"\n':
                break
        time.sleep(0.2)
    took = time.time() - t0
    with open(etag) as f:
        assert f.read() == '"2"\n', "no fetch within 40 s without --poll"
    log("new bundle fetched %.1f s after the change (default poll)" % took)
    assert took <= 35, took
    assert env.acked() == 0 and env.uplink.poll() is None


SCENARIOS = {
    "fleet-default": scenario_fleet_default,
    "e2e": scenario_e2e,
    "unprivileged": scenario_unprivileged,
    "forbidden": scenario_forbidden,
    "backlog": scenario_backlog,
    "kill": scenario_kill,
    "rogue": scenario_rogue,
    "throttle": scenario_throttle,
    "idle": scenario_idle,
    "check": scenario_check,
    "fleet": scenario_fleet,
}


def main():
    global A
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    ap.add_argument("--uplink", required=True)
    ap.add_argument("--spool-tool", required=True)
    ap.add_argument("--fake", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                   "fake-collector.py"))
    ap.add_argument("--collector", help="the real mynaguard-collector instead of the fake")
    ap.add_argument("--agent", help="mynaguardd, for the e2e scenario")
    ap.add_argument("--keep", action="store_true")
    A = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="mg-uplink-%s-" % A.scenario)
    env = Env(tmp)
    ok = False
    try:
        SCENARIOS[A.scenario](env)
        if env.uplink is not None:
            # a clean stop: exit 0 (under ASan also: no leak, no error at exit)
            env.uplink.send_signal(signal.SIGTERM)
            rc = env.uplink.wait(timeout=20)
            env.uplink = None
            assert rc == 0, "uplink exited with %d on SIGTERM" % rc
        ok = True
    finally:
        env.close()
        if not ok:
            env.dump_logs()
        if ok and not A.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log("left %s" % tmp)
    log("%s: ok" % A.scenario)


if __name__ == "__main__":
    main()
