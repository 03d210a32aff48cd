#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# A collector database from before `fleet totp verify` (docs/fleet.md, "Verification"):
# fleet_totp without verified_at and verify_failures. At the start the collector adds both; an
# enrollment in force counts as verified at its enrollment (it has been on the terminals), a
# revoked one stays revoked. A new enrollment after the upgrade is pending; a code of a step a
# terminal already claimed does not verify it (409), the code of another step does.
import argparse
import base64
import os
import sqlite3
import subprocess
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "collector"))
from collectorlib import PKI, Collector, TestDir  # noqa: E402
import fleetlib  # noqa: E402

OLD = """CREATE TABLE fleet_totp (user TEXT PRIMARY KEY, groups TEXT NOT NULL,
  gen INTEGER NOT NULL, secret BLOB, enrolled_at INTEGER NOT NULL, enrolled_by TEXT NOT NULL,
  revoked_at INTEGER, revoked_by TEXT, revoke_reason TEXT);
INSERT INTO fleet_totp VALUES ('old-active', '["g"]', 3, x'00112233', 1764000000, 'admin',
  NULL, NULL, NULL);
INSERT INTO fleet_totp VALUES ('old-revoked', '["g"]', 1, NULL, 1764000000, 'admin',
  1764100000, 'admin', 'lost phone');"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ctl", required=True)
    ap.add_argument("--collector", required=True)
    a = ap.parse_args()
    os.environ["COLLECTOR"] = a.collector
    with TestDir("fleet-totp-migrate") as d:
        pki = PKI(d)
        for k in ("root", "grant"):
            subprocess.run([a.ctl, "fleet", "keygen", "--out", os.path.join(d, k)], check=True,
                           capture_output=True)
        key = os.path.join(d, "totp.key")
        with open(key, "w") as f:
            f.write(os.urandom(32).hex() + "\n")
        os.chmod(key, 0o600)
        c = Collector(d, pki)
        with open(c.conf, "a") as f:
            f.write("\n[fleet]\ngrant_key = %s/grant.key\nroot_key = %s/root.pub\n"
                    "totp_key = %s\n" % (d, d, key))
        db = sqlite3.connect(c.db)
        db.executescript(OLD)
        db.close()
        c.start()
        try:
            st, body, _ = fleetlib.call(c, "GET", "/v1/totp")
            assert st == 200, (st, body)
            rows = {t["user"]: t for t in body["totp"]}
            act, rev = rows["old-active"], rows["old-revoked"]
            assert act["state"] == "active" and act["verified_at"] == act["enrolled_at"], act
            assert act["verify_failures"] == 0 and act["gen"] == 3, act
            assert rev["state"] == "revoked" and rev["verified_at"] is None, rev
            assert "gains verified_at" in c.logtext(), c.logtext()[-2000:]
            st, body, _ = fleetlib.call(c, "POST", "/v1/groups", {"name": "g"})
            assert st == 201, (st, body)
            st, body, _ = fleetlib.call(c, "POST", "/v1/totp", {"user": "new", "groups": ["g"]})
            assert st == 201, (st, body)
            b32 = urllib.parse.parse_qs(urllib.parse.urlparse(body["otpauth"]).query)["secret"][0]
            secret = base64.b32decode(b32 + "=" * (-len(b32) % 8))
            st, body, _ = fleetlib.call(c, "GET", "/v1/totp")
            new = [t for t in body["totp"] if t["user"] == "new"][0]
            assert new["state"] == "pending" and new["verified_at"] is None, new
            # a step a terminal already claimed does not verify (409), and counts as no failure
            while int(time.time()) % 30 >= 26:
                time.sleep(0.5)
            now = time.time()
            db = sqlite3.connect(c.db, timeout=10)
            db.execute("INSERT INTO fleet_totp_claims VALUES ('new', ?, 'term-x', ?)",
                       (int(now) // 30, int(now)))
            db.commit()
            db.close()
            st, body, _ = fleetlib.call(c, "POST", "/v1/totp/new/verify",
                                        {"code": fleetlib.totp(secret, now)})
            assert st == 409 and "already used" in body["error"], (st, body)
            # the step before: verified, and that step is now the verify's
            st, body, _ = fleetlib.call(c, "POST", "/v1/totp/new/verify",
                                        {"code": fleetlib.totp(secret, now - 30)})
            assert st == 200 and body["state"] == "active" and not body["already"], (st, body)
            db = sqlite3.connect(c.db, timeout=10)
            assert db.execute("SELECT terminal FROM fleet_totp_claims WHERE user = 'new' AND "
                              "step = ?", (int(now) // 30 - 1,)).fetchone() == ("(verify)",)
            db.close()
            st, body, _ = fleetlib.call(c, "GET", "/v1/totp")
            new = [t for t in body["totp"] if t["user"] == "new"][0]
            assert new["state"] == "active" and new["verify_failures"] == 0, new
        finally:
            c.stop()
        # a second start finds the columns and changes nothing
        log_before = c.logtext().count("gains verified_at")
        c.start()
        try:
            st, body, _ = fleetlib.call(c, "GET", "/v1/totp")
            assert {t["user"]: t["state"] for t in body["totp"]} == {
                "new": "active", "old-active": "active", "old-revoked": "revoked"}, body
            assert c.logtext().count("gains verified_at") == log_before
        finally:
            c.stop()
    print("ok")


if __name__ == "__main__":
    main()
