"""Benchmark: `cleanroom tokenize` versus the per-row script a user would write.

    python -m bench.tokenize            # 1,000,000 rows
    python -m bench.tokenize --quick    # 100,000 rows

A seeded CRM extract (customer id, email, phone, first and last name, date of birth, US postal
code, segment, spend) with realistic mess: case, padding, several phone and date formats,
accented and punctuated names, international numbers, blanks and junk. Four tokens per row:
email, phone, name_dob (first+last+dob) and name_zip (first+last+postal code).

Ours: the `cleanroom tokenize` command in a fresh process (interpreter start included), timed
end to end, median of --runs runs; peak RSS is the largest single process (main or worker).
Baseline: pandas `read_csv` then `Series.apply` with email-validator, phonenumbers, `datetime`
and `hmac`, written to the strict profile's rules. On more rows than --baseline-rows, the
baseline runs on the first --baseline-rows rows and its time is extrapolated linearly (the
output says so); tokens are compared row by row (joined on customer id) on every row the
baseline ran, and the run fails if any differs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd
import phonenumbers
import pyarrow.parquet as pq
from email_validator import EmailNotValidError, validate_email

import protocols

FIRST = ["James", "mary", "JOHN", "Patricia", "robert", "Jennifer", "Michael", "linda", "David",
         "Elizabeth", "José", "Zoë", "Siobhán", "Wei", "Priya", "Ahmed", "O'Neil", "Anne-Marie",
         "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
         "Charles", "Karen", "Chris", "Nancy", "Daniel", "Lisa", "Matthew", "Betty", "Mark"]
LAST = ["Smith", "johnson", "WILLIAMS", "Brown", "Jones", "Garcia", "Miller", "Davis", "Müller",
        "Nguyen", "Kim", "Patel", "O'Brien", "López", "Taylor", "Anderson", "Thomas", "Jackson",
        "White", "Harris", "Martin", "Thompson", "Martinez", "Robinson", "Clark", "Lewis",
        "Lee", "Walker", "Hall", "Allen", "Young", "King", "Wright", "Scott", "Smith-Jones"]
DOMAINS = ["gmail.com"] * 6 + ["yahoo.com"] * 3 + ["hotmail.com", "outlook.com", "aol.com",
           "icloud.com", "comcast.net", "GMail.com", "acme-corp.com", "example.co.uk", "web.de"]
US_FORMATS = ["({a}) {b}-{c}", "{a}-{b}-{c}", "{a}.{b}.{c}", "{a}{b}{c}", "+1 {a} {b} {c}",
              "1-{a}-{b}-{c}", "+1 ({a}) {b}-{c}", " {a} {b} {c} "]
INTL = ["+44 7911 {b}{c3}", "+33 6 12 {c2} {c2}", "+49 151 {b}{c}", "+61 412 {b} {c3}"]
DATE_FORMATS = ["%Y-%m-%d"] * 6 + ["%m/%d/%Y"] * 3 + ["%Y%m%d"]
SEGMENTS = ["gold", "silver", "bronze", "new"]
CID = "5c1e8a42-6b1d-4f7e-9a3c-2d4b6f8e0a17"
NAME_DOB = ("first_name", "last_name", "dob")
NAME_ZIP = ("first_name", "last_name", "postal_code")


def make_rows(n: int, seed: int = 42) -> pd.DataFrame:
    """n rows of a messy, realistic CRM extract (deterministic in `seed`)."""
    rng = np.random.default_rng(seed)
    first = rng.choice(FIRST, n)
    last = rng.choice(LAST, n)
    num = rng.integers(1, 9999, n)
    dom = rng.choice(DOMAINS, n)
    sep = rng.choice([".", "_", ""], n)
    # addresses are ASCII in practice (José writes jose@...); a few keep their accents
    uni = rng.random(n) < 0.005
    emails = [f"{f}{s}{la}{k}@{d}".replace("'", "").replace(" ", "")
              for f, s, la, k, d in zip(first, sep, last, num, dom, strict=True)]
    emails = [e if u else _ascii(e) for e, u in zip(emails, uni, strict=True)]
    pad = rng.random(n)
    emails = [f"  {e.upper()} " if p < 0.05 else e for e, p in zip(emails, pad, strict=True)]
    area = rng.integers(201, 990, n)
    exch = rng.integers(200, 999, n)
    line = rng.integers(1000, 9999, n)
    fmt = rng.integers(0, len(US_FORMATS), n)
    intl = rng.random(n) < 0.08
    phones = [INTL[f % len(INTL)].format(b=e, c=li, c3=li % 1000, c2=li % 100 + 10) if i
              else US_FORMATS[f].format(a=a, b=e, c=li)
              for a, e, li, f, i in zip(area, exch, line, fmt, intl, strict=True)]
    days = rng.integers(0, (dt.date(2005, 12, 31) - dt.date(1940, 1, 1)).days, n)
    dfmt = rng.choice(DATE_FORMATS, n)
    base = dt.date(1940, 1, 1)
    dobs = [(base + dt.timedelta(days=int(d))).strftime(f) for d, f in zip(days, dfmt, strict=True)]
    zips = [f"{z:05d}" if r > 0.1 else f"{z:05d}-{z % 9000 + 1000}"
            for z, r in zip(rng.integers(1001, 99950, n), rng.random(n), strict=True)]
    df = pd.DataFrame({
        "customer_id": [f"C{i:08d}" for i in range(n)],
        "email": emails, "phone": phones, "first_name": first, "last_name": last,
        "dob": dobs, "postal_code": zips,
        "segment": rng.choice(SEGMENTS, n), "spend": np.round(rng.gamma(2, 60, n), 2),
    })
    for col, missing, junk in (("email", 0.04, "john.smith@"), ("phone", 0.06, "12345"),
                               ("dob", 0.05, "13/45/1990"), ("postal_code", 0.03, "ABCDE"),
                               ("first_name", 0.01, "!!")):
        r = rng.random(n)
        df.loc[r < missing, col] = ""
        df.loc[(r >= missing) & (r < missing + 0.01), col] = junk
    return df


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


# ---- the baseline a user would write -------------------------------------------------------

def baseline(csv_path: Path, secret: protocols.CollaborationSecret, rows: int) -> pd.DataFrame:
    """pandas + email-validator + phonenumbers + hmac, one value at a time."""
    df = pd.read_csv(csv_path, dtype=str, keep_default_na=False, nrows=rows)
    keys = {k: protocols.derive_token_key(secret, k) for k in ("email", "phone")}
    keys["name_dob"] = protocols.derive_match_key(secret, "name_dob", NAME_DOB)
    keys["name_zip"] = protocols.derive_match_key(secret, "name_zip", NAME_ZIP)

    def token(key: bytes, value: str | None) -> bytes | None:
        if not isinstance(value, str):  # None, or NaN after pandas turned None into a float
            return None
        return hmac.new(key, value.encode(), hashlib.sha256).digest()

    def email(v: str) -> str | None:
        try:
            info = validate_email(unicodedata.normalize("NFC", v.strip()),
                                  check_deliverability=False)
        except EmailNotValidError:
            return None
        return f"{info.local_part.lower()}@{(info.ascii_domain or info.domain).lower()}"

    def phone(v: str) -> str | None:
        try:
            num = phonenumbers.parse(v, "US")
        except phonenumbers.NumberParseException:
            return None
        if phonenumbers.is_possible_number_with_reason(num) != \
                phonenumbers.ValidationResult.IS_POSSIBLE:
            return None
        return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)

    def name(v: str) -> str | None:
        text = re.sub(r"[^\w\s]", "", unicodedata.normalize("NFC", v).lower())
        return " ".join(text.split()) or None

    def dob(v: str) -> str | None:
        for fmt in ("%Y-%m-%d", "%m/%d/%Y", "%Y%m%d"):
            try:
                day = dt.datetime.strptime(v.strip(), fmt).date()
            except ValueError:
                continue
            return day.isoformat() if dt.date(1900, 1, 1) <= day <= dt.date.today() else None
        return None

    def zip5(v: str) -> str | None:
        m = re.fullmatch(r"(\d{5})(?:-\d{4})?", v.strip())
        return m.group(1) if m else None

    out = pd.DataFrame({"customer_id": df["customer_id"]})
    out["email"] = df["email"].apply(email).apply(lambda v: token(keys["email"], v))
    out["phone"] = df["phone"].apply(phone).apply(lambda v: token(keys["phone"], v))
    first, last = df["first_name"].apply(name), df["last_name"].apply(name)
    for col, third in (("name_dob", df["dob"].apply(dob)),
                       ("name_zip", df["postal_code"].apply(zip5))):
        joined = first.str.cat([last, third], sep=protocols.MATCH_SEPARATOR, na_rep=None)
        out[col] = joined.apply(lambda v, c=col: token(keys[c], v))
    return out


# ---- ours: the CLI a user runs ------------------------------------------------------------

def ours(csv_path: Path, secret_path: Path, out: Path) -> tuple[float, float, int]:
    """Run `cleanroom tokenize` in a fresh process: wall seconds, CPU seconds (the process and
    its workers) and peak RSS (KiB) of the largest process."""
    cmd = [sys.executable, "-c", "from cleanroom.cli import main; main()", "tokenize",
           str(csv_path), "--party", "brand", "--secret-file", str(secret_path),
           "--id", "email=email", "--id", "phone=phone",
           "--match-key", "name_dob=first_name:first_name+last_name:last_name+dob:dob",
           "--match-key", "name_zip=first_name:first_name+last_name:last_name"
           "+postal_code:postal_code", "--attr", "customer_id", "--attr", "segment",
           "--attr", "spend", "--out", str(out), "--json"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)  # this run's own rusage (it and its workers)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"cleanroom tokenize failed with status {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 rows instead of 1,000,000")
    parser.add_argument("--rows", type=int, help="number of rows (overrides --quick)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of ours (median)")
    parser.add_argument("--baseline-rows", type=int, default=100_000,
                        help="rows the baseline runs on (extrapolated when fewer than --rows)")
    args = parser.parse_args(argv)
    n = args.rows or (100_000 if args.quick else 1_000_000)
    with tempfile.TemporaryDirectory(prefix="bench-tokenize-") as tmp:
        work = Path(tmp)
        csv_path = work / "crm.csv"
        t0 = time.perf_counter()
        # generated in a child process, so this one stays small while it starts the runs
        subprocess.run([sys.executable, "-c", "import sys; from bench.tokenize import make_rows;"
                        " make_rows(int(sys.argv[1])).to_csv(sys.argv[2], index=False)",
                        str(n), str(csv_path)], check=True)
        print(f"generated {n:,} rows ({csv_path.stat().st_size / 1e6:.0f} MB CSV) in "
              f"{time.perf_counter() - t0:.1f} s; {os.cpu_count()} cores")
        secret = protocols.new_secret(CID)
        secret_path = work / "collab.secret"
        protocols.write_secret(secret, secret_path)
        out = work / "tokens.parquet"
        times, cpus, peak = [], [], 0
        for i in range(args.runs):
            wall, cpu, rss = ours(csv_path, secret_path, out)
            times.append(wall)
            cpus.append(cpu)
            peak = max(peak, rss)
            print(f"  ours run {i + 1}: {wall:.2f} s wall, {cpu:.2f} s CPU")
        ours_s, ours_cpu = statistics.median(times), statistics.median(cpus)
        b_rows = min(n, args.baseline_rows)
        b_times, b_cpus = [], []
        for _ in range(1 if n > b_rows else min(args.runs, 2)):
            t0, c0 = time.perf_counter(), time.process_time()
            base = baseline(csv_path, secret, b_rows)
            b_times.append(time.perf_counter() - t0)
            b_cpus.append(time.process_time() - c0)
        base_s = statistics.median(b_times) * n / b_rows
        base_cpu = statistics.median(b_cpus) * n / b_rows
        table = pq.read_table(out).to_pandas().set_index("customer_id")
        merged = base.set_index("customer_id").join(table.add_suffix("_ours"), how="left")
        bad = {c: int((merged[c] != merged[c + "_ours"]).sum()
                      - (merged[c].isna() & merged[c + "_ours"].isna()).sum())
               for c in ("email", "phone", "name_dob", "name_zip")}
        valid = {c: int(merged[c].notna().sum()) for c in bad}
        print(f"tokens compared on {b_rows:,} rows: differing {bad}; non-null {valid}")
        if any(bad.values()):
            raise SystemExit("FAIL: tokens differ from the baseline")
        note = (f" (baseline timed on {b_rows:,} rows, extrapolated x{n / b_rows:g})"
                if n > b_rows else "")
        load = os.getloadavg()[0]
        print(f"ours (cleanroom tokenize, 4 tokens, median of {args.runs}): {ours_s:.2f} s wall, "
              f"{ours_cpu:.2f} s CPU [{n / ours_s:,.0f} rows/s], peak RSS {peak / 1024:.0f} MiB "
              "(largest single process)")
        print(f"baseline (pandas apply + email-validator + phonenumbers + hmac): "
              f"{base_s:.1f} s wall, {base_cpu:.1f} s CPU{note}")
        print(f"speed-up: {base_s / ours_s:.1f}x wall, {base_cpu / ours_cpu:.1f}x CPU   "
              f"(target >= 10x, <= 10 s for 1M rows; load average now {load:.1f} on "
              f"{os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
