"""`mash blind`: the keys behind blind lookups.

Each agency runs `keygen` and sends only its `<agency>.public.json` to the key authority; the
key custodian runs `linkage-key` once per epoch and hands the file to agents and analysts'
sites (never to the broker); the key authority runs `directory` to publish and sign every
agency's public keys and the epochs. Rotation: run `keygen --force` into a new folder, publish
the new keys with `directory --previous` (old keys keep their windows), then retire the old.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from mash import signing
from mash.blind import directory as directory_mod
from mash.blind import keys
from mash.cli.common import fail, guarded
from mash.errors import ConfigError
from mash.files import write_atomic

app = typer.Typer(help="Keys for blind lookups: agency keys, linkage keys, the key directory.",
                  no_args_is_help=True)


def _date(text: str | None, default: dt.date) -> dt.date:
    if text is None:
        return default
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        fail(f"{text!r} is not a date like 2026-12-01", 2)


@app.command("keygen")
def keygen(
    agency: str = typer.Option(..., help="Your agency id, e.g. police."),
    directory: Path = typer.Option(Path("keys"), "--dir", help="Where to write the keys."),
    force: bool = typer.Option(False, help="Replace existing keys (rotation)."),
) -> None:
    """Create this agency's sealing (X25519) and answer-signing (Ed25519) keys."""
    def run() -> Path:
        files = keys.generate_agency_keys(directory, agency, force=force)
        sealing, answer = keys.public_keys(files)
        public = directory / f"{agency}.public.json"
        write_atomic(public, (json.dumps({
            "agency": agency,
            "sealing": keys.b64(keys.raw(sealing)), "answer": keys.b64(keys.raw(answer)),
        }, indent=1) + "\n").encode())
        return public
    public = guarded(run)
    typer.echo(f"private keys (keep at the agency): {directory}/{agency}-sealing.key, "
               f"{directory}/{agency}-answer.key\n"
               f"public keys (send to the key authority): {public}")


@app.command("linkage-key")
def linkage_key(
    epoch: int = typer.Option(..., min=1, max=999999, help="The epoch number."),
    directory: Path = typer.Option(Path("keys/linkage"), "--dir"),
    force: bool = typer.Option(False, help="Replace an existing key for this epoch."),
) -> None:
    """Create a federation linkage key (agents and analysts' sites; never the broker)."""
    path = guarded(lambda: keys.generate_linkage_key(directory, epoch, force=force))
    typer.echo(f"linkage key for epoch {epoch}: {path} (hand it to every agent and analyst "
               "site over a secure channel; never to the broker)")


def _published(path: Path) -> tuple[str, bytes, bytes]:
    try:
        doc = json.loads(path.read_text())
        return str(doc["agency"]), keys.unb64(doc["sealing"]), keys.unb64(doc["answer"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not an agency's public key file ({exc})") from None


@app.command("directory")
def directory_cmd(
    public: list[Path] = typer.Option(..., exists=True, dir_okay=False,
                                      help="An agency's .public.json (repeatable)."),
    epoch: int = typer.Option(..., min=1, help="The linkage epoch to publish."),
    valid_from: str = typer.Option(None, help="First day the new keys and epoch are valid "
                                              "(default today)."),
    valid_days: int = typer.Option(365, min=1, help="How long they stay valid."),
    previous: Path = typer.Option(None, exists=True, dir_okay=False,
                                  help="The directory in force: its keys and epochs are kept."),
    key: Path = typer.Option(..., exists=True, dir_okay=False,
                             help="The key authority's private key (mash policy keygen)."),
    signer: str = typer.Option(..., help="Who signs, recorded in the signature."),
    out: Path = typer.Option(..., help="Directory file to write; the .sig goes beside it."),
) -> None:
    """Publish every agency's public keys and the linkage epochs, signed."""
    def run() -> int:
        start = _date(valid_from, dt.date.today())
        end = start + dt.timedelta(days=valid_days)
        doc = {"agencies": {}, "epochs": [], "version": 0}
        if previous is not None:
            doc = json.loads(previous.read_text())
            directory_mod.parse(previous.read_bytes())  # refuse to extend a malformed one
        for path in public:
            agency, sealing, answer = _published(path)
            entry = doc["agencies"].setdefault(agency, {"sealing": [], "answer": []})
            for kind, raw in (("sealing", sealing), ("answer", answer)):
                if all(k["key_id"] != keys.key_id(raw) for k in entry[kind]):
                    entry[kind].append(directory_mod.entry(raw, start, end))
        if all(int(e["epoch"]) != epoch for e in doc["epochs"]):
            doc["epochs"].append({"epoch": epoch, "not_before": start.isoformat(),
                                  "not_after": end.isoformat()})
        doc.update(format=directory_mod.FORMAT, version=int(doc["version"]) + 1,
                   issued_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
        raw = json.dumps(doc, indent=1, sort_keys=True).encode()
        directory_mod.parse(raw)
        signing.write_signed(out, raw, signing.sign(raw, signing.load_private_key(key), signer))
        return int(doc["version"])
    version = guarded(run)
    typer.echo(f"key directory version {version} written to {out}, signed by {signer}")


@app.command("show")
def show(
    directory: Path = typer.Option(..., exists=True, dir_okay=False),
    trusted: list[Path] = typer.Option(..., exists=True, dir_okay=False,
                                       help="The key authority's public key (repeatable)."),
) -> None:
    """Verify the key directory's signature and list what it publishes."""
    signers = [signing.load_public_key(p) for p in trusted]
    loaded = guarded(lambda: directory_mod.load(directory, signers))
    table = Table(title=f"Federation key directory v{loaded.version} ({loaded.issued_at})")
    for column in ("agency", "kind", "key id", "valid from", "valid to"):
        table.add_column(column)
    for kind, published in (("sealing", loaded.sealing), ("answer", loaded.answer)):
        for agency in sorted(published):
            for k in published[agency]:
                table.add_row(agency, kind, k.key_id, k.not_before.isoformat(),
                              k.not_after.isoformat())
    for e in loaded.epochs:
        table.add_row("(federation)", f"linkage epoch {e.epoch}", "", e.not_before.isoformat(),
                      e.not_after.isoformat())
    Console().print(table)
