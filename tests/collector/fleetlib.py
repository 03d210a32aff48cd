# SPDX-License-Identifier: MIT
# Test helpers for the fleet channel (docs/fleet.md), independent of the C code under test:
# Ed25519 keys, signed base files and bundle checks made with the openssl CLI, plus a small
# dashboard client for the read-write fleet endpoints, and RFC 6238 codes for the TOTP tests.
import base64
import hashlib
import hmac
import http.client
import json
import os
import struct
import subprocess

from collectorlib import TOKEN, run


def totp(secret, t, digits=6, period=30):
    """The RFC 6238 code (HMAC-SHA1) of secret (bytes) at unix time t."""
    mac = hmac.new(secret, struct.pack(">Q", int(t) // period), hashlib.sha1).digest()
    o = mac[-1] & 15
    v = struct.unpack(">I", mac[o:o + 4])[0] & 0x7FFFFFFF
    return "%0*d" % (digits, v % 10 ** digits)


def keygen(d, name):
    """(private PEM path, public .pub path, raw public key bytes)"""
    pem = os.path.join(d, name + ".pem")
    run("openssl", "genpkey", "-algorithm", "ed25519", "-out", pem)
    os.chmod(pem, 0o600)
    der = subprocess.run(["openssl", "pkey", "-in", pem, "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    raw = der[-32:]
    pub = os.path.join(d, name + ".pub")
    with open(pub, "w") as f:
        f.write(base64.b64encode(raw).decode() + "\n")
    return pem, pub, raw


def sign(d, pem, message):
    msg = os.path.join(d, "msg.bin")
    with open(msg, "wb") as f:
        f.write(message)
    return subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", pem, "-rawin", "-in", msg],
                          check=True, capture_output=True).stdout


def verify(d, raw_pub, message, sig):
    """Verifies an Ed25519 signature with the openssl CLI."""
    der = bytes.fromhex("302a300506032b6570032100") + raw_pub
    pub = os.path.join(d, "verify.der")
    with open(pub, "wb") as f:
        f.write(der)
    msg, sg = os.path.join(d, "verify.msg"), os.path.join(d, "verify.sig")
    with open(msg, "wb") as f:
        f.write(message)
    with open(sg, "wb") as f:
        f.write(sig)
    r = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey",
                        pub, "-rawin", "-in", msg, "-sigfile", sg], capture_output=True)
    return r.returncode == 0


def base_text(group, version, grant_pub, terminals="term-*", classes="mass_storage",
              max_days=90):
    return f"""; base of {group}
[terminal]
description = 福祉課
contact = 情報政策課 内線 1234

[usb]
block = mass_storage, mtp

[fleet]
group = {group}
version = {version}
issued = 2026-12-01T09:00:00Z
terminals = {terminals}
grant_key = {base64.b64encode(grant_pub).decode()}
grant_classes = {classes}
grant_max_days = {max_days}
"""


def signed_base(d, root_pem, text):
    b = text.encode()
    sig = sign(d, root_pem, b"mynaguard-base-v1\0" + b)
    return b"MYNABAS1" + struct.pack(">I", len(b)) + b + sig


def decode_bundle(buf):
    """The fields of a MYNABND1 bundle (raises on bad framing)."""
    assert buf[:8] == b"MYNABND1", buf[:8]
    p = 8
    (blen,) = struct.unpack(">I", buf[p:p + 4])
    p += 4
    base = buf[p:p + blen]
    p += blen
    root_sig = buf[p:p + 64]
    p += 64
    (body_len,) = struct.unpack(">I", buf[p:p + 4])
    p += 4
    body = buf[p:p + body_len]
    p += body_len
    grant_sig = buf[p:p + 64]
    p += 64
    assert p == len(buf), "trailing bytes"
    version, issued = struct.unpack(">Qq", body[:16])
    q = 16
    (idlen,) = struct.unpack(">H", body[q:q + 2])
    q += 2
    tid = body[q:q + idlen].decode()
    q += idlen
    (jlen,) = struct.unpack(">I", body[q:q + 4])
    q += 4
    js = json.loads(body[q:q + jlen])
    assert q + jlen == len(body)
    return {"base": base, "root_sig": root_sig, "body": body, "grant_sig": grant_sig,
            "version": version, "issued": issued, "terminal": tid, "json": js}


def check_bundle(d, buf, root_pub, grant_pub):
    import hashlib
    b = decode_bundle(buf)
    assert verify(d, root_pub, b"mynaguard-base-v1\0" + b["base"], b["root_sig"]), "root sig"
    assert verify(d, grant_pub, b"mynaguard-body-v1\0" + hashlib.sha256(b["base"]).digest() +
                  b["body"], b["grant_sig"]), "grant sig"
    return b


def fleet_conf(grant_pem, root_pub):
    return f"\n[fleet]\ngrant_key = {grant_pem}\nroot_key = {root_pub}\n"


def call(c, method, path, body=None, token=TOKEN, raw=False, ctype=None):
    conn = http.client.HTTPSConnection(c.dashboard[0], c.dashboard[1], timeout=30,
                                       context=c.client_ctx())
    h = {}
    if token is not None:
        h["Authorization"] = "Bearer " + token
    if body is not None and not isinstance(body, (bytes, bytearray)):
        body = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    elif body is not None:
        h["Content-Type"] = ctype or "application/octet-stream"
    conn.request(method, path, body=body, headers=h)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    if raw:
        return resp.status, data, dict(resp.getheaders())
    try:
        return resp.status, json.loads(data), dict(resp.getheaders())
    except ValueError:
        return resp.status, data, dict(resp.getheaders())


def policy(c, cert, etag=None):
    conn = c.ingest_conn(cert)
    h = {}
    if etag:
        h["If-None-Match"] = etag
    conn.request("GET", "/v1/policy", headers=h)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data, dict(resp.getheaders())
