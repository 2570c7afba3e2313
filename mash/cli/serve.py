"""`mash broker serve` and `mash agent serve`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from mash.cli.common import guarded
from mash.logs import configure

broker_app = typer.Typer(help="Run the broker.", no_args_is_help=True)
agent_app = typer.Typer(help="Run an agency agent.", no_args_is_help=True)


@broker_app.command("serve")
def broker_serve(config: Path = typer.Option(..., "--config", help="broker.yaml")) -> None:
    """Serve the analyst API and accept agent streams until SIGTERM/SIGINT."""
    from mash.broker import config as broker_config
    from mash.broker.server import serve

    cfg = guarded(lambda: broker_config.load(config))
    configure(cfg.log_level, service="broker")
    guarded(lambda: asyncio.run(serve(cfg)))


@agent_app.command("serve")
def agent_serve(config: Path = typer.Option(..., "--config", help="agent.yaml")) -> None:
    """Load the agency's records, connect out to the broker and answer lookups."""
    from mash.agent import config as agent_config
    from mash.agent.service import serve

    cfg = guarded(lambda: agent_config.load(config))
    configure(cfg.log_level, service=f"agent-{cfg.agency}")
    guarded(lambda: asyncio.run(serve(cfg)))


@agent_app.command("check")
def agent_check(config: Path = typer.Option(..., "--config", help="agent.yaml")) -> None:
    """Validate agent.yaml and load every source once, reporting counts (no personal data)."""
    from mash.agent import config as agent_config
    from mash.agent.service import build_policy
    from mash.agent.sources import load_source

    configure("warning", service="agent-check")
    cfg = guarded(lambda: agent_config.load(config))
    policy = guarded(lambda: build_policy(cfg))
    if policy.store.reload():
        typer.echo(f"policy: revision {policy.revision}, signed by "
                   f"{policy.store.loaded().signer}")
    else:
        typer.echo(f"policy: NOT loaded ({policy.store.error}): the agent would share nothing")
    for source in cfg.sources:
        loaded = guarded(lambda s=source: load_source(s))
        rejected = sum(loaded.rows_rejected.values())
        typer.echo(f"{source.name}: {loaded.rows_read} rows, {len(loaded.records)} records, "
                   f"{rejected} rejected, as at {loaded.as_at:%Y-%m-%d %H:%M} UTC")
        for reason, count in sorted(loaded.rows_rejected.items()):
            typer.echo(f"  rejected {count}: {reason}")
        for reason, count in sorted(loaded.warnings.items()):
            typer.echo(f"  warning {count}: {reason}")
