#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The enrollment listener's deadline for a whole connection ([enroll] timeout, collector.conf(5)
# in mynaguard-collector(8)): clients that trickle bytes slowly enough never to trip a per-read
# timeout are cut at the deadline, counted from accept, whether they trickle inside the TLS
# handshake or inside the HTTP request; meanwhile, and afterwards, a normal enrollment with a
# one-time token works. Real mynaguard-collector, mynaguard-signer, mynaguard-collector-token and a
# CA made by installer/mynaguard-ca, all on 127.0.0.1.
# Env: COLLECTOR, SIGNER, TOKEN_TOOL, CA_SCRIPT.
import json
import os
import select
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

from collectorlib import enroll_config, enroll_post, make_csr, stop_all, wait_ready

DEADLINE = 3  # [enroll] timeout in this test
GAP = 0.5  # seconds between two trickled bytes: far below the deadline


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def trickle(addr, ca, in_tls, result):
    """Sends one byte every GAP seconds until the collector closes; result['closed_after']."""
    host, port = addr.rsplit(":", 1)
    t0 = time.monotonic()
    raw = socket.create_connection((host, int(port)), timeout=30)
    sock = raw
    if in_tls:
        # a finished handshake, then an HTTP request that never ends
        sock = ssl.create_default_context(cafile=ca).wrap_socket(raw, server_hostname=host)
        data = b"POST /v1/enroll HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10000
    else:
        # a TLS handshake record that announces 512 bytes and never delivers them
        data = b"\x16\x03\x01\x02\x00" + b"\x01" * 10000
    sent = 0
    sock.settimeout(0)  # reads below only take what is there (TLS 1.3 tickets are no data)
    try:
        for i in range(len(data)):
            try:
                sock.sendall(data[i:i + 1])
                sent += 1
            except (BlockingIOError, ssl.SSLWantWriteError):
                pass
            r, _, _ = select.select([sock], [], [], GAP)
            if r:
                try:
                    if not sock.recv(4096):
                        break
                except (BlockingIOError, ssl.SSLWantReadError):
                    continue
    except (OSError, ssl.SSLError):
        pass
    result["closed_after"] = time.monotonic() - t0
    result["sent"] = sent
    sock.close()


def enroll(addr, ca, token, terminal, csr):
    return enroll_post(addr, ca, {"terminal": terminal, "token": token, "csr": csr})


def main():
    tmp = tempfile.mkdtemp(prefix="mg-enroll-deadline-")
    ca_dir = os.path.join(tmp, "ca")
    ca = [os.environ["CA_SCRIPT"], "--dir", ca_dir]
    run(ca + ["init", "--name", "deadline test CA"])
    os.makedirs(os.path.join(tmp, "srv"))
    run(ca + ["server", "127.0.0.1", "localhost", "--out", os.path.join(tmp, "srv")])
    ca_pem = os.path.join(ca_dir, "ca.pem")
    with open(os.path.join(tmp, "dash.token"), "w") as f:
        f.write("dashboard-token-0123456789\n")
    os.chmod(os.path.join(tmp, "dash.token"), 0o600)
    open(os.path.join(tmp, "revoked.txt"), "w").close()
    sock = os.path.join(tmp, "signer.sock")
    conf = os.path.join(tmp, "collector.conf")
    base = enroll_config(tmp)
    # the key's bounds, checked by --check with the file named
    for bad in ("0", "301s", "soon"):
        with open(conf, "w") as f:
            f.write(base + "timeout = %s\n" % bad)
        r = subprocess.run([os.environ["COLLECTOR"], "--check", "--config", conf],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert r.returncode != 0 and b"timeout" in r.stderr, (bad, r)
    print("[enroll] timeout out of bounds refused by --check", flush=True)
    with open(conf, "w") as f:
        f.write(base + "timeout = %ds\n" % DEADLINE)

    logs = open(os.path.join(tmp, "daemons.log"), "ab")
    signer = subprocess.Popen([os.environ["SIGNER"], "--ca-dir", ca_dir, "--socket", sock],
                              stdout=subprocess.PIPE, stderr=logs)
    collector = None
    ok = False
    try:
        wait_ready(signer, "mynaguard-signer")
        collector = subprocess.Popen([os.environ["COLLECTOR"], "--config", conf],
                                     stdout=subprocess.PIPE, stderr=logs)
        addr = wait_ready(collector, "mynaguard-collector")["enroll"]
        tokens = run([os.environ["TOKEN_TOOL"], "--config", conf, "create", "--count", "2",
                      "--expires", "1h"]).stdout.decode().split()
        assert len(tokens) == 2, tokens

        # two trickling clients (in the handshake, in the request) and, while they trickle,
        # a normal enrollment
        results = [{}, {}]
        threads = [threading.Thread(target=trickle, args=(addr, ca_pem, in_tls, res))
                   for in_tls, res in ((False, results[0]), (True, results[1]))]
        for t in threads:
            t.start()
        time.sleep(1)
        st, body = enroll(addr, ca_pem, tokens[0], "T-DL-1", make_csr(tmp, "T-DL-1"))
        assert st == 200 and "BEGIN CERTIFICATE" in json.loads(body)["certificate"], (st, body)
        print("a normal enrollment while two clients trickle: 200", flush=True)
        for t in threads:
            t.join(DEADLINE + 20)
            assert not t.is_alive(), "a trickling client was never cut"
        for what, res in zip(("TLS handshake", "HTTP request"), results):
            after = res["closed_after"]
            # it kept sending (each gap far below the deadline) and was cut at the deadline
            assert res["sent"] >= int((DEADLINE - 1) / GAP), (what, res)
            assert DEADLINE - 0.5 <= after <= DEADLINE + 2.5, (what, res)
            print("trickle in the %s: cut after %.1f s (%d bytes sent)"
                  % (what, after, res["sent"]), flush=True)
        logs.flush()
        with open(os.path.join(tmp, "daemons.log"), "rb") as f:
            text = f.read().decode(errors="replace")
        assert text.count("enroll.timeout connection cut after %d s" % DEADLINE) >= 2, text

        # the listener still serves: the next enrollment after the cuts
        st, body = enroll(addr, ca_pem, tokens[1], "T-DL-2", make_csr(tmp, "T-DL-2"))
        assert st == 200, (st, body)
        # and a used token is still refused (nothing about the deadline changed that)
        st, body = enroll(addr, ca_pem, tokens[1], "T-DL-3", make_csr(tmp, "T-DL-3"))
        assert st == 403, (st, body)
        print("after the cuts: enrollment 200, the used token 403", flush=True)
        ok = True
    finally:
        stop_all(collector, signer)
        logs.close()
        if not ok:
            with open(os.path.join(tmp, "daemons.log"), "rb") as f:
                sys.stderr.write(f.read().decode(errors="replace")[-4000:])
        else:
            subprocess.run(["rm", "-rf", tmp])
    print("PASS", flush=True)


if __name__ == "__main__":
    main()
