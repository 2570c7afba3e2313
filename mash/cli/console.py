"""`mash console`: the web console for analysts and IG leads."""

from __future__ import annotations

from pathlib import Path

import typer

from mash.cli.common import FAILED, fail, guarded
from mash.logs import configure

app = typer.Typer(help="The web console: lookups, agents, agreements and audit search.",
                  no_args_is_help=True)


@app.command("serve")
def serve(config: Path = typer.Option(..., "--config", help="console.yaml")) -> None:
    """Serve the console over HTTPS until SIGTERM/SIGINT."""
    try:
        from mash.console import config as console_config
        from mash.console.server import serve as run
    except ImportError as exc:
        fail(f"the console needs its extra packages ({exc.name}): "
             "pip install 'mash-exchange[console]'", FAILED)

    cfg = guarded(lambda: console_config.load(config))
    configure(cfg.log_level, service="console")
    guarded(lambda: run(cfg))


@app.command("keygen")
def keygen(out: Path = typer.Option(..., help="Where to write the session secret.")) -> None:
    """Write a random session secret (mode 0600) for console.yaml's session.secret_file."""
    from mash.console.config import write_secret

    path = guarded(lambda: write_secret(out))
    typer.echo(f"session secret (keep secret): {path}")


@app.command("case-key")
def case_key(out: Path = typer.Option(..., help="Where to write the case store key.")) -> None:
    """Write a random AES-256 key (mode 0600) for console.yaml's cases.key_file."""
    from mash.cases.store import write_case_key

    if out.exists():
        fail(f"{out} exists: a new key would make every stored case unreadable", FAILED)
    path = guarded(lambda: write_case_key(out))
    typer.echo(f"case store key (keep secret): {path}")
