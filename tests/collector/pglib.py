# SPDX-License-Identifier: MIT
# A PostgreSQL server of the test's own: initdb + pg_ctl in a temporary directory, listening only
# on a unix socket in that directory (no TCP), stopped at the end. PostgreSQL refuses to run as
# root: when the test runs as root the cluster belongs to the "postgres" account of the Debian
# packages (or "nobody"), and every server command runs through setpriv as that user. The server
# trusts local connections (the socket lives in a directory only root and that user can reach).
# Missing PostgreSQL is an error, never a skip.
import glob
import os
import pwd
import shutil
import subprocess
import tempfile


def pg_bindir():
    """The newest installed server's bin directory (Debian: /usr/lib/postgresql/N/bin)."""
    env = os.environ.get("PG_BINDIR")
    if env:
        return env
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    if initdb:
        return os.path.dirname(initdb)
    raise RuntimeError("PostgreSQL server binaries not found (install postgresql, "
                       "scripts/setup-deps.sh)")


class PostgreSQL:
    """with PostgreSQL() as pg: pg.url is a libpq URI of the database "mynaguard"."""

    def __init__(self, dbname="mynaguard"):
        self.bindir = pg_bindir()
        self.dbname = dbname
        self.dir = tempfile.mkdtemp(prefix="mg-pg-")
        self.data = os.path.join(self.dir, "data")
        self.sock = self.dir
        self.running = False
        self.user = None
        if os.geteuid() == 0:
            for name in ("postgres", "nobody"):
                try:
                    self.user = pwd.getpwnam(name)
                    break
                except KeyError:
                    continue
            if self.user is None:
                raise RuntimeError("running as root and no unprivileged user for PostgreSQL")
            os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)
            os.chmod(self.dir, 0o750)
        self.role = self.user.pw_name if self.user else pwd.getpwuid(os.geteuid()).pw_name
        self.url = "postgresql:///%s?host=%s&user=%s" % (dbname, self.sock, self.role)

    def _cmd(self, *args):
        argv = [os.path.join(self.bindir, args[0])] + list(args[1:])
        if self.user:
            argv = ["setpriv", "--reuid=%d" % self.user.pw_uid, "--regid=%d" % self.user.pw_gid,
                    "--init-groups", "--reset-env", "--"] + argv
        return argv

    def run(self, *args, check=True, input=None):
        p = subprocess.run(self._cmd(*args), cwd=self.dir, input=input, capture_output=True,
                           text=True)
        if check and p.returncode != 0:
            raise RuntimeError("%s failed (%d): %s%s" % (args[0], p.returncode, p.stdout,
                                                         p.stderr))
        return p

    def start(self, primary=None):
        """primary: another PostgreSQL of this module; this one becomes its streaming replica
        (pg_basebackup -R), read-only, with the primary's databases."""
        if primary is None:
            self.run("initdb", "-D", self.data, "-A", "trust", "-U", self.role, "-E", "UTF8",
                     "--no-instructions", "--no-sync", "--locale=C")
        else:
            self.run("pg_basebackup", "-h", primary.sock, "-U", primary.role, "-D", self.data,
                     "-R", "-X", "stream", "-c", "fast", "--no-sync")
        self._pg_ctl_start()
        if self.dbname != "postgres" and primary is None:
            self.run("createdb", "-h", self.sock, "-U", self.role, self.dbname)
        return self

    def _pg_ctl_start(self):
        opts = "-c listen_addresses='' -c unix_socket_directories=%s -c fsync=on" % self.sock
        self.run("pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "server.log"), "-o",
                 opts, "-w", "-t", "60", "start")
        self.running = True

    def restart(self):
        self.run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")
        self._pg_ctl_start()

    def psql(self, sql):
        """Runs sql; returns the rows as lists of texts (unaligned, tab-separated)."""
        p = self.run("psql", "-h", self.sock, "-U", self.role, "-d", self.dbname, "-X", "-q",
                     "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql)
        return [line.split("\t") for line in p.stdout.splitlines() if line != ""]

    def scalar(self, sql):
        rows = self.psql(sql)
        return rows[0][0] if rows else None

    def log(self):
        try:
            with open(os.path.join(self.dir, "server.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.running:
            self.run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop", check=False)
            self.running = False
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *a):
        self.stop()


CURSOR_LOCK = 1835492213  # PG_CURSOR_LOCK in collector/store-pg.c


class HeldRound:
    """A psql session that does what a collector's writer round does to the events cursor
    (docs/postgresql.md, "The cursor"): takes the cursor lock shared, inserts one event of an
    existing terminal (taking its id), and holds its transaction open until end("COMMIT") or
    end("ROLLBACK")."""

    def __init__(self, pg, dbname, terminal, seq):
        self.p = subprocess.Popen(
            pg._cmd("psql") + ["-h", pg.sock, "-U", pg.role, "-d", dbname, "-X", "-q",
                               "-A", "-t", "-v", "ON_ERROR_STOP=1"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.send("BEGIN;\nSELECT pg_advisory_xact_lock_shared(%d);\n" % CURSOR_LOCK)
        self.send("INSERT INTO events (tid, seq, ts, received_at, kind, clause, data)"
                  " SELECT id, %d, (extract(epoch FROM now()) * 1000)::bigint,"
                  " (extract(epoch FROM now()) * 1000)::bigint, 'usb.blocked', '[]', '{}'"
                  " FROM terminals WHERE name = '%s' RETURNING id;\n" % (seq, terminal))
        line = ""
        while not line.strip().isdigit():  # the lock's (void) row comes first
            line = self.p.stdout.readline()
            assert line, self.p.stderr.read()
        self.id = int(line)

    def send(self, text):
        self.p.stdin.write(text)
        self.p.stdin.flush()

    def end(self, how):
        self.send(how + ";\n")
        self.p.stdin.close()
        assert self.p.wait(30) == 0, self.p.stderr.read()
