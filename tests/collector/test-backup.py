#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# mynaguard-collector --backup while terminals are sending (several backups during ingest): each
# copy passes integrity_check, is one consistent state (every terminal's events form a gap-free
# prefix 1..n, never a hole), and holds every event acknowledged before it began. Then
# --restore: refused while the collector runs (the database untouched), refused for a damaged
# file or a non-collector database (the database untouched), and after a stop it puts the copy
# back; the collector starts on it, and what terminals delivered after the backup shows as a
# recorded gap (nothing stored twice).
import os
import sqlite3
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from collectorlib import PKI, Collector, TestDir, batch  # noqa: E402

TERMINALS = 4
BATCH = 25


def uplink(c, cert, name, state, stop):
    conn = None
    while not stop.is_set():
        first = state["acked"] + 1
        try:
            conn = conn or c.ingest_conn(cert, timeout=5)
            st, resp, _ = c.post(cert, batch(name, range(first, first + BATCH), ts_ms=1700000000000),
                                 conn=conn)
        except Exception:
            conn = None
            time.sleep(0.05)
            continue
        if st == 200:
            state["acked"] = resp["acked_through"]
        else:
            time.sleep(0.05)


def collector(c, *args):
    return subprocess.run([os.environ["COLLECTOR"], "--config", c.conf] + list(args),
                          capture_output=True, text=True, timeout=120)


def per_terminal(db):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = con.execute("SELECT t.name, count(*), ifnull(max(seq), 0), ifnull(min(seq), 0) FROM events e"
                       " JOIN terminals t ON t.id = e.tid GROUP BY t.name").fetchall()
    con.close()
    return {name: (n, hi, lo) for name, n, hi, lo in rows}


def check(name, cond):
    print(("ok - " if cond else "not ok - ") + name, flush=True)
    if not cond:
        sys.exit(1)


def main():
    with TestDir("backup") as d:
        pki = PKI(d)
        names = ["term-%03d" % i for i in range(TERMINALS)]
        certs = [pki.terminal(n) for n in names]
        states = [{"acked": 0} for _ in names]
        c = Collector(d, pki).start()
        stop = threading.Event()
        threads = [threading.Thread(target=uplink, args=(c, certs[i], names[i], states[i], stop))
                   for i in range(TERMINALS)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        backups = []
        for k in range(3):
            before = [s["acked"] for s in states]
            out = os.path.join(d, f"backup-{k}.db")
            r = collector(c, "--backup", out)
            check(f"backup {k} during ingest exits 0 ({r.stdout.strip()} {r.stderr.strip()})", r.returncode == 0)
            check(f"backup {k}: says quick_check ok", "quick_check ok" in r.stdout)
            check(f"backup {k}: mode 0600, no temporary file left",
                  os.stat(out).st_mode & 0o777 == 0o600 and
                  not [f for f in os.listdir(d) if ".tmp-" in f])
            check(f"backup {k}: no WAL beside the copy", not os.path.exists(out + "-wal"))
            got = per_terminal(out)
            for i, n in enumerate(names):
                cnt, hi, lo = got.get(n, (0, 0, 0))
                check(f"backup {k}: {n} is a gap-free prefix ({cnt} events, 1..{hi})",
                      cnt == hi and (cnt == 0 or lo == 1))
                check(f"backup {k}: {n} holds all {before[i]} events acknowledged before it began",
                      hi >= before[i])
            backups.append(out)
            time.sleep(0.5)
        check("the collector kept ingesting during the backups", c.alive())
        stop.set()
        for t in threads:
            t.join(30)
        total_live = sum(s["acked"] for s in states)
        check(f"ingest went on: {total_live} events acknowledged", total_live > 0)

        # restore while the collector runs: refused, nothing changed
        live_before = per_terminal(c.db)
        r = collector(c, "--restore", backups[0])
        check("restore while the collector runs is refused", r.returncode == 1)
        check("  ... saying to stop it first", "stop the collector first" in r.stderr)
        check("  ... and the database is untouched", per_terminal(c.db) == live_before)
        c.stop()

        # a damaged backup and a foreign database are refused; the database stays
        bad = os.path.join(d, "bad.db")
        with open(backups[1], "rb") as f:
            data = bytearray(f.read())
        for off in range(4096 * 2, len(data), 4096):
            data[off + 100:off + 200] = b"\x5a" * 100
        with open(bad, "wb") as f:
            f.write(bytes(data))
        r = collector(c, "--restore", bad)
        check(f"a damaged backup is refused ({r.stderr.strip()})", r.returncode == 1)
        foreign = os.path.join(d, "foreign.db")
        con = sqlite3.connect(foreign)
        con.execute("CREATE TABLE x (y)")
        con.execute("PRAGMA user_version = 1")
        con.commit()
        con.close()
        r = collector(c, "--restore", foreign)
        check(f"a database that is no collector's is refused ({r.stderr.strip()})",
              r.returncode == 1 and "not a collector database" in r.stderr)
        r = collector(c, "--restore", os.path.join(d, "missing.db"))
        check("a missing backup file is refused", r.returncode == 1)
        check("after the refusals the database is as it was", per_terminal(c.db) == live_before)

        # the real restore: the last backup back in place, then the collector on it
        want = per_terminal(backups[2])
        r = collector(c, "--restore", backups[2])
        check(f"restore with the collector stopped exits 0 ({r.stdout.strip()} {r.stderr.strip()})",
              r.returncode == 0 and "restored" in r.stdout)
        check("the database now holds exactly the backup's events", per_terminal(c.db) == want)
        r = collector(c, "--check")
        check("mynaguard-collector --check accepts the restored database", r.returncode == 0)
        c.start()
        # the uplinks go on from their own acknowledged point: what they delivered after the
        # backup is missing from the restored store, and the collector records it as a gap
        for i, n in enumerate(names):
            first = states[i]["acked"] + 1
            st, resp, _ = c.post(certs[i], batch(n, range(first, first + BATCH), ts_ms=1700000000000))
            check(f"{n}: the next batch after the restore is accepted", st == 200)
        c.stop()
        got = per_terminal(c.db)
        con = sqlite3.connect(f"file:{c.db}?mode=ro", uri=True)
        gaps = dict(((n, (f, l)) for n, f, l in con.execute(
            "SELECT t.name, g.first, g.last FROM gaps g JOIN terminals t ON t.id = g.tid")))
        dup = con.execute("SELECT count(*) FROM (SELECT tid, seq FROM events GROUP BY tid, seq"
                          " HAVING count(*) > 1)").fetchone()[0]
        con.close()
        check("nothing stored twice", dup == 0)
        for i, n in enumerate(names):
            hi_backup = want.get(n, (0, 0, 0))[1]
            if hi_backup < states[i]["acked"]:
                check(f"{n}: the events after the backup show as the gap {hi_backup + 1}..{states[i]['acked']}",
                      gaps.get(n) == (hi_backup + 1, states[i]["acked"]))
            check(f"{n}: the backup's events and the new batch are there",
                  got[n][0] == hi_backup + BATCH and got[n][1] == states[i]["acked"] + BATCH)
        print("ok: %d backups during ingest, restore, gaps recorded" % len(backups))


if __name__ == "__main__":
    main()
