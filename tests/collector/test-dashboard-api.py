#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Dashboard API: token missing or wrong → 401 (also on /metrics); terminals with compliance,
# failing checks and since when, 24 h counts, stale, drift; terminal detail; keyset pagination
# with filters; CSV with BOM, correct quoting and neutralised formulas; metrics; the static page
# with its CSP; read-only (POST → 405).
import csv
import io
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from collectorlib import PKI, Collector, TestDir, batch, compliance, event, TOKEN  # noqa: E402


def main():
    with TestDir("api") as d:
        pki = PKI(d)
        a = pki.terminal("term-a")
        b = pki.terminal("term-b")
        c = Collector(d, pki, extra="").start()
        now = int(time.time() * 1000)
        try:
            # term-a: compliant, then one USB block and two failed logins
            st, _, _ = c.post(a, {"v": 1, "terminal": "term-a", "events": [
                compliance("term-a", 1, interval_s=60),
                event("term-a", 2, kind="usb.blocked"),
                event("term-a", 3, kind="auth.failure", data={"user": "taro", "service": "login"}),
                event("term-a", 4, kind="auth.failure", data={"user": "taro", "service": "login"}),
            ]})
            assert st == 200
            # term-b: failing MFA, clock 10 minutes behind, a hostile string in its data
            st, _, _ = c.post(b, {"v": 1, "terminal": "term-b", "events": [
                compliance("term-b", 1, failing=["mfa.pam_stack"]),
                event("term-b", 2, kind="usb.blocked", ts_ms=now - 600000,
                      data={"product": "=HYPERLINK(\"http://x\")", "note": 'say "hi", ok\nnext',
                            "label": "<script>alert(1)</script>"}),
            ]})
            assert st == 200

            # auth
            for path in ("/v1/terminals", "/v1/terminals/term-a", "/v1/events", "/v1/export.csv", "/metrics"):
                for tok in (None, "wrong-token-0123456789", TOKEN + "x", TOKEN[:-1]):
                    st, body, hdrs = c.get(path, token=tok)
                    assert st == 401, (path, tok, st)
                    assert hdrs.get("WWW-Authenticate", "").startswith("Bearer"), hdrs
            st, _, _ = c.get("/v1/terminals", token="")
            assert st == 401

            st, body, hdrs = c.get("/v1/terminals?sort=id")
            assert st == 200, body
            assert body["summary"] == {"total": 2, "compliant": 1, "noncompliant": 1, "unknown": 0,
                                       "stale": 0, "problem": 1}, body["summary"]
            assert body["matched"] == 2
            ta, tb = body["terminals"]
            assert ta["id"] == "term-a" and ta["status"] == "compliant" and ta["failing"] == []
            assert ta["usb_blocked_24h"] == 1 and ta["auth_failures_24h"] == 2, ta
            assert ta["report_interval_s"] == 60 and ta["policy_hash"].startswith("sha256:")
            assert ta["clock_drift"] is False
            assert tb["status"] == "noncompliant", tb
            assert [f["id"] for f in tb["failing"]] == ["mfa.pam_stack"], tb
            assert tb["failing"][0]["clause"] == ["2-6-3-a", "2-6-6"] and tb["failing"][0]["since"]
            assert tb["clock_drift"] is False  # the newest event of its batch was on time

            # a batch whose newest event is 10 minutes old raises the drift flag
            st, _, _ = c.post(b, batch("term-b", [3], ts_ms=now - 600000))
            st, tb, _ = c.get("/v1/terminals/term-b")
            assert st == 200 and tb["clock_drift"] is True and tb["clock_drift_ms"] >= 590000, tb
            assert len(tb["checks"]) == 3 and {ch["id"] for ch in tb["checks"]} >= {"mfa.pam_stack"}
            assert tb["recent_events"][0]["seq"] == 3
            # the failing check keeps its "since" across snapshots; a passing one resets
            first_since = tb["failing"][0]["since"]
            time.sleep(0.01)
            st, _, _ = c.post(b, {"v": 1, "terminal": "term-b", "events": [
                compliance("term-b", 4, failing=["mfa.pam_stack", "usb.default_deny"])]})
            st, tb, _ = c.get("/v1/terminals/term-b")
            f = {x["id"]: x for x in tb["failing"]}
            assert f["mfa.pam_stack"]["since"] == first_since and f["usb.default_deny"]["since"] > first_since

            st, body, _ = c.get("/v1/terminals/nobody")
            assert st == 404 and body["error"]
            st, body, _ = c.get("/v1/terminals/..%2f")
            assert st == 404

            # pagination: 7 events in all, pages of 3 via the cursor
            seen, cursor, pages = [], "", 0
            while True:
                st, page, _ = c.get("/v1/events?limit=3" + ("&after=" + cursor if cursor else ""))
                assert st == 200, page
                seen += [(e["terminal"], e["seq"]) for e in page["events"]]
                pages += 1
                if not page["next"]:
                    break
                cursor = page["next"]
            assert len(seen) == 8 and len(set(seen)) == 8 and pages == 3, (seen, pages)
            st, page, _ = c.get("/v1/events?terminal=term-a&kind=auth.failure")
            assert [e["seq"] for e in page["events"]] == [3, 4] and page["next"] is None
            st, page, _ = c.get("/v1/events?since=2000-01-01T00:00:00Z&until=2000-01-02T00:00:00Z")
            assert page["events"] == []
            for bad in ("limit=0", "limit=1001", "kind=nope", "since=yesterday", "after=-1",
                        "terminal=a%20b", "color=red", "limit=1&limit=2"):
                st, body, _ = c.get("/v1/events?" + bad)
                assert st == 400 and body["error"], (bad, st, body)

            # CSV: BOM, header, quoting, formula neutralised, one row per event
            st, raw, hdrs = c.get("/v1/export.csv", raw=True)
            assert st == 200 and raw.startswith(b"\xef\xbb\xbf"), raw[:10]
            assert hdrs["Content-Type"].startswith("text/csv")
            rows = list(csv.reader(io.StringIO(raw[3:].decode("utf-8"), newline="")))
            assert rows[0] == ["端末", "通番", "発生時刻", "受信時刻", "種別", "条項", "概要", "データ"]
            assert len(rows) == 1 + 8, len(rows)
            hostile = [r for r in rows if r[0] == "term-b" and r[1] == "2"][0]
            assert hostile[6].startswith("product='=HYPERLINK") or "'=HYPERLINK" not in hostile[6], hostile
            assert 'note=say "hi", ok next' in hostile[6], hostile[6]
            assert json.loads(hostile[7])["note"] == 'say "hi", ok\nnext'
            assert not any(cell[:1] in "=+-@" for r in rows for cell in r), "formula not neutralised"
            st, raw, _ = c.get("/v1/export.csv?terminal=term-a&kind=usb.blocked", raw=True)
            assert raw.count(b"\r\n") == 2, raw
            # a cell that starts with '=' gets a leading apostrophe
            st, _, _ = c.post(a, batch("term-a", [5], kind="usb.blocked", data={"=x": 1}))
            st, raw, _ = c.get("/v1/export.csv?terminal=term-a&kind=usb.blocked", raw=True)
            assert b"\"'=x=1\"" in raw, raw

            # metrics
            st, m, hdrs = c.get("/metrics", raw=True)
            assert st == 200 and hdrs["Content-Type"].startswith("text/plain; version=0.0.4")
            m = m.decode()
            assert "mynaguard_collector_events_stored_total 9" in m, m
            assert 'mynaguard_collector_terminals_by_state{state="noncompliant"} 1' in m
            assert "mynaguard_collector_ingest_latency_seconds_count" in m

            # page and assets: no token needed, strict CSP
            for path, ctype in (("/", "text/html"), ("/app.js", "text/javascript"), ("/style.css", "text/css")):
                st, raw, hdrs = c.get(path, token=None, raw=True)
                assert st == 200 and hdrs["Content-Type"].startswith(ctype), (path, st)
                assert "default-src 'self'" in hdrs["Content-Security-Policy"]
            # read-only
            import http.client
            conn = http.client.HTTPSConnection(*c.dashboard, context=c.client_ctx())
            conn.request("POST", "/v1/terminals", body=b"{}", headers={"Authorization": "Bearer " + TOKEN})
            r = conn.getresponse()
            assert r.status == 405, r.status
            conn.close()

            # the token file is re-read when it changes
            with open(os.path.join(d, "token"), "w") as f:
                f.write("a-new-token-abcdefghijkl\n")
            st, _, _ = c.get("/v1/terminals")
            assert st == 401
            st, _, _ = c.get("/v1/terminals", token="a-new-token-abcdefghijkl")
            assert st == 200
        finally:
            rc = c.stop()
        assert rc == 0, (rc, c.logtext())
    print("ok")


if __name__ == "__main__":
    main()
