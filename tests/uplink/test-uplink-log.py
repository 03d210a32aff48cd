#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# mynaguard-uplink's log lines and its key-mode warning:
#  - the key as the installer leaves it (group = the uplink's group, mode 0640) gets no warning;
#    a key others may read, or a group may write, or another group may read, does, and the
#    advice is the installer's own mode (never a mode the uplink could not read the key with);
#  - under systemd (stderr = the stream named by $JOURNAL_STREAM) every line carries its
#    sd-daemon priority: <3> errors, <4> warnings, <6> information; elsewhere plain text.
# Usage: test-uplink-log.py UPLINK
import os
import subprocess
import sys
import tempfile

UPLINK = sys.argv[1]


def run_uplink(tmp, policy, journal):
    """Run --check with stderr on a file; journal=True sets JOURNAL_STREAM to that file."""
    path = os.path.join(tmp, "stderr.log")
    with open(path, "wb") as err:
        st = os.fstat(err.fileno())
        env = dict(os.environ)
        env.pop("JOURNAL_STREAM", None)
        if journal:
            env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
        p = subprocess.run([UPLINK, "--policy", policy, "--check"], stderr=err, env=env)
    with open(path) as f:
        return p.returncode, f.read().splitlines()


def main():
    with tempfile.TemporaryDirectory(prefix="mg-uplink-log-") as tmp:
        for name in ("ca.pem", "client.pem", "client.key"):
            with open(os.path.join(tmp, name), "w") as f:
                f.write("placeholder: --check only reads the policy and stats these\n")
        key = os.path.join(tmp, "client.key")
        policy = os.path.join(tmp, "policy.conf")
        with open(policy, "w") as f:
            f.write("[terminal]\nid = T-01\n[report]\ncollector = https://127.0.0.1:9\n"
                    "ca = %s/ca.pem\ncert = %s/client.pem\nkey = %s\n" % (tmp, tmp, key))
        if os.geteuid() == 0:
            os.chown(key, -1, os.getegid())

        # as installed: 0640, group = the uplink's own group (mynaguard on a terminal)
        os.chmod(key, 0o640)
        rc, lines = run_uplink(tmp, policy, journal=True)
        assert rc == 0, lines
        assert not any("warning" in l for l in lines), "0640 with our group warned: %r" % lines
        assert lines and all(l.startswith("<6>") for l in lines), lines

        os.chmod(key, 0o600)
        rc, lines = run_uplink(tmp, policy, journal=True)
        assert rc == 0 and not any("warning" in l for l in lines), lines

        for mode in (0o644, 0o604, 0o660):
            os.chmod(key, mode)
            rc, lines = run_uplink(tmp, policy, journal=True)
            warn = [l for l in lines if "uplink.warning key" in l]
            assert rc == 0 and len(warn) == 1, (oct(mode), lines)
            assert warn[0].startswith("<4>"), warn
            assert "chmod 0640" in warn[0] and "root:mynaguard" in warn[0], warn
            assert "0600" not in warn[0], "advice that would lock the uplink out: %r" % warn
            # without the journal: the same text, no prefix
            rc, plain = run_uplink(tmp, policy, journal=False)
            assert [l for l in plain if "uplink.warning key" in l] == [warn[0][3:]], plain

        if os.geteuid() == 0:
            # group-readable by a group that is not the uplink's
            other = 65534 if os.getegid() != 65534 else 65533
            os.chown(key, -1, other)
            os.chmod(key, 0o640)
            rc, lines = run_uplink(tmp, policy, journal=True)
            assert rc == 0 and any(l.startswith("<4>uplink.warning key") for l in lines), lines
            os.chown(key, -1, os.getegid())
        else:
            print("note: not root, the foreign-group case is not run (scripts/test.sh runs as root)")

        # errors: <3>
        with open(policy, "w") as f:
            f.write("[terminal]\nid = T-01\nbogus = 1\n")
        rc, lines = run_uplink(tmp, policy, journal=True)
        assert rc == 1 and lines and all(l.startswith("<3>") for l in lines), lines
        assert any("policy.conf:3" in l for l in lines), lines
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
