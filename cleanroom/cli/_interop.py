"""Bridges to other clean rooms: `cleanroom c3r encrypt|decrypt` and `cleanroom export-hashes`."""

from __future__ import annotations

import click

import normalize
from protocols import c3r as _c3r
from protocols import platform as _platform

from ._output import emit_json
from ._params import CollaborationIdParam, KindColumnParam, profile_option


def _kinds() -> tuple[str, ...]:
    return tuple(sorted(normalize.KINDS))


def _export_kinds() -> tuple[str, ...]:
    return tuple(sorted({c.kind for p in _platform.PLATFORMS for c in _platform.upload_columns(p)}))


@click.group()
def c3r() -> None:
    """AWS Clean Rooms client-side encryption, byte-compatible with AWS's C3R client.

    `encrypt` writes fingerprint (HMAC), sealed (AES-GCM) and cleartext columns exactly as C3R
    does, optionally normalizing identifiers first (C3R itself does not, so
    Jane.Doe@Gmail.com and jane.doe@gmail.com would never match). `decrypt` turns the sealed
    columns of a result file back into cleartext. The shared secret is read from the
    environment variable C3R_SHARED_SECRET (standard Base64, at least 32 bytes), as C3R does.
    """


@c3r.command("encrypt")
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option("--schema", "schema_path", required=True, type=click.Path(dir_okay=False),
              help="C3R schema JSON (headerRow, columns: sourceHeader, targetHeader, type, pad).")
@click.option("--id", "collaboration_id", required=True, type=CollaborationIdParam(),
              help="Collaboration id (UUID); the HKDF salt.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Output file, same format as INPUT (.csv or .parquet).")
@click.option("--allow-cleartext", is_flag=True, help="Collaboration allows cleartext columns.")
@click.option("--allow-duplicates", is_flag=True,
              help="Collaboration allows duplicate values in fingerprint columns.")
@click.option("--allow-joins-on-columns-with-different-names", "allow_joins", is_flag=True,
              help="One fingerprint key for all columns instead of one per column name.")
@click.option("--preserve-nulls", is_flag=True,
              help="NULL stays NULL (else: a random token, or an encrypted NULL).")
@click.option("--normalize", "normalize_specs", multiple=True, metavar="SOURCE_HEADER=KIND",
              help="Normalize a source column as identifier KIND (email, phone, first_name, ...) "
                   "before encryption; repeatable. Invalid values become NULL and are counted.")
@profile_option("Normalization profile for --normalize.")
@click.option("--region", default="US", show_default=True,
              help="Default phone region for --normalize (ISO 3166 alpha-2).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable summary on stdout.")
def c3r_encrypt(input_path: str, schema_path: str, collaboration_id: str, out: str,
                allow_cleartext: bool, allow_duplicates: bool, allow_joins: bool,
                preserve_nulls: bool, normalize_specs: tuple[str, ...], profile: str,
                region: str, as_json: bool) -> None:
    """Encrypt INPUT (CSV or Parquet) for AWS Clean Rooms as the C3R client would.

    Rows are shuffled (ordered by a random per-row nonce, as C3R does); nothing is written
    unless the whole table encrypts.
    """
    spec = KindColumnParam(_kinds(), kind_first=False)
    pairs = [spec.convert(s, None, None) for s in normalize_specs]
    settings = _c3r.Settings(allow_cleartext, allow_duplicates, allow_joins, preserve_nulls)
    schema = _c3r.Schema.from_path(schema_path)
    report = _c3r.encrypt_file(input_path, out, schema=schema, secret=_c3r.secret_from_env(),
                               collaboration_id=collaboration_id, settings=settings,
                               normalize=dict(pairs) or None, profile=profile, region=region)
    doc = {"output": out, "rows": report.rows, "columns": list(report.columns),
           "format": report.file_format, "normalization_rejected": report.rejected}
    if as_json:
        emit_json(doc)
        return
    click.echo(f"wrote {out}: {report.rows} rows, {len(report.columns)} columns "
               f"({report.file_format}, rows shuffled)")
    for column, reasons in report.rejected.items():
        total = sum(reasons.values())
        detail = ", ".join(f"{r} {n}" for r, n in reasons.items())
        click.echo(f"normalized {column}: {total} value(s) rejected and left NULL"
                   + (f" ({detail})" if detail else ""))


@c3r.command("decrypt")
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option("--id", "collaboration_id", required=True, type=CollaborationIdParam(),
              help="Collaboration id (UUID) the file was encrypted for.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Output file, same format as INPUT (.csv or .parquet).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable summary on stdout.")
def c3r_decrypt(input_path: str, collaboration_id: str, out: str, as_json: bool) -> None:
    """Decrypt the sealed columns of a C3R result file (secret from C3R_SHARED_SECRET).

    Fingerprint columns cannot be decrypted and pass through unchanged, as with C3R.
    """
    rows = _c3r.decrypt_file(input_path, out, secret=_c3r.secret_from_env(),
                             collaboration_id=collaboration_id)
    if as_json:
        emit_json({"output": out, "rows": rows})
    else:
        click.echo(f"wrote {out}: {rows} rows decrypted")


_EXPORT_HELP = """Write a platform-ready hashed customer list from INPUT (CSV or Parquet).

Each identifier is normalized with the platform's own rules, then SHA-256 hashed and encoded
as the platform expects (uid2: Base64; google, meta: lowercase hex). Rows whose identifiers
fail normalization are left out and counted by reason; rejected values are never written.

\b
Output columns (KIND -> column):
  uid2    email -> email_hash, phone -> phone_hash
  google  email -> Email, phone -> Phone, first_name -> First Name,
          last_name -> Last Name, country -> Country (not hashed),
          postal_code -> Zip (not hashed), maid -> Mobile Device ID (not hashed)
  meta    email -> email, phone -> phone, first_name -> fn, last_name -> ln,
          city -> ct, state -> st, postal_code -> zip, country -> country,
          dob -> dob, gender -> gen, external_id -> extern_id,
          maid -> madid (not hashed)
"""


@click.command("export-hashes", help=_EXPORT_HELP)
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option("--platform", "platform_name", required=True,
              type=click.Choice(_platform.PLATFORMS), help="Target platform.")
@click.option("--id", "ids", required=True, multiple=True, metavar="KIND=COLUMN",
              type=KindColumnParam(_export_kinds(), kind_first=True),
              help="An identifier kind and the input column holding it; repeatable.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Output CSV file.")
@click.option("--region", default="US", show_default=True,
              help="Default phone region (ISO 3166 alpha-2) for numbers without '+'.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable summary on stdout.")
def export_hashes(input_path: str, platform_name: str, ids: tuple[tuple[str, str], ...],
                  out: str, region: str, as_json: bool) -> None:
    kinds = [k for k, _ in ids]
    if len(set(kinds)) != len(kinds):
        raise click.BadParameter("each KIND may be given once", param_hint="--id")
    report = _platform.export_hashes(input_path, out, platform=platform_name, ids=dict(ids),
                                     region=region)
    doc = {"output": out, "platform": platform_name, "rows_in": report.rows_in,
           "rows_out": report.rows_out, "columns": list(report.columns),
           "rejected": report.rejected}
    if as_json:
        emit_json(doc)
        return
    click.echo(f"wrote {out}: {report.rows_out} of {report.rows_in} rows for {platform_name} "
               f"({', '.join(report.columns)})")
    for reason, n in report.rejected.items():
        click.echo(f"rejected {n} row(s): {reason}")
