"""Commands a data team runs on its own machine: keys, normalize, tokenize, inspect."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

import normalize
import protocols

from ._group import LazyGroup
from ._output import emit_json, table_text
from ._params import CollaborationIdParam, F, KindColumnParam, MatchKeyParam, profile_option


@click.group(cls=LazyGroup, lazy={"identity": "._server:keys_identity"})
def keys() -> None:
    """Make and agree collaboration secrets and X25519 key pairs.

    Either one party runs `keys new` and hands the secret file to the other over a secure
    channel, or each party runs `keys pair`, they swap the .pub files, and each runs
    `keys agree` to derive the same secret without it ever being sent.
    """


@keys.command("new")
@click.option("--collaboration-id", type=CollaborationIdParam(), default=None,
              help="Collaboration id (UUID); a random one is generated when omitted.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Secret file to write (mode 0600).")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
def keys_new(collaboration_id: str | None, out: str, force: bool, as_json: bool) -> None:
    """Write a new collaboration secret file (32 random bytes, mode 0600)."""
    secret = protocols.new_secret(collaboration_id)
    protocols.write_secret(secret, out, force=force)
    _secret_written(secret, out, as_json, "")


@keys.command("pair")
@click.option("--out", "prefix", required=True, metavar="PREFIX",
              help="Writes PREFIX.key (private, mode 0600) and PREFIX.pub (send this one).")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
def keys_pair(prefix: str, force: bool, as_json: bool) -> None:
    """Write an X25519 key pair: keep PREFIX.key, send PREFIX.pub to the other party."""
    key_path, pub_path = protocols.write_keypair(prefix, force=force)
    if as_json:
        emit_json({"private_key_file": str(key_path), "public_key_file": str(pub_path)})
    else:
        click.echo(f"wrote {key_path} (private, mode 0600; keep it) and {pub_path} (public; "
                   "send it to the other party)")


@keys.command("agree")
@click.option("--private", "private_path", required=True, type=click.Path(dir_okay=False),
              help="Your private key file (PREFIX.key).")
@click.option("--public", "public_path", required=True, type=click.Path(dir_okay=False),
              help="The other party's public key file (their PREFIX.pub).")
@click.option("--collaboration-id", required=True, type=CollaborationIdParam(),
              help="The collaboration id both parties agreed on (UUID).")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Secret file to write (mode 0600).")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
def keys_agree(private_path: str, public_path: str, collaboration_id: str, out: str,
               force: bool, as_json: bool) -> None:
    """Derive the shared collaboration secret from your private key and their public key.

    Both parties get byte-identical secret files; compare the printed key fingerprints
    (not secret) to confirm.
    """
    if Path(out).exists() and not force:
        raise protocols.KeyMaterialError(f"{out}: already exists; refusing to overwrite "
                                         "(use --force)")
    secret = protocols.agree_secret(protocols.load_private_key(private_path),
                                    protocols.load_public_key(public_path), collaboration_id)
    protocols.write_secret(secret, out, force=force)
    _secret_written(secret, out, as_json, " (the other party must see the same)")


def _secret_written(secret: protocols.CollaborationSecret, out: str, as_json: bool,
                    note: str) -> None:
    """Say which secret file was written: its collaboration and key fingerprint (not secret)."""
    if as_json:
        emit_json({"collaboration_id": secret.collaboration_id,
                   "key_fingerprint": secret.fingerprint, "secret_file": out})
    else:
        click.echo(f"wrote {out} (mode 0600) for collaboration {secret.collaboration_id}, "
                   f"key fingerprint {secret.fingerprint}{note}")


def _progress(label: str) -> Callable[[int], None] | None:
    """A one-line row counter on stderr, shown only on a terminal after a couple of seconds."""
    if not sys.stderr.isatty():
        return None
    start = time.monotonic()

    def show(rows: int) -> None:
        if time.monotonic() - start > 2:
            click.echo(f"\r{label} {rows:,} rows ...", nl=False, err=True)

    return show


def _end_progress(progress: Callable[[int], None] | None) -> None:
    if progress is not None:
        click.echo("\r\033[K", nl=False, err=True)


def _write_report(path: str | None, doc: dict[str, Any]) -> None:
    if path:
        protocols.write_bytes_atomic(path, (json.dumps(doc, indent=2, sort_keys=True) + "\n")
                                     .encode(), mode=0o644)


def _invalid_text(invalid: dict[str, int]) -> str:
    total = sum(invalid.values())
    if not total:
        return "0"
    by = ", ".join(f"{reason} {n:,}" for reason, n in sorted(invalid.items(),
                                                            key=lambda kv: -kv[1]))
    return f"{total:,} ({by})"


_INPUT_HELP = "Input: CSV (header row required) or Parquet."
_common_input = [
    profile_option(),
    click.option("--region", default="US", show_default=True,
                 help="Default country (ISO code) for phone numbers without a +country code."),
    click.option("--delimiter", default=",", show_default=True,
                 callback=lambda ctx, param, v: "\t" if v in ("\\t", "tab") else v,
                 help="CSV field delimiter (`tab` or \\t for tabs)."),
    click.option("--encoding", default="utf-8", show_default=True,
                 help="Text encoding of a CSV input (e.g. latin-1, cp1252)."),
]


def _with_common(fn: F) -> F:
    """Add the options every file-reading command shares."""
    for opt in reversed(_common_input):
        fn = opt(fn)
    return fn


@click.command("tokenize")
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option("--party", required=True, help="Your party's name, recorded in the manifest.")
@click.option("--secret-file", required=True, type=click.Path(dir_okay=False),
              help="The collaboration secret file (from `keys new` or `keys agree`).")
@click.option("--id", "identifiers", type=KindColumnParam(normalize.KINDS), multiple=True,
              help="An identifier to tokenize: KIND=COLUMN (repeatable), e.g. email=Email.")
@click.option("--match-key", "match_keys", type=MatchKeyParam(), multiple=True,
              help="A token of several fields: NAME=KIND+KIND... (repeatable); a part is a "
                   "kind given with --id, or KIND:COLUMN.")
@click.option("--attr", "attributes", multiple=True, metavar="COLUMN",
              help="A column to share in clear (segment, number); repeatable.")
@click.option("--allow-identifying-attr", is_flag=True,
              help="Share an attribute even if its values look like emails or phones.")
@click.option("--fuzzy", is_flag=True,
              help="Also tokenize fuzzy-tolerant forms of the name, date of birth, address and "
                   "email --id columns (phonetic codes, nickname, initial, year-month, ...), "
                   "one token column each, for probabilistic matching.")
@_with_common
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Token file to write (Parquet).")
@click.option("--report", "report", type=click.Path(dir_okay=False),
              help="Also write the quality report as JSON here.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
def tokenize(input_path: str, party: str, secret_file: str,
             identifiers: tuple[tuple[str, str], ...], match_keys: tuple[Any, ...],
             attributes: tuple[str, ...], allow_identifying_attr: bool, fuzzy: bool,
             profile: str, region: str, delimiter: str, encoding: str, out: str,
             report: str | None, as_json: bool) -> None:
    """Turn INPUT's identifiers into keyed tokens: a token file that may leave the building.

    Each identifier is normalized, then HMAC-SHA256'd with a key derived from the
    collaboration secret; row ids are random and rows shuffled. Only tokens and the --attr
    columns leave, in clear. Send the token file to the clean-room engine only, never to
    the other party: anyone holding the secret can test guesses against the tokens.

    With --fuzzy, each name, date-of-birth, address and email column also gets derived-form
    tokens (each under its own key), so that the engine's probabilistic matching can see
    near-misses agree; see the README on what per-field tokens reveal to the engine.
    """
    secret = protocols.load_secret(secret_file)
    progress = _progress("tokenized")
    try:
        result = protocols.tokenize_file(
            input_path, out, party=party, secret=secret, identifiers=identifiers,
            match_keys=match_keys, attributes=attributes, profile=profile, region=region,
            delimiter=delimiter, encoding=encoding,
            allow_identifying_attr=allow_identifying_attr, fuzzy=fuzzy, progress=progress)
    finally:
        _end_progress(progress)
    doc = result.to_dict()
    _write_report(report, doc)
    if as_json:
        emit_json(doc)
        return
    click.echo(f"wrote {out}: {doc['row_count']:,} rows, party {doc['party']}, collaboration "
               f"{doc['collaboration_id']}, key fingerprint {doc['key_fingerprint']}")
    rows = [[name, "+".join(q["kinds"]) + (f" ({q['form']})" if "form" in q else ""),
             f"{q['valid']:,}", f"{q['missing']:,}", _invalid_text(q["invalid"]),
             f"{q['duplicate_rows']:,}" if "duplicate_rows" in q else "-"]
            for name, q in doc["identifiers"].items()]
    click.echo(table_text(["token", "kinds", "valid", "missing", "invalid (by reason)",
                       "rows sharing a token"], rows))
    if doc["attributes"]:
        click.echo("attributes in clear: " + ", ".join(f"{a} ({t})"
                                                       for a, t in doc["attributes"].items()))


@click.command("normalize")
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option("--id", "identifiers", type=KindColumnParam(normalize.KINDS), multiple=True,
              required=True,
              help="A column to normalize: KIND=COLUMN (repeatable), e.g. phone=Mobile.")
@click.option("--keep", multiple=True, metavar="COLUMN",
              help="A column to copy unchanged (e.g. your customer id); repeatable.")
@_with_common
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Output file: CSV if it ends in .csv, else Parquet (mode 0600).")
@click.option("--report", "report", type=click.Path(dir_okay=False),
              help="Also write the quality report as JSON here.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
def normalize_cmd(input_path: str, identifiers: tuple[tuple[str, str], ...], keep: tuple[Any, ...],
                  profile: str, region: str, delimiter: str, encoding: str, out: str,
                  report: str | None, as_json: bool) -> None:
    """Normalize INPUT's identifier columns and report their quality.

    The output holds each column in canonical form (plus COLUMN_reason saying why a value
    was rejected), in input order. It is STILL PERSONAL DATA: it stays with its owner and
    never goes to the other party or the engine; use `tokenize` for what may leave.
    """
    progress = _progress("normalized")
    try:
        result = protocols.normalize_file(
            input_path, out, identifiers=identifiers, keep=keep, profile=profile,
            region=region, delimiter=delimiter, encoding=encoding, progress=progress)
    finally:
        _end_progress(progress)
    doc = result.to_dict()
    _write_report(report, doc)
    if as_json:
        emit_json(doc)
        return
    click.echo(f"wrote {out}: {doc['row_count']:,} rows (personal data: keep it in-house)")
    rows = [[column, q["kind"], f"{q['valid']:,}", f"{q['missing']:,}",
             _invalid_text(q["invalid"]), f"{q['repeated_rows']:,}"]
            for column, q in doc["columns"].items()]
    click.echo(table_text(["column", "kind", "valid", "missing", "invalid (by reason)",
                       "rows repeating a value"], rows))


@click.command("inspect")
@click.argument("tokens", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print everything as JSON on stdout.")
def inspect(tokens: str, as_json: bool) -> None:
    """Show a token file's manifest and column statistics (never a token or a secret)."""
    doc = protocols.inspect_token_file(tokens)
    if as_json:
        emit_json(doc)
        return
    m = doc["manifest"]
    click.echo(f"{doc['file']}: {doc['rows']:,} rows, {doc['size_bytes']:,} bytes")
    for key in ("party", "collaboration_id", "protocol", "key_fingerprint", "profile", "region",
                "created", "format_version"):
        click.echo(f"  {key}: {m.get(key)}")
    if m.get("library_versions"):
        click.echo("  library versions: " + ", ".join(
            f"{k} {v}" for k, v in sorted(m["library_versions"].items())))
    rows = []
    for name, col in doc["columns"].items():
        q = m.get("quality", {}).get(name, {})
        kinds = "+".join(m["identifiers"].get(name, {}).get("kinds", []))
        rows.append([name, col["role"], kinds, col["type"], f"{col['non_null']:,}",
                     f"{col['distinct']:,}",
                     _invalid_text(q["invalid"]) if "invalid" in q else "",
                     f"{q['duplicate_rows']:,}" if "duplicate_rows" in q else ""])
    click.echo(table_text(["column", "role", "kinds", "type", "non-null", "distinct",
                       "invalid (by reason)", "rows sharing a token"], rows))
