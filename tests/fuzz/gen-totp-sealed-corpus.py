#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Writes the seeds of fuzz-totp-sealed (tests/fuzz/corpus/totp-sealed) with python3-cryptography:
# an implementation of the sealing in docs/fleet.md independent of bundle/totp.c. A fixed
# ephemeral key and nonce, so the output is the same every time.
# Usage: gen-totp-sealed-corpus.py DIR
import os
import struct
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

CTX = b"mynaguard-totp-seal-v1"
raw = Encoding.Raw, PublicFormat.Raw
term = X25519PrivateKey.from_private_bytes(b"\x11" * 32)
eph = X25519PrivateKey.from_private_bytes(b"\x22" * 32)
term_pub, eph_pub = term.public_key().public_bytes(*raw), eph.public_key().public_bytes(*raw)
key = HKDF(hashes.SHA256(), 32, eph_pub + term_pub, CTX).derive(eph.exchange(term.public_key()))
# u8 1, digits, u16 period, i64 enrolled, u8 len, secret (a test secret, not a real one)
plain = struct.pack(">BBHqB", 1, 6, 30, 1764900000, 20) + bytes(range(1, 21))
aad = CTX + b"\0fuzz-terminal\0clerk1\0" + struct.pack(">Q", 1)
nonce = b"\x33" * 12
sealed = b"\x01" + eph_pub + nonce + AESGCM(key).encrypt(nonce, plain, aad)
d = sys.argv[1]
for name, data in (("valid-clerk1", sealed), ("plaintext", plain),
                   ("bad-tag", sealed[:-1] + bytes([sealed[-1] ^ 1])),
                   ("short", sealed[:40]), ("version-2", b"\x02" + sealed[1:])):
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
