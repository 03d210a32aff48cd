#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Retention with a legal hold: `mynaguard-collector --retention-run` (and the writer's own runs)
# dispose of events received before [store] retention, keep the recent ones and every event of
# the terminals named in [retention] hold, and the hash chains still verify afterwards
# (docs/evidence.md). A bad [retention] section is refused with the line and the reason.
import os
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from collectorlib import PKI, Collector, TestDir, batch  # noqa: E402


def check(name, cond):
    print(("ok - " if cond else "not ok - ") + name, flush=True)
    if not cond:
        sys.exit(1)


def collector(c, *args):
    return subprocess.run([os.environ["COLLECTOR"], "--config", c.conf] + list(args),
                          capture_output=True, text=True, timeout=120)


def seqs(c, name):
    con = sqlite3.connect(c.db)
    try:
        return [r[0] for r in con.execute("SELECT seq FROM events e JOIN terminals t ON t.id = e.tid"
                                          " WHERE t.name = ? ORDER BY seq", (name,))]
    finally:
        con.close()


def main():
    with TestDir("retention") as d:
        pki = PKI(d)
        a, b = pki.terminal("term-a"), pki.terminal("term-b")
        c = Collector(d, pki)
        base = open(c.conf).read()

        for text, want in (("[retention]\nhold = term-b bad/id\n", "is not a terminal id"),
                           ("[retention]\nhold = term-b term-b\n", "named twice"),
                           ("[retention]\nhold =\n", "empty"),
                           ("[retention]\nhold = x\nhold = y\n", "given twice"),
                           ("[retention]\nauth.* = 5y\n", "unknown key")):
            with open(c.conf, "w") as f:
                f.write(base + text)
            r = collector(c, "--check")
            check(f"refused: {text.splitlines()[1]!r} ({r.stderr.strip()})",
                  r.returncode == 1 and want in r.stderr and "collector.conf:" in r.stderr)
            check("  ... and no database was made", not os.path.exists(c.db))

        with open(c.conf, "w") as f:
            f.write(base.replace("[store]\n", "[store]\nretention = 4s\n") +
                    "[retention]\nhold = term-b other-1\n")
        c.start()
        st, _, _ = c.post(a, batch("term-a", range(1, 4)))
        st2, _, _ = c.post(b, batch("term-b", range(1, 4)))
        check("old events acknowledged", st == 200 and st2 == 200)
        time.sleep(4.5)
        st, _, _ = c.post(a, batch("term-a", range(4, 6)))
        check("recent events acknowledged", st == 200)
        r = collector(c, "--retention-run")
        check(f"--retention-run beside the running collector ({r.stdout.strip()} {r.stderr.strip()})",
              r.returncode == 0 and r.stdout.startswith("retention: deleted ") and
              "2 terminals on hold" in r.stdout)
        check(f"term-a: old events disposed of, recent ones kept ({seqs(c, 'term-a')})",
              seqs(c, "term-a") == [4, 5])
        check(f"term-b on hold: all kept ({seqs(c, 'term-b')})", seqs(c, "term-b") == [1, 2, 3])
        st, v, _ = c.get("/v1/verify")
        check(f"GET /v1/verify after disposal: ok ({v})", st == 200 and v["ok"] and v["anchored"] == 1)
        st, rj, _ = c.get("/v1/retention")
        check(f"GET /v1/retention: settings, last run, oldest kept per kind ({rj})",
              st == 200 and rj["period_s"] == 4 and rj["hold"] == ["term-b", "other-1"] and
              "last_run" in rj and isinstance(rj["deleted_total"], int) and
              isinstance(rj["oldest"].get("usb.blocked"), str) and "compliance" not in rj["oldest"])
        st, text, _ = c.get("/metrics", raw=True)
        text = text.decode()
        check("/metrics: oldest kept event per kind and the last retention run",
              st == 200 and 'mynaguard_collector_oldest_event_seconds{kind="usb.blocked"} ' in text
              and "mynaguard_collector_retention_last_run_seconds " in text)
        c.stop()
        r = collector(c, "--verify")
        check(f"--verify after disposal: OK ({r.stdout.strip()})", r.returncode == 0 and
              r.stdout.startswith("OK 2 terminals, 5 events, 1 chains"))
        r = collector(c, "--retention-run", "--verify")
        check("--retention-run with --verify: usage error", r.returncode == 2)


if __name__ == "__main__":
    main()
