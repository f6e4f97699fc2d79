"""Benchmark: normalize_column (email + phone) versus the per-row script a user would write.

    python -m bench.normalize            # 1,000,000 rows
    python -m bench.normalize --quick    # 100,000 rows

Rows are generated deterministically (seeded) with realistic mess: case, padding, gmail
aliases, accented and IDN addresses, placeholders, blanks, repeated customers, US phones in a
dozen formats, some international numbers and junk. The baseline is `Series.apply` with
email-validator and phonenumbers, written to the strict profile's rules so its output can be
checked equal to ours. On the full size the baseline is timed on a random sample and
extrapolated (the output says so); outputs are compared on every row the baseline ran.
"""

from __future__ import annotations

import argparse
import os
import random
import time
import unicodedata

import pandas as pd
import phonenumbers
from email_validator import EmailNotValidError, validate_email

import normalize
from bench._common import timed

FIRST = ["james", "mary", "John", "PATRICIA", "robert", "Jennifer", "michael", "linda",
         "david", "elizabeth", "José", "zoë", "Siobhán", "wei", "priya", "ahmed", "o'neil",
         "anne-marie"]  # fmt: skip
LAST = ["smith", "Johnson", "WILLIAMS", "brown", "jones", "garcia", "miller", "davis", "müller",
        "nguyen", "kim", "patel", "o'brien", "lópez", "taylor", "anderson"]  # fmt: skip
DOMAINS = ["gmail.com"] * 8 + ["yahoo.com"] * 3 + ["hotmail.com", "outlook.com", "aol.com",
           "icloud.com", "comcast.net", "GMail.com", "googlemail.com", "acme-corp.com",
           "example.co.uk", "web.de", "orange.fr"]  # fmt: skip
RARE_DOMAINS = ["bücher.de", "mail.test", "xn--bcher-kva.de", "localhost", "gmail", "gmial.con"]
US_FORMATS = ["({a}) {b}-{c}", "{a}-{b}-{c}", "{a}.{b}.{c}", "{a}{b}{c}", "+1 {a} {b} {c}",
              "1-{a}-{b}-{c}", "+1 ({a}) {b}-{c}", "+1{a}{b}{c}", " {a} {b} {c} ",
              "{a} {b}{c}", "({a}){b}-{c}", "{a}-{b}-{c} x{x}"]  # fmt: skip
INTL_FORMATS = ["+44 20 {b}{x}{x}", "+44 7{x}{b} {c}", "+33 6 {x} {x} {x} {x}", "+49 30 {b}{c}",
                "+91 98{b}{x} {c}", "+65 9{b} {c}", "+61 4{x}{b} {c}"]  # fmt: skip
JUNK_PHONES = ["0000000000", "1234567890", "n/a", "555-1212", "999-999-9999", "", "none"]
JUNK_EMAILS = ["test@test.com", "noemail@noemail.com", "none@none.com", "n/a", "jane.doe",
               "jane@@gmail.com", "", "unknown"]  # fmt: skip


def make_rows(n: int, seed: int = 20260101) -> pd.DataFrame:
    """n realistic CRM rows (email, phone), about 10% of them repeats of earlier customers."""
    rng = random.Random(seed)
    emails: list[str | None] = []
    phones: list[str | None] = []
    for i in range(n):
        if i > 100 and rng.random() < 0.10:  # the same customer again, typed differently
            j = rng.randrange(i)
            e, p = emails[j], phones[j]
            emails.append(None if e is None else rng.choice([e, e.upper(), f" {e} "]))
            phones.append(p)
            continue
        emails.append(_email(rng, i))
        phones.append(_phone(rng))
    return pd.DataFrame({"email": emails, "phone": phones})


def _email(rng: random.Random, i: int) -> str | None:
    r = rng.random()
    if r < 0.04:
        return None
    if r < 0.07:
        return rng.choice(JUNK_EMAILS)
    first, last = rng.choice(FIRST), rng.choice(LAST)
    if rng.random() < 0.98:  # most mailboxes spell names without accents or apostrophes
        first, last = _ascii(first), _ascii(last)
    local = rng.choice([f"{first}.{last}", f"{first}{last}", f"{first[0]}{last}",
                        f"{first}_{last}", f"{last}.{first}", f"{first}.{last}+shop",
                        f"{first}{rng.randint(1, 99)}"])  # fmt: skip
    local = f"{local}{i % 997}" if rng.random() < 0.8 else local
    if rng.random() < 0.3:
        local = local.capitalize() if rng.random() < 0.7 else local.upper()
    domain = rng.choice(RARE_DOMAINS if rng.random() < 0.01 else DOMAINS)
    address = f"{local}@{domain}"
    return rng.choice(["", "", "", " ", "\t"]) + address + rng.choice(["", "", "", " ", "  "])


def _ascii(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return folded.replace("'", "")


def _phone(rng: random.Random) -> str | None:
    r = rng.random()
    if r < 0.05:
        return None
    if r < 0.08:
        return rng.choice(JUNK_PHONES)
    digits = f"{rng.randint(0, 10**10 - 1):010d}"
    parts = {"a": str(rng.randint(201, 989)), "b": digits[3:6], "c": digits[6:10], "x": digits[:2]}
    formats = INTL_FORMATS if r < 0.13 else US_FORMATS
    return rng.choice(formats).format(**parts)


# --- the baseline: what a user writes with pandas, email-validator and phonenumbers ----------

# The strict profile's stand-ins for "no value", as published by normalize.
PLACEHOLDERS = normalize.PLACEHOLDERS


def baseline_email(value):
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        text = unicodedata.normalize("NFC", value.strip())
        info = validate_email(text, check_deliverability=False)
    except EmailNotValidError:
        return None
    local = unicodedata.normalize("NFC", info.local_part.lower())
    domain = info.ascii_domain.lower()
    address = f"{local}@{domain}"
    if local in PLACEHOLDERS["email_local"] or address in PLACEHOLDERS["email_address"]:
        return None
    if domain in PLACEHOLDERS["email_domain"]:
        return None
    return address


def baseline_phone(value):
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        number = phonenumbers.parse(value, "US")
    except phonenumbers.NumberParseException:
        return None
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible != phonenumbers.ValidationResult.IS_POSSIBLE:  # local-only numbers too
        return None
    national = phonenumbers.national_significant_number(number)
    if len(set(national)) <= 1 or national in PLACEHOLDERS["phone_number"]:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def run_baseline(df: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    return df["email"].apply(baseline_email), df["phone"].apply(baseline_phone)


def run_column(df: pd.DataFrame, workers: int | None) -> tuple[list, list]:
    emails = normalize.normalize_column("email", df["email"], workers=workers)
    phones = normalize.normalize_column("phone", df["phone"], region="US", workers=workers)
    return emails.values.to_pylist(), phones.values.to_pylist()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 rows instead of 1,000,000")
    parser.add_argument("--rows", type=int, help="number of rows (overrides --quick)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (median is shown)")
    parser.add_argument("--baseline-sample", type=int, default=100_000,
                        help="rows the baseline runs on when the input is larger")  # fmt: skip
    args = parser.parse_args(argv)
    n = args.rows or (100_000 if args.quick else 1_000_000)
    cores = os.cpu_count() or 1

    start = time.perf_counter()
    df = make_rows(n)
    print(f"generated {n:,} rows (email + phone) in {time.perf_counter() - start:.1f} s; "
          f"{cores} cores; median of {args.repeat} runs")  # fmt: skip

    warm = df.head(2_000)  # load phonenumbers metadata, country tables, regexes before timing
    run_baseline(warm)
    run_column(warm, 1)

    sample = df
    if n > args.baseline_sample:
        sample = df.sample(n=args.baseline_sample, random_state=1)
    t_base, (b_email, b_phone) = timed(lambda: run_baseline(sample), args.repeat)
    t_base_full = t_base * n / len(sample)
    if len(sample) < n:
        print(f"baseline   Series.apply(email-validator, phonenumbers): {t_base:.2f} s on a "
              f"{len(sample):,}-row sample -> {t_base_full:.1f} s extrapolated to {n:,} rows")
    else:
        print(f"baseline   Series.apply(email-validator, phonenumbers): {t_base:.2f} s")

    runs = [("workers=1", 1)]
    if cores > 1:  # a pool starts only for >= PARALLEL_MIN_VALUES distinct off-fast-path values
        runs.append((f"workers={cores}", None))
    for label, workers in runs:
        t, (c_email, c_phone) = timed(lambda w=workers: run_column(df, w), args.repeat)
        pos = [df.index.get_loc(i) for i in sample.index]
        ok_e = [c_email[p] for p in pos] == [None if pd.isna(v) else v for v in b_email]
        ok_p = [c_phone[p] for p in pos] == [None if pd.isna(v) else v for v in b_phone]
        if not (ok_e and ok_p):
            raise SystemExit(f"OUTPUT MISMATCH ({label}): email {ok_e}, phone {ok_p}")
        print(f"normalize_column ({label}): {t:.2f} s  -> {t_base_full / t:.1f}x the baseline; "
              f"output identical on {len(sample):,} rows")  # fmt: skip
    valid = sum(v is not None for v in c_email), sum(v is not None for v in c_phone)
    print(f"valid: {valid[0]:,} emails, {valid[1]:,} phones of {n:,} rows")


if __name__ == "__main__":
    main()
