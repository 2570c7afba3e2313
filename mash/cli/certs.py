"""`mash certs`: a development CA and the certificates it issues."""

from __future__ import annotations

from pathlib import Path

import typer

from mash.cli.common import guarded
from mash.errors import ValidationError
from mash.identity import certs, crl
from mash.identity.names import Kind, PeerIdentity, check_agency_id, check_server_name

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


def _issued(paths: certs.IssuedPaths, identity: PeerIdentity) -> None:
    typer.echo(f"identity: {identity.uri}\ncertificate: {paths.cert}\n"
               f"key (keep secret): {paths.key}")


@app.command("issue")
def issue(
    agency: str = typer.Option(..., help="Agency id, e.g. police."),
    kind: str = typer.Option("agent", help="agent (the agency's agent) or client (an analyst's "
                             "CLI or a console's connection to the broker)."),
    client: bool = typer.Option(False, "--client", help="Same as --kind client."),
    directory: Path = DirOption,
    days: int = typer.Option(365, min=1, help="Validity in days."),
) -> None:
    """Issue an agent (default) or analyst-client certificate for an agency."""
    def run() -> tuple[certs.IssuedPaths, PeerIdentity]:
        chosen = "client" if client else kind
        if chosen not in ("agent", "client"):
            raise ValidationError(
                f"--kind {chosen!r} is not an agency certificate kind: use agent or client "
                "(brokers: `mash certs broker`, consoles: `mash certs console`)")
        identity = PeerIdentity(chosen, check_agency_id(agency))  # type: ignore[arg-type]
        return certs.issue(directory, identity, days=days), identity
    _issued(*guarded(run))


def _server(kind: Kind, name: str, host: list[str], ip: list[str], directory: Path,
            days: int) -> None:
    def run() -> tuple[certs.IssuedPaths, PeerIdentity]:
        identity = PeerIdentity(kind, check_server_name(name, kind))
        return certs.issue(directory, identity, dns_names=tuple(host), ip_addresses=tuple(ip),
                           days=days), identity
    _issued(*guarded(run))


@app.command("broker")
def broker(
    name: str = typer.Option("broker", help="The broker's name."),
    host: list[str] = typer.Option(["localhost"], help="DNS name agents and clients dial."),
    ip: list[str] = typer.Option(["127.0.0.1"], help="IP address agents and clients dial."),
    directory: Path = DirOption,
    days: int = typer.Option(365, min=1, help="Validity in days."),
) -> None:
    """Issue a broker's server certificate (agents and clients accept only this kind)."""
    _server("broker", name, host, ip, directory, days)


@app.command("console")
def console(
    name: str = typer.Option("console", help="The console's name."),
    host: list[str] = typer.Option(["localhost"], help="DNS name browsers open."),
    ip: list[str] = typer.Option(["127.0.0.1"], help="IP address browsers open."),
    directory: Path = DirOption,
    days: int = typer.Option(365, min=1, help="Validity in days."),
) -> None:
    """Issue a console's HTTPS certificate (no agent or client accepts it as a broker)."""
    _server("console", name, host, ip, directory, days)


@app.command("show")
def show(cert: Path = typer.Argument(..., exists=True, dir_okay=False)) -> None:
    """Print a certificate's MASH identity and validity."""
    for key, value in guarded(lambda: certs.describe(cert)).items():
        typer.echo(f"{key}: {value}")


@app.command("revoke")
def revoke(
    cert: Path | None = typer.Argument(None, dir_okay=False,
                                       help="The certificate to revoke (or give --serial)."),
    serial: str | None = typer.Option(None, help="Its serial (hex, from `mash certs show`)."),
    reason: str = typer.Option("unspecified", help=f"One of: {', '.join(crl.REASONS)}."),
    directory: Path = DirOption,
    days: int = typer.Option(crl.DEFAULT_DAYS, min=1,
                             help="Days until the list's next update."),
) -> None:
    """Revoke a certificate: add it to the CA's revocation list and sign the list afresh."""
    path, number = guarded(lambda: crl.revoke(
        directory, serial=crl.parse_serial(serial) if serial is not None else None, cert=cert,
        reason=reason, days=days))
    typer.echo(f"revoked serial {number:x}\nrevocation list: {path} (copy it to the broker "
               "and agents' revocation.crl; they reload it)")


@app.command("crl")
def sign_crl(
    directory: Path = DirOption,
    days: int = typer.Option(crl.DEFAULT_DAYS, min=1,
                             help="Days until the list's next update."),
) -> None:
    """Sign the revocation list afresh (a new next-update date); create it if absent."""
    path = guarded(lambda: crl.sign_crl(directory, days=days))
    listed = crl.load_crl(path)
    next_update = listed.next_update_utc.isoformat() if listed.next_update_utc else "-"
    typer.echo(f"revocation list: {path}\nrevoked: {len(list(listed))}\n"
               f"next update: {next_update}")
