#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Browser test of the dashboard's fleet views (docs/fleet.md) on a real collector with [fleet]:
# keys made with the built `mynaguardctl fleet keygen`, a base signed with `mynaguardctl fleet
# sign-base` and uploaded through the API, a usb.blocked event ingested over mutual TLS makes a
# request. Driven in Debian's headless Chromium: the media ledger's CSV import (a good file; a
# bad file refused with its line number and nothing changed; a row through the form), the request shown, a grant out of
# the base's limits refused with the collector's reason and nothing stored, the grant through
# the form, a second request refused with a reason, the exception listed, revoked after a
# confirmation, the groups, the central TOTP enrollments (read-only) with a double use, and that
# double use as a problem on the terminals' list. Screenshots into
# the artefacts directory. Exit 77 when chromium, chromedriver or selenium are missing.
import base64
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "collector"))
from collectorlib import PKI, Collector, TestDir, TOKEN, event  # noqa: E402
from fleetlib import base_text, call, fleet_conf  # noqa: E402

_spec = importlib.util.spec_from_file_location("test_dashboard", os.path.join(HERE, "test-dashboard.py"))
dash = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dash)
check, click, Browser = dash.check, dash.click, dash.Browser
if dash.webdriver is not None:
    from selenium.webdriver.common.by import By

HEADER = "登録番号,保管者,所属,型番,ベンダーID,プロダクトID,シリアル,暗号化,貸出日,返却日,最終確認端末,最終確認日時,備考"
GOOD = ("\ufeff" + HEADER + "\r\n"
        '"USB-0001","田中 花子","福祉課","RUF3-K","0781","5581","4C530001","はい","2026-04-01","","","",""\r\n'
        '"USB-0002","鈴木 一郎","市民課","TB-8","0930","6545","AA01","いいえ","","","","","予備"\r\n')
BAD = ("\ufeff" + HEADER + "\r\n"
       '"USB-0003","佐藤","税務課","X","0781","5581","S3","はい","","","","",""\r\n'
       '"USB-0004","佐藤","税務課","X","07G1","5581","S4","はい","","","","",""\r\n')


def ctl(*args):
    r = subprocess.run([os.environ["MYNAGUARDCTL"]] + list(args), capture_output=True, text=True)
    check(r.returncode == 0, "mynaguardctl %s: %s" % (" ".join(args), r.stderr))


def setup_fleet(d, pki):
    ctl("fleet", "keygen", "--out", os.path.join(d, "root"))
    ctl("fleet", "keygen", "--out", os.path.join(d, "grant"))
    with open(os.path.join(d, "grant.pub")) as f:
        grant_raw = base64.b64decode(f.read().strip())
    c = Collector(d, pki)
    with open(c.conf, "a") as f:
        f.write(fleet_conf(os.path.join(d, "grant.key"), os.path.join(d, "root.pub")))
        f.write("totp_key = %s\n" % os.path.join(d, "totp.key"))
    with open(os.path.join(d, "totp.key"), "w") as f:
        f.write("cd" * 32 + "\n")
    os.chmod(os.path.join(d, "totp.key"), 0o600)
    c.start()
    base = os.path.join(d, "base.conf")
    with open(base, "w") as f:
        f.write(base_text("fukushi", 1, grant_raw, max_days=90))
    signed = os.path.join(d, "base.bin")
    ctl("fleet", "sign-base", "--key", os.path.join(d, "root.key"), "--out", signed, base)
    with open(signed, "rb") as f:
        signed_bytes = f.read()
    st, body, _ = call(c, "POST", "/v1/groups", {"name": "fukushi"})
    check(st == 201, "group created: %s %s" % (st, body))
    st, body, _ = call(c, "PUT", "/v1/groups/fukushi/terminals/term-a")
    check(st == 200, "member added: %s %s" % (st, body))
    st, body, _ = call(c, "PUT", "/v1/groups/fukushi/policy", signed_bytes)
    check(st == 200 and body["version"] == 1, "base uploaded: %s %s" % (st, body))
    # a stick blocked on term-a, as the agent reports it (one event per blocked interface)
    dev = {"vendor": "0781", "product": "5581", "serial": "4C530001", "classes": ["08:06:50"],
           "rule": "block mass_storage (08)", "manufacturer": "SanDisk", "product_name": "Ultra",
           "mode": "enforce", "audit": False, "request_code": "ABCD2345"}
    st, _, _ = c.post(pki.terminal("term-a"), {"v": 1, "terminal": "term-a", "events": [
        event("term-a", 1, kind="usb.blocked", data=dev),
        event("term-a", 2, kind="usb.blocked", data=dict(dev, serial="PRIV0001", product="5583",
                                                         product_name="Private", request_code=None))]})
    check(st == 200, "usb.blocked ingested")
    deadline = time.time() + 15
    while time.time() < deadline:
        st, body, _ = call(c, "GET", "/v1/requests?state=pending")
        if st == 200 and len(body["requests"]) == 2:
            break
        time.sleep(0.2)
    codes = {r["serial"]: r["code"] for r in body["requests"]}
    check(codes.get("4C530001") == "ABCD2345" and codes.get("PRIV0001"), "the requests exist: %s" % body)
    # central TOTP: clerk1 enrolled, one code accepted offline on term-a and on term-b
    st, body, _ = call(c, "POST", "/v1/totp", {"user": "clerk1", "groups": ["fukushi"]})
    check(st in (200, 201), "clerk1 enrolled: %s %s" % (st, body))
    step = int(time.time()) // 30
    for name, seq in (("term-a", 3), ("term-b", 1)):
        st, _, _ = c.post(pki.terminal(name), {"v": 1, "terminal": name, "events": [
            event(name, seq, kind="auth.success", clause=["2-6-6"], data={
                "user": "clerk1", "service": "login", "method": "totp", "step": step,
                "claim": "offline"})]})
        check(st == 200, "auth.success from " + name)
    return c, codes["PRIV0001"]


def visible(b, id_):
    return b.js("const e = document.getElementById(arguments[0]); return !!e && !e.hidden;", id_)


def upload(b, d, name, text):
    path = os.path.join(d, name)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    b.driver.find_element(By.ID, "import-file").send_keys(path)
    click(b, By.ID, "import-submit")


def drive(b, c, d, outdir, code2):
    origin = "https://127.0.0.1:%d" % c.dashboard[1]
    b.driver.get(origin + "/#token=" + TOKEN)
    b.wait_css("#terminals tbody tr[data-terminal]")

    # ---- the media ledger: a good CSV, then a bad one refused with its line, nothing changed ----
    b.js("location.hash = '#/ledger'")
    b.wait("the ledger view", lambda: visible(b, "ledgerview") and visible(b, "ledger-none"))
    upload(b, d, "good.csv", GOOD)
    b.wait("imported", lambda: visible(b, "import-done") and "2 件" in b.text("#import-done"))
    b.wait("two ledger rows", lambda: b.js("return document.querySelectorAll('#ledger-table tbody tr.lg').length") == 2)
    row = b.text('#ledger-table tr[data-number="USB-0001"]')
    check("田中 花子" in row and "0781:5581 4C530001" in row and "2026-04-01" in row, "ledger row: " + row)
    _, before, _ = call(c, "GET", "/v1/ledger.csv", raw=True)
    upload(b, d, "bad.csv", BAD)
    b.wait("the import refused", lambda: visible(b, "import-error"))
    err = b.text("#import-error")
    check("line 3" in err and "何も変更していません" in err, "the line-numbered reason: " + err)
    _, after, _ = call(c, "GET", "/v1/ledger.csv", raw=True)
    check(before == after, "a refused import changes nothing")
    check(b.js("return document.querySelectorAll('#ledger-table tbody tr.lg').length") == 2, "still two rows")
    # one medium through the form
    for id_, v in (("lg-number", "USB-0005"), ("lg-holder", "高橋"), ("lg-department", "福祉課"),
                   ("lg-model", "RUF3-K"), ("lg-vendor", "0781"), ("lg-product", "5581"), ("lg-serial", "S5"),
                   ("lg-note", "=cmd")):
        b.driver.find_element(By.ID, id_).send_keys(v)
    click(b, By.ID, "lg-encrypted")
    click(b, By.ID, "ledger-submit")
    b.wait("the new row", lambda: "高橋" in (b.text('#ledger-table tr[data-number="USB-0005"]') or ""))
    st, body, _ = call(c, "GET", "/v1/ledger")
    row = [r for r in body["ledger"] if r["number"] == "USB-0005"]
    check(len(row) == 1 and row[0]["encrypted"] is True and row[0]["note"] == "=cmd", "the added medium: %s" % body)
    b.screenshot(os.path.join(outdir, "fleet-ledger.png"))

    # ---- the request, a grant beyond the base's limit, then the grant ----
    b.js("location.hash = '#/requests'")
    b.wait_css('#req-pending tr[data-code="ABCD2345"]')
    row = b.text('#req-pending tr[data-code="ABCD2345"]')
    check("term-a" in row and "0781:5581" in row and "SanDisk Ultra" in row and "4C530001" in row,
          "the pending request: " + row)
    click(b, By.CSS_SELECTOR, '#req-pending tr[data-code="ABCD2345"] button.decide')
    b.wait("the decide panel", lambda: visible(b, "decide"))
    frm, until = b.js("return [document.getElementById('grant-from').value, document.getElementById('grant-until').value]")
    days = (time.mktime(time.strptime(until, "%Y-%m-%d")) - time.mktime(time.strptime(frm, "%Y-%m-%d"))) / 86400 + 1
    check(0 < days <= 90, "the default period stays within 90 days: %s..%s" % (frm, until))
    check("90" in b.text("#grant-limit"), "the limit is shown: " + b.text("#grant-limit"))
    far = time.strftime("%Y-%m-%d", time.localtime(time.mktime(time.strptime(frm, "%Y-%m-%d")) + 400 * 86400))
    b.js("document.getElementById('grant-until').value = arguments[0]", far)
    b.driver.find_element(By.ID, "grant-purpose").send_keys("選挙事務のデータ受け渡し")
    click(b, By.ID, "grant-submit")
    b.wait("the refusal", lambda: visible(b, "grant-error"))
    err = b.text("#grant-error")
    check(err.startswith("許可できません: ") and len(err) > len("許可できません: ") + 5, "the collector's reason: " + err)
    st, body, _ = call(c, "GET", "/v1/exceptions")
    check(st == 200 and body["exceptions"] == [], "nothing stored after the refusal")
    b.screenshot(os.path.join(outdir, "fleet-grant-refused.png"))
    b.js("document.getElementById('grant-until').value = arguments[0]", until)
    b.driver.find_element(By.ID, "grant-ledger").send_keys("USB-0001")
    click(b, By.ID, "grant-submit")
    b.wait("granted", lambda: visible(b, "decide-done") and "EX-" in b.text("#decide-done"))
    check(not visible(b, "decide"), "the panel closed")
    b.wait("the decided list", lambda: "許可" in (b.text('#req-decided tr[data-code="ABCD2345"]') or ""))
    check(not b.js("return document.querySelector('#req-pending tr[data-code=\"ABCD2345\"]')"), "no longer pending")
    st, body, _ = call(c, "GET", "/v1/exceptions")
    x = body["exceptions"][0]
    check(x["terminal"] == "term-a" and x["ledger"] == "USB-0001" and x["purpose"] == "選挙事務のデータ受け渡し",
          "the exception stored: %s" % x)
    b.screenshot(os.path.join(outdir, "fleet-requests.png"))
    # the private stick: refused with a reason
    click(b, By.CSS_SELECTOR, '#req-pending tr[data-code="%s"] button.decide' % code2)
    b.wait("the decide panel again", lambda: visible(b, "decide") and b.text("#decide-code") == code2)
    b.driver.find_element(By.ID, "refuse-reason").send_keys("私物の USB メモリは使用できません")
    click(b, By.ID, "refuse-submit")
    b.wait("refused", lambda: visible(b, "decide-done") and "却下しました" in b.text("#decide-done"))
    b.wait("no pending", lambda: visible(b, "req-none"))
    row = b.text('#req-decided tr[data-code="%s"]' % code2)
    check("却下" in row and "私物の USB メモリ" in row, "the refusal listed: " + row)
    st, body, _ = call(c, "GET", "/v1/requests?state=refused")
    check([r["code"] for r in body["requests"]] == [code2], "refused in the store: %s" % body)

    # ---- the exception listed, revoked after a confirmation ----
    b.js("location.hash = '#/exceptions'")
    sel = '#exc-table tr[data-id="%s"]' % x["id"]
    b.wait_css(sel)
    row = b.text(sel)
    check("有効" in row and "0781:5581 4C530001" in row and "term-a" in row and "USB-0001" in row
          and "選挙事務" in row and frm in row and until in row, "the exception row: " + row)
    click(b, By.CSS_SELECTOR, sel + " button.revoke")
    b.wait("the confirmation", lambda: b.js("return !document.querySelector(arguments[0] + ' .confirm').hidden", sel))
    st, body, _ = call(c, "GET", "/v1/exceptions?state=active")
    check(len(body["exceptions"]) == 1, "not revoked before the confirmation")
    b.driver.find_element(By.CSS_SELECTOR, sel + " input.revoke-reason").send_keys("返却済み")
    click(b, By.CSS_SELECTOR, sel + " button.revoke-yes")
    b.wait("revoked", lambda: visible(b, "exc-done") and "取消済み" in (b.text(sel) or ""))
    st, body, _ = call(c, "GET", "/v1/exceptions?state=revoked")
    check(len(body["exceptions"]) == 1 and body["exceptions"][0]["revoke_reason"] == "返却済み", "revoked: %s" % body)
    b.screenshot(os.path.join(outdir, "fleet-exceptions.png"))

    # ---- groups (read-only) ----
    b.js("location.hash = '#/groups'")
    b.wait_css('#group-list .group[data-group="fukushi"]')
    g = b.text('#group-list .group[data-group="fukushi"]')
    check("term-a" in g and "90" in g and "mass_storage" in g, "the group: " + g)
    b.screenshot(os.path.join(outdir, "fleet-groups.png"))
    # English too
    click(b, By.ID, "lang")
    b.wait("English", lambda: "Bundle version" in b.text('#group-list .group[data-group="fukushi"]'))
    click(b, By.ID, "lang")

    # ---- central TOTP (read-only) and the double use on the terminals' list ----
    b.js("location.hash = '#/totp'")
    sel = '#totp-table tr[data-user="clerk1"]'
    b.wait("the enrollment with its double use",
           lambda: "fukushi" in (b.text(sel) or "") and b.js(
               "return document.querySelector(arguments[0] + ' td.num.warn')?.textContent", sel) == "1")
    row = b.text(sel)
    # enrolled but no code verified yet: pending, on no terminal (docs/fleet.md, "Verification")
    check("確認待ち" in row and "clerk1" in row, "the TOTP row: " + row)
    check(b.text("#totpview h2") == "集中管理の TOTP 登録（閲覧のみ）", "the TOTP view's title")
    # the groups' load that the language switch started ended on another view: not shown there
    check(not visible(b, "groupsview"), "the groups view stays hidden on the TOTP view")
    b.screenshot(os.path.join(outdir, "fleet-totp.png"))
    click(b, By.ID, "lang")
    b.wait("English", lambda: "pending" in (b.text(sel) or ""))
    check(b.text("#totpview h2") == "Central TOTP enrollments (read-only)", "the title in English")
    click(b, By.ID, "lang")
    b.js("location.hash = '#/terminals?status=problem'")
    b.wait_css('#terminals tbody tr[data-terminal="term-b"]')
    for name in ("term-a", "term-b"):
        r = b.text('#terminals tbody tr[data-terminal="%s"]' % name)
        check("確認コードの二重使用" in r and "同じ確認コードが2台で使われました" in r and "失効" in r,
              "the double use on %s: %s" % (name, r))
    b.screenshot(os.path.join(outdir, "fleet-totp-problem.png"))

    b.collect_logs()
    check(not b.problems or all(("400" in p or "401" in p) for p in b.problems),
          "no console errors besides the refused requests: " + "; ".join(b.problems))


def main():
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    chromedriver = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
    missing = [what for what, ok in (
        ("chromium (" + chromium + ")", os.access(chromium, os.X_OK)),
        ("chromium-driver (" + chromedriver + ")", os.access(chromedriver, os.X_OK)),
        ("python3-selenium", dash.webdriver is not None)) if not ok]
    if missing:
        print("skip: missing " + ", ".join(missing) + " (scripts/setup-deps.sh installs them)")
        return 77
    outdir = os.environ.get("ARTEFACT_DIR", HERE)
    os.makedirs(outdir, exist_ok=True)
    with TestDir("browser-fleet") as d:
        pki = PKI(d)
        c = None
        profile = tempfile.mkdtemp(prefix="mg-chromium-")
        b = None
        try:
            c, code2 = setup_fleet(d, pki)
            b = Browser(chromium, chromedriver, profile)
            drive(b, c, d, outdir, code2)
            print("ok; screenshots in", outdir)
        except Exception as e:
            print("FAIL: %s: %s" % (type(e).__name__, e))
            traceback.print_exc(file=sys.stdout)
            if c is not None:
                print("collector log:\n" + c.logtext())
            return 1
        finally:
            if b is not None:
                b.close()
            if c is not None:
                c.stop()
            shutil.rmtree(profile, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
