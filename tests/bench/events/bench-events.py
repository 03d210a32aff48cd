#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Benchmark of the event path (not part of meson test): datagrams → mynaguardd → spool, spool →
# mynaguard-uplink → collector, and the burst after a long outage (backoff schedule, batch cap,
# many terminals returning at once). Results go to docs/benchmarks.md ("Events and uplink").
# Usage: tests/bench/events/bench-events.py BUILDDIR [--events N] [--terminals N] [--outage S]
import argparse
import importlib.util
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
spec = importlib.util.spec_from_file_location("tu", os.path.join(ROOT, "tests/uplink/test-uplink.py"))
tu = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tu)

DG = {"v": 1, "kind": "auth.failure", "ts_ms": 1795633116123,
      "data": {"user": "alice", "service": "login", "rhost": "192.0.2.10", "tty": "ssh",
               "reason": "bad_code"}}


def out(msg):
    print(msg, flush=True)


def count_records(spool_tool, spool):
    r = subprocess.run([spool_tool, "dump", spool], stdout=subprocess.PIPE, check=True)
    return r.stdout.count(b'"kind":"auth.failure"')


def bench_socket_to_spool(b, tmp):
    """A burst from 50 user uids (100 each: their bucket) plus root (2000): 7000 datagrams."""
    spool = os.path.join(tmp, "s2s-spool")
    os.makedirs(os.path.join(tmp, "sys"), exist_ok=True)
    pol = os.path.join(tmp, "s2s.conf")
    with open(pol, "w") as f:
        f.write("[terminal]\nid = T-01\n[checks]\npam_dir = %s/pam.d\nsysfs_root = %s/sys\n"
                % (tmp, tmp))
    sock = os.path.join(tmp, "s2s.sock")
    log = open(os.path.join(tmp, "s2s-agent.log"), "ab")
    agent = subprocess.Popen([b.agent, "--policy", pol, "--socket", sock, "--spool", spool,
                              "--state", os.path.join(tmp, "s2s-state"), "--sysfs-root",
                              os.path.join(tmp, "sys")], stdout=subprocess.PIPE, stderr=log)
    assert agent.stdout.readline() == b"READY\n"
    base = count_records(b.spool_tool, spool)
    payload = json.dumps(DG).encode()
    senders = [(0, 2000)] + [(20000 + i, 100) for i in range(50)]
    rd, wr = os.pipe()
    pids = []
    t0 = time.time()
    for uid, n in senders:
        pid = os.fork()
        if pid == 0:
            try:
                os.close(rd)
                if uid:
                    os.setgroups([])
                    os.setgid(uid)
                    os.setuid(uid)
                s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                for _ in range(n):
                    while True:
                        try:
                            s.sendto(payload, sock)
                            break
                        except BlockingIOError:
                            time.sleep(0.0005)
            finally:
                os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    total = sum(n for _, n in senders)
    while count_records(b.spool_tool, spool) < base + total and time.time() - t0 < 60:
        time.sleep(0.02)
    dt = time.time() - t0
    got = count_records(b.spool_tool, spool) - base
    agent.send_signal(signal.SIGTERM)
    agent.wait()
    log.close()
    with open(os.path.join(tmp, "s2s-agent.log")) as f:
        closed = [l for l in f if l.startswith("evsock.closed")]
    out("socket → spool: %d datagrams from 51 senders stored in %.2f s = %.0f events/s "
        "(group commit ≤ 256 per fdatasync; %s)" % (got, dt, got / dt, closed[-1].strip()))

    # the cost of one durable event without grouping (agent_emit), and with grouping
    for every in (1, 256):
        d = os.path.join(tmp, "fill-%d" % every)
        os.mkdir(d)
        t0 = time.time()
        subprocess.run([b.spool_tool, "fill", d, "T-01", "5000", "0", "0", str(every)],
                       stdout=subprocess.DEVNULL, check=True)
        dt = time.time() - t0
        out("spool append, fdatasync every %d: 5000 events in %.2f s = %.0f events/s"
            % (every, dt, 5000 / dt))


def make_env(tmp, name, batch_max):
    d = os.path.join(tmp, name)
    os.mkdir(d)
    return tu.Env(d, batch_max=batch_max)


def bench_spool_to_collector(b, tmp, n):
    for real in ([False, True] if b.collector else [False]):
        for batch in (500, 1000):
            tu.A.collector = b.collector if real else None
            env = make_env(tmp, "s2c-%s-%d" % ("real" if real else "fake", batch), batch)
            env.fill(n, sync_every=1000)
            env.start_collector()
            t0 = time.time()
            r = subprocess.run([b.uplink, "--policy", env.policy, "--spool", env.spool, "--once"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            dt = time.time() - t0
            assert r.returncode == 0, r.stderr
            stored = len(env.stored())
            env.close()
            assert stored == n, (stored, n)
            out("spool → %s collector, batch_max=%d: %d events in %.2f s = %.0f events/s "
                "(%d batches)" % ("real" if real else "fake (Python)", batch, n, dt, n / dt,
                                  (n + batch - 1) // batch))


def bench_backoff(b, tmp, outage):
    """Collector down for `outage` s with the default backoff (1 s doubling to 300 s): count the
    uplink's connection attempts with a listener that accepts and closes."""
    tu.A.collector = None
    env = make_env(tmp, "backoff", 500)
    env.fill(1000, sync_every=1000)
    attempts = []
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", env.port))
    ls.listen(16)
    stop = threading.Event()

    def acceptor():
        ls.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = ls.accept()
                attempts.append(time.time())
                c.close()
            except socket.timeout:
                pass

    th = threading.Thread(target=acceptor)
    th.start()
    up = subprocess.Popen([b.uplink, "--policy", env.policy, "--spool", env.spool],
                          stdout=subprocess.DEVNULL, stderr=env.uplink_log)
    t0 = time.time()
    time.sleep(outage)
    stop.set()
    th.join()
    ls.close()
    env.start_collector()
    t1 = time.time()
    env.uplink = up
    env.wait_acked(1000, timeout=400)
    back = time.time() - t1
    env.close()
    rel = ["%.1f" % (t - t0) for t in attempts]
    out("backoff while the collector is down for %d s: %d attempts at %s s; after it came back "
        "the backlog was delivered %.1f s later" % (outage, len(attempts), ", ".join(rel), back))


def bench_many_terminals(b, tmp, terminals, per, ingest_extra=(), tag="many"):
    """`terminals` uplinks with `per` events each come back at once to one collector."""
    tu.A.collector = b.collector
    base = make_env(tmp, tag, 500)
    envs = []
    for i in range(terminals):
        name = "T-%03d" % i
        d = os.path.join(base.tmp, name)
        os.makedirs(os.path.join(d, "spool"))
        # client cert for this terminal from the same CA
        tu.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-out", d + "/client.key"])
        tu.run(["openssl", "req", "-new", "-key", d + "/client.key", "-out", d + "/client.csr",
                "-subj", "/CN=" + name])
        tu.run(["openssl", "x509", "-req", "-in", d + "/client.csr", "-CA", base.tmp + "/ca.pem",
                "-CAkey", base.tmp + "/ca.key", "-CAcreateserial", "-out", d + "/client.pem",
                "-days", "2", "-extfile", base.tmp + "/client.ext"])
        pol = d + "/policy.conf"
        with open(pol, "w") as f:
            f.write("[terminal]\nid = %s\n[report]\ncollector = https://127.0.0.1:%d\n"
                    "ca = %s/ca.pem\ncert = %s/client.pem\nkey = %s/client.key\nbatch_max = 500\n"
                    % (name, base.port, base.tmp, d, d))
        subprocess.run([b.spool_tool, "fill", d + "/spool", name, str(per), "0", "0", "1000"],
                       stdout=subprocess.DEVNULL, check=True)
        envs.append((name, d, pol))
    base.start_collector(extra=list(ingest_extra))
    t0 = time.time()
    procs = [subprocess.Popen([b.uplink, "--policy", pol, "--spool", d + "/spool", "--once"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for name, d, pol in envs]
    throttled = 0
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        throttled += err.count(b"uplink.throttled")
    dt = time.time() - t0
    total = terminals * per
    if b.collector:
        con = sqlite3.connect(base.db)
        stored = con.execute("SELECT count(*) FROM events").fetchone()[0]
        dups = con.execute("SELECT count(*) - count(DISTINCT tid || ':' || seq) FROM events").fetchone()[0]
        con.close()
    else:
        stored, dups = total, 0
    alive = base.collector.poll() is None
    base.close()
    out("%d terminals × %d events back at once → %s collector%s: %d stored (%d duplicates) in "
        "%.2f s = %.0f events/s, %d throttled answers (429) honoured, collector %s"
        % (terminals, per, "real" if b.collector else "fake",
           " (" + ", ".join(ingest_extra) + ")" if ingest_extra else "", stored, dups, dt,
           total / dt, throttled, "still up" if alive else "DOWN"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("builddir")
    ap.add_argument("--events", type=int, default=100000)
    ap.add_argument("--terminals", type=int, default=20)
    ap.add_argument("--per-terminal", type=int, default=5000)
    ap.add_argument("--outage", type=int, default=40)
    ap.add_argument("--only", default="s2s,s2c,backoff,many,throttle")
    b = ap.parse_args()
    bd = os.path.abspath(b.builddir)
    b.agent = bd + "/agent/mynaguardd"
    b.uplink = bd + "/uplink/mynaguard-uplink"
    b.spool_tool = bd + "/tests/event/spool-tool"
    b.collector = bd + "/collector/mynaguard-collector"
    if not os.path.exists(b.collector):
        b.collector = None
    tu.A = argparse.Namespace(uplink=b.uplink, spool_tool=b.spool_tool, collector=None,
                              fake=os.path.join(ROOT, "tests/uplink/fake-collector.py"))
    tmp = tempfile.mkdtemp(prefix="mg-bench-events-")
    os.chmod(tmp, 0o755)  # senders with other uids reach the socket
    try:
        only = b.only.split(",")
        if "s2s" in only and os.getuid() == 0:
            bench_socket_to_spool(b, tmp)
        if "s2c" in only:
            bench_spool_to_collector(b, tmp, b.events)
        if "backoff" in only:
            bench_backoff(b, tmp, b.outage)
        if "many" in only:
            bench_many_terminals(b, tmp, b.terminals, b.per_terminal)
        if "throttle" in only and b.collector:
            bench_many_terminals(b, tmp, b.terminals, b.per_terminal,
                                 ["max_queue = 2000", "retry_after = 1s"], "throttle")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
