#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# collector/sqldb.c, the read-write SQL layer, on both stores: test-sqldb (the C part, $SQLDB_TEST)
# against a SQLite file and against a real PostgreSQL server of the test's own (pglib.py), then
# four processes at once each adding 1 to one counter 100 times in read-modify-write
# transactions: none is lost on either store (SQLite's write lock, PostgreSQL's advisory lock).
# A location that does not open is refused.
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pglib import PostgreSQL  # noqa: E402

BIN = os.environ["SQLDB_TEST"]
PROCS, N = 4, 100


def run(*args):
    p = subprocess.run([BIN] + list(args), capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, "test-sqldb %s: %d %s%s" % (args, p.returncode, p.stdout, p.stderr)
    return p.stdout.strip()


def concurrent(location):
    procs = [subprocess.Popen([BIN, location, "inc", str(N)], stderr=subprocess.PIPE, text=True)
             for _ in range(PROCS)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    got = int(run(location, "count"))
    assert got == PROCS * N, "lost updates: %d, want %d" % (got, PROCS * N)


def refused(location):
    p = subprocess.run([BIN, location], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "open" in p.stderr, (p.returncode, p.stderr)


with tempfile.TemporaryDirectory() as tmp:
    db = os.path.join(tmp, "t.db")
    open(db, "w").close()
    assert run(db) == "ok sqlite"
    concurrent(db)
    refused(os.path.join(tmp, "missing", "t.db"))

with PostgreSQL() as pg:
    loc = "pg:" + pg.url
    assert run(loc) == "ok postgresql"
    concurrent(loc)
    # the layer's connection made the store's schema (store_pg_open)
    assert pg.scalar("SELECT max(version) FROM mg_schema")
    refused("pg:postgresql:///no_such_db?host=%s&user=%s" % (pg.sock, pg.role))
print("ok")
