"""C3R encryption throughput: `encrypt_file` versus a direct port of C3R's per-value structure.

    python -m bench.c3r            # 100,000 rows
    python -m bench.c3r --quick    # 10,000 rows

Table: email and phone as fingerprint columns, name and notes as sealed columns (max and
fixed pad), tier in clear. Baseline: C3R's own structure ported to Python as it is written in
Java: the HKDF fingerprint key derived again for every value, a cipher object per value, one
row at a time through the csv module. cleanroom derives each column key once and works a
column at a time; the per-value HMAC and AES-GCM cannot be vectorized (every sealed value has
its own key and IV). Fingerprint columns of both outputs must be equal as multisets.
Medians of --runs runs; the machine is shared, so numbers are noisy.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import hmac
import json
import random
import secrets
import tempfile
from collections import Counter
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bench._common import median_seconds
from protocols import c3r

KEY = bytes(range(32))
CID = "3f1b8a52-6c0e-4d2a-9b7e-1a2b3c4d5e6f"
SCHEMA = {"headerRow": True, "columns": [
    {"sourceHeader": "email", "type": "fingerprint"},
    {"sourceHeader": "phone", "type": "fingerprint"},
    {"sourceHeader": "name", "type": "sealed", "pad": {"type": "max", "length": 8}},
    {"sourceHeader": "notes", "type": "sealed", "pad": {"type": "fixed", "length": 64}},
    {"sourceHeader": "tier", "type": "cleartext"},
]}


def make_csv(path: Path, rows: int) -> None:
    """A CRM extract with unique emails and phones (C3R's default refuses duplicates)."""
    rng = random.Random(5)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["email", "phone", "name", "notes", "tier"])
        for i in range(rows):
            w.writerow([f"user{i}@example.com", f"+1415{i:07d}", f"Customer {i}",
                        rng.choice(["", "VIP", "prefers aisle seat", "moved"]),
                        rng.choice(["gold", "silver", "bronze"])])


def baseline(src: Path, out: Path) -> None:
    """C3R's per-value structure: derive the HMAC key per value, one row at a time."""
    salt = CID.encode()
    root = HKDF(hashes.SHA256(), 32, salt, b"c3r-encryption-primary-aes-gcm-256").derive(KEY)
    with open(src, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    longest = max(len(r["name"].encode()) + 1 for r in rows)
    out_rows = []
    for r in rows:
        nonce = secrets.token_bytes(32)
        o = {}
        for col in ("email", "phone"):
            key = HKDF(hashes.SHA256(), 32, salt,
                       f"c3r-hmac-sha256-col-{col}_fingerprint".encode()).derive(KEY)
            mac = hmac.new(key, r[col].encode() + b"\x02", hashlib.sha256).digest()
            o[f"{col}_fingerprint"] = "02:hmac:" + __import__("base64").b64encode(mac).decode()
        for col, target in (("name", longest + 8), ("notes", 64)):
            enc = b"\x02" + r[col].encode() if r[col] else b"\x03"
            fill = target - len(enc)
            plain = enc + bytes(fill) + fill.to_bytes(2, "big")
            label = f"{col}_sealed"
            iv = hashlib.sha256(label.encode() + nonce).digest()[:12]
            ct = AESGCM(hashlib.sha256(root + nonce).digest()).encrypt(iv, plain, b"02:enc:")
            o[label] = "02:enc:" + __import__("base64").b64encode(nonce + iv + ct).decode()
        o["tier"] = r["tier"]
        out_rows.append((nonce, o))
    out_rows.sort(key=lambda p: p[0])
    with open(out, "w", newline="", encoding="utf-8") as oh:
        w = csv.DictWriter(oh, fieldnames=list(out_rows[0][1]))
        w.writeheader()
        w.writerows(o for _, o in out_rows)


def _fingerprints(path: Path) -> Counter:
    with open(path, newline="", encoding="utf-8") as fh:
        return Counter((r["email_fingerprint"], r["phone_fingerprint"])
                       for r in csv.DictReader(fh))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="10,000 rows")
    args = ap.parse_args()
    rows = 10_000 if args.quick else args.rows
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        src, fast, slow = d / "crm.csv", d / "fast.csv", d / "slow.csv"
        make_csv(src, rows)
        (d / "schema.json").write_text(json.dumps(SCHEMA))
        schema = c3r.Schema.from_path(d / "schema.json")
        settings = c3r.Settings(allow_cleartext=True, preserve_nulls=True)
        t_fast = median_seconds(lambda: c3r.encrypt_file(src, fast, schema=schema, secret=KEY,
                                                  collaboration_id=CID, settings=settings),
                         args.runs)
        t_slow = median_seconds(lambda: baseline(src, slow), args.runs)
        equal = _fingerprints(fast) == _fingerprints(slow)
        print(f"rows: {rows:,} (2 fingerprint + 2 sealed + 1 cleartext column), "
              f"runs: {args.runs} (medians)")
        print(f"baseline (C3R's per-value structure)  {t_slow:7.2f} s  "
              f"{rows / t_slow:9,.0f} rows/s")
        print(f"cleanroom encrypt_file                {t_fast:7.2f} s  "
              f"{rows / t_fast:9,.0f} rows/s  ({t_slow / t_fast:.1f}x)  "
              f"fingerprints equal: {equal}")


if __name__ == "__main__":
    main()
