"""`mash token`: development analyst tokens."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

from mash.cli.common import USAGE, fail, guarded
from mash.files import write_atomic
from mash.identity import tokens
from mash.identity.dpop import ClientKey

app = typer.Typer(help="Development analyst tokens (JWT, ES256 or EdDSA).", no_args_is_help=True)


def _duration(text: str) -> dt.timedelta:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        value, unit = float(text[:-1]), units[text[-1]]
    except (KeyError, ValueError, IndexError):
        fail(f"duration {text!r} is not like 30m, 8h or 1d", USAGE)
    if value <= 0:
        fail("the duration must be positive", USAGE)
    return dt.timedelta(seconds=value * unit)


@app.command("keygen")
def keygen(
    out: Path = typer.Option(..., help="Private key path; the public key goes beside it (.pub)."),
    algorithm: str = typer.Option("ES256", help="ES256 or EdDSA."),
) -> None:
    """Create an identity provider's signing key pair."""
    private, public = guarded(lambda: tokens.generate_issuer_key(algorithm))
    write_atomic(out, private, private=True)
    pub = out.with_suffix(".pub")
    write_atomic(pub, public)
    typer.echo(f"private key (keep secret): {out}\npublic key (give to brokers and agents): {pub}")


@app.command("issue")
def issue(
    key: Path = typer.Option(..., exists=True, dir_okay=False, help="The issuer's private key."),
    issuer: str = typer.Option(..., help="Issuer name, as brokers and agents trust it."),
    subject: str = typer.Option(..., help="The analyst's user id."),
    agency: str = typer.Option(..., help="The analyst's agency id."),
    role: str = typer.Option("analyst", help="The analyst's role."),
    team: str = typer.Option("", help="The analyst's team."),
    ttl: str = typer.Option("8h", help="Lifetime, e.g. 30m, 8h."),
    audience: str = typer.Option(tokens.AUDIENCE, help="Audience claim."),
    bind_cert: Path = typer.Option(None, "--bind-cert", exists=True, dir_okay=False,
                                   help="Bind the token to this client certificate (PEM)."),
    bind_key: Path = typer.Option(
        None, "--bind-key", dir_okay=False,
        help="Bind the token to the proof key in this file (made if missing), with which "
             "every lookup is then signed: keep it beside the token file as FILE.key."),
) -> None:
    """Print a signed analyst token."""
    lifetime = _duration(ttl)
    proof_key = guarded(lambda: _proof_key(bind_key)) if bind_key else None
    token = guarded(lambda: tokens.issue_token(
        key.read_bytes(), issuer=issuer, subject=subject, agency=agency, role=role, team=team,
        ttl=lifetime, audience=audience,
        bind_certificate=bind_cert.read_bytes() if bind_cert else None,
        bind_key=proof_key.thumbprint if proof_key else ""))
    typer.echo(token)


def _proof_key(path: Path) -> ClientKey:
    """The proof key in `path`, or a new one written there (0600)."""
    if path.exists():
        return ClientKey.from_pem(path.read_bytes())
    key = ClientKey.generate()
    write_atomic(path, key.to_pem(), private=True)
    return key
