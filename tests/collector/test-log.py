#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# mynaguard-collector's log lines carry their priority under systemd: with stderr on the stream
# that $JOURNAL_STREAM names (as systemd sets it), every line starts with the sd-daemon prefix,
# <6> for start/reload/stop, <4> for a refused ingest request, <3> for a config that cannot be
# used; with stderr elsewhere, the same text without a prefix.
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from collectorlib import PKI, Collector, TestDir, batch  # noqa: E402

PREFIX = re.compile(r"^<[0-7]>")


def journal_env(path):
    """Create path and return an environment whose JOURNAL_STREAM names it."""
    with open(path, "ab"):
        pass
    st = os.stat(path)
    env = dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
    return env


def main():
    with TestDir("log") as d:
        pki = PKI(d)
        c = Collector(d, pki, env=journal_env(os.path.join(d, "collector.log"))).start()
        try:
            good = pki.terminal("term-001")
            st, _, _ = c.post(good, batch("term-002", [1]))
            assert st == 403, st
            c.proc.send_signal(signal.SIGHUP)
            time.sleep(0.3)
        finally:
            c.stop()
        lines = c.logtext().splitlines()
        assert lines and all(PREFIX.match(l) for l in lines), lines
        assert any(l.startswith("<6>mynaguard-collector: listening:") for l in lines), lines
        assert any(l.startswith("<6>mynaguard-collector: SIGHUP") for l in lines), lines
        assert any(l.startswith("<4>mynaguard-collector: ingest refused") and "status=403" in l
                   for l in lines), lines
        assert any(l.startswith("<6>mynaguard-collector: stopping") for l in lines), lines

        # a config that cannot be used: an error, before anything starts
        bad = os.path.join(d, "bad.conf")
        with open(bad, "w") as f:
            f.write("[ingest]\nbogus = 1\n")
        errpath = os.path.join(d, "bad.log")
        env = journal_env(errpath)
        with open(errpath, "ab") as err:
            p = subprocess.run([os.environ["COLLECTOR"], "--config", bad], stderr=err, env=env,
                               stdout=subprocess.DEVNULL, timeout=30)
        with open(errpath) as f:
            lines = f.read().splitlines()
        assert p.returncode != 0 and lines and all(l.startswith("<3>") for l in lines), lines

        # stderr not the journal (another file; bad.log stays, so its inode is not reused)
        with open(os.path.join(d, "plain.log"), "w+b") as err:
            p = subprocess.run([os.environ["COLLECTOR"], "--config", bad], stderr=err, env=env,
                               stdout=subprocess.DEVNULL, timeout=30)
            err.seek(0)
            plain = err.read().decode().splitlines()
        assert p.returncode != 0 and plain and not any(PREFIX.match(l) for l in plain), plain
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
