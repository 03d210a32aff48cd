#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The fleet endpoints (docs/fleet.md) on a real collector with real TLS: without [fleet] they
# answer 503; groups and members; a signed base upload (good, wrong root key, wrong group,
# version not rising, another grant key); GET /v1/policy 200/304/404 with bundles whose both
# signatures verify (openssl CLI); a request from an ingested usb.blocked; an out-of-limits grant
# refused with nothing stored; a grant → a new bundle version with the exception; revoke;
# refuse; the media ledger and its CSV round trip in Japanese; a bad CSV refused with nothing
# changed; every admin step an event of mynaguard-collector in /v1/events.
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from collectorlib import PKI, Collector, TestDir, event  # noqa: E402
import fleetlib  # noqa: E402
from fleetlib import (base_text, call, check_bundle, fleet_conf, keygen, policy,  # noqa: E402
                      signed_base)


def wait_for(fn, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timed out")


def not_configured(d, pki, a):
    c = Collector(d, pki).start()
    try:
        st, body, _ = call(c, "GET", "/v1/groups")
        assert st == 503 and "[fleet]" in body["error"], (st, body)
        st, _, _ = call(c, "GET", "/v1/groups", token=None)
        assert st == 401
        st, data, _ = policy(c, a)
        assert st == 503, st
    finally:
        assert c.stop() == 0


def bad_keys(d, pki, grant_pem, root_pub):
    """--check refuses [fleet] with a missing key, a key that is not Ed25519 PEM, or half of it."""
    import subprocess
    c = Collector(d, pki)
    with open(c.conf) as f:
        plain = f.read()
    for extra, want in ((fleetlib.fleet_conf(grant_pem, os.path.join(d, "nope.pub")), "root_key"),
                        (fleetlib.fleet_conf(pki.server[1], root_pub), "grant_key"),
                        ("\n[fleet]\nroot_key = %s\n" % root_pub, "go together")):
        with open(c.conf, "w") as f:
            f.write(plain + extra)
        r = subprocess.run([os.environ["COLLECTOR"], "--check", "--config", c.conf],
                           capture_output=True, text=True)
        assert r.returncode == 1 and want in r.stderr, (extra, r.returncode, r.stderr)


def main():
    with TestDir("fleet") as d:
        pki = PKI(d)
        a = pki.terminal("term-a")
        b = pki.terminal("term-b")
        x = pki.terminal("other-1")
        plain = os.path.join(d, "plain")
        os.mkdir(plain)
        not_configured(plain, pki, a)

        root_pem, root_pub, root_raw = keygen(d, "root")
        grant_pem, _, grant_raw = keygen(d, "grant")
        other_pem, _, other_raw = keygen(d, "other")
        bad_keys(plain, pki, grant_pem, root_pub)
        c = Collector(d, pki)
        with open(c.conf, "a") as f:  # after [store]
            f.write(fleet_conf(grant_pem, root_pub))
        c.start()
        try:
            run_all(c, d, a, b, x, root_pem, root_raw, grant_raw, other_pem, other_raw)
        except Exception:
            print(c.logtext())
            raise
        finally:
            rc = c.stop()
            assert rc == 0, (rc, c.logtext()[-6000:])
    print("ok")


def run_all(c, d, a, b, x, root_pem, root_raw, grant_raw, other_pem, other_raw):
    # ---- groups and members ----
    st, body, _ = call(c, "POST", "/v1/groups", {"name": "fukushi"})
    assert st == 201, (st, body)
    st, body, _ = call(c, "POST", "/v1/groups", {"name": "fukushi"})
    assert st == 409, (st, body)
    st, body, _ = call(c, "POST", "/v1/groups", {"name": "bad/name"})
    assert st == 400, (st, body)
    st, body, _ = call(c, "POST", "/v1/groups", {"name": "x", "extra": 1})
    assert st == 400 and "extra" in body["error"], (st, body)
    for t in ("term-a", "other-1"):
        st, body, _ = call(c, "PUT", "/v1/groups/fukushi/terminals/" + t)
        assert st == 200 and body["changed"], (st, body)
    st, body, _ = call(c, "PUT", "/v1/groups/nosuch/terminals/term-b")
    assert st == 404, (st, body)

    # no base yet
    st, data, _ = policy(c, a)
    assert st == 404 and b"no signed base" in data, (st, data)

    # ---- the signed base ----
    good = signed_base(d, root_pem, base_text("fukushi", 7, grant_raw))
    st, body, _ = call(c, "PUT", "/v1/groups/fukushi/policy", signed_base(
        d, other_pem, base_text("fukushi", 7, grant_raw)))
    assert st == 400 and "root key" in body["error"], (st, body)
    st, body, _ = call(c, "PUT", "/v1/groups/fukushi/policy", signed_base(
        d, root_pem, base_text("kokuho", 7, grant_raw)))
    assert st == 400 and "for group kokuho" in body["error"], (st, body)
    st, body, _ = call(c, "PUT", "/v1/groups/fukushi/policy", signed_base(
        d, root_pem, base_text("fukushi", 7, other_raw)))
    assert st == 400 and "grant key" in body["error"], (st, body)
    st, body, _ = call(c, "PUT", "/v1/groups/fukushi/policy", b"MYNABAS1garbage")
    assert st == 400, (st, body)
    st, body, _ = call(c, "PUT", "/v1/groups/fukushi/policy", good)
    assert st == 200 and body["version"] == 7, (st, body)
    for v in (7, 6):
        st, body, _ = call(c, "PUT", "/v1/groups/fukushi/policy", signed_base(
            d, root_pem, base_text("fukushi", v, grant_raw)))
        assert st == 400 and "not newer" in body["error"], (st, body)
    st, body, _ = call(c, "GET", "/v1/groups/fukushi")
    assert st == 200 and body["base"]["version"] == 7, body
    assert body["base"]["grant_max_days"] == 90 and body["base"]["terminals"] == ["term-*"]
    members = {m["terminal"]: m for m in body["members"]}
    assert members["term-a"]["covered"] and not members["other-1"]["covered"], members

    # ---- GET /v1/policy ----
    st, data, h = policy(c, a)
    assert st == 200, (st, data)
    assert h["Content-Type"] == "application/vnd.mynaguard.bundle", h
    assert h["ETag"] == '"1"', h
    bd = check_bundle(d, data, root_raw, grant_raw)
    assert bd["version"] == 1 and bd["terminal"] == "term-a" and bd["json"] == {"exceptions": []}
    assert bd["base"] == good[12:-64]
    st, data, h = policy(c, a, etag='"1"')
    assert st == 304 and data == b"", (st, data)
    st, data, _ = policy(c, a, etag='"0"')
    assert st == 200
    st, data, _ = policy(c, b)
    assert st == 404 and b"in no group" in data, (st, data)
    st, data, _ = policy(c, x)
    assert st == 404 and b"does not name terminal other-1" in data, (st, data)

    # a terminal cannot send the collector's own kinds
    st, body, _ = c.post(a, {"v": 1, "terminal": "term-a", "events": [
        event("term-a", 1, kind="fleet.grant", data={"by": "admin"})]})
    assert st == 400 and "collector's own" in body["error"], (st, body)

    # ---- requests from usb.blocked ----
    # as the agent reports them: one event per blocked interface, with its class and the rule
    dev = {"vendor": "0781", "product": "5581", "serial": "4C530001", "classes": ["08:06:50"],
           "rule": "block mass_storage (08)", "manufacturer": "SanDisk", "product_name": "Ultra",
           "mode": "enforce", "audit": False}
    st, _, _ = c.post(a, {"v": 1, "terminal": "term-a", "events": [
        event("term-a", 1, kind="usb.blocked", data=dict(dev, request_code="ABCD2345")),
        event("term-a", 2, kind="usb.blocked", data=dict(dev, serial="OTHER", product="5582",
                                                         rule=None)),
        event("term-a", 3, kind="usb.blocked", data=dict(dev, serial="AUDIT", audit=True)),
        event("term-a", 4, kind="usb.blocked", data=dict(
            dev, product="5583", serial="MTP1", classes=["ff:ff:00"],
            rule="block mtp (MTP interface)", request_code="MTPMTP00")),
    ]})
    assert st == 200

    def pending():
        s, bb, _ = call(c, "GET", "/v1/requests?state=pending")
        return bb["requests"] if s == 200 and len(bb["requests"]) == 3 else None
    reqs = {r["serial"]: r for r in wait_for(pending)}
    assert reqs["4C530001"]["code"] == "ABCD2345" and reqs["4C530001"]["class"] == "08:06:50"
    assert reqs["4C530001"]["rule"] == "block mass_storage (08)", reqs

    # a class the base does not let exceptions open (mtp)
    st, body, _ = call(c, "POST", "/v1/requests/MTPMTP00/grant", {
        "until": "2026-12-31", "purpose": "p"})
    assert st == 400 and "grant_classes" in body["error"], (st, body)
    other_code = reqs["OTHER"]["code"]
    # computed as docs/fleet.md says when the event has none
    import hashlib
    md = hashlib.sha256(b"term-a\0" + b"0781\0" + b"5582\0" + b"OTHER").digest()
    bits = int.from_bytes(md[:5], "big")
    want = "".join("0123456789ABCDEFGHJKMNPQRSTVWXYZ"[(bits >> (35 - 5 * i)) & 31]
                   for i in range(8))
    assert other_code == want, (other_code, want)
    st, body, _ = call(c, "GET", "/v1/requests?state=bogus")
    assert st == 400

    # out of the base's limits (90 days): refused, nothing stored
    st, body, _ = call(c, "POST", "/v1/requests/ABCD2345/grant", {
        "from": "2026-12-01", "until": "2027-12-31", "purpose": "年次報告の持ち出し"})
    assert st == 400 and "limits" in body["error"], (st, body)
    st, body, _ = call(c, "GET", "/v1/exceptions")
    assert body["exceptions"] == [], body
    st, body, _ = call(c, "POST", "/v1/requests/ABCD2345/grant", {"until": "2027-01-01"})
    assert st == 400 and "purpose" in body["error"], (st, body)
    st, body, _ = call(c, "POST", "/v1/requests/NOSUCH00/grant", {
        "until": "2027-01-01", "purpose": "p"})
    assert st == 404, (st, body)

    # a grant: the next bundle carries it
    now = int(time.time())
    st, ex, _ = call(c, "POST", "/v1/requests/ABCD2345/grant", {
        "until": now + 30 * 86400, "purpose": "年次報告の持ち出し", "approved_by": "佐藤"})
    assert st == 201, (st, ex)
    year = time.gmtime(time.time() + 9 * 3600).tm_year
    assert ex["id"] == "EX-%d-0001" % year, ex
    assert ex["terminal"] == "term-a" and ex["scope"] == "terminal" and ex["state"] == "active"
    assert ex["request"] == "ABCD2345" and ex["approved_by"] == "佐藤"
    st, body, _ = call(c, "POST", "/v1/requests/ABCD2345/grant", {
        "until": now + 86400, "purpose": "again"})
    assert st == 409, (st, body)
    st, data, h = policy(c, a, etag='"1"')
    assert st == 200 and h["ETag"] == '"2"', (st, h)
    bd = check_bundle(d, data, root_raw, grant_raw)
    if os.environ.get("MYNAGUARDCTL"):  # the library's own reading of it
        import subprocess
        path = os.path.join(d, "bundle-2")
        with open(path, "wb") as f:
            f.write(data)
        r = subprocess.run([os.environ["MYNAGUARDCTL"], "fleet", "show", "--root-pub",
                            os.path.join(d, "root.pub"), path], capture_output=True, text=True)
        assert r.returncode == 0 and "Grant signature: verifies" in r.stdout, (r.stdout,
                                                                                r.stderr)
        assert ex["id"] in r.stdout, r.stdout
    exs = bd["json"]["exceptions"]
    assert len(exs) == 1 and exs[0]["id"] == ex["id"], exs
    assert exs[0]["serial"] == "4C530001" and exs[0]["class"] == "mass_storage", exs
    st, _, _ = policy(c, a, etag='"2"')
    assert st == 304

    # a direct exception, scope group; a class the base does not allow is refused
    st, body, _ = call(c, "POST", "/v1/exceptions", {
        "scope": "group", "group": "fukushi", "vendor": "0781", "product": "5581",
        "serial": "S2", "class": "mtp", "until": now + 86400, "purpose": "p"})
    assert st == 400 and "limits" in body["error"], (st, body)
    st, ex2, _ = call(c, "POST", "/v1/exceptions", {
        "scope": "group", "group": "fukushi", "vendor": "0781", "product": "5581",
        "serial": "S2", "class": "mass_storage", "users": ["tanaka"], "until": "2026-12-31",
        "from": "2026-12-01", "purpose": "研修"})
    assert st == 201 and ex2["id"] == "EX-%d-0002" % year and ex2["users"] == ["tanaka"], ex2

    # revoke: the next bundle no longer has it
    st, body, _ = call(c, "POST", "/v1/exceptions/%s/revoke" % ex["id"], {"reason": "返却済み"})
    assert st == 200 and body["state"] == "revoked" and body["revoke_reason"] == "返却済み", body
    st, body, _ = call(c, "POST", "/v1/exceptions/%s/revoke" % ex["id"], {})
    assert st == 409, (st, body)
    st, body, _ = call(c, "POST", "/v1/exceptions/EX-1999-0001/revoke", {})
    assert st == 404, (st, body)
    st, data, h = policy(c, a, etag='"2"')
    assert st == 200, st
    bd = check_bundle(d, data, root_raw, grant_raw)
    ids = [e["id"] for e in bd["json"]["exceptions"]]
    assert ex["id"] not in ids and int(h["ETag"].strip('"')) > 2, (ids, h)
    st, body, _ = call(c, "GET", "/v1/exceptions?state=revoked")
    assert [e["id"] for e in body["exceptions"]] == [ex["id"]], body

    # refuse
    st, body, _ = call(c, "POST", "/v1/requests/%s/refuse" % other_code, {})
    assert st == 400 and "reason" in body["error"], (st, body)
    st, body, _ = call(c, "POST", "/v1/requests/%s/refuse" % other_code,
                       {"reason": "私物のため不可"})
    assert st == 200, (st, body)
    st, body, _ = call(c, "POST", "/v1/requests/%s/refuse" % other_code, {"reason": "x"})
    assert st == 409, (st, body)
    st, body, _ = call(c, "GET", "/v1/requests?state=refused")
    assert body["requests"][0]["reason"] == "私物のため不可", body

    ledger(c, a)

    # ---- members: move and remove ----
    st, body, _ = call(c, "POST", "/v1/groups", {"name": "kokuho"})
    assert st == 201
    st, body, _ = call(c, "PUT", "/v1/groups/kokuho/terminals/other-1")
    assert st == 200 and body["changed"], body
    st, body, _ = call(c, "DELETE", "/v1/groups/fukushi/terminals/other-1")
    assert st == 404, (st, body)
    st, body, _ = call(c, "DELETE", "/v1/groups/kokuho/terminals/other-1")
    assert st == 200, (st, body)
    st, body, _ = call(c, "GET", "/v1/groups")
    assert [g["name"] for g in body["groups"]] == ["fukushi", "kokuho"], body

    # ---- central TOTP needs [fleet] totp_key: without it, 503 (and no claim either) ----
    st, body, _ = call(c, "POST", "/v1/totp", {"user": "clerk1", "groups": ["fukushi"]})
    assert st == 503 and "totp_key" in body["error"], (st, body)
    st, body, _ = call(c, "GET", "/v1/totp")
    assert st == 200 and body["totp"] == [], (st, body)
    st, body, _ = call(c, "POST", "/v1/totp/clerk1/verify", {"code": "123456"})
    assert st == 503 and "totp_key" in body["error"], (st, body)
    conn = c.ingest_conn(cert=a)
    conn.request("POST", "/v1/totp/claim", body=b'{"user":"clerk1","step":5}',
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 503, (resp.status, resp.read())
    conn.close()

    # ---- every step is an event of the collector ----
    def kinds():
        s, bb, _ = call(c, "GET", "/v1/events?terminal=mynaguard-collector&limit=1000")
        k = {e["kind"] for e in bb["events"]}
        want = {"fleet.group", "fleet.policy", "fleet.request", "fleet.grant", "fleet.refuse",
                "fleet.revoke", "fleet.ledger"}
        return bb["events"] if want <= k else None
    evs = wait_for(kinds)
    seqs = [e["seq"] for e in evs]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs
    grant = [e for e in evs if e["kind"] == "fleet.grant"][0]
    assert grant["data"]["by"] == "admin" and grant["data"]["exception"] == ex["id"], grant
    pol = [e for e in evs if e["kind"] == "fleet.policy"]
    assert len(pol) == 1 and pol[0]["data"]["version"] == 7, pol


def ledger(c, a):
    row = {"number": "MB-0012", "holder": "田中 太郎", "department": "福祉課", "model": "SDCZ73",
           "vendor": "0781", "product": "5581", "serial": "4C530001", "encrypted": True,
           "lent": "2026-12-01", "note": "=SUM(A1) 注意, \"引用\""}
    st, body, _ = call(c, "POST", "/v1/ledger", row)
    assert st == 200 and body["holder"] == "田中 太郎", (st, body)
    st, body, _ = call(c, "POST", "/v1/ledger", dict(row, number="MB-0013", vendor="zz"))
    assert st == 400, (st, body)
    st, body, _ = call(c, "POST", "/v1/ledger", dict(row, number="MB-0013", serial="S2",
                                                     encrypted=False, lent=None,
                                                     returned="2026-12-02", note=""))
    assert st == 200, (st, body)

    # a usb.* event naming the device marks it seen
    st, _, _ = c.post(a, {"v": 1, "terminal": "term-a", "events": [
        event("term-a", 5, kind="usb.allowed", data={"vendor": "0781", "product": "5581",
                                                     "serial": "4C530001"})]})
    assert st == 200

    def seen():
        s, bb, _ = call(c, "GET", "/v1/ledger")
        r = [x for x in bb["ledger"] if x["number"] == "MB-0012"][0]
        return bb if r["last_terminal"] == "term-a" else None
    wait_for(seen)

    st, csv1, h = call(c, "GET", "/v1/ledger.csv", raw=True)
    assert st == 200 and h["Content-Type"].startswith("text/csv"), (st, h)
    assert csv1.startswith(b"\xef\xbb\xbf" + "登録番号,保管者,所属".encode()), csv1[:40]
    text = csv1.decode("utf-8-sig")
    lines = text.split("\r\n")
    assert lines[-1] == "" and len(lines) == 4, lines
    assert '"\'=SUM(A1) 注意, ""引用"""' in lines[1], lines[1]
    assert '"はい"' in lines[1] and '"term-a"' in lines[1], lines[1]

    # round trip: import what was exported, export again: the same
    st, body, _ = call(c, "POST", "/v1/ledger.csv", csv1, ctype="text/csv")
    assert st == 200 and body["imported"] == 2, (st, body)
    st, csv2, _ = call(c, "GET", "/v1/ledger.csv", raw=True)
    assert csv2 == csv1
    st, body, _ = call(c, "GET", "/v1/ledger")
    r = [x for x in body["ledger"] if x["number"] == "MB-0012"][0]
    assert r["note"] == row["note"], r

    # a new row and an edited one, with LF line ends and no BOM
    add = text.replace("\r\n", "\n") + '"MB-0020","鈴木","税務課","X","0951","1666","AB12",' \
        '"いいえ","","","","","新規"\n'
    st, body, _ = call(c, "POST", "/v1/ledger.csv", add.encode(), ctype="text/csv")
    assert st == 200 and body["imported"] == 3, (st, body)

    # a bad file: refused with its line number, nothing changed
    st, before, _ = call(c, "GET", "/v1/ledger.csv", raw=True)
    bad = text.replace("\r\n", "\n") + 'MB-0030,a,b,c,0781,5581,S,はい,,,,,\n' \
        'MB-0031,a,b,c,XYZ1,5581,S,はい,,,,,\n'
    bad = bad.replace("田中 太郎", "田中 次郎")
    st, body, _ = call(c, "POST", "/v1/ledger.csv", bad.encode(), ctype="text/csv")
    assert st == 400 and "line 5" in body["error"] and "ベンダーID" in body["error"], (st, body)
    for broken, where in (("登録番号,保管者\n", "line 1"),
                          (text + '"MB-1","a"\r\n', "line 4"),
                          (text + 'MB-1,a,b,c,0781,5581,S,たぶん,,,,,\r\n', "line 4"),
                          (text + 'MB-0012,a,b,c,0781,5581,S,はい,,,,,\r\n', "line 4"),
                          (text + '"MB-1,a\r\n', "line 4"),
                          (text + 'MB-1,a,b,c,0781,5581,S,はい,2026-02-30,,,,\r\n', "line 4")):
        st, body, _ = call(c, "POST", "/v1/ledger.csv", broken.encode(), ctype="text/csv")
        assert st == 400 and where in body["error"], (broken, st, body)
    st, after, _ = call(c, "GET", "/v1/ledger.csv", raw=True)
    assert after == before

    # a ledger of a whole city (well beyond 64 KiB) in one import
    big = text + "".join('MB-%05d,職員%d,福祉課,SDCZ73,0781,5581,SER%05d,はい,2026-12-01,,,,備考\r\n'
                         % (i, i, i) for i in range(1000, 5000))
    assert len(big.encode()) > 300000
    st, body, _ = call(c, "POST", "/v1/ledger.csv", big.encode(), ctype="text/csv")
    assert st == 200 and body["imported"] == 4002, (st, body)


if __name__ == "__main__":
    main()
