"""What the demo's two files allow any matcher: how many of the people in both share strong
evidence between their records, how many share only a name, and how many of those an oracle
could link on names before it makes a given number of false links.

Read in the clear from the generator's frames and its ground truth (bench only: a real clean
room has no truth). Values are normalized as the tokenizer normalizes them (strict profile),
so "agree" means the two records' tokens would be equal.

The oracle sees the truth's evidence pattern: among pairs of records that agree on the full
name and on no email, phone or birth date, it takes only those where neither the birth date
nor the phone is known on both sides (where nearly all true name-only pairs are), rarest
name first (the product of the name parts' record counts in both files), and stops before
the false link past its budget. No matcher on these files does better with this evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

import normalize

KINDS = ("email", "phone", "first_name", "last_name", "dob")


@dataclass(frozen=True)
class Evidence:
    """The ceiling of overlap recall on the demo files (counts of people and pairs)."""

    true_overlap: int
    strong: int  # share an email, a phone, or a birth date and a name part
    name_only: int  # share the full name and nothing strong
    lookalikes: int  # pairs of different people in the oracle's candidates
    candidates_true: int  # people in both among the oracle's candidates
    linkable: dict[int, int]  # false links allowed -> name-only people the oracle links

    def ceiling(self, false_links: int) -> float:
        """Best share of the true overlap found with at most `false_links` false links."""
        return (self.strong + self.linkable[false_links]) / self.true_overlap

    def to_dict(self) -> dict[str, object]:
        return {"true_overlap": self.true_overlap, "strong": self.strong,
                "name_only": self.name_only, "lookalikes": self.lookalikes,
                "candidates_true": self.candidates_true,
                "linkable": {str(k): v for k, v in self.linkable.items()},
                "ceiling": {str(k): self.ceiling(k) for k in self.linkable}}


def _normalized(frame: pd.DataFrame, id_column: str, person: pd.Series) -> pd.DataFrame:
    out = pd.DataFrame({"person": frame[id_column].map(person).to_numpy()})
    for kind in KINDS:
        values = normalize.normalize_column(kind, frame[kind].astype(object).where(
            frame[kind].notna(), None).tolist()).values
        out[kind] = values.to_pandas()
    out["full"] = out["first_name"] + " " + out["last_name"]
    return out


def evidence(airline: pd.DataFrame, brand: pd.DataFrame, truth: pd.DataFrame,
             ids: tuple[str, str] = ("member_id", "customer_id"),
             budgets: Sequence[int] = (0, 4, 10)) -> Evidence:
    """The evidence in the generator's two frames (`truth`: party, customer_id, person_id)."""
    person = truth.drop_duplicates("customer_id").set_index("customer_id")["person_id"]
    a = _normalized(airline, ids[0], person)
    b = _normalized(brand, ids[1], person)
    same = a.merge(b, on="person", suffixes=("_a", "_b"))
    agree = {k: (same[f"{k}_a"] == same[f"{k}_b"]).fillna(False).to_numpy(bool)
             for k in (*KINDS, "full")}
    per = pd.DataFrame({"person": same["person"], **agree}).groupby("person").any()
    strong = per["email"] | per["phone"] | (per["dob"] & (per["first_name"] | per["last_name"]))
    name_only = ~strong & per["full"]
    # the oracle's candidates: record pairs agreeing on the full name, per pair of people
    x = a.dropna(subset=["full"]).merge(b.dropna(subset=["full"]), on="full",
                                        suffixes=("_a", "_b"))
    both = {k: (x[f"{k}_a"].notna() & x[f"{k}_b"].notna()).to_numpy() for k in KINDS}
    eq = {k: both[k] & (x[f"{k}_a"] == x[f"{k}_b"]).fillna(False).to_numpy(bool)
          for k in KINDS}
    x = pd.DataFrame({"pa": x["person_a"], "pb": x["person_b"], "full": x["full"],
                      "strong": eq["email"] | eq["phone"] | eq["dob"],
                      "known": both["dob"] | both["phone"]})
    pairs = x.groupby(["pa", "pb"]).agg(full=("full", "first"), strong=("strong", "any"),
                                        known=("known", "any")).reset_index()
    linked = (pairs["pa"] == pairs["pb"]) & pairs["pa"].isin(strong[strong].index)
    cand = pairs[~pairs["strong"] & ~pairs["known"] & ~linked].copy()
    cand["true"] = (cand["pa"] == cand["pb"]) & cand["pa"].isin(name_only[name_only].index)
    names = pd.concat([a[["first_name", "last_name"]], b[["first_name", "last_name"]]])
    counts = {k: names[k].value_counts() for k in ("first_name", "last_name")}
    parts = cand["full"].str.split(" ", n=1, expand=True)
    cand["rarity"] = (parts[0].map(counts["first_name"]).to_numpy(float)
                      * parts[1].map(counts["last_name"]).to_numpy(float))
    cand = cand.sort_values("rarity", kind="stable")
    true_seen = np.cumsum(cand["true"].to_numpy())
    false_seen = np.cumsum(~cand["true"].to_numpy())
    linkable = {f: int(true_seen[false_seen <= f].max(initial=0)) for f in budgets}
    return Evidence(true_overlap=int(len(per)), strong=int(strong.sum()),
                    name_only=int(name_only.sum()), lookalikes=int((~cand["true"]).sum()),
                    candidates_true=int(cand["true"].sum()), linkable=linkable)
