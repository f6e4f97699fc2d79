"""`cleanroom dedupe`: Customer 360 on a party's own extract, before the clean room."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable

import click

import normalize
import protocols
from cleanroom.matching import PERSON_COLUMN, dedupe_file

from ._local import _with_common
from ._output import emit_json, table_text
from ._params import KindColumnParam

STEPS = 4


def _stages() -> tuple[Callable[[str], None] | None, Callable[[], None]]:
    """Progress on stderr, only on a terminal: the step running and the time so far."""
    if not sys.stderr.isatty():
        return None, lambda: None
    start = time.monotonic()
    seen: list[str] = []

    def show(stage: str) -> None:
        seen.append(stage)
        click.echo(f"\r\033[Kdedupe [{len(seen)}/{STEPS}] {stage} ... "
                   f"({time.monotonic() - start:.0f} s)", nl=False, err=True)

    def end() -> None:
        click.echo("\r\033[K", nl=False, err=True)

    return show, end


@click.command("dedupe")
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option("--id", "identifiers", type=KindColumnParam(normalize.KINDS), multiple=True,
              required=True,
              help="An identifier to compare: KIND=COLUMN (repeatable), e.g. dob=BirthDate.")
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.9, show_default=True,
              help="Match probability at which two rows are the same person.")
@_with_common
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Output: INPUT plus a person_id column; CSV if it ends in .csv, else "
                   "Parquet (mode 0600).")
@click.option("--report", "report", type=click.Path(dir_okay=False),
              help="Also write the duplicates report as JSON here.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
def dedupe(input_path: str, identifiers: tuple[tuple[str, str], ...], threshold: float,
           profile: str, region: str, delimiter: str, encoding: str, out: str,
           report: str | None, as_json: bool) -> None:
    """Find the rows of INPUT that are the same person, locally, in the clear.

    Each --id column is normalized, then a Fellegi-Sunter model (Splink: Jaro-Winkler on
    names, date and postal-code comparisons, trained on the file itself) scores pairs of
    rows; rows linked at --threshold or above are one person. The output is INPUT with a
    person_id column (random, the same for every row of one person). It is STILL PERSONAL
    DATA: keep it in-house. To carry this resolution into the clean room, tokenize it with
    `--id external_id=person_id`. The report shows clusters by size, the share of rows
    merged and a few examples with every value masked.
    """
    progress, end = _stages()
    try:
        result = dedupe_file(input_path, out, identifiers=identifiers, threshold=threshold,
                             profile=profile, region=region, delimiter=delimiter,
                             encoding=encoding, progress=progress)
    finally:
        end()
    doc = result.to_dict()
    if report:
        protocols.write_bytes_atomic(report, (json.dumps(doc, indent=2, sort_keys=True) + "\n")
                                     .encode(), mode=0o600)
    if as_json:
        emit_json(doc)
        return
    click.echo(f"wrote {out}: {doc['rows']:,} rows, {doc['people']:,} people "
               f"({doc['duplicate_rows']:,} rows merged into another, "
               f"{doc['share_merged']:.1%}); personal data: keep it in-house")
    sizes = " · ".join(f"{size} rows: {n:,}" for size, n in doc["clusters_by_size"].items())
    click.echo(f"people by number of rows: {sizes}")
    rows = [[column, q["kind"], f"{q['valid']:,}", f"{q['missing']:,}",
             f"{sum(q['invalid'].values()):,}"] for column, q in doc["identifiers"].items()]
    click.echo(table_text(["column", "kind", "valid", "missing", "invalid"], rows))
    if doc["examples"]:
        click.echo("examples of merged rows (values masked: the same letter is the same "
                   "value, - is missing):")
        for ex in doc["examples"]:
            cells = "; ".join(f"{c} {' '.join(v)}" for c, v in ex["columns"].items())
            click.echo(f"  rows {', '.join(map(str, ex['rows']))}: {cells}")
    click.echo(f"next: cleanroom tokenize {out} --id external_id={PERSON_COLUMN} ... "
               "(its duplicates then always merge in the clean room)")
