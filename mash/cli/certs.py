"""`mash certs`: a development CA and the certificates it issues."""

from __future__ import annotations

from pathlib import Path

import typer

from mash.cli.common import guarded
from mash.identity import certs
from mash.identity.names import PeerIdentity, check_agency_id

app = typer.Typer(help="Development CA and certificates (agency identity lives in the URI SAN).",
                  no_args_is_help=True)
DirOption = typer.Option(Path("certs"), "--dir", help="Where the CA and certificates live.")


@app.command("init")
def init(directory: Path = DirOption,
         days: int = typer.Option(3650, min=1, help="CA validity in days."),
         force: bool = typer.Option(False, help="Replace an existing CA.")) -> None:
    """Create a development certificate authority."""
    paths = guarded(lambda: certs.create_ca(directory, days=days, force=force))
    typer.echo(f"CA certificate: {paths.cert}\nCA key (keep secret): {paths.key}")


@app.command("issue")
def issue(
    agency: str = typer.Option(..., help="Agency id, e.g. police."),
    client: bool = typer.Option(False, "--client",
                                help="An analyst client certificate instead of an agent's."),
    directory: Path = DirOption,
    days: int = typer.Option(365, min=1, help="Validity in days."),
) -> None:
    """Issue an agent (default) or analyst-client certificate for an agency."""
    def run() -> certs.IssuedPaths:
        check_agency_id(agency)
        return certs.issue(directory, PeerIdentity("client" if client else "agent", agency),
                           days=days)
    paths = guarded(run)
    typer.echo(f"certificate: {paths.cert}\nkey (keep secret): {paths.key}")


@app.command("broker")
def broker(
    name: str = typer.Option("broker", help="The broker's name."),
    host: list[str] = typer.Option(["localhost"], help="DNS name agents and clients dial."),
    ip: list[str] = typer.Option(["127.0.0.1"], help="IP address agents and clients dial."),
    directory: Path = DirOption,
    days: int = typer.Option(365, min=1, help="Validity in days."),
) -> None:
    """Issue the broker's server certificate."""
    paths = guarded(lambda: certs.issue(directory, PeerIdentity("broker", name),
                                        dns_names=tuple(host), ip_addresses=tuple(ip), days=days))
    typer.echo(f"certificate: {paths.cert}\nkey (keep secret): {paths.key}")


@app.command("show")
def show(cert: Path = typer.Argument(..., exists=True, dir_okay=False)) -> None:
    """Print a certificate's MASH identity and validity."""
    for key, value in guarded(lambda: certs.describe(cert)).items():
        typer.echo(f"{key}: {value}")
