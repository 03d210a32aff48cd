#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Signed chain heads (docs/evidence.md): with [evidence] heads_key the collector signs the set
# of chain heads at start (and daily), `mynaguard-collector --sign-heads` does it on demand, and
# verify checks the chains against the last signed set. Someone with the database but not the
# key who rewrites a whole chain with recomputed links (invisible to the chain alone) is found;
# so are an altered or deleted signed record and a removed terminal. A store that does not
# verify is not signed. Bad or mismatched keys are refused at --check.
import base64
import hashlib
import os
import re
import shutil
import sqlite3
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from collectorlib import PKI, Collector, TestDir, batch  # noqa: E402


def check(name, cond):
    print(("ok - " if cond else "not ok - ") + name, flush=True)
    if not cond:
        sys.exit(1)


def collector(c, *args, conf=None):
    return subprocess.run([os.environ["COLLECTOR"], "--config", conf or c.conf] + list(args),
                          capture_output=True, text=True, timeout=120)


def keypair(d, name):
    key = os.path.join(d, name + ".pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", key], check=True,
                   capture_output=True)
    os.chmod(key, 0o600)
    der = subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    pub = os.path.join(d, name + ".pub")
    with open(pub, "w") as f:
        f.write(base64.b64encode(der[-32:]).decode() + "\n")
    return key, pub


def save(db, path):
    src, dst = sqlite3.connect(db), sqlite3.connect(path)
    src.backup(dst)
    dst.close()
    src.close()


def restore(path, db):
    for ext in ("", "-wal", "-shm"):
        if os.path.exists(db + ext):
            os.unlink(db + ext)
    shutil.copy(path, db)


def sql(db, *statements):
    con = sqlite3.connect(db)
    for s in statements:
        con.execute(s)
    con.commit()
    con.close()


def rewrite_chain(db, terminal, seq, data):
    """What someone with the database but without the key can do: alter one event and recompute
    every later link and the head (the chain's definition is public, docs/evidence.md)."""
    con = sqlite3.connect(db)
    tid = con.execute("SELECT id FROM terminals WHERE name = ?", (terminal,)).fetchone()[0]
    con.execute("UPDATE events SET data = ? WHERE tid = ? AND seq = ?", (data, tid, seq))
    link = b"\0" * 32
    for rid, s, ts, rec, kind, clause, dat in con.execute(
            "SELECT id, seq, ts, received_at, kind, clause, data FROM events WHERE tid = ?"
            " ORDER BY id", (tid,)).fetchall():
        c, d = clause.encode(), dat.encode()
        body = hashlib.sha256(struct.pack(">I", len(c)) + c + struct.pack(">I", len(d)) + d).digest()
        t, k = terminal.encode(), kind.encode()
        link = hashlib.sha256(link + struct.pack(">I", len(t)) + t + struct.pack(">QQQ", s, ts, rec)
                              + struct.pack(">I", len(k)) + k + body).digest()
        con.execute("UPDATE events SET chain = ? WHERE id = ?", (link, rid))
    con.execute("UPDATE terminals SET chain_head = ? WHERE id = ?", (link, tid))
    con.commit()
    con.close()


def wait_log(c, pattern, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if re.search(pattern, c.logtext()):
            return True
        time.sleep(0.2)
    return False


def main():
    with TestDir("heads") as d:
        pki = PKI(d)
        a, b = pki.terminal("term-a"), pki.terminal("term-b")
        key, pub = keypair(d, "heads")
        other_key, other_pub = keypair(d, "other")
        c = Collector(d, pki)
        base = open(c.conf).read()
        evidence = f"[evidence]\nheads_key = {key}\n"

        def conf(text):
            with open(c.conf, "w") as f:
                f.write(base + text)

        os.chmod(key, 0o644)
        conf(evidence)
        r = collector(c, "--check")
        check(f"--check: a heads key open to others is refused ({r.stderr.strip()})",
              r.returncode == 1 and "owner only" in r.stderr)
        os.chmod(key, 0o600)
        conf(evidence + f"heads_public_key = {other_pub}\n")
        r = collector(c, "--check")
        check(f"--check: a public key of another key pair is refused ({r.stderr.strip()})",
              r.returncode == 1 and "not the public key of heads_key" in r.stderr)
        conf(evidence + f"heads_public_key = {pub}\n")
        r = collector(c, "--check")
        check(f"--check: the key pair is accepted ({r.stdout.strip()} {r.stderr.strip()})",
              r.returncode == 0)

        c.start()
        check("the collector signed the heads at start",
              wait_log(c, r"chain heads signed: 0 terminals, sha256 [0-9a-f]{64}"))
        st, text, _ = c.get("/metrics", raw=True)
        check("/metrics: the time of the last signing",
              st == 200 and "mynaguard_collector_heads_sign_failures_total 0" in text.decode()
              and "mynaguard_collector_heads_signed_seconds 0" not in text.decode())
        st, _, _ = c.post(a, batch("term-a", range(1, 6)))
        st2, _, _ = c.post(b, batch("term-b", range(1, 4)))
        check("events acknowledged", st == 200 and st2 == 200)
        r = collector(c, "--sign-heads")
        check(f"--sign-heads beside the running collector ({r.stdout.strip()} {r.stderr.strip()})",
              r.returncode == 0 and r.stdout.startswith("signed the chain heads of 2 terminals"))
        st, _, _ = c.post(a, batch("term-a", [6, 7]))
        check("more events after the signing acknowledged", st == 200)
        st, v, _ = c.get("/v1/verify")
        check(f"GET /v1/verify: ok, both signed heads on their chains ({v})",
              st == 200 and v["ok"] and v["signed"]["heads"] == 2 and v["signed"]["checked"] == 2
              and isinstance(v["signed"]["at"], str))
        c.stop()
        r = collector(c, "--verify")
        check(f"--verify: OK with the signed heads ({r.stdout.strip()})",
              r.returncode == 0 and "2 of 2 on their chains" in r.stdout)
        r = collector(c, "--sign-heads", "--verify")
        check("--sign-heads with --verify: usage error", r.returncode == 2)

        clean = os.path.join(d, "clean.db")
        save(c.db, clean)
        nokey = os.path.join(d, "nokey.conf")
        with open(nokey, "w") as f:
            f.write(base)

        # the whole chain of term-a rewritten with recomputed links
        rewrite_chain(c.db, "term-a", 2, '{"vendor":"dead"}')
        r = collector(c, "--verify", conf=nokey)
        check(f"the rewrite is invisible to the chain alone ({r.stdout.strip()})",
              r.returncode == 0 and r.stdout.startswith("OK "))
        r = collector(c, "--verify")
        check(f"... and found through the signed heads ({r.stdout.strip()})",
              r.returncode == 1 and r.stdout.startswith("BROKEN terminal=term-a seq=5:")
              and "signed head" in r.stdout)
        c.start()
        st, v, _ = c.get("/v1/verify?terminal=term-a")
        check(f"GET /v1/verify names it too ({v})", st == 200 and not v["ok"]
              and v["broken"]["terminal"] == "term-a" and v["broken"]["seq"] == 5)
        c.stop()
        n = sqlite3.connect(c.db).execute("SELECT count(*) FROM signed_heads").fetchone()[0]
        r = collector(c, "--sign-heads")
        check(f"a store that does not verify is not signed ({r.stderr.strip()})",
              r.returncode == 1 and "does not verify" in r.stderr and
              sqlite3.connect(c.db).execute("SELECT count(*) FROM signed_heads").fetchone()[0] == n)
        # rewriting the signed record without the key
        restore(clean, c.db)
        sql(c.db, "UPDATE signed_heads SET body = replace(body, 'term-b 3 ', 'term-b 2 ')"
            " WHERE id = (SELECT max(id) FROM signed_heads)")
        r = collector(c, "--verify")
        check(f"an altered signed record is found ({r.stdout.strip()})",
              r.returncode == 1 and "do not verify with the heads key" in r.stdout)
        restore(clean, c.db)
        sql(c.db, "DELETE FROM signed_heads")
        r = collector(c, "--verify")
        check(f"deleted signed records are found ({r.stdout.strip()})",
              r.returncode == 1 and "no signed chain heads" in r.stdout)
        restore(clean, c.db)
        sql(c.db, "DELETE FROM events WHERE tid = (SELECT id FROM terminals WHERE name = 'term-b')",
            "DELETE FROM gaps WHERE tid = (SELECT id FROM terminals WHERE name = 'term-b')",
            "DELETE FROM terminals WHERE name = 'term-b'")
        r = collector(c, "--verify")
        check(f"a terminal removed altogether is found ({r.stdout.strip()})",
              r.returncode == 1 and "BROKEN terminal=term-b seq=3:" in r.stdout)

        # the auditor's copy: the public key only
        restore(clean, c.db)
        auditor = os.path.join(d, "auditor.conf")
        with open(auditor, "w") as f:
            f.write(base + f"[evidence]\nheads_public_key = {pub}\n")
        r = collector(c, "--verify", conf=auditor)
        check(f"--verify with the public key only: OK ({r.stdout.strip()})",
              r.returncode == 0 and "2 of 2 on their chains" in r.stdout)
        with open(auditor, "w") as f:
            f.write(base + f"[evidence]\nheads_public_key = {other_pub}\n")
        r = collector(c, "--verify", conf=auditor)
        check(f"--verify with another public key: the record does not verify ({r.stdout.strip()})",
              r.returncode == 1 and "do not verify with the heads key" in r.stdout)
        r = collector(c, "--sign-heads", conf=auditor)
        check(f"--sign-heads without the private key: refused ({r.stderr.strip()})",
              r.returncode == 1 and "heads_key" in r.stderr)
        r = collector(c, "--sign-heads")
        check(f"--sign-heads on the intact store ({r.stdout.strip()})",
              r.returncode == 0 and "of 2 terminals" in r.stdout)
        r = collector(c, "--verify")
        check(f"--verify against the newer record ({r.stdout.strip()})",
              r.returncode == 0 and "2 of 2 on their chains" in r.stdout)

        # the signed heads disposed of by retention (default 400d), seven years on: not checkable,
        # and due, so counted; the same removal today (a fake anchor) is not due: found
        good = os.path.join(d, "signed.db")
        save(c.db, good)
        r = subprocess.run(["faketime", "-f", "+2600d", os.environ["COLLECTOR"], "--config", c.conf,
                            "--retention-run"], capture_output=True, text=True, timeout=120)
        check(f"--retention-run seven years later ({r.stdout.strip()} {r.stderr.strip()})",
              r.returncode == 0 and "disposed of 10 events" in r.stdout)
        r = subprocess.run(["faketime", "-f", "+2600d", os.environ["COLLECTOR"], "--config", c.conf,
                            "--verify"], capture_output=True, text=True, timeout=120)
        check(f"--verify then: the signed heads were due and are counted as disposed ({r.stdout.strip()})",
              r.returncode == 0 and "0 of 2 on their chains, 2 disposed of since" in r.stdout)
        restore(good, c.db)
        con = sqlite3.connect(c.db)
        tid, = con.execute("SELECT id FROM terminals WHERE name = 'term-a'").fetchone()
        last, = con.execute("SELECT chain FROM events WHERE tid = ? AND seq = 7", (tid,)).fetchone()
        con.execute("DELETE FROM events WHERE tid = ?", (tid,))
        con.execute("INSERT INTO chain_anchors (tid, first_seq, chain, disposed, at)"
                    " VALUES (?, NULL, ?, 7, 0)", (tid, last))
        con.commit()
        con.close()
        r = collector(c, "--verify", conf=nokey)
        check(f"events removed at a forged anchor: invisible to the chain alone ({r.stdout.strip()})",
              r.returncode == 0)
        r = collector(c, "--verify")
        check(f"... and found: the signed head was not due for disposal ({r.stdout.strip()})",
              r.returncode == 1 and "BROKEN terminal=term-a seq=7:" in r.stdout
              and "not due for disposal" in r.stdout)


if __name__ == "__main__":
    main()
