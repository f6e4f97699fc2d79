"""Score entity resolution against the generator's ground truth (demo only).

A real collaboration has no ground truth; the synthetic one does, so the demo can show how
good the matching is: how many of the people really in both files were found, how many
entities wrongly join different people, and how many within-party duplicates were merged.

`assignments` is one row per record of either party: (party, customer_id, entity_id). It is
joined with the truth file's (party, customer_id, person_id); all counting is vectorized.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class PartySource:
    """A party's raw extract and how it tokenized it (the `tokenize_file` settings)."""

    csv: Path
    secret: Path
    id_column: str
    identifiers: Sequence[tuple[str, str]]
    match_keys: Sequence[tuple[str, Sequence[tuple[str, str | None]]]] = field(default=())
    profile: str = "strict"
    region: str = "US"
    fuzzy: bool = False


@dataclass(frozen=True)
class GroundTruthScore:
    """How the engine's entities compare with the true people (counts only)."""

    true_overlap: int
    found: int
    reported_overlap: int
    false_overlap: int
    mixed_entities: int
    entities: int
    duplicate_people: dict[str, int]
    duplicates_resolved: dict[str, int]

    @property
    def recall(self) -> float:
        """Share of the people really in both files that were found in both."""
        return self.found / self.true_overlap if self.true_overlap else 1.0

    @property
    def precision(self) -> float:
        """Share of the overlapping entities that really are a person in both files."""
        if not self.reported_overlap:
            return 1.0
        return (self.reported_overlap - self.false_overlap) / self.reported_overlap

    def lines(self) -> list[str]:
        """The score in plain words, one finding per line."""
        out = [
            f"people really in both files: {self.true_overlap:,}; found in both: "
            f"{self.found:,} ({100 * self.recall:.1f}%)",
            f"overlapping entities reported: {self.reported_overlap:,}, of which "
            f"{self.false_overlap:,} join no shared person (precision "
            f"{100 * self.precision:.2f}%)",
            f"false links: {self.mixed_entities:,} of {self.entities:,} entities join records "
            f"of different people",
        ]
        for party, n in self.duplicate_people.items():
            done = self.duplicates_resolved.get(party, 0)
            share = 100 * done / n if n else 100.0
            out.append(f"duplicates resolved in {party}: {done:,} of {n:,} people with several "
                       f"records ({share:.1f}%)")
        return out

    def headline(self) -> str:
        """One line for the demo's headline."""
        return (f"ground truth: {100 * self.recall:.1f}% of the true overlap found, "
                f"precision {100 * self.precision:.2f}%, {self.mixed_entities:,} false links")

    def to_dict(self) -> dict[str, object]:
        """Plain JSON values."""
        return {"true_overlap": self.true_overlap, "found": self.found,
                "reported_overlap": self.reported_overlap, "false_overlap": self.false_overlap,
                "mixed_entities": self.mixed_entities, "entities": self.entities,
                "recall": self.recall, "precision": self.precision,
                "duplicate_people": self.duplicate_people,
                "duplicates_resolved": self.duplicates_resolved}


def score(assignments: pd.DataFrame, truth: pd.DataFrame) -> GroundTruthScore:
    """Compare (party, customer_id, entity_id) with the truth's (party, customer_id, person_id)."""
    rows = assignments.merge(truth, on=["party", "customer_id"], how="inner",
                             validate="one_to_one")
    if len(rows) != len(assignments):
        raise ValueError("some assigned records are not in the ground truth")
    parties = sorted(rows["party"].unique())
    # people really in both parties
    per_person = rows.groupby("person_id")["party"].nunique()
    true_both = set(per_person[per_person == len(parties)].index)
    # entities in both parties (what the engine calls the overlap)
    per_entity = rows.groupby("entity_id")["party"].nunique()
    both_entities = per_entity[per_entity == len(parties)].index
    # a person is found when one entity holds records of that person from every party
    pe = rows.groupby(["entity_id", "person_id"])["party"].nunique()
    hit = pe[pe == len(parties)].reset_index()
    found = hit["person_id"].nunique()
    false_overlap = len(set(both_entities) - set(hit["entity_id"]))
    people_per_entity = rows.groupby("entity_id")["person_id"].nunique()
    dup_people: dict[str, int] = {}
    dup_done: dict[str, int] = {}
    for party in parties:
        mine = rows[rows["party"] == party]
        g = mine.groupby("person_id").agg(records=("entity_id", "size"),
                                          entities=("entity_id", "nunique"))
        several = g[g["records"] > 1]
        dup_people[party] = int(len(several))
        dup_done[party] = int((several["entities"] == 1).sum())
    return GroundTruthScore(
        true_overlap=len(true_both), found=int(found), reported_overlap=int(len(both_entities)),
        false_overlap=int(false_overlap), mixed_entities=int((people_per_entity > 1).sum()),
        entities=int(len(people_per_entity)), duplicate_people=dup_people,
        duplicates_resolved=dup_done)


def entity_assignments(
    collaboration: str | os.PathLike[str],
    parties: Mapping[str, PartySource],
    work_dir: str | os.PathLike[str],
) -> pd.DataFrame:
    """(party, customer_id, entity_id) for every record, for scoring the demo.

    The engine knows records only by their position in the shuffled token files. Each party
    tokenizes a local scoring copy of its extract with the real tokenizer and the same
    settings, keeping its own customer id as an attribute; tokens are deterministic, so the
    copy's rows join the token file's rows on the tuple of all token columns (records with
    equal tuples are interchangeable: they always land in the same entity, or both alone).
    The copies stay in `work_dir`, which is not part of the clean room.
    """
    from cleanroom import open_collaboration
    from cleanroom.engine import Sql, execute, quote_ident
    from protocols import load_secret, read_manifest, tokenize_file

    work = Path(work_dir)
    frames = []
    with open_collaboration(collaboration) as room:
        con = room.connection
        for party, src in parties.items():
            table = next(n for n, t in room.collaboration.tables.items() if t.owner == party)
            tokens = room.collaboration.tables[table].tokens
            copy = work / f"{party}.scoring.parquet"
            tokenize_file(src.csv, copy, party=party, secret=load_secret(src.secret),
                          identifiers=src.identifiers, match_keys=src.match_keys,
                          attributes=[src.id_column], profile=src.profile, region=src.region,
                          allow_identifying_attr=True, fuzzy=src.fuzzy)
            cols = list(read_manifest(tokens).identifiers)
            q = [quote_ident(c, cols) for c in cols]
            part = ", ".join(q)
            on = " AND ".join(f"r.{c} IS NOT DISTINCT FROM s.{c}" for c in q)
            cid = quote_ident(src.id_column, [src.id_column])
            con.register("_cr_entity_map", room.entity_map(table))
            sql = Sql(
                f"WITH r AS (SELECT file_row_number AS rn, {part}, row_number() OVER "
                f"(PARTITION BY {part} ORDER BY file_row_number) AS k "
                f"FROM read_parquet(?, file_row_number = true)), "
                f"s AS (SELECT CAST({cid} AS VARCHAR) AS cid, {part}, row_number() OVER "
                f"(PARTITION BY {part} ORDER BY {cid}) AS k FROM read_parquet(?)), "
                f"m AS (SELECT row_number AS rn, entity_id FROM _cr_entity_map) "
                # a record the engine left out of its entity map is an entity of its own
                f"SELECT s.cid, coalesce(CAST(m.entity_id AS VARCHAR), "
                f"'alone-' || CAST(? AS VARCHAR) || '-' || CAST(r.rn AS VARCHAR)) "
                f"FROM r JOIN s ON r.k = s.k AND {on} LEFT JOIN m ON m.rn = r.rn",
                (os.fspath(tokens), os.fspath(copy), room.table_index(table)))
            rows = execute(con, sql).fetchall()
            con.unregister("_cr_entity_map")
            copy.unlink()
            if len(rows) != read_manifest(tokens).row_count:
                raise ValueError(f"{party}: {len(rows)} of {read_manifest(tokens).row_count} "
                                 "records mapped back to the scoring copy")
            frames.append(pd.DataFrame({"party": party, "customer_id": [r[0] for r in rows],
                                        "entity_id": [r[1] for r in rows]}))
    return pd.concat(frames, ignore_index=True)
