"""Commands a data team runs on its own machine: keys, normalize, tokenize, inspect."""

from __future__ import annotations

import json
from pathlib import Path

import click

import protocols


def _emit_json(doc: object) -> None:
    click.echo(json.dumps(doc, indent=2, sort_keys=True))


class _CollaborationId(click.ParamType):
    """A collaboration id: a UUID, printed back in canonical form."""

    name = "UUID"

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        try:
            return protocols.parse_collaboration_id(value)
        except protocols.KeyMaterialError:
            self.fail(f"{value!r} is not a UUID", param, ctx)


@click.group()
def keys() -> None:
    """Make and agree collaboration secrets and X25519 key pairs.

    Either one party runs `keys new` and hands the secret file to the other over a secure
    channel, or each party runs `keys pair`, they swap the .pub files, and each runs
    `keys agree` to derive the same secret without it ever being sent.
    """


@keys.command("new")
@click.option("--collaboration-id", type=_CollaborationId(), default=None,
              help="Collaboration id (UUID); a random one is generated when omitted.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Secret file to write (mode 0600).")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
def keys_new(collaboration_id: str | None, out: str, force: bool, as_json: bool) -> None:
    """Write a new collaboration secret file (32 random bytes, mode 0600)."""
    secret = protocols.new_secret(collaboration_id)
    protocols.write_secret(secret, out, force=force)
    doc = {"collaboration_id": secret.collaboration_id, "key_fingerprint": secret.fingerprint,
           "secret_file": out}
    if as_json:
        _emit_json(doc)
    else:
        click.echo(f"wrote {out} (mode 0600) for collaboration {secret.collaboration_id}, "
                   f"key fingerprint {secret.fingerprint}")


@keys.command("pair")
@click.option("--out", "prefix", required=True, metavar="PREFIX",
              help="Writes PREFIX.key (private, mode 0600) and PREFIX.pub (send this one).")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
def keys_pair(prefix: str, force: bool, as_json: bool) -> None:
    """Write an X25519 key pair: keep PREFIX.key, send PREFIX.pub to the other party."""
    key_path, pub_path = protocols.write_keypair(prefix, force=force)
    if as_json:
        _emit_json({"private_key_file": str(key_path), "public_key_file": str(pub_path)})
    else:
        click.echo(f"wrote {key_path} (private, mode 0600; keep it) and {pub_path} (public; "
                   "send it to the other party)")


@keys.command("agree")
@click.option("--private", "private_path", required=True, type=click.Path(dir_okay=False),
              help="Your private key file (PREFIX.key).")
@click.option("--public", "public_path", required=True, type=click.Path(dir_okay=False),
              help="The other party's public key file (their PREFIX.pub).")
@click.option("--collaboration-id", required=True, type=_CollaborationId(),
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
    doc = {"collaboration_id": secret.collaboration_id, "key_fingerprint": secret.fingerprint,
           "secret_file": out}
    if as_json:
        _emit_json(doc)
    else:
        click.echo(f"wrote {out} (mode 0600) for collaboration {secret.collaboration_id}, "
                   f"key fingerprint {secret.fingerprint} (the other party must see the same)")
