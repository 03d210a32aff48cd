#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The auditor's side (issue 12; docs/evidence.md "Log review", "Evidence bundle",
# "Self-inspection report"), against the real collector, with events uploaded over mTLS:
# - GET /v1/review finds each seeded category in last month (logins outside office hours, a
#   burst of failures, a lockout, an unregistered USB device but not the one in the ledger, a
#   sequence gap, compliance drift) and nothing that is not one;
# - POST /v1/review/signoff is stored as a review.signed event of the collector (reviewer,
#   period, items hash, comment); a stale list hash gets 409, bad input 400;
# - GET /v1/evidence and `mynaguard-collector --evidence` write a bundle that
#   mynaguard-evidence-verify accepts with the public key only; it holds the sign-off, the
#   status per day, the failures, the policy hashes and the chain heads; a changed byte, a cut
#   file and another key fail, each with a reason;
# - GET /r/selfcheck prints the month's report per clause, for all terminals or one group;
# - the parts read from the daily history keep their edges: compliance drift on the period's
#   first and last day (and none from failures only outside it), the failure table's counts of
#   the month's days in Japan;
# - bad periods, dates, clauses and months get clear 400s;
# - the review, the bundle and the report run beside the dashboard thread (issue 12, "every
#   dashboard request answers in under 100 ms"): on a seeded store of 400 terminals x 1,000
#   events, three evidence bundles asked at once get two 200s and one 503 (Retry-After and
#   {"busy": true}: at most two run at once), and a light request asked after them is answered
#   while the bundles are still being made (the order of the answers, no time limits; the
#   figures are in docs/benchmarks.md);
# - the list's cache (docs/evidence.md "The list's cache"): a list is answered with the time it
#   was made (as_of); events after the period's end leave it as it is, an event inside the
#   period, a gap announced, or a device registered in the ledger, mark it "changed" and a
#   sign-off of the list shown is refused (409) until it is made again (?refresh=1); ?async=1
#   answers 202 while the list of a period is first made.
# With MYNAGUARD_TEST_STORE=postgresql (collector-pg-review, docs/postgresql.md) the same review,
# sign-off, bundle and report run on PostgreSQL, with the auditor accounts, the media ledger and
# the report's groups (the fleet's tables live in the shared database there too); the busy test,
# whose seeding writes the SQLite file, is not run there.
import datetime
import http.client
import importlib.util
import json
import os
import select
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from collectorlib import PKI, TOKEN, Collector, TestDir, compliance, event  # noqa: E402
from fleetlib import call, fleet_conf, keygen  # noqa: E402

JST = datetime.timezone(datetime.timedelta(hours=9))
SELF = "mynaguard-collector"
PG = os.environ.get("MYNAGUARD_TEST_STORE") == "postgresql"


def ms(d):
    return int(d.timestamp() * 1000)


def last_month():
    now = datetime.datetime.now(JST)
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    prev = (first - datetime.timedelta(days=1)).replace(day=1)
    return prev, first


def first_weekday(start, weekday):
    d = start
    while d.weekday() != weekday:
        d += datetime.timedelta(days=1)
    return d


def at(day, hour, minute=0):
    return ms(day.replace(hour=hour, minute=minute))


def auth(terminal, seq, kind, user, ts_ms):
    return event(terminal, seq, kind=kind, clause=["2-6-3-a", "2-3-1"], ts_ms=ts_ms,
                 data={"user": user, "service": "login", "tty": "tty1"})


def usb(terminal, seq, vendor, product, serial, ts_ms):
    return event(terminal, seq, kind="usb.blocked", clause=["2-6-3-a", "2-3-2"], ts_ms=ts_ms,
                 data={"vendor": vendor, "product": product, "serial": serial,
                       "classes": ["08:06:50"], "rule": "block mass_storage (08)"})


def upload(c, cert, terminal, events):
    st, body, _ = c.post(cert, {"v": 1, "terminal": terminal, "events": events})
    assert st == 200, (st, body)


def post(c, path, body, token=None):
    kw = {} if token is None else {"token": token}
    return call(c, "POST", path, body, **kw)


def verify(path, pub):
    p = subprocess.run([os.environ["EVIDENCE_VERIFY"], path, "--key", pub],
                       capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def expect_400(c, path, word):
    st, body, _ = c.get(path)
    assert st == 400, (path, st, body)
    assert word in body["error"], (path, body)


def review_made(c, period, old_as_of=None, refresh=False):
    """GET ?async=1 until the list of period is made (after old_as_of when given)."""
    q = "/v1/review?async=1&period=" + period
    st, rv, _ = c.get(q + ("&refresh=1" if refresh else ""))
    for _ in range(600):
        assert st in (200, 202), (st, rv)
        if st == 202:
            assert rv == {"period": period, "status": "computing"}, rv
        elif rv["as_of"] != old_as_of and not rv["refreshing"]:
            return rv
        time.sleep(0.05)
        st, rv, _ = c.get(q)
    raise AssertionError("the list of %s was not made (again)" % period)


def bench_generate():
    """tests/bench/collector/bench-dashboard.py's generate(db, terminals, per)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench", "collector",
                        "bench-dashboard.py")
    spec = importlib.util.spec_from_file_location("bench_dashboard", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.generate


def heavy_beside_light(d, pki, ev_key):
    hd = os.path.join(d, "heavy")
    os.makedirs(hd)
    c = Collector(hd, pki, extra=f"\n[evidence]\nkey = {ev_key}\n")
    c.start()  # the schema
    assert c.stop() == 0
    bench_generate()(c.db, 400, 1000)
    c.start()
    try:
        now = time.time()
        jst = lambda t: datetime.datetime.utcfromtimestamp(t + 9 * 3600)  # noqa: E731
        path = "/v1/evidence?from=%s&to=%s" % (jst(now - 30 * 86400).strftime("%Y-%m-%d"),
                                              jst(now).strftime("%Y-%m-%d"))
        h = {"Authorization": "Bearer " + TOKEN}

        def conn():
            # one light request first: it also reads the TLS 1.3 session tickets, which would
            # make the socket readable before any answer
            x = http.client.HTTPSConnection(*c.dashboard, timeout=120, context=c.client_ctx())
            x.request("GET", "/v1/alerts", headers=h)
            r = x.getresponse()
            assert r.status == 200, (r.status, r.read())
            r.read()
            return x

        heavy = [conn() for _ in range(3)]
        light = conn()
        for x in heavy:
            x.request("GET", path, headers=h)
        light.request("GET", "/v1/terminals?limit=50", headers=h)
        r = light.getresponse()
        body = json.loads(r.read())
        assert r.status == 200 and body["terminals"], (r.status, body)
        # answered while the bundles were being made: at most the busy one has its answer
        ready, _, _ = select.select([x.sock for x in heavy], [], [], 0)
        assert len(ready) <= 1, ready
        answers = []
        for x in heavy:
            r = x.getresponse()
            answers.append((r.status, r.getheader("Retry-After"), r.read()))
            x.close()
        light.close()
        assert sorted(a[0] for a in answers) == [200, 200, 503], [a[:2] for a in answers]
        busy = next(a for a in answers if a[0] == 503)
        err = json.loads(busy[2])
        assert busy[1] == "10" and err["busy"] is True and err["limit"] == 2, busy
        assert "busy" in err["error"] and "try again" in err["error"], err
        st, body, _ = c.get("/metrics", raw=True)
        assert st == 200 and "mynaguard_collector_heavy_busy_total 1\n" in body.decode(), body
        ok = [a for a in answers if a[0] == 200]
        assert ok[0][2].count(b"\n") == ok[1][2].count(b"\n") > 1000, [len(a[2]) for a in ok]
        # and once they are done, the next one is made
        st, raw, _ = c.get(path, raw=True)
        assert st == 200 and raw.count(b"\n") == ok[0][2].count(b"\n"), (st, raw[:200])
    except BaseException:
        print(c.logtext(), file=sys.stderr)
        raise
    finally:
        assert c.stop() == 0


def main():
    with TestDir("review") as d:
        pki = PKI(d)
        ta, tb = pki.terminal("term-a"), pki.terminal("term-b")
        grant_pem, _, _ = keygen(d, "grant")
        _, root_pub, _ = keygen(d, "root")
        if os.environ.get("MYNAGUARDCTL"):  # the documented command
            subprocess.run([os.environ["MYNAGUARDCTL"], "fleet", "keygen", "--out",
                            os.path.join(d, "evidence")], check=True, capture_output=True)
            ev_key, ev_pub = os.path.join(d, "evidence.key"), os.path.join(d, "evidence.pub")
        else:
            ev_key, ev_pub, _ = keygen(d, "evidence")
        _, other_pub, _ = keygen(d, "other")
        extra = fleet_conf(grant_pem, root_pub) + f"""
[review]
office_hours = 08:00-19:00
office_days = mon tue wed thu fri
burst_failures = 5
burst_minutes = 10

[evidence]
key = {ev_key}
"""
        c = Collector(d, pki, extra=extra).start()
        try:
            start, end = last_month()
            period = start.strftime("%Y-%m")
            wed = first_weekday(start + datetime.timedelta(days=7), 2)
            sat = first_weekday(start, 5)
            day = lambda n: start + datetime.timedelta(days=n - 1)  # noqa: E731

            # the ledger holds one device (the fleet's own endpoint)
            st, body, _ = post(c, "/v1/ledger", {
                "number": "L-001", "holder": "総務課", "department": "総務課", "model": "USB",
                "vendor": "090c", "product": "1000", "serial": "LEDGER1", "encrypted": True})
            assert st in (200, 201), (st, body)

            upload(c, ta, "term-a", [
                compliance("term-a", 1, ts_ms=at(day(2), 9)),
                auth("term-a", 2, "auth.success", "hanako", at(wed, 10)),      # office hours
                auth("term-a", 3, "auth.success", "hanako", at(sat, 10)),      # Saturday
                auth("term-a", 4, "auth.success", "taro", at(wed, 23, 30)),    # night
            ] + [auth("term-a", 5 + i, "auth.failure", "taro", at(wed, 11, i)) for i in range(5)]
              + [auth("term-a", 10 + i, "auth.failure", "jiro", at(wed, 12 + i)) for i in range(3)]
              + [
                auth("term-a", 13, "auth.locked", "taro", at(wed, 11, 5)),
                compliance("term-a", 14, failing=("mfa.pam_stack",), ts_ms=at(day(20), 9)),
                usb("term-a", 15, "0781", "5567", "UNREG1", at(day(10), 14)),
                usb("term-a", 16, "090c", "1000", "LEDGER1", at(day(11), 14)),
            ])
            upload(c, tb, "term-b", [compliance("term-b", 1, ts_ms=at(day(1), 9)),
                                     compliance("term-b", 2, ts_ms=at(day(8), 9)),
                                     compliance("term-b", 5, ts_ms=at(day(15), 9))])

            # ---- the review list ----
            st, rv, _ = c.get("/v1/review?period=" + period)
            assert st == 200, (st, rv)
            cats = rv["categories"]
            assert cats == {"off_hours": 2, "failure_burst": 1, "lockout": 1,
                            "usb_unregistered": 1, "sequence_gap": 1,
                            "compliance_drift": 1}, cats
            items = rv["items"]
            by = lambda k: [i for i in items if i["category"] == k]  # noqa: E731
            assert sorted(i["user"] for i in by("off_hours")) == ["hanako", "taro"], items
            b = by("failure_burst")[0]
            assert (b["terminal"], b["user"], b["count"]) == ("term-a", "taro", 5), b
            assert by("lockout")[0]["user"] == "taro"
            u = by("usb_unregistered")[0]
            assert (u["serial"], u["vendor"], u["new"]) == ("UNREG1", "0781", True), u
            g = by("sequence_gap")[0]
            assert (g["terminal"], g["first"], g["last"]) == ("term-b", 3, 4), g
            dr = by("compliance_drift")[0]
            assert (dr["terminal"], dr["failing"]) == ("term-a", ["mfa.pam_stack"]), dr
            assert len(rv["items_sha256"]) == 64 and rv["reviewer"] == "admin"
            assert rv["settings"]["office_hours"] == "08:00-19:00"
            # another month has nothing of it
            st, other, _ = c.get("/v1/review?period=" + end.strftime("%Y-%m"))
            assert st == 200 and sum(other["categories"].values()) == 0, other
            st, wk, _ = c.get("/v1/review?period=" + wed.strftime("%G-W%V"))
            assert st == 200 and wk["categories"]["failure_burst"] == 1, wk

            for bad, word in (("2026-13", "period"), ("2026-1", "period"), ("abc", "period"),
                              ("2026-W60", "week"), ("2026-11%00x", "%00")):
                expect_400(c, "/v1/review?period=" + bad, word)
            expect_400(c, "/v1/review?period=2026-11&x=1", "parameter")
            st, _, _ = c.get("/v1/review?period=" + period, token=None)
            assert st == 401
            st, body, _ = post(c, "/v1/review", {})
            assert st == 405, (st, body)

            # ---- sign-off ----
            sign = {"period": period, "items_sha256": rv["items_sha256"],
                    "items": len(items), "comment": "全件確認。taro の夜間ログインは残業申請あり。"}
            for body, code, word in (
                    (dict(sign, items_sha256="0" * 64), 409, "changed"),
                    (dict(sign, items=len(items) + 1), 409, "items"),
                    ({k: v for k, v in sign.items() if k != "period"}, 400, "period"),
                    (dict(sign, period="2026-00"), 400, "period"),
                    (dict(sign, period="2999-01"), 400, "not begun"),
                    (dict(sign, comment="bad\x01"), 400, "comment"),
                    (dict(sign, comment="x" * 2001), 400, "comment"),
                    (dict(sign, reviewer="mallory"), 400, "unknown key"),
                    ("[1]", 400, "JSON object")):
                st, resp, _ = post(c, "/v1/review/signoff", body)
                assert st == code and word in resp["error"], (body, st, resp)
            st, resp, _ = post(c, "/v1/review/signoff", sign, token="wrong-token-0123456789")
            assert st == 401, (st, resp)
            st, resp, _ = post(c, "/v1/review/signoff", sign)
            assert st == 202, (st, resp)
            assert resp["reviewer"] == "admin" and resp["items_sha256"] == rv["items_sha256"]

            # a terminal cannot forge a sign-off
            st, body, _ = c.post(ta, {"v": 1, "terminal": "term-a", "events": [
                event("term-a", 17, kind="review.signed", data=dict(sign, reviewer="admin"))]})
            assert st == 400 and "collector's own" in body["error"], (st, body)

            ev = None
            for _ in range(100):
                st, evs, _ = c.get("/v1/events?kind=review.signed&terminal=" + SELF)
                assert st == 200, (st, evs)
                if evs["events"]:
                    ev = evs["events"][0]
                    break
                time.sleep(0.1)
            assert ev, "the sign-off was not stored as an event"
            assert ev["data"]["reviewer"] == "admin" and ev["data"]["period"] == period
            assert ev["data"]["items_sha256"] == rv["items_sha256"]
            assert ev["data"]["comment"] == sign["comment"] and ev["data"]["items"] == len(items)
            st, rv2, _ = c.get("/v1/review?period=" + period)
            assert [s["period"] for s in rv2["signoffs"]] == [period], rv2["signoffs"]

            # ---- evidence bundle over the API ----
            last = (end - datetime.timedelta(days=1)).strftime("%Y-%m-%d")
            first = start.strftime("%Y-%m-%d")
            st, raw, hdr = c.get(f"/v1/evidence?from={first}&to={last}&clauses=2-6-3-a,2-6-6",
                                 raw=True)
            assert st == 200, (st, raw[:300])
            assert hdr["Content-Type"].startswith("application/x-ndjson"), hdr
            assert "attachment" in hdr["Content-Disposition"]
            bundle = os.path.join(d, "bundle.jsonl")
            with open(bundle, "wb") as f:
                f.write(raw)
            rc, out = verify(bundle, ev_pub)
            assert rc == 0 and out.startswith("OK "), out
            lines = [json.loads(x) for x in raw.decode().splitlines()]
            types = [x["type"] for x in lines]
            assert types[0] == "header" and types[-2:] == ["manifest", "signature"], types
            assert lines[0]["clauses"] == ["2-6-3-a", "2-6-6"]
            reviews = [x for x in lines if x["type"] == "review"]
            assert len(reviews) == 1 and reviews[0]["comment"] == sign["comment"], reviews
            assert reviews[0]["items_sha256"] == rv["items_sha256"]
            day20 = day(20).strftime("%Y-%m-%d")
            st20 = [x for x in lines if x["type"] == "status" and x["terminal"] == "term-a"
                    and x["check"] == "mfa.pam_stack" and x["day"] == day20]
            assert st20 and st20[0]["status"] == "fail" and st20[0]["reported"], st20
            st19 = [x for x in lines if x["type"] == "status" and x["terminal"] == "term-a"
                    and x["check"] == "mfa.pam_stack"
                    and x["day"] == day(19).strftime("%Y-%m-%d")]
            assert st19 and st19[0]["status"] == "pass" and not st19[0]["reported"], st19
            # time.synchronized is only 2-6-6 ... included; nothing outside the clauses
            assert not [x for x in lines if x["type"] == "status"
                        and not set(x["clause"]) & {"2-6-3-a", "2-6-6"}]
            fails = [x for x in lines if x["type"] == "failure"]
            assert any(x.get("check") == "mfa.pam_stack" and x["terminal"] == "term-a"
                       for x in fails), fails
            assert any(x["kind"] == "auth.locked" for x in fails), fails
            assert all(len(x["chain"]) == 64 for x in fails)
            pol = [x for x in lines if x["type"] == "policy"]
            assert {x["terminal"] for x in pol} == {"term-a", "term-b"}, pol
            heads = {x["terminal"]: x for x in lines if x["type"] == "chain_head"}
            assert heads["term-a"]["max_seq"] == 16 and len(heads["term-a"]["head"]) == 64
            assert SELF in heads

            # ---- one changed byte anywhere fails, naming what ----
            def tampered(pos, new=None):
                b = bytearray(raw)
                b[pos] = new if new is not None else (b[pos] ^ 0x01)
                p = os.path.join(d, "tampered.jsonl")
                with open(p, "wb") as f:
                    f.write(bytes(b))
                return verify(p, ev_pub)

            text = raw  # byte offsets
            status_at = text.index(b'"reported":true,"status":"fail"')  # a status line
            rc, out = tampered(status_at + len(b'"reported":true,"status":"f'), ord("x"))  # fxil
            assert rc == 1 and "section status" in out, out
            rc, out = tampered(text.index(b'"comment":"') + 12)
            assert rc == 1 and out.startswith("FAILED"), out
            rc, out = tampered(text.rindex(b'{"bytes":') + 30)
            assert rc == 1 and "signature" in out, out
            sig_at = text.index(b'"value":"', text.rindex(b'{"alg"')) + 12
            rc, out = tampered(sig_at, ord("0") if raw[sig_at] != ord("0") else ord("1"))
            assert rc == 1 and "signature" in out, out
            rc, out = tampered(text.index(b'"key_id":"', text.rindex(b'{"alg"')) + 12)
            assert rc == 1 and ("another key" in out or "malformed key_id" in out), out
            rc, out = tampered(5)
            assert rc == 1 and "header" in out, out
            for pos in range(0, len(raw), max(1, len(raw) // 97)):
                rc, out = tampered(pos)
                assert rc == 1 and out.startswith("FAILED"), (pos, out)
            cut = os.path.join(d, "cut.jsonl")
            with open(cut, "wb") as f:
                f.write(raw[:-40])
            rc, out = verify(cut, ev_pub)
            assert rc == 1 and "line end" in out, out
            with open(cut, "wb") as f:  # a whole status line removed
                ls = raw.split(b"\n")
                k = types.index("status")
                f.write(b"\n".join(ls[:k] + ls[k + 1:]))
            rc, out = verify(cut, ev_pub)
            assert rc == 1 and "manifest" in out, out
            rc, out = verify(bundle, other_pub)
            assert rc == 1 and "another key" in out, out

            # ---- bad dates and clauses ----
            for q, word in (("from=2026-02-30&to=2026-03-01", "from"),
                            (f"from={last}&to={first}", "before"),
                            (f"from={first}", "required"),
                            ("from=2025-01-01&to=2026-12-31", "days"),
                            (f"from={first}&to={last}&clauses=2-6-3-a,", "clause"),
                            (f"from={first}&to={last}&clauses=a%20b", "clause"),
                            (f"from={first}&to=tomorrow", "to"),
                            (f"from={first}&to={last}&from={first}", "parameter")):
                expect_400(c, "/v1/evidence?" + q, word)

            # ---- the CLI, offline on the database file ----
            out_file = os.path.join(d, "cli.jsonl")
            p = subprocess.run([os.environ["COLLECTOR"], "--config", c.conf, "--evidence", first,
                                last, "--clauses", "2-6-3-a", "-o", out_file],
                               capture_output=True, text=True)
            assert p.returncode == 0, p.stderr
            rc, out = verify(out_file, ev_pub)
            assert rc == 0, out
            with open(out_file) as f:
                assert '"type":"review"' in f.read()
            p = subprocess.run([os.environ["COLLECTOR"], "--config", c.conf, "--evidence", first,
                                last, "-o", out_file], capture_output=True, text=True)
            assert p.returncode == 1 and "exists" in p.stderr, p.stderr  # never overwritten
            p = subprocess.run([os.environ["COLLECTOR"], "--config", c.conf, "--evidence",
                                "2026-13-01", last, "-o", out_file + ".2"],
                               capture_output=True, text=True)
            assert p.returncode == 2 and "from" in p.stderr, p.stderr
            # a store that cannot be read: no bundle, the reason on stderr
            with open(c.conf) as f:
                conf = f.read()
            unread = os.path.join(d, "unreadable.conf")
            with open(unread, "w") as f:
                if PG:  # a server that is not there
                    f.write(conf.replace("host=" + c.pg.sock, "host=" + os.path.join(d, "nopg")))
                else:
                    f.write(conf.replace(c.db, os.path.join(d, "no-such.db")))
            p = subprocess.run([os.environ["COLLECTOR"], "--config", unread, "--evidence", first,
                                last, "-o", out_file + ".3"], capture_output=True, text=True)
            assert p.returncode == 1 and "cannot be read" in p.stderr, p.stderr
            assert not os.path.exists(out_file + ".3")

            # ---- the monthly self-inspection report ----
            st, html, hdr = c.get("/r/selfcheck?month=" + period, raw=True)
            assert st == 200 and hdr["Content-Type"].startswith("text/html"), (st, hdr)
            page = html.decode()
            assert "自己点検報告書" in page and "2-6-3-a" in page
            assert sign["comment"] in page, page
            assert "term-a（" in page  # failing days named
            # the failures of the month (the daily history's counts): 8 failed logins, 1
            # lockout, 2 USB blocks of term-a, none of term-b
            assert ('<tr><td>term-a</td><td class="num">8</td><td class="num">1</td>'
                    '<td class="num">2</td></tr>') in page, page
            assert "<tr><td>term-b</td>" not in page, page
            assert "@media" not in page and "<script" not in page
            expect_400(c, "/r/selfcheck?month=2026-13", "month")
            expect_400(c, "/r/selfcheck", "month")
            st, body, _ = c.get("/r/selfcheck?month=" + period + "&group=nosuch")
            assert st == 404, (st, body)
            st, body, _ = post(c, "/v1/groups", {"name": "honcho"})
            assert st in (200, 201), (st, body)
            st, body, _ = call(c, "PUT", "/v1/groups/honcho/terminals/term-b")
            assert st in (200, 201), (st, body)
            st, html, _ = c.get("/r/selfcheck?month=" + period + "&group=honcho", raw=True)
            page = html.decode()
            assert st == 200 and "honcho" in page and "term-a" not in page, page
            st, html, _ = c.get("/r/selfcheck?month=" + end.strftime("%Y-%m"), raw=True)
            assert st == 200 and "未実施" in html.decode()
            st, _, _ = c.get("/r/selfcheck?month=" + period, token=None)
            assert st == 401

            # ---- an auditor with hide_personal: no user name in the review, the report or
            # the bundle (which still verifies); an unrestricted auditor sees them ----
            toks = {}
            for name, hide in (("mika", True), ("nao", False)):
                p = subprocess.run([os.environ["COLLECTOR"], "--config", c.conf,
                                    "--account-add", name, "--role", "auditor",
                                    *(["--hide-personal"] if hide else [])],
                                   input="pass-" + name + "-0123456789\n",
                                   capture_output=True, text=True)
                assert p.returncode == 0, p.stderr
                p = subprocess.run([os.environ["COLLECTOR"], "--config", c.conf,
                                    "--account-token", name, "--scope", "read"],
                                   capture_output=True, text=True)
                assert p.returncode == 0, p.stderr
                toks[name] = p.stdout.strip()
            users = ("hanako", "taro", "jiro")
            for name, hidden in (("mika", True), ("nao", False)):
                st, rvh, _ = c.get("/v1/review?period=" + period, token=toks[name])
                assert st == 200, (st, rvh)
                text = json.dumps(rvh, ensure_ascii=False)
                if hidden:
                    assert not [u for u in users if u in text], text
                    assert {i["user"] for i in rvh["items"] if "user" in i} == {"***"}, rvh
                    assert rvh["signoffs"][0]["comment"] == "***", rvh["signoffs"]
                else:
                    assert "hanako" in text and "taro" in text, text
                st, html, _ = c.get("/r/selfcheck?month=" + period, token=toks[name],
                                    raw=True)
                page = html.decode()
                assert st == 200 and "自己点検報告書" in page, (st, page[:300])
                # the sign-off's comment names taro; the reviewer is an account
                assert ("taro" in page) != hidden and (sign["comment"] in page) != hidden, page
                assert ("***" in page) == hidden, page
                st, raw, _ = c.get(f"/v1/evidence?from={first}&to={last}", token=toks[name],
                                   raw=True)
                assert st == 200, (st, raw[:300])
                path = os.path.join(d, "bundle-%s.jsonl" % name)
                with open(path, "wb") as f:
                    f.write(raw)
                rc, out = verify(path, ev_pub)
                assert rc == 0 and out.startswith("OK "), out
                lines = [json.loads(x) for x in raw.decode().splitlines()]
                fails = [x for x in lines if x["type"] == "failure" and "user" in x.get("data", {})]
                assert fails, lines
                if hidden:
                    assert lines[0]["redacted"] is True, lines[0]
                    assert not [u for u in users if u.encode() in raw], raw
                    assert {x["data"]["user"] for x in fails} == {"***"}, fails
                else:
                    assert "redacted" not in lines[0], lines[0]
                    assert {x["data"]["user"] for x in fails} >= {"taro", "jiro"}, fails
                    assert sign["comment"].encode() in raw

            # ---- compliance drift at the period's edges: the review reads the snapshots of
            # the terminals with a failing day of the period in the daily history only ----
            start2 = (start - datetime.timedelta(days=1)).replace(day=1)
            last2 = start - datetime.timedelta(days=1)
            D = lambda n: start2 + datetime.timedelta(days=n)  # noqa: E731
            # failing on the first day, just after midnight, after a compliant snapshot before
            upload(c, pki.terminal("term-c"), "term-c", [
                compliance("term-c", 1, ts_ms=at(D(-3), 9)),
                compliance("term-c", 2, failing=("mfa.pam_stack",), ts_ms=at(start2, 0, 10)),
                compliance("term-c", 3, ts_ms=at(D(9), 9))])
            # failing on the last day, just before midnight, and only then
            upload(c, pki.terminal("term-d"), "term-d", [
                compliance("term-d", 1, ts_ms=at(D(4), 9)),
                compliance("term-d", 2, failing=("time.synchronized",),
                           ts_ms=at(last2, 23, 50))])
            # failing only before and after the period: no drift in it
            upload(c, pki.terminal("term-e"), "term-e", [
                compliance("term-e", 1, ts_ms=at(D(-3), 9)),
                compliance("term-e", 2, failing=("mfa.pam_stack",), ts_ms=at(D(-2), 9)),
                compliance("term-e", 3, ts_ms=at(D(4), 9)),
                compliance("term-e", 4, failing=("mfa.pam_stack",), ts_ms=at(start, 0, 5))])
            st, rv_edge, _ = c.get("/v1/review?period=" + start2.strftime("%Y-%m"))
            assert st == 200, (st, rv_edge)
            drifts = [(i["terminal"], i["seq"], i["failing"]) for i in rv_edge["items"]
                      if i["category"] == "compliance_drift"]
            assert drifts == [("term-c", 2, ["mfa.pam_stack"]),
                              ("term-d", 2, ["time.synchronized"])], rv_edge["items"]
            # the report's failure table counts the month's days in Japan, edges included
            upload(c, pki.terminal("term-c"), "term-c", [
                auth("term-c", 4, "auth.failure", "taro", at(D(-1), 23, 50)),
                auth("term-c", 5, "auth.failure", "taro", at(start2, 0, 20)),
                auth("term-c", 6, "auth.failure", "taro", at(last2, 23, 55)),
                auth("term-c", 7, "auth.failure", "taro", at(start, 0, 5))])
            st, html, _ = c.get("/r/selfcheck?month=" + start2.strftime("%Y-%m"), raw=True)
            assert st == 200 and ('<tr><td>term-c</td><td class="num">2</td><td class="num">0'
                                  '</td><td class="num">0</td></tr>') in html.decode(), html

            # ---- the list's cache ----
            p2 = start2.strftime("%Y-%m")
            assert rv_edge["changed"] is False and rv_edge["refreshing"] is False, rv_edge
            t0 = datetime.datetime.fromisoformat(rv_edge["as_of"].replace("Z", "+00:00"))
            assert abs(t0.timestamp() - time.time()) < 60, rv_edge["as_of"]
            # a login at night inside the period, stored late: the list shown is marked changed
            # (made again at most every 5 minutes), and its sign-off refused
            upload(c, pki.terminal("term-d"), "term-d", [
                auth("term-d", 3, "auth.success", "saburo", at(D(5), 23))])
            st, rv3, _ = c.get("/v1/review?period=" + p2)
            assert st == 200 and rv3["changed"] is True, rv3
            assert (rv3["as_of"], rv3["items_sha256"]) == (rv_edge["as_of"],
                                                           rv_edge["items_sha256"]), rv3
            sign2 = {"period": p2, "items_sha256": rv3["items_sha256"],
                     "items": len(rv3["items"]), "comment": "ok"}
            st, resp, _ = post(c, "/v1/review/signoff", sign2)
            assert st == 409 and "changed" in resp["error"], (st, resp)
            rv4 = review_made(c, p2, rv3["as_of"], refresh=True)
            assert rv4["changed"] is False and rv4["items_sha256"] != rv3["items_sha256"], rv4
            assert rv4["categories"]["off_hours"] == rv3["categories"]["off_hours"] + 1, rv4
            assert [i for i in rv4["items"] if i.get("user") == "saburo"], rv4["items"]
            # an event after the period's end leaves the list as it is
            upload(c, pki.terminal("term-d"), "term-d", [
                compliance("term-d", 4, ts_ms=int(time.time() * 1000))])
            st, rv5, _ = c.get("/v1/review?period=" + p2)
            assert st == 200 and rv5["changed"] is False, rv5
            assert (rv5["as_of"], rv5["items_sha256"]) == (rv4["as_of"], rv4["items_sha256"])
            st, resp, _ = post(c, "/v1/review/signoff", dict(sign2, **{
                "items_sha256": rv5["items_sha256"], "items": len(rv5["items"])}))
            assert st == 202 and resp["items_sha256"] == rv5["items_sha256"], (st, resp)
            if PG:
                # several collectors on one database: a batch of another one that commits
                # after the list was made may hold lower ids than the newest one seen
                def sql(q):
                    return c.pg.run("psql", "-h", c.pg.sock, "-U", c.pg.role, "-d", c.dbname,
                                    "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                                    "-c", q).stdout.strip()
                tid = sql("SELECT id FROM terminals WHERE name = 'term-d'")
                sql("INSERT INTO events (id, tid, seq, ts, received_at, kind, clause, data)"
                    " OVERRIDING SYSTEM VALUE VALUES (1, %s, 99, %d, %d, 'auth.success', '[]',"
                    " '{\"user\": \"shiro\"}')" % (tid, at(D(6), 23), int(time.time() * 1000)))
                st, rv5b, _ = c.get("/v1/review?period=" + p2)
                assert st == 200 and rv5b["changed"] is True, rv5b
                rv5b = review_made(c, p2, rv5b["as_of"], refresh=True)
                assert [i for i in rv5b["items"] if i.get("user") == "shiro"], rv5b["items"]
            # a period not asked for yet: 202 while it is made, then the list
            p3 = (start2 - datetime.timedelta(days=1)).strftime("%Y-%m")
            rv6 = review_made(c, p3)
            assert rv6["period"] == p3 and rv6["changed"] is False, rv6
            expect_400(c, "/v1/review?period=%s&async=2" % p3, "async")
            expect_400(c, "/v1/review?period=%s&refresh=yes" % p3, "refresh")
            # the gap announced by an event after the period (spool.dropped): the list is changed
            st, rv7, _ = c.get("/v1/review?period=" + period)
            assert st == 200, (st, rv7)
            if rv7["changed"]:  # term-c's and term-e's events above are in the period
                rv7 = review_made(c, period, rv7["as_of"], refresh=True)
            assert rv7["changed"] is False, rv7
            gap = [i for i in rv7["items"] if i["category"] == "sequence_gap"]
            assert [(i["terminal"], i["announced"]) for i in gap] == [("term-b", False)], gap
            upload(c, tb, "term-b", [event("term-b", 6, kind="spool.dropped", ts_ms=int(
                time.time() * 1000), data={"count": 2, "first_seq": 3, "last_seq": 4})])
            st, rv8, _ = c.get("/v1/review?period=" + period)
            assert st == 200 and rv8["changed"] is True and rv8["as_of"] == rv7["as_of"], rv8
            rv7 = review_made(c, period, rv8["as_of"], refresh=True)
            gap = [i for i in rv7["items"] if i["category"] == "sequence_gap"]
            assert [(i["terminal"], i["announced"]) for i in gap] == [("term-b", True)], gap
            if not PG:
                # the device registered in the ledger: the list is changed, made again without it
                assert rv7["categories"]["usb_unregistered"] == 1, rv7
                st, body, _ = post(c, "/v1/ledger", {
                    "number": "L-002", "holder": "総務課", "department": "総務課",
                    "model": "USB", "vendor": "0781", "product": "5567", "serial": "UNREG1",
                    "encrypted": True})
                assert st in (200, 201), (st, body)
                st, rv8, _ = c.get("/v1/review?period=" + period)
                assert st == 200 and rv8["changed"] is True, rv8
                rv9 = review_made(c, period, rv8["as_of"], refresh=True)
                assert rv9["categories"]["usb_unregistered"] == 0, rv9

            # ---- bad [review] settings stop the collector with the key named ----
            with open(c.conf) as f:
                conf = f.read()
            for old, new, word in (
                    ("office_hours = 08:00-19:00", "office_hours = 19:00-08:00", "office_hours"),
                    ("office_hours = 08:00-19:00", "office_hours = 8-19", "office_hours"),
                    ("office_days = mon tue wed thu fri", "office_days = mon funday", "office_days"),
                    ("burst_failures = 5", "burst_failures = 1", "burst_failures"),
                    ("burst_minutes = 10", "burst_minutes = 10\nperiod = daily", "period")):
                bad = os.path.join(d, "bad.conf")
                with open(bad, "w") as f:
                    f.write(conf.replace(old, new))
                p = subprocess.run([os.environ["COLLECTOR"], "--config", bad, "--check"],
                                   capture_output=True, text=True)
                assert p.returncode == 1 and word in p.stderr, (new, p.stderr)
        except BaseException:
            print(c.logtext(), file=sys.stderr)
            raise
        finally:
            assert c.stop() == 0
        if not PG:  # its seeding writes the SQLite file
            heavy_beside_light(d, pki, ev_key)
    print("ok")


if __name__ == "__main__":
    main()
