#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# --migrate-to-postgresql URL (docs/postgresql.md): a SQLite store with several terminals, months,
# gaps, a conflict and compliance snapshots is copied into an empty PostgreSQL database; --verify
# says the same on both, and the dashboard answers the same from both. The dashboard accounts go
# along: with the key file copied, the collector opens their sealed TOTP secrets and an account's
# script token made on SQLite works on PostgreSQL; so do the fleet's tables (a group and its
# member). A second copy into the now full database and a
# url with a password are refused.
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from collectorlib import PKI, Collector, TestDir, batch, compliance, event  # noqa: E402
from fleetlib import call, fleet_conf, keygen  # noqa: E402

EXE = os.environ["COLLECTOR"]


def run(conf, *args):
    p = subprocess.run([EXE, "--config", conf] + list(args), capture_output=True, text=True,
                       timeout=120)
    return p.returncode, p.stdout + p.stderr


def main():
    with TestDir("pgmig") as d:
        pki = PKI(d)
        for sub in ("src", "dst"):
            os.makedirs(os.path.join(d, sub))
        src = Collector(os.path.join(d, "src"), pki, store="sqlite")
        _, root_pub, _ = keygen(d, "root")
        grant_pem, _, _ = keygen(d, "grant")
        with open(src.conf, "a") as f:
            f.write(fleet_conf(grant_pem, root_pub))
        src.start()
        st, body, _ = call(src, "POST", "/v1/groups", {"name": "shimin"})
        assert st == 201, body
        st, body, _ = call(src, "PUT", "/v1/groups/shimin/terminals/term-001")
        assert st in (200, 201), body
        months = (946684800000, 1772409600000, 1796083200000)
        for i in range(3):
            name = "term-%03d" % i
            cert = pki.terminal(name)
            evs = [event(name, s, ts_ms=months[s % 3]) for s in (1, 2, 3, 5)]
            evs.append(compliance(name, 6, failing=("usb.default_deny",) if i else ()))
            st, resp, _ = src.post(cert, {"v": 1, "terminal": name, "events": evs})
            assert st == 200, (st, resp)
            # a conflict: seq 1 again with another time
            st, resp, _ = src.post(cert, batch(name, [1, 7], ts_ms=months[2] + 5))
            assert st == 200, (st, resp)
        st, before_list, _ = src.get("/v1/terminals?limit=100")
        assert st == 200
        st, before_events, _ = src.get("/v1/events?limit=1000")
        st, before_one, _ = src.get("/v1/terminals/term-001")
        src.stop()
        p = subprocess.run([EXE, "--config", src.conf, "--account-add", "aki", "--role", "admin"],
                           input="pass-aki-0123456789\n", capture_output=True, text=True,
                           timeout=120)
        assert p.returncode == 0 and "otpauth://" in p.stdout, p.stdout + p.stderr
        rc, token = run(src.conf, "--account-token", "aki", "--scope", "read")
        assert rc == 0 and token.startswith("mgt_"), token
        token = token.strip()
        rc, src_verify = run(src.conf, "--verify")
        assert rc == 0 and src_verify.startswith("OK "), src_verify

        dst = Collector(os.path.join(d, "dst"), pki, store="postgresql")
        rc, out = run(src.conf, "--migrate-to-postgresql", dst.url + "&password=x")
        assert rc == 1 and "password" in out and "=x" not in out, out
        rc, out = run(src.conf, "--migrate-to-postgresql", dst.url)
        assert rc == 0 and out.startswith("migrated "), out
        rc, dst_verify = run(dst.conf, "--verify")
        assert rc == 0 and dst_verify == src_verify, (src_verify, dst_verify)
        assert dst.count() == src.count()
        assert dst.count("SELECT count(*) FROM gaps") == src.count("SELECT count(*) FROM gaps") > 0
        assert dst.count("SELECT sum(conflicts) FROM terminals") == 3
        assert dst.rows("SELECT name, role, length(totp_secret) FROM accounts") == \
            src.rows("SELECT name, role, length(totp_secret) FROM accounts") == [("aki", 3, 48)]
        assert dst.rows("SELECT terminal, grp FROM fleet_members") == [("term-001", "shimin")]
        assert dst.count("SELECT count(*) FROM fleet_groups WHERE name = 'shimin'") == 1
        shutil.copy2(src.db + ".accounts-key", dst.db + ".accounts-key")
        rc, out = run(dst.conf, "--account-list")
        assert rc == 0 and '"aki"' in out and "warning" not in out, out
        rc, out = run(src.conf, "--migrate-to-postgresql", dst.url)
        assert rc == 1 and "already holds a store" in out, out

        dst.start()
        st, after_list, _ = dst.get("/v1/terminals?limit=100")
        st, after_events, _ = dst.get("/v1/events?limit=1000")
        st, after_one, _ = dst.get("/v1/terminals/term-001")
        # the collector's own terminal may have written an event at its start (a self check)
        for j in (before_list, after_list):
            j.pop("generated_at")
            j["terminals"] = [t for t in j["terminals"] if t["id"] != "mynaguard-collector"]
            for t in j["terminals"]:
                t.pop("stale")
                t.pop("problem")
        assert after_list["terminals"] == before_list["terminals"], (before_list, after_list)
        copied = {e["cursor"] for e in before_events["events"]}
        after_events["events"] = [e for e in after_events["events"] if e["cursor"] in copied]
        assert after_events == before_events, (before_events, after_events)
        assert after_one["checks"] == before_one["checks"], (before_one, after_one)
        assert after_one["gap_list"] == before_one["gap_list"]
        st, _, _ = dst.get("/v1/terminals", token=token)
        assert st == 200, st
        # the copy goes on: new events continue the chains and the ids
        cert = pki.issue("terminal-ca", "term-000b", "term-000")
        st, resp, _ = dst.post(cert, batch("term-000", [8]))
        assert st == 200 and resp == {"acked_through": 8}, (st, resp)
        st, body, _ = dst.get("/v1/events?limit=1000")
        ids = [int(e["cursor"]) for e in body["events"]]
        assert ids == sorted(ids) and len(set(ids)) == len(ids), ids
        dst.stop()
        rc, out = run(dst.conf, "--verify")
        assert rc == 0 and out.startswith("OK "), out
    print("ok")


if __name__ == "__main__":
    main()
