"""Platform hash export: `export_hashes` versus the obvious per-row script, same output.

    python -m bench.platform_export            # 200,000 rows, email + phone, meta and uid2
    python -m bench.platform_export --quick    # 20,000 rows

Baseline: what a data team writes first: csv.DictReader, then per row `platform_hash` (the
same normalization and hashing) in a try/except, then csv.writer. cleanroom: `export_hashes`
(column-at-a-time normalization, SHA-256 in DuckDB). The two output files must be equal as
multisets of rows. A second table compares the hashing step alone: DuckDB `sha256` over the
column, hashlib over the distinct values, hashlib per row. Medians of --runs runs; the
machine is shared, so numbers are noisy.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import random
import tempfile
from collections import Counter
from pathlib import Path

import pyarrow as pa

import normalize
from bench._common import median_seconds
from protocols import platform

_FIRST = ["jane", "raj", "maria", "li", "sam", "chris", "ana", "tom", "eve", "omar"]
_LAST = ["doe", "patel", "garcia", "wei", "ray", "smith", "lee", "khan", "novak", "silva"]
_DOMAINS = ["gmail.com", "example.com", "yahoo.com", "outlook.com", "GMail.com"]


def make_csv(path: Path, rows: int, seed: int = 11) -> None:
    """A CRM extract with messy emails and phones (case, spaces, dots, +tags, some invalid)."""
    rng = random.Random(seed)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["customer_id", "email", "phone"])
        for i in range(rows):
            person = rng.randrange(rows * 3 // 4 + 1)  # some repeat customers
            f, last = _FIRST[person % 10], _LAST[(person // 10) % 10]
            email = f"{f}.{last}{person}@{_DOMAINS[person % 5]}"
            if rng.random() < 0.3:
                email = email.title()
            if rng.random() < 0.1:
                email = f"  {email.replace('@', '+promo@')} "
            if rng.random() < 0.03:
                email = email.replace("@", " at ")
            digits = f"{200 + person % 700:03d}555{person % 10000:04d}"
            phone = rng.choice([f"({digits[:3]}) {digits[3:6]}-{digits[6:]}", f"+1{digits}",
                                f"{digits[:3]}.{digits[3:6]}.{digits[6:]}", ""])
            w.writerow([f"C{i}", email, phone])


def baseline(src: Path, out: Path, platform_name: str) -> None:
    """The obvious per-row script: read, normalize + hash each value, write."""
    headers = platform.upload_columns(platform_name)
    names = {c.kind: c.header for c in headers}
    with open(src, newline="", encoding="utf-8") as fh, \
            open(out, "w", newline="", encoding="utf-8") as oh:
        w = csv.writer(oh, lineterminator="\n")
        w.writerow([names["email"], names["phone"]])
        for row in csv.DictReader(fh):
            values, ok, present = [], True, False
            for kind in ("email", "phone"):
                raw = row[kind]
                if raw is None or not raw.strip():
                    values.append("")
                    continue
                try:
                    values.append(platform.platform_hash(kind, raw, platform_name))
                    present = True
                except normalize.InvalidIdentifier:
                    ok = False
                    break
            if ok and present:
                w.writerow(values)


def _rows(path: Path) -> Counter:
    with open(path, newline="", encoding="utf-8") as fh:
        return Counter(tuple(r) for r in csv.reader(fh))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="20,000 rows")
    args = ap.parse_args()
    rows = 20_000 if args.quick else args.rows
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        src = d / "crm.csv"
        make_csv(src, rows)
        print(f"rows: {rows:,}, runs: {args.runs} (medians)")
        print(f"{'platform':<9} {'baseline s':>11} {'cleanroom s':>12} {'speed-up':>9}  equal")
        for name in ("meta", "uid2"):
            fast_out, slow_out = d / f"{name}_fast.csv", d / f"{name}_slow.csv"
            ids = {"email": "email", "phone": "phone"}
            t_fast = median_seconds(lambda n=name, o=fast_out, i=ids: platform.export_hashes(
                src, o, platform=n, ids=i), args.runs)
            t_slow = median_seconds(lambda n=name, o=slow_out: baseline(src, o, n), args.runs)
            equal = _rows(fast_out) == _rows(slow_out)
            print(f"{name:<9} {t_slow:>11.2f} {t_fast:>12.2f} {t_slow / t_fast:>8.1f}x  {equal}")
        values = [f"user{i % (rows // 2 + 1)}@example.com" for i in range(rows)]
        arr = pa.array(values)

        def distinct() -> list[str]:
            cache = {v: hashlib.sha256(v.encode()).hexdigest() for v in set(values)}
            return [cache[v] for v in values]

        t_duck = median_seconds(lambda: platform.hash_column(arr, "meta"), args.runs)
        t_uniq = median_seconds(distinct, args.runs)
        t_row = median_seconds(lambda: platform.hash_column_reference(values, "meta"), args.runs)
        print(f"\nhashing {rows:,} values (50% distinct), seconds:")
        print(f"  DuckDB sha256 column   {t_duck:.3f}")
        print(f"  hashlib over distinct  {t_uniq:.3f}  ({t_uniq / t_duck:.1f}x DuckDB)")
        print(f"  hashlib per row        {t_row:.3f}  ({t_row / t_duck:.1f}x DuckDB)")


if __name__ == "__main__":
    main()
