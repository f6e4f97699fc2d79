"""Deterministic synthetic parties for the demo: an airline's loyalty members and a brand's CRM.

Both files carry the mess real extracts have (case and whitespace, Gmail dots and +tags,
national and international phone formats from seven countries, missing values, typos in
names, placeholder emails, within-party duplicates with different contact points) and a known
overlap of people. A ground-truth file maps every row to its true person; it is for scoring
the matching only and never goes into the clean room. The same seed gives the same bytes.

Run it alone with ``python -m examples.generate --rows 20000 --seed 7 --out DIR``: it writes
DIR/airline/airline.csv, DIR/brand/brand.csv and DIR/ground_truth/truth.csv.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import importlib
import random
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from protocols import atomic_path

#: countries of the people, with their share, Faker locale and home airports
COUNTRIES: dict[str, tuple[float, str, tuple[str, ...]]] = {
    "US": (0.40, "en_US", ("JFK", "LAX", "SFO", "ORD", "ATL", "SEA", "BOS", "MIA")),
    "GB": (0.15, "en_GB", ("LHR", "LGW", "MAN", "EDI")),
    "FR": (0.10, "fr_FR", ("CDG", "ORY", "NCE", "LYS")),
    "DE": (0.10, "de_DE", ("FRA", "MUC", "BER", "HAM")),
    "IN": (0.10, "en_IN", ("DEL", "BOM", "BLR", "MAA")),
    "SG": (0.07, "en_US", ("SIN",)),
    "AU": (0.08, "en_GB", ("SYD", "MEL", "BNE", "PER")),
}
#: the region of the national-format phone numbers (the `--region` to tokenize with)
HOME_REGION = "US"
TIERS = ("Basic", "Silver", "Gold", "Platinum")
TIER_WEIGHTS = (0.56, 0.28, 0.12, 0.04)
CATEGORIES = ("Apparel", "Beauty", "Electronics", "Home", "Outdoor", "Travel Gear")
CATEGORY_WEIGHTS = (0.27, 0.22, 0.18, 0.15, 0.10, 0.08)
PLACEHOLDER_EMAILS = (
    "noemail@noemail.com",
    "none@none.com",
    "no.email@example.com",
    "na@na.com",
    "test@test.com",
)
PLACEHOLDER_PHONES = ("000-000-0000", "(555) 555-5555", "1111111111", "+1 999 999 9999")
_SG_SURNAMES = ("Tan", "Lim", "Lee", "Ng", "Ong", "Wong", "Goh", "Chua", "Chan", "Koh", "Teo",
                "Ang", "Yeo", "Tay", "Ho", "Low", "Toh", "Sim", "Chong", "Chia", "Nair", "Kumar")
_DOMAINS: dict[str, tuple[str, ...]] = {
    "US": ("gmail.com", "gmail.com", "yahoo.com", "outlook.com", "icloud.com", "aol.com"),
    "GB": ("gmail.com", "gmail.com", "btinternet.com", "yahoo.co.uk", "hotmail.co.uk"),
    "FR": ("gmail.com", "orange.fr", "free.fr", "laposte.net", "hotmail.fr"),
    "DE": ("gmail.com", "gmx.de", "web.de", "t-online.de", "outlook.de"),
    "IN": ("gmail.com", "gmail.com", "rediffmail.com", "yahoo.co.in", "outlook.com"),
    "SG": ("gmail.com", "gmail.com", "singnet.com.sg", "yahoo.com.sg", "hotmail.com"),
    "AU": ("gmail.com", "bigpond.com", "optusnet.com.au", "outlook.com", "icloud.com"),
}
_WORK_DOMAINS = ("acme-corp.com", "globex.io", "initech.net", "umbrella.co", "hooli.com")
_US_AREAS = ("212", "415", "650", "312", "617", "206", "305", "404", "713", "503", "702", "303")
_DE_MOBILE = ("151", "152", "157", "160", "162", "170", "171", "172", "175", "176", "177", "179")


@dataclass(frozen=True)
class GeneratedFiles:
    """Where `SyntheticParties.write` put each file (the truth stays out of the clean room)."""

    airline: Path
    brand: Path
    truth: Path


@dataclass(frozen=True)
class SyntheticParties:
    """Two parties' raw extracts and the ground truth that maps every row to its person."""

    airline: pd.DataFrame
    brand: pd.DataFrame
    truth: pd.DataFrame
    seed: int

    def write(
        self, airline_csv: str | Path, brand_csv: str | Path, truth_csv: str | Path
    ) -> GeneratedFiles:
        """Write the three CSV files atomically (the truth file is for scoring only)."""
        for frame, path in ((self.airline, airline_csv), (self.brand, brand_csv),
                            (self.truth, truth_csv)):
            with atomic_path(path) as tmp:
                frame.to_csv(tmp, index=False, lineterminator="\n")
        return GeneratedFiles(Path(airline_csv), Path(brand_csv), Path(truth_csv))

    def true_overlap(self) -> int:
        """How many people really are in both parties' files."""
        by_party = self.truth.groupby("party")["person_id"].agg(lambda s: set(s))
        return len(by_party["airline"] & by_party["brand"])


def generate(
    rows: int = 20_000,
    *,
    seed: int = 7,
    brand_share: float = 0.6,
    overlap_share: float = 0.35,
    duplicate_rate: float = 0.04,
) -> SyntheticParties:
    """Generate the airline (about `rows` rows) and the brand (about `brand_share` × rows).

    `overlap_share` of the brand's people are also airline members; `duplicate_rate` of each
    party's people get a second row with different contact points. Deterministic in `seed`.
    """
    if rows < 10:
        raise ValueError("rows must be at least 10")
    rng = np.random.default_rng(seed)
    pools = _name_pools()
    n_air = rows
    n_brand = max(2, round(rows * brand_share))
    n_shared = round(n_brand * overlap_share)
    people = _people(rng, n_air + n_brand - n_shared, pools)
    order = rng.permutation(len(people))
    air_people = people.iloc[np.sort(order[:n_air])]
    shared = order[:n_air][rng.choice(n_air, n_shared, replace=False)]
    brand_idx = np.sort(np.concatenate([shared, order[n_air:]]))
    brand_people = people.iloc[brand_idx]
    airline = _airline(rng, air_people, duplicate_rate)
    brand = _brand(rng, brand_people, duplicate_rate, set(people["person_id"].iloc[shared]))
    truth = pd.concat(
        [
            pd.DataFrame({"party": "airline", "customer_id": airline["member_id"],
                          "person_id": airline.pop("_person")}),
            pd.DataFrame({"party": "brand", "customer_id": brand["customer_id"],
                          "person_id": brand.pop("_person")}),
        ],
        ignore_index=True,
    )
    return SyntheticParties(airline.reset_index(drop=True), brand.reset_index(drop=True),
                            truth, seed)


_Pool = tuple[np.ndarray, np.ndarray]  # names, probabilities


def _pool(names: Sequence[str] | Mapping[str, float]) -> _Pool:
    """A name pool with its draw probabilities (Faker's frequency weights where it has them)."""
    if isinstance(names, Mapping):
        keys = list(names)
        w = np.array([float(names[k]) for k in keys])
    else:
        keys = list(dict.fromkeys(names))
        w = np.ones(len(keys))
    return np.array(keys, dtype=object), w / w.sum()


def _name_pools() -> dict[str, tuple[_Pool, _Pool]]:
    """First- and last-name pools per country, from the name lists of Faker's locales."""
    pools: dict[str, tuple[_Pool, _Pool]] = {}
    for country, (_, locale, _) in COUNTRIES.items():
        provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        firsts = getattr(provider, "first_names", None) or (
            tuple(provider.first_names_male) + tuple(provider.first_names_female))
        lasts = _SG_SURNAMES if country == "SG" else provider.last_names
        pools[country] = (_pool(firsts), _pool(lasts))
    return pools


def _ascii(text: str) -> str:
    """Accents off and only letters kept, as people do when they pick an email address."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalpha())


def _people(
    rng: np.random.Generator, n: int, pools: dict[str, tuple[_Pool, _Pool]]
) -> pd.DataFrame:
    """The true people: clean name, date of birth, country, email, E.164 phone, postal code."""
    codes = list(COUNTRIES)
    weights = np.array([COUNTRIES[c][0] for c in codes])
    country = rng.choice(codes, n, p=weights / weights.sum())
    first = np.empty(n, dtype=object)
    last = np.empty(n, dtype=object)
    for c in codes:
        mask = country == c
        (fnames, fp), (lnames, lp) = pools[c]
        first[mask] = fnames[rng.choice(len(fnames), int(mask.sum()), p=fp)]
        last[mask] = lnames[rng.choice(len(lnames), int(mask.sum()), p=lp)]
    start = dt.date(1950, 1, 1).toordinal()
    dob = [dt.date.fromordinal(start + int(d)).isoformat()
           for d in rng.integers(0, 20_000, n)]
    r = random.Random(int(rng.integers(1 << 62)))
    phone = _unique(functools.partial(_mobile, r, c) for c in country)
    emails = []
    seen: set[str] = set()
    for f, la, c, style, num in zip(first, last, country, rng.integers(0, 5, n),
                                    rng.integers(1, 99, n), strict=True):
        fa, la_ = _ascii(f) or "user", _ascii(la) or "mail"
        local = (f"{fa}.{la_}", f"{fa}{la_}", f"{fa[0]}{la_}", f"{fa}_{la_}{num}",
                 f"{la_}.{fa}{num}")[style]
        domains = _DOMAINS[c]
        email = f"{local}@{domains[r.randrange(len(domains))]}"
        while email in seen:  # real addresses are unique: no accidental sharing
            email = f"{local}{r.randrange(100, 9999)}@{domains[r.randrange(len(domains))]}"
        seen.add(email)
        emails.append(email)
    return pd.DataFrame({
        "person_id": [f"P{i:07d}" for i in range(n)],
        "country": country,
        "first_name": first,
        "last_name": last,
        "dob": dob,
        "email": emails,
        "phone": phone,
        "postal_code": [_postal(r, c) for c in country],
    })


def _unique(makers: Iterable[Callable[[], str]]) -> list[str]:
    """Call each maker until it returns a value not seen before (phone numbers are unique)."""
    seen: set[str] = set()
    out = []
    for make in makers:
        value = make()
        while value in seen:
            value = make()
        seen.add(value)
        out.append(value)
    return out


def _mobile(r: random.Random, country: str) -> str:
    """A valid mobile number of `country` in E.164 (`+` and digits)."""
    def d(k: int) -> str:
        return f"{r.randrange(10**k):0{k}d}"

    if country == "US":
        return f"+1{r.choice(_US_AREAS)}{r.randrange(2, 10)}{d(2)}{d(4)}"
    if country == "GB":
        return f"+447{r.choice('45789')}{d(8)}"
    if country == "FR":
        return f"+336{r.choice('01245678')}{d(7)}"
    if country == "DE":
        return f"+49{r.choice(_DE_MOBILE)}{d(8)}"
    if country == "IN":
        return f"+91{r.choice('6789')}{d(9)}"
    if country == "SG":
        return f"+65{r.choice(['81', '83', '87', '90', '91', '93', '96', '97'])}{d(6)}"
    return f"+614{r.choice('01236')}{d(7)}"


def _postal(r: random.Random, country: str) -> str:
    """A plausible postal code of `country`."""
    if country == "GB":
        letters = "ABCDEFGHJKLMNPRSTUWXY"
        a = "".join(r.choice(letters) for _ in range(2))
        b = "".join(r.choice(letters) for _ in range(2))
        return f"{a}{r.randrange(1, 20)} {r.randrange(1, 10)}{b}"
    width = {"US": 5, "FR": 5, "DE": 5, "IN": 6, "SG": 6, "AU": 4}[country]
    low = {"US": 1001, "FR": 1000, "DE": 1067, "IN": 110001, "SG": 18000, "AU": 2000}[country]
    return f"{r.randrange(low, 10**width):0{width}d}"


def _format_phone(rnd: random.Random, e164: str) -> str:
    """One of the ways people type a phone number: national for home-region numbers, else +cc."""
    if e164.startswith("+1"):
        a, b, c = e164[2:5], e164[5:8], e164[8:]
        forms: tuple[str, ...] = (f"({a}) {b}-{c}", f"{a}-{b}-{c}", f"{a}.{b}.{c}", f"{a}{b}{c}",
                 f"+1 {a} {b} {c}", f"1-{a}-{b}-{c}", f"+1{a}{b}{c}")
        return rnd.choice(forms)
    cc_len = 2
    cc, rest = e164[1:1 + cc_len], e164[1 + cc_len:]
    mid = len(rest) // 2
    forms = (f"+{cc} {rest[:mid]} {rest[mid:]}", f"+{cc}{rest}", f"+{cc}-{rest[:mid]}-{rest[mid:]}",
             f"(+{cc}) {rest}", f"+{cc} {' '.join(rest[i:i + 2] for i in range(0, len(rest), 2))}")
    return rnd.choice(forms)


def _mess_email(rnd: random.Random, email: str) -> str:
    """Case, stray whitespace, and for Gmail the dots and +tags people add."""
    local, domain = email.split("@")
    if domain == "gmail.com":
        r = rnd.random()
        if r < 0.12:
            local = local.replace(".", "")
        elif r < 0.24 and "." not in local and len(local) > 3:
            cut = rnd.randrange(1, len(local) - 1)
            local = f"{local[:cut]}.{local[cut:]}"
        if rnd.random() < 0.10:
            local += "+" + rnd.choice(("shop", "promo", "travel", "news"))
    r = rnd.random()
    if r < 0.12:
        local, domain = local.capitalize(), domain.capitalize()
    elif r < 0.18:
        local, domain = local.upper(), domain.upper()
    out = f"{local}@{domain}"
    r = rnd.random()
    if r < 0.05:
        out = f" {out}"
    elif r < 0.10:
        out = f"{out}  "
    return out


def _mess_name(rnd: random.Random, name: str, typo_rate: float) -> str:
    """Case, stray whitespace and, now and then, a typo (a dropped or swapped letter)."""
    if rnd.random() < typo_rate and len(name) > 3:
        i = rnd.randrange(1, len(name) - 1)
        name = (name[:i] + name[i + 1:]) if rnd.random() < 0.5 else \
            (name[:i - 1] + name[i] + name[i - 1] + name[i + 1:])
    r = rnd.random()
    if r < 0.08:
        name = name.upper()
    elif r < 0.12:
        name = name.lower()
    if rnd.random() < 0.04:
        name = f" {name} "
    return name


def _contact_rows(
    rng: np.random.Generator, people: pd.DataFrame, duplicate_rate: float,
    p_email_missing: float, p_phone_missing: float, alt_email: set[str] | None = None,
) -> pd.DataFrame:
    """One row per person plus a second row for some, with messy, partly missing contacts.

    A duplicate row keeps the person's name and date of birth but carries different contact
    points: one row has the email and the other the phone (or a work email).
    """
    n = len(people)
    dup = rng.random(n) < duplicate_rate
    base = people.loc[people.index.repeat(np.where(dup, 2, 1))].copy()
    second = base.index.duplicated(keep="first")
    first_of_dup = np.repeat(dup, np.where(dup, 2, 1)) & ~second
    m = len(base)
    email = base["email"].to_numpy(dtype=object).copy()
    phone = base["phone"].to_numpy(dtype=object).copy()
    u = rng.random((m, 6))
    r = random.Random(int(rng.integers(1 << 62)))
    pids = base["person_id"].to_numpy()
    firsts, lasts = base["first_name"].to_numpy(), base["last_name"].to_numpy()
    for i in range(m):
        if alt_email is not None and pids[i] in alt_email:
            # a shared person who gave the brand another address than the airline
            e = email[i]
            email[i] = e.split("@")[0] + "." + str(r.randrange(1, 99)) + "@" + \
                _DOMAINS["US"][r.randrange(2, len(_DOMAINS["US"]))]
        if first_of_dup[i]:
            phone[i] = None  # the first row of a duplicate has the email only ...
        elif second[i]:
            email[i] = (None if u[i, 0] < 0.6 else  # ... the second the phone and maybe work mail
                        f"{_ascii(firsts[i])}.{_ascii(lasts[i])}{r.randrange(1, 999)}"
                        f"@{r.choice(_WORK_DOMAINS)}")
        if email[i] is not None:
            if u[i, 1] < p_email_missing:
                email[i] = None
            elif u[i, 2] < 0.012:
                email[i] = r.choice(PLACEHOLDER_EMAILS)
            elif u[i, 2] < 0.02:
                email[i] = email[i].replace("@", " at ", 1) if u[i, 3] < 0.5 else \
                    email[i].rsplit(".", 1)[0]  # "jane at gmail.com", "jane@gmail"
            else:
                email[i] = _mess_email(r, email[i])
        if phone[i] is not None:
            if u[i, 4] < p_phone_missing:
                phone[i] = None
            elif u[i, 5] < 0.01:
                phone[i] = r.choice(PLACEHOLDER_PHONES)
            elif u[i, 5] < 0.02:
                phone[i] = _format_phone(r, phone[i])[:-3]  # a digit group lost
            else:
                phone[i] = _format_phone(r, phone[i])
    base["email"] = email
    base["phone"] = phone
    base["first_name"] = [_mess_name(r, s, 0.02) for s in base["first_name"]]
    base["last_name"] = [_mess_name(r, s, 0.02) for s in base["last_name"]]
    base["_person"] = base["person_id"].to_numpy()
    base["_dup"] = second
    # the file's row order is not the person order: shuffle like an extract sorted by signup
    return base.iloc[rng.permutation(m)].reset_index(drop=True)


def _airline(rng: np.random.Generator, people: pd.DataFrame, duplicate_rate: float) -> pd.DataFrame:
    """The airline's loyalty extract: contacts, name, dob, country, home airport, tier, miles."""
    rows = _contact_rows(rng, people, duplicate_rate, 0.06, 0.22)
    n = len(rows)
    tier_of = {pid: TIERS[t] for pid, t in zip(
        people["person_id"], rng.choice(len(TIERS), len(people), p=TIER_WEIGHTS), strict=True)}
    tier = rows["_person"].map(tier_of)
    scale = tier.map({"Basic": 4_000, "Silver": 18_000, "Gold": 45_000, "Platinum": 110_000})
    miles = (scale.to_numpy() * rng.lognormal(0.0, 0.5, n)).round(-1).astype(np.int64)
    r = random.Random(int(rng.integers(1 << 62)))
    airports = [r.choice(COUNTRIES[c][2]) for c in rows["country"]]
    dob = rows["dob"].to_numpy(dtype=object).copy()
    dob[rng.random(n) < 0.03] = None
    return pd.DataFrame({
        "member_id": [f"FF{v:08d}" for v in rng.choice(10**8, n, replace=False)],
        "email": rows["email"], "phone": rows["phone"],
        "first_name": rows["first_name"], "last_name": rows["last_name"],
        "dob": dob, "country": rows["country"], "home_airport": airports,
        "tier": tier, "miles_flown": miles, "_person": rows["_person"],
    })


def _brand(
    rng: np.random.Generator, people: pd.DataFrame, duplicate_rate: float, shared: set[str]
) -> pd.DataFrame:
    """The brand's CRM extract: contacts, name, birthday (often missing), postal code,
    favourite product category and spend; shared people lean to travel gear and spend more."""
    ids = people["person_id"].to_numpy()
    alt = {pid for pid, r in zip(ids, rng.random(len(ids)), strict=True)
           if pid in shared and r < 0.15}
    rows = _contact_rows(rng, people, duplicate_rate, 0.04, 0.30, alt_email=alt)
    n = len(rows)
    w = np.array(CATEGORY_WEIGHTS)
    travel = np.array(CATEGORY_WEIGHTS) * np.array([1, 1, 1.2, 0.8, 1.4, 2.6])
    is_shared = pd.Series(ids).isin(shared).to_numpy()
    picks = np.empty(len(ids), dtype=np.int64)
    for mask, p in ((is_shared, travel), (~is_shared, w)):
        picks[mask] = rng.choice(len(CATEGORIES), int(mask.sum()), p=p / p.sum())
    cat_of = dict(zip(ids, np.array(CATEGORIES, dtype=object)[picks], strict=True))
    category = rows["_person"].map(cat_of)
    boost = np.where(rows["_person"].isin(shared), 1.35, 1.0)
    spend = (rng.lognormal(4.6, 0.8, n) * boost).round(2)
    dob = rows["dob"].to_numpy(dtype=object).copy()
    dob[rng.random(n) < 0.40] = None
    space = 10**7 if n <= 10**7 else 10**8  # 7 digits up to 10M customers, then 8
    digits = len(str(space)) - 1
    return pd.DataFrame({
        "customer_id": [f"C-{v:0{digits}d}" for v in rng.choice(space, n, replace=False)],
        "email": rows["email"], "phone": rows["phone"],
        "first_name": rows["first_name"], "last_name": rows["last_name"],
        "dob": dob, "postal_code": rows["postal_code"],
        "category": category, "spend": spend, "_person": rows["_person"],
    })


def main(argv: list[str] | None = None) -> None:
    """Write airline/airline.csv, brand/brand.csv and ground_truth/truth.csv under --out."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20_000, help="airline rows (brand: 60%%)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=Path("."),
                    help="directory to write airline/, brand/ and ground_truth/ into")
    args = ap.parse_args(argv)
    parties = generate(args.rows, seed=args.seed)
    files = parties.write(args.out / "airline" / "airline.csv", args.out / "brand" / "brand.csv",
                          args.out / "ground_truth" / "truth.csv")
    print(f"airline: {len(parties.airline)} rows -> {files.airline}")
    print(f"brand:   {len(parties.brand)} rows -> {files.brand}")
    print(f"truth:   {parties.true_overlap()} people in both -> {files.truth} (never share it)")


if __name__ == "__main__":
    main()
