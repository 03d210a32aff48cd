#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# mynaguardctl fleet group|policy|exception|request|ledger against the real mynaguard-collector
# (real TLS, throwaway CA): every subcommand once, the collector's reasons as error messages,
# a bundle fetched by a terminal checked with `mynaguardctl fleet show --root-pub`.
# Usage: test-fleet-remote.py MYNAGUARDCTL MYNAGUARD-COLLECTOR
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "collector"))
from collectorlib import PKI, TOKEN, Collector, TestDir, event  # noqa: E402
import fleetlib  # noqa: E402

CTL = sys.argv[1]
os.environ["COLLECTOR"] = sys.argv[2]


def main():
    with TestDir("ctl-fleet") as d:
        pki = PKI(d)
        a = pki.terminal("term-a")
        grant_pem, _, grant_raw = fleetlib.keygen(d, "grant")
        root = os.path.join(d, "root")
        r = subprocess.run([CTL, "fleet", "keygen", "--out", root], capture_output=True)
        assert r.returncode == 0, r.stderr
        c = Collector(d, pki)
        with open(c.conf, "a") as f:
            f.write(fleetlib.fleet_conf(grant_pem, root + ".pub"))
        c.start()
        try:
            run_all(c, d, a, root, grant_raw)
        except Exception:
            print(c.logtext())
            raise
        finally:
            assert c.stop() == 0
    print("ok")


def run_all(c, d, a, root, grant_raw):
    tok = os.path.join(d, "token")
    conn = ["--collector", "https://127.0.0.1:%d" % c.dashboard[1], "--token-file", tok,
            "--ca", c.pki.p("server-ca.pem")]

    def ctl(*args, rc=0):
        r = subprocess.run([CTL, "fleet", *args, *conn], capture_output=True, text=True)
        assert r.returncode == rc, (args, r.returncode, r.stdout, r.stderr)
        return r.stdout + r.stderr

    # usage errors
    r = subprocess.run([CTL, "fleet", "group", "list"], capture_output=True, text=True)
    assert r.returncode == 2 and "--collector URL" in r.stderr, r.stderr
    out = ctl("group", "list", "--purpose", "x", rc=2)
    assert "--purpose does not apply" in out, out
    out = ctl("group", "create", "bad/name", rc=1)
    assert "not a group name" in out, out

    # groups
    assert "group fukushi created" in ctl("group", "create", "fukushi")
    out = ctl("group", "create", "fukushi", rc=1)
    assert "the collector refused (HTTP 409): group fukushi exists" in out, out
    assert "term-a added to fukushi" in ctl("group", "add", "fukushi", "term-a", "term-b")
    ctl("group", "remove", "fukushi", "term-b")
    out = ctl("group", "remove", "fukushi", "term-b", rc=1)
    assert "is not in group fukushi" in out, out
    out = ctl("group", "list")
    assert "fukushi" in out and "1" in out.splitlines()[1], out

    # the base, signed with mynaguardctl fleet sign-base
    conf = os.path.join(d, "base.conf")
    with open(conf, "w") as f:
        f.write(fleetlib.base_text("fukushi", 3, grant_raw))
    r = subprocess.run([CTL, "fleet", "sign-base", "--key", root + ".key", "--out",
                        conf + ".signed", conf], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "base version 3 uploaded" in ctl("policy", "upload", "fukushi", conf + ".signed")
    out = ctl("policy", "upload", "fukushi", conf + ".signed", rc=1)
    assert "HTTP 400" in out and "not newer" in out, out
    out = ctl("group", "show", "fukushi")
    assert "version 3" in out and "term-a" in out, out

    # a request from the terminal, granted
    dev = {"vendor": "0781", "product": "5581", "serial": "4C530001",
           "classes": ["08:06:50"], "rule": "block mass_storage (08)", "audit": False}
    st, _, _ = c.post(a, {"v": 1, "terminal": "term-a", "events": [
        event("term-a", 1, kind="usb.blocked", data=dict(dev, request_code="ABCD2345")),
        event("term-a", 2, kind="usb.blocked", data=dict(dev, serial="S2",
                                                         request_code="ABCD2346"))]})
    assert st == 200
    deadline = time.time() + 10
    while "ABCD2346" not in ctl("request", "list", "--state", "pending"):
        assert time.time() < deadline
        time.sleep(0.1)
    out = ctl("request", "grant", "ABCD2345", "--until", "2099-12-31", "--purpose", "持ち出し",
              rc=1)
    assert "HTTP 400" in out and "limits" in out, out
    until = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 20 * 86400))
    out = ctl("request", "grant", "ABCD2345", "--until", until, "--purpose", "年次報告",
              "--approved-by", "佐藤")
    assert "request ABCD2345 granted: exception EX-" in out, out
    ex_id = out.split("exception ")[1].split()[0]
    assert "request ABCD2346 refused" in ctl("request", "refuse", "ABCD2346", "--reason", "私物")
    out = ctl("request", "list")
    assert "granted" in out and "refused" in out and ex_id in out and "私物" in out, out

    # what the terminal fetches verifies with the root key and carries the exception
    st, data, _ = fleetlib.policy(c, a)
    assert st == 200, st
    path = os.path.join(d, "bundle")
    with open(path, "wb") as f:
        f.write(data)
    r = subprocess.run([CTL, "fleet", "show", "--root-pub", root + ".pub", path],
                       capture_output=True, text=True)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "Root signature:  verifies" in r.stdout and "Grant signature: verifies" in r.stdout
    assert ex_id in r.stdout and "term-a" in r.stdout, r.stdout

    # exceptions
    out = ctl("exception", "add", "--scope", "group", "--group", "fukushi", "--vendor", "0781",
              "--product", "5581", "--serial", "S9", "--class", "mass_storage", "--until", until,
              "--purpose", "研修", "--users", "tanaka,suzuki")
    assert "added" in out, out
    out = ctl("exception", "add", "--scope", "group", "--group", "fukushi", "--vendor", "0781",
              "--product", "5581", "--serial", "S9", "--class", "mtp", "--until", until,
              "--purpose", "x", rc=1)
    assert "limits" in out, out
    out = ctl("exception", "list", "--state", "active")
    assert ex_id in out and "S9" in out, out
    assert "revoked" in ctl("exception", "revoke", ex_id, "--reason", "返却")
    out = ctl("exception", "revoke", ex_id, rc=1)
    assert "HTTP 409" in out and "already revoked" in out, out

    # ledger
    assert "MB-0001 saved" in ctl("ledger", "add", "--number", "MB-0001", "--vendor", "0781",
                                  "--product", "5581", "--serial", "4C530001", "--holder",
                                  "田中 太郎", "--department", "福祉課", "--encrypted", "yes")
    out = ctl("ledger", "add", "--number", "MB-0002", "--vendor", "07", "--product", "5581",
              "--serial", "x", rc=1)
    assert "ベンダーID" in out, out
    assert "田中 太郎" in ctl("ledger", "list")
    csv = os.path.join(d, "ledger.csv")
    ctl("ledger", "export", csv)
    with open(csv, "rb") as f:
        data = f.read()
    assert data.startswith(b"\xef\xbb\xbf") and "田中 太郎".encode() in data, data
    assert "1 rows imported" in ctl("ledger", "import", csv)
    with open(csv, "ab") as f:
        f.write(b"MB-0003,a,b,c,0781,5581,S,maybe,,,,,\r\n")
    out = ctl("ledger", "import", csv, rc=1)
    assert "line 3" in out and "nothing imported" in out, out
    assert ctl("ledger", "export").encode().startswith(b"\xef\xbb\xbf")

    # transport and token errors
    r = subprocess.run([CTL, "fleet", "group", "list", "--collector", "https://127.0.0.1:1",
                        "--token-file", tok, "--ca", c.pki.p("server-ca.pem")],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "127.0.0.1:1" in r.stderr, r.stderr
    bad = os.path.join(d, "bad-token")
    with open(bad, "w") as f:
        f.write("wrong-token-0123456789\n")
    r = subprocess.run([CTL, "fleet", "group", "list", "--collector",
                        "https://127.0.0.1:%d" % c.dashboard[1], "--token-file", bad, "--ca",
                        c.pki.p("server-ca.pem")], capture_output=True, text=True)
    assert r.returncode == 1 and "HTTP 401" in r.stderr, r.stderr
    assert TOKEN not in r.stderr


if __name__ == "__main__":
    main()
