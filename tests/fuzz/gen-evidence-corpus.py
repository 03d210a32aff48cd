#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Writes the seed corpus of fuzz-evidence (deterministically but for the signature's key: the
# fixed root test seed of fuzz-bundle-keys.h): python3 gen-evidence-corpus.py corpus/evidence
import hashlib
import json
import os
import subprocess
import sys
import tempfile

SEED = b"mynaguard-fuzz-root-key-not-real"
SECTIONS = ["header", "status", "failure", "review", "policy", "chain_head"]


def line(o):
    return (json.dumps(o, separators=(",", ":"), sort_keys=True, ensure_ascii=False) + "\n").encode()


def sign(msg):
    with tempfile.TemporaryDirectory() as d:
        der = bytes.fromhex("302e020100300506032b657004220420") + SEED
        key, m = os.path.join(d, "k.der"), os.path.join(d, "m")
        open(key, "wb").write(der)
        open(m, "wb").write(msg)
        sig = subprocess.run(["openssl", "pkeyutl", "-sign", "-keyform", "DER", "-inkey", key,
                              "-rawin", "-in", m], check=True, capture_output=True).stdout
        pub = subprocess.run(["openssl", "pkey", "-inform", "DER", "-in", key, "-pubout",
                              "-outform", "DER"], check=True, capture_output=True).stdout[-32:]
    return sig, pub


def bundle(records):
    _, pub = sign(b"x")
    kid = hashlib.sha256(pub).hexdigest()[:16]
    recs = [dict(type="header", format="mynaguard-evidence", version=1, key_id=kid,
                 **{"from": "2026-11-01", "to": "2026-11-30"}, clauses=["2-6-3-a"],
                 generated_at="2026-12-01T00:00:00.000Z", timezone="+09:00")] + records
    body = b"".join(line(r) for r in recs)
    secs = {}
    for s in SECTIONS:
        b = b"".join(line(r) for r in recs if r["type"] == s)
        secs[s] = {"count": sum(1 for r in recs if r["type"] == s),
                   "sha256": hashlib.sha256(b).hexdigest()}
    m = line({"type": "manifest", "lines": len(recs), "bytes": len(body),
              "sha256": hashlib.sha256(body).hexdigest(), "sections": secs})[:-1]
    sig, _ = sign(b"mynaguard-evidence-v1\0" + m)
    return body + m + b"\n" + line({"alg": "ed25519", "key_id": kid, "type": "signature",
                                    "value": sig.hex()})


def main():
    out = sys.argv[1]
    full = bundle([
        {"type": "status", "terminal": "term-a", "day": "2026-11-20", "check": "mfa.pam_stack",
         "clause": ["2-6-3-a"], "status": "fail", "reported": True},
        {"type": "failure", "terminal": "term-a", "seq": 14, "ts": "2026-11-20T00:00:00.000Z",
         "kind": "compliance", "check": "mfa.pam_stack", "status": "fail",
         "clause": ["2-6-3-a"], "detail": "x", "chain": "ab" * 32},
        {"type": "review", "period": "2026-11", "reviewer": "admin", "items": 7,
         "items_sha256": "cd" * 32, "comment": "全件確認", "seq": 3,
         "ts": "2026-12-01T01:00:00.000Z", "chain": "EF" * 32},
        {"type": "policy", "terminal": "term-a", "policy_hash": "sha256:" + "00" * 32,
         "first": "2026-11-02T00:00:00.000Z", "last": "2026-11-20T00:00:00.000Z",
         "snapshots": 2},
        {"type": "chain_head", "terminal": "term-a", "max_seq": 16, "head": "11" * 32,
         "anchored": False},
    ])
    seeds = {
        "ok-full.jsonl": full,
        "ok-header-only.jsonl": bundle([]),
        "bad-byte.jsonl": full.replace(b'"status":"fail"', b'"status":"fxil"', 1),
        "bad-cut.jsonl": full[:-30],
        "bad-no-signature.jsonl": full[:full.rindex(b"{\"alg\"")],
        "empty": b"",
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
