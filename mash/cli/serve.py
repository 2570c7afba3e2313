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
def agent_serve(
    config: Path = typer.Option(..., "--config", help="agent.yaml"),
    accept_shrink: bool = typer.Option(
        False, "--accept-shrink",
        help="Accept this run's first complete load of the sources even if it has far fewer "
             "records than the last good load (beyond max_shrink_percent): for an extract "
             "that really did shrink. min_records and the other checks still apply."),
) -> None:
    """Load the agency's records, connect out to the broker and answer lookups."""
    from mash.agent import config as agent_config
    from mash.agent.service import serve

    cfg = guarded(lambda: agent_config.load(config))
    configure(cfg.log_level, service=f"agent-{cfg.agency}", cache=True)
    guarded(lambda: eventloop.run(serve(cfg, accept_shrink)))


@agent_app.command("check")
def agent_check(config: Path = typer.Option(..., "--config", help="agent.yaml")) -> None:
    """Validate agent.yaml and load every source once, reporting counts and whether the
    agent would answer from each load (no personal data). Exits 1 if it would not."""
    from mash.agent import config as agent_config
    from mash.agent import plausibility
    from mash.agent.service import build_policy
    from mash.agent.sources import SourceError, load_source
    from mash.audit import AuditKeys
    from mash.blind.config import BlindAgentKeys
    from mash.cli.common import fail
    from mash.identity.tokens import TokenVerifier

    configure("warning", service="agent-check")
    cfg = guarded(lambda: agent_config.load(config))
    # the key files the config names are read as the agent starts: read them here too
    guarded(lambda: TokenVerifier.from_config(cfg.auth))
    guarded(lambda: AuditKeys.read(cfg.audit))
    if cfg.blind is not None:
        blind = cfg.blind
        guarded(lambda: BlindAgentKeys.read(blind, agency=cfg.agency))
    policy = guarded(lambda: build_policy(cfg))
    policy_loaded = policy.store.reload()
    if policy_loaded:
        typer.echo(f"policy: revision {policy.revision}, signed by "
                   f"{policy.store.loaded().signer}")
        from mash.agent.datecheck import date_transform_warnings

        for line in date_transform_warnings(policy.store.loaded().bundle, cfg.agency,
                                            cfg.sources):
            typer.echo(f"warning: {line}")
    else:
        typer.echo(f"policy: NOT loaded ({policy.store.error}): the agent would share nothing")
    last_good = (plausibility.read_baseline(plausibility.baseline_path(cfg.index_path))
                 if cfg.index_path else {})
    refused: list[str] = []
    for source in cfg.sources:
        try:
            loaded = load_source(source)
        except SourceError as exc:
            typer.echo(f"{source.name}: REFUSED ({exc.problem}): {exc}")
            refused.append(source.name)
            continue
        rejected = sum(loaded.rows_rejected.values())
        typer.echo(f"{source.name}: {loaded.rows_read} rows, {loaded.record_count} records, "
                   f"{rejected} rejected, as at {loaded.as_at:%Y-%m-%d %H:%M} UTC")
        for reason, count in sorted(loaded.rows_rejected.items()):
            typer.echo(f"  rejected {count}: {reason}")
        for reason, count in sorted(loaded.warnings.items()):
            typer.echo(f"  warning {count}: {reason}")
        last = last_good.get(source.name)
        refusal = plausibility.check(source, loaded, last)
        if refusal is not None:
            typer.echo(f"  REFUSED ({refusal.problem}): {refusal.detail}")
            refused.append(source.name)
            continue
        against = (f"the last good load's {last.records} records" if last is not None
                   else "no last good load on record")
        typer.echo(f"  plausible: at least min_records ({source.min_records}), within "
                   f"max_rejected_percent ({source.max_rejected_percent:g}) and "
                   f"max_shrink_percent ({source.max_shrink_percent:g}) of {against}")
    if not policy_loaded:
        fail("the agent would share nothing: its policy bundle is not loaded (see above); "
             "every lookup would be answered NOT_CHECKED (policy unavailable)")
    if refused:
        fail(f"the agent would not answer from this load of {', '.join(refused)}: it would "
             "keep its last good load or, with none, answer NOT_CHECKED (data unavailable)")
    from mash.agent.state import load_snapshot

    snapshot = guarded(lambda: load_snapshot(cfg.sources, cfg.index_path,
                                             target_false_known=cfg.target_false_known,
                                             workers=cfg.index.build_workers))
    typer.echo(f"match index: {snapshot.record_count} records "
               f"({'reused' if snapshot.index_reused else 'built'})")
    print_calibration(snapshot.matcher.model)


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

        snapshot = guarded(lambda: load_snapshot(
            cfg.sources, cfg.index_path, progress,
            target_false_known=cfg.target_false_known,
            workers=cfg.index.build_workers))
        bar.update(task, total=snapshot.record_count, completed=snapshot.record_count)
    where = str(cfg.index_path) if cfg.index_path else "memory only (no index.path configured)"
    how = "reused (sources unchanged)" if snapshot.index_reused else "built"
    typer.echo(f"index {how}: {snapshot.record_count} records from {len(cfg.sources)} "
               f"source(s) in {time.monotonic() - started:.1f}s; saved to {where}")
    print_calibration(snapshot.matcher.model)


def print_calibration(model: object) -> None:
    """The index's calibration: thresholds, estimated false-known rates, what from."""
    from mash.matching.calibration import describe

    for line in describe(model):  # type: ignore[arg-type]
        typer.echo(f"  {line}")
