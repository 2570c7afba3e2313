"""The `mash` command."""

from __future__ import annotations

import os

# gRPC's C core logs in its own text format; our logs are JSON lines. Keep the core quiet
# unless an operator asks for it (GRPC_VERBOSITY=INFO) - must be set before grpc loads.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

import typer

from mash import __version__
from mash.cli import (
    approval,
    audit,
    blind,
    case,
    certs,
    console,
    login,
    lookup,
    policy,
    report,
    serve,
    token,
)

app = typer.Typer(
    name="mash",
    help="MASH Exchange: ask many agencies at once whether they know a person, safely.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(certs.app, name="certs")
app.add_typer(token.app, name="token")
app.add_typer(approval.app, name="approval")
app.add_typer(policy.app, name="policy")
app.add_typer(audit.app, name="audit")
app.add_typer(blind.app, name="blind")
app.add_typer(serve.broker_app, name="broker")
app.add_typer(serve.agent_app, name="agent")
app.add_typer(console.app, name="console")
app.add_typer(case.app, name="case")
app.command("lookup")(lookup.lookup)
app.command("agents")(lookup.agents)
app.command("report")(report.report)
app.command("login")(login.login)


@app.command("demo")
def demo(
    directory: str = typer.Option("var/demo", "--dir", help="Working directory for the demo."),
    keep: bool = typer.Option(False, help="Leave the generated files in place."),
    brokers: int = typer.Option(
        1, min=1, max=3, help="Brokers to start (2 or 3: one is then killed, and the next "
                              "lookup is answered by another)."),
) -> None:
    """Start a CA, a broker and agents with synthetic records; run lookups; stop cleanly."""
    from pathlib import Path

    from mash.demo.run import run_demo

    raise typer.Exit(run_demo(Path(directory), keep=keep, brokers=brokers))


@app.command("version")
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def main() -> None:
    app()
