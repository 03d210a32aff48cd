#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The test PostgreSQL server (pglib.py): starts as a non-root user, answers on its own unix socket
# only, refuses bad SQL, and is gone (socket and directory) after stop.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pglib import PostgreSQL  # noqa: E402

with PostgreSQL() as pg:
    assert pg.scalar("SELECT 1") == "1"
    assert pg.scalar("SHOW listen_addresses") in ("", None), "TCP must stay off"
    assert pg.scalar("SELECT current_setting('fsync')") == "on"
    pid = pg.scalar("SELECT pg_backend_pid()")
    assert pid and int(pid) > 0
    owner = os.stat(pg.data).st_uid
    assert owner != 0 or os.geteuid() != 0, "the cluster must not belong to root"
    try:
        pg.psql("SELECT * FROM no_such_table")
    except RuntimeError as e:
        assert "no_such_table" in str(e), e
    else:
        raise AssertionError("bad SQL was accepted")
    d = pg.dir
    sock = os.path.join(d, ".s.PGSQL.5432")
    assert os.path.exists(sock), os.listdir(d)
assert not os.path.exists(d), "the server's directory is left behind"
print("ok")
