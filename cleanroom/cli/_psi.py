"""`cleanroom psi blind|reblind|finish`: ECDH private set intersection, one step per role."""

from __future__ import annotations

import click

import protocols

from ._output import emit
from ._params import CollaborationIdParam, KindColumnParam, json_option, profile_option

_JSON = json_option()
_WORKERS = click.option("--workers", type=click.IntRange(min=1), default=None,
                        help="Processes for hashing and blinding (default: one per core this "
                             "process may run on, for large inputs; pin it to one core, e.g. "
                             "with taskset, and it works in-line).")


@click.group()
def psi() -> None:
    """Private set intersection: match without a shared secret.

    Each party blinds its identifiers with its own X25519 key (from `keys pair`), sends the
    round-1 file to the other party, re-blinds the other's round-1 file and sends the result
    to the engine, never back. The engine operator turns each party's round-2 and attribute
    files into an ordinary token file:

    \b
      A: psi blind A.csv --party A --key A.key ... --out-round1 A.r1 --out-attrs A.attrs
      B: psi blind B.csv --party B --key B.key ... --out-round1 B.r1 --out-attrs B.attrs
      A: psi reblind B.r1 --key A.key --out B.r2        (A.r1 and B.r1 swapped first)
      B: psi reblind A.r1 --key B.key --out A.r2
      engine: psi finish --round2 A.r2 --attrs A.attrs --party A --out A.tokens.parquet
    """


@psi.command("blind")
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option("--party", required=True, help="Your party name, as in the collaboration.")
@click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False),
              help="Your PSI private key file (PREFIX.key from `keys pair`; fresh per "
                   "collaboration).")
@click.option("--collaboration-id", required=True, type=CollaborationIdParam(),
              help="The collaboration id both parties use (UUID).")
@click.option("--id", "ids", multiple=True, required=True, type=KindColumnParam(),
              help="An identifier to match, as KIND=COLUMN (repeatable), e.g. email=Email.")
@click.option("--attr", "attrs", multiple=True,
              help="An attribute column to share with the engine (repeatable).")
@profile_option("Normalization profile; both parties must use the same one.")
@click.option("--region", default="US", show_default=True,
              help="Default region for phone numbers without a country code.")
@click.option("--delimiter", default=",", show_default=True, help="CSV field delimiter.")
@click.option("--encoding", default="utf-8", show_default=True, help="CSV text encoding.")
@click.option("--out-round1", required=True, type=click.Path(dir_okay=False),
              help="Round-1 file to write: blinded values only; send it to the other party.")
@click.option("--out-attrs", required=True, type=click.Path(dir_okay=False),
              help="Attribute file to write; send it to the engine operator only.")
@click.option("--allow-identifying-attr", is_flag=True,
              help="Share an attribute even though its values look like e-mails or phones.")
@_WORKERS
@_JSON
def psi_blind(input_path: str, party: str, key_path: str, collaboration_id: str,
              ids: tuple[tuple[str, str], ...], attrs: tuple[str, ...], profile: str,
              region: str, delimiter: str, encoding: str, out_round1: str, out_attrs: str,
              allow_identifying_attr: bool, workers: int | None, as_json: bool) -> None:
    """Normalize, hash to the curve and blind INPUT's identifiers with your key."""
    key = protocols.load_private_key(key_path)
    res = protocols.psi_blind_file(
        input_path, party=party, key=key, collaboration_id=collaboration_id, ids=list(ids),
        attrs=list(attrs), profile=profile, region=region or None, out_round1=out_round1,
        out_attrs=out_attrs, delimiter=delimiter, encoding=encoding,
        allow_identifying_attr=allow_identifying_attr, workers=workers)
    valid = ", ".join(f"{k} {q['valid']}" for k, q in res.quality.items())
    emit({"round1": res.round1, "attrs": res.attrs, "rows": res.rows, "quality": res.quality},
          as_json, f"blinded {res.rows} rows (valid: {valid}); send {res.round1} to the other "
                   f"party and {res.attrs} to the engine operator")


@psi.command("reblind")
@click.argument("round1", metavar="THEIR_ROUND1", type=click.Path(dir_okay=False))
@click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False),
              help="Your PSI private key file (the one you blinded your own round 1 with).")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Round-2 file to write; send it to the engine operator, not back.")
@click.option("--cardinality-only", is_flag=True,
              help="Drop row ids and shuffle, so the engine can learn only the overlap count "
                   "(one identifier column only).")
@_WORKERS
@_JSON
def psi_reblind(round1: str, key_path: str, out: str, cardinality_only: bool,
                workers: int | None, as_json: bool) -> None:
    """Blind the other party's round-1 values again with your key."""
    key = protocols.load_private_key(key_path)
    res = protocols.psi_reblind_file(round1, key=key, out=out,
                                     cardinality_only=cardinality_only, workers=workers)
    emit({"out": res.out, "rows": res.rows, "columns": list(res.columns),
           "cardinality_only": res.cardinality_only},
          as_json, f"re-blinded {res.rows} rows; send {res.out} to the engine operator")


@psi.command("finish")
@click.option("--round2", required=True, type=click.Path(dir_okay=False),
              help="The party's round-2 file (made by the other party).")
@click.option("--attrs", required=True, type=click.Path(dir_okay=False),
              help="The party's attribute file.")
@click.option("--party", required=True, help="Whose data this is.")
@click.option("--peer-round2", type=click.Path(dir_okay=False), default=None,
              help="The other party's round-2 file: refuse unless both canaries agree.")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Token file to write (protocol ecdh-x25519-ell2/v1).")
@_JSON
def psi_finish(round2: str, attrs: str, party: str, peer_round2: str | None, out: str,
               as_json: bool) -> None:
    """Engine operator: turn a party's round-2 and attribute files into a token file."""
    m = protocols.psi_finish_file(round2=round2, attrs=attrs, party=party, out=out,
                                  peer_round2=peer_round2)
    emit({"out": out, "party": m.party, "rows": m.row_count,
           "key_fingerprint": m.key_fingerprint, "protocol": m.protocol},
          as_json, f"wrote {out}: {m.row_count} rows of party {m.party}, key fingerprint "
                   f"{m.key_fingerprint}")
