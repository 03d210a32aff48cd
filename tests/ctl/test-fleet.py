#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# mynaguardctl fleet keygen -> sign-base -> show, checked against the openssl command line (the
# keys it writes, the signatures it makes, and a bundle framed here by hand as docs/fleet.md
# describes it), and every refusal: existing files, bad policies, bad keys, bad files.
import base64
import hashlib
import os
import struct
import subprocess
import sys
import tempfile

CTL = os.path.abspath(sys.argv[1])
failures = []


def check(cond, what, out=""):
    if cond:
        print(f"ok - {what}")
    else:
        print(f"FAIL - {what}\n--- output ---\n{out}\n--------------")
        failures.append(what)


def run(*args, cwd):
    p = subprocess.run([CTL, *args], cwd=cwd, capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def openssl(*args, cwd, data=None):
    return subprocess.run(["openssl", *args], cwd=cwd, input=data, capture_output=True,
                          check=True).stdout


def ed25519_pub(key, cwd):
    """The raw public key of a PEM private key, as openssl sees it."""
    der = openssl("pkey", "-in", key, "-pubout", "-outform", "DER", cwd=cwd)
    return der[-32:]


def sign(key, msg, cwd):
    with open(os.path.join(cwd, "msg"), "wb") as f:
        f.write(msg)
    return openssl("pkeyutl", "-sign", "-rawin", "-inkey", key, "-in", "msg", cwd=cwd)


def listing(d):
    return sorted(os.listdir(d))


def base_policy(grant_b64, extra=""):
    return ("[terminal]\ncontact = 情報政策課 内線 1234\n\n[usb]\nblock = mass_storage, mtp\n\n"
            "[fleet]\ngroup = fukushi\nversion = 7\nissued = 2026-12-01T09:00:00Z\n"
            f"terminals = fukushi-* kokuho-01\ngrant_key = {grant_b64}\n"
            f"grant_classes = mass_storage\ngrant_max_days = 90\n{extra}")


with tempfile.TemporaryDirectory() as d:
    # keygen: two files, the right modes, the key openssl reads, never overwritten.
    rc, out_root, err = run("fleet", "keygen", "--out", "root", cwd=d)
    check(rc == 0 and err == "", "keygen root", out_root + err)
    rc, out, err = run("fleet", "keygen", "--out", "grant", cwd=d)
    check(rc == 0, "keygen grant", out + err)
    check(os.stat(os.path.join(d, "root.key")).st_mode & 0o7777 == 0o600, "root.key is 0600")
    check(os.stat(os.path.join(d, "root.pub")).st_mode & 0o7777 == 0o644, "root.pub is 0644")
    root_pub = open(os.path.join(d, "root.pub")).read()
    check(len(root_pub) == 45 and root_pub.endswith("\n"), "root.pub is one base64 line",
          root_pub)
    check(base64.b64decode(root_pub) == ed25519_pub("root.key", d),
          "root.pub is the public key of root.key (openssl)")
    check(root_pub.strip() in out_root and "root.key" in out_root,
          "keygen prints the public key", out_root)
    before = open(os.path.join(d, "root.key"), "rb").read()
    rc, out, err = run("fleet", "keygen", "--out", "root", cwd=d)
    check(rc == 1 and "root.key exists: not overwritten" in err, "keygen refuses to overwrite",
          out + err)
    check(open(os.path.join(d, "root.key"), "rb").read() == before, "root.key unchanged")
    # Half a pair present: refused, nothing written.
    open(os.path.join(d, "half.pub"), "w").write("x\n")
    rc, out, err = run("fleet", "keygen", "--out", "half", cwd=d)
    check(rc == 1 and "half.pub exists" in err and not os.path.exists(os.path.join(d, "half.key")),
          "keygen refuses when the .pub exists", out + err)
    rc, out, err = run("fleet", "keygen", cwd=d)
    check(rc == 2 and "--out PREFIX is required" in err, "keygen without --out: usage", err)

    grant_b64 = open(os.path.join(d, "grant.pub")).read().strip()
    base_path = os.path.join(d, "base.conf")
    text = base_policy(grant_b64)
    open(base_path, "w").write(text)

    # sign-base: the file is MYNABAS1 || u32 len || text || Ed25519(root, context || text).
    rc, out, err = run("fleet", "sign-base", "--key", "root.key", "--out", "base.mgb",
                       "base.conf", cwd=d)
    check(rc == 0 and err == "", "sign-base", out + err)
    check("group fukushi, version 7" in out and root_pub.strip() in out,
          "sign-base says what it signed with which key", out)
    signed = open(os.path.join(d, "base.mgb"), "rb").read()
    raw = text.encode()
    check(signed[:8] == b"MYNABAS1" and struct.unpack(">I", signed[8:12])[0] == len(raw)
          and signed[12:12 + len(raw)] == raw and len(signed) == 12 + len(raw) + 64,
          "signed base framing")
    check(signed[12 + len(raw):] == sign("root.key", b"mynaguard-base-v1\0" + raw, d),
          "root signature equals openssl's over the documented message")
    check(os.stat(os.path.join(d, "base.mgb")).st_mode & 0o7777 == 0o644, "base.mgb is 0644")
    rc, out, err = run("fleet", "sign-base", "--key", "root.key", "base.conf", cwd=d)
    check(rc == 0 and open(os.path.join(d, "base.conf.signed"), "rb").read() == signed,
          "sign-base default output POLICY.signed (Ed25519 is deterministic)", out + err)

    # show a base: verified with the root key, refused with another.
    rc, out, err = run("fleet", "show", "--root-pub", "root.pub", "base.mgb", cwd=d)
    check(rc == 0 and "signed base policy" in out and
          "group fukushi, version 7, issued 2026-12-01T09:00:00Z" in out and
          "fukushi-* kokuho-01" in out and grant_b64 in out and
          "mass_storage (08), for at most 90 days" in out and "内線 1234" in out and
          "Root signature:  verifies" in out, "show base --root-pub", out + err)
    rc, out, err = run("fleet", "show", "--root-pub", "grant.pub", "base.mgb", cwd=d)
    check(rc == 1 and "Root signature:  DOES NOT VERIFY with grant.pub" in out,
          "show base with the wrong root key exits 1", out + err)
    rc, out, err = run("fleet", "show", "base.mgb", cwd=d)
    check(rc == 0 and "not checked" in out, "show without --root-pub", out + err)

    # A bundle framed here by hand, grant-signed with openssl: show reads and verifies it.
    exceptions = ('{"exceptions":[{"id":"EX-2026-0001","vendor":"0781","product":"5581",'
                  '"serial":"4C530001090515116423","hash":null,"class":"mass_storage",'
                  '"users":["tanaka"],"from":1764547200,"until":1765151999,'
                  '"purpose":"住民票の移送","approved_by":"sato","ledger":"MB-0012"}]}').encode()
    tid = b"fukushi-01"
    body = (struct.pack(">QqH", 12, 1764547200, len(tid)) + tid +
            struct.pack(">I", len(exceptions)) + exceptions)
    grant_sig = sign("grant.key", b"mynaguard-body-v1\0" + hashlib.sha256(raw).digest() + body, d)
    bundle = b"MYNABND1" + signed[8:] + struct.pack(">I", len(body)) + body + grant_sig
    open(os.path.join(d, "b.bin"), "wb").write(bundle)
    rc, out, err = run("fleet", "show", "--root-pub", "root.pub", "b.bin", cwd=d)
    check(rc == 0 and "bundle" in out and "Terminal:     fukushi-01" in out and
          "Version:      12, issued 2025-12-01T00:00:00Z" in out and "Exceptions:   1" in out
          and "EX-2026-0001: 0781:5581 serial=4C530001090515116423 class mass_storage" in out
          and "users: tanaka; approved by sato; ledger MB-0012" in out and
          "purpose: 住民票の移送" in out and "Root signature:  verifies" in out and
          "Grant signature: verifies" in out, "show a hand-framed bundle", out + err)
    # The grant signed by a key the base does not name.
    bad = bundle[:-64] + sign("root.key", b"mynaguard-body-v1\0" +
                              hashlib.sha256(raw).digest() + body, d)
    open(os.path.join(d, "b2.bin"), "wb").write(bad)
    rc, out, err = run("fleet", "show", "--root-pub", "root.pub", "b2.bin", cwd=d)
    check(rc == 1 and "Root signature:  verifies" in out and
          "Grant signature: DOES NOT VERIFY" in out, "show: grant by another key", out + err)
    # A trailing byte, a truncation, junk: refused with the reason.
    for name, data, want in [("t.bin", bundle + b"\0", "1 trailing bytes after the grant signature"),
                             ("s.bin", bundle[:-1], "truncated in the grant signature"),
                             ("j.bin", b"hello", "not a bundle (MYNABND1) or a signed base"),
                             ("e.bin", b"", "not a bundle")]:
        open(os.path.join(d, name), "wb").write(data)
        rc, out, err = run("fleet", "show", name, cwd=d)
        check(rc == 1 and want in err and out == "", f"show refuses {name}: {want}", out + err)
    rc, out, err = run("fleet", "show", "--root-pub", "base.conf", "base.mgb", cwd=d)
    check(rc == 1 and "not a public key" in err, "show: --root-pub that is no key", out + err)
    rc, out, err = run("fleet", "show", "missing.bin", cwd=d)
    check(rc == 1 and "missing.bin: No such file or directory" in err, "show: missing file", err)

    # sign-base refusals: every error FILE:LINE: msg, nothing written.
    broken = ("[terminal]\nid = t1\n[fleet]\ngroup = a/b\nversion = 7\n"
              "issued = 2026-12-01\nterminals = x\ngrant_key = " + grant_b64 + "\n")
    open(os.path.join(d, "broken.conf"), "w").write(broken)
    existing = b"old contents"
    open(os.path.join(d, "out.mgb"), "wb").write(existing)
    files = listing(d)
    rc, out, err = run("fleet", "sign-base", "--key", "root.key", "--out", "out.mgb",
                       "broken.conf", cwd=d)
    want = ("broken.conf:4: [fleet] group: bad value \"a/b\": expected 1 to 64 letters, digits, "
            "'.', '_' or '-'\n"
            "broken.conf:6: [fleet] issued: bad value \"2026-12-01\": expected a UTC time like "
            "2026-12-01T09:00:00Z\n"
            "broken.conf:2: [terminal] id: a base policy names no terminal: each terminal's id "
            "is put in when it installs the base\n")
    check(rc == 1 and err == want and out == "", "sign-base: every error with its line", err)
    check(listing(d) == files and open(os.path.join(d, "out.mgb"), "rb").read() == existing,
          "sign-base: nothing written on errors")
    open(os.path.join(d, "plain.conf"), "w").write("[terminal]\nid = t1\n")
    rc, out, err = run("fleet", "sign-base", "--key", "root.key", "plain.conf", cwd=d)
    check(rc == 1 and "plain.conf:2: [terminal] id: a base policy names no terminal" in err and
          "plain.conf: [fleet] is missing" in err and
          not os.path.exists(os.path.join(d, "plain.conf.signed")),
          "sign-base: a terminal's policy is no base", err)
    # Bad keys.
    os.chmod(os.path.join(d, "grant.key"), 0o644)
    rc, out, err = run("fleet", "sign-base", "--key", "grant.key", "--out", "x.mgb", "base.conf",
                       cwd=d)
    check(rc == 1 and "readable by its owner only" in err and
          not os.path.exists(os.path.join(d, "x.mgb")), "sign-base: key open to others", err)
    rc, out, err = run("fleet", "sign-base", "--key", "root.pub", "--out", "x.mgb", "base.conf",
                       cwd=d)
    check(rc == 1 and not os.path.exists(os.path.join(d, "x.mgb")),
          "sign-base: a .pub is not a key", err)
    os.chmod(os.path.join(d, "root.pub"), 0o600)
    rc, out, err = run("fleet", "sign-base", "--key", "root.pub", "--out", "x.mgb", "base.conf",
                       cwd=d)
    check(rc == 1 and "not an Ed25519 private key" in err and
          not os.path.exists(os.path.join(d, "x.mgb")), "sign-base: junk key", err)
    rc, out, err = run("fleet", "sign-base", "--key", "none.key", "base.conf", cwd=d)
    check(rc == 1 and "none.key: No such file or directory" in err, "sign-base: missing key", err)
    rc, out, err = run("fleet", "sign-base", "base.conf", cwd=d)
    check(rc == 2, "sign-base without --key: usage", err)

    # Usage errors and help.
    rc, out, err = run("fleet", "frobnicate", cwd=d)
    check(rc == 2 and "unknown command 'frobnicate'" in err, "unknown fleet command", err)
    rc, out, err = run("fleet", cwd=d)
    check(rc == 2, "fleet alone: usage", err)
    rc, out, err = run("fleet", "--help", cwd=d)
    check(rc == 0 and "sign-base" in out, "fleet --help", out + err)
    rc, out, err = run("fleet", "show", "a", "b", cwd=d)
    check(rc == 2, "show with two files: usage", err)

if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("fleet: all checks passed")
