"""`mash broker serve` and `mash agent serve`."""

from __future__ import annotations

from pathlib import Path

import typer

from mash import eventloop
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
    configure(cfg.log_level, service="broker", cache=True)
    guarded(lambda: eventloop.run(serve(cfg)))


@agent_app.command("serve")
def agent_serve(config: Path = typer.Option(..., "--config", help="agent.yaml")) -> None:
    """Load the agency's records, connect out to the broker and answer lookups."""
    from mash.agent import config as agent_config
    from mash.agent.service import serve

    cfg = guarded(lambda: agent_config.load(config))
    configure(cfg.log_level, service=f"agent-{cfg.agency}", cache=True)
    guarded(lambda: eventloop.run(serve(cfg)))


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


@agent_app.command("index")
def agent_index(config: Path = typer.Option(..., "--config", help="agent.yaml")) -> None:
    """Load every source and build the match index (saved to index.path when configured),
    with a progress bar. `agent serve` then starts from the saved index."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from mash.agent import config as agent_config
    from mash.agent.state import load_snapshot

    configure("warning", service="agent-index")
    cfg = guarded(lambda: agent_config.load(config))
    started = time.monotonic()
    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), transient=False) as bar:
        task = bar.add_task("indexing records", total=None)

        def progress(rows: int) -> None:
            bar.update(task, completed=rows)

        snapshot = guarded(lambda: load_snapshot(cfg.sources, cfg.index_path, progress))
        bar.update(task, total=snapshot.record_count, completed=snapshot.record_count)
    where = str(cfg.index_path) if cfg.index_path else "memory only (no index.path configured)"
    how = "reused (sources unchanged)" if snapshot.index_reused else "built"
    typer.echo(f"index {how}: {snapshot.record_count} records from {len(cfg.sources)} "
               f"source(s) in {time.monotonic() - started:.1f}s; saved to {where}")
