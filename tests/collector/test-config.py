#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# mynaguard-collector --check: a valid file passes; every kind of mistake fails with FILE:LINE
# (or the file that is wrong) and exit 1, before anything listens.
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from collectorlib import PKI, Collector, TestDir  # noqa: E402


def check(conf):
    p = subprocess.run([os.environ["COLLECTOR"], "--check", "--config", conf], capture_output=True,
                       text=True, timeout=30)
    return p.returncode, p.stdout + p.stderr


def main():
    with TestDir("config") as d:
        pki = PKI(d)
        c = Collector(d, pki)
        good = open(c.conf).read()
        rc, out = check(c.conf)
        assert rc == 0 and "OK" in out, (rc, out)
        assert os.path.exists(c.db)  # --check also creates and migrates the database

        bad = os.path.join(d, "bad.conf")
        cases = [
            (good.replace("[store]", "[store]\ncolour = blue"), "bad.conf:14: unknown key \"colour\" in [store]"),
            (good + "\n[extras]\nx = 1\n", "unknown section [extras]"),
            (good.replace("workers = 2", "workers = 2\nworkers = 3"), "bad.conf:8: [ingest] workers given twice"),
            (good.replace("workers = 2", "workers = many"), "bad.conf:7: [ingest] workers"),
            (good.replace("workers = 2", "max_body = 1T"), "[ingest] max_body"),
            (good.replace("listen = 127.0.0.1:0\ncertificate", "listen = localhost\ncertificate"),
             "bad.conf:2: [ingest] listen"),
            (good.replace("token_file", "#token_file"), "[dashboard] token_file is required"),
            (good.replace(pki.server[0], os.path.join(d, "missing.pem")), "missing.pem"),
            (good.replace("client_ca = " + pki.p("terminal-ca.pem"), "client_ca = " + pki.server[1]), ""),
            ("stray = 1\n" + good, "bad.conf:1:"),
        ]
        for text, want in cases:
            with open(bad, "w") as f:
                f.write(text)
            rc, out = check(bad)
            assert rc == 1 and want in out, (want, rc, out)
        rc, out = check(os.path.join(d, "nope.conf"))
        assert rc == 1 and "nope.conf" in out
        # token readable by everybody → refused
        os.chmod(os.path.join(d, "token"), 0o644)
        rc, out = check(c.conf)
        assert rc == 1 and "token" in out, out
        os.chmod(os.path.join(d, "token"), 0o600)
        # a revoked list with a line that is no serial
        with open(c.revoked, "w") as f:
            f.write("# ok\n01:AB\nserial=1F\nzz-not-hex\n")
        rc, out = check(c.conf)
        assert rc == 1 and "revoked.txt:4" in out, out
        # the shipped example passes --check once its paths point at real files
        example = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "installer",
                               "collector.conf.example")
        text = open(example).read()
        for old, new in (("/etc/mynaguard-collector/tls/server.pem", pki.server[0]),
                         ("/etc/mynaguard-collector/tls/server.key", pki.server[1]),
                         ("/etc/mynaguard-collector/tls/terminals-ca.pem", pki.p("terminal-ca.pem")),
                         ("/etc/mynaguard-collector/tls/revoked.txt", os.path.join(d, "revoked-ok.txt")),
                         ("/etc/mynaguard-collector/token", os.path.join(d, "token")),
                         ("/var/lib/mynaguard-collector/collector.db", os.path.join(d, "example.db"))):
            assert old in text, old
            text = text.replace(old, new)
        open(os.path.join(d, "revoked-ok.txt"), "w").close()
        with open(os.path.join(d, "example.conf"), "w") as f:
            f.write(text)
        rc, out = check(os.path.join(d, "example.conf"))
        assert rc == 0 and "OK (ingest 0.0.0.0:8443, dashboard 127.0.0.1:8444" in out, out
        # usage errors
        p = subprocess.run([os.environ["COLLECTOR"]], capture_output=True, timeout=10)
        assert p.returncode == 2
    print("ok")


if __name__ == "__main__":
    main()
