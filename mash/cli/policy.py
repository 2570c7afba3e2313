"""`mash policy`: the IG lead's tools for agreements (check, explain, test, sign)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from mash import signing
from mash.cli.common import FAILED, USAGE, fail, guarded
from mash.files import write_atomic
from mash.policy import agreements as agreements_mod
from mash.policy import assertions as assertions_mod
from mash.policy import bundle as bundle_mod
from mash.policy.decisions import LoadedPolicy
from mash.policy.diff import Change
from mash.policy.diff import diff as diff_policies
from mash.policy.engine import RegoEngine
from mash.policy.errors import AgreementError
from mash.policy.explain import explain as explain_policy
from mash.policy.explain import headline as explain_headline
from mash.policy.model import Requester
from mash.policy.replay import Replay as ReplayResult
from mash.policy.testing import coverage, run_cases, run_rego_tests

if TYPE_CHECKING:
    from mash.agent.config import AgentConfig

app = typer.Typer(help="Agreements as policy: check, explain, test and sign them.",
                  no_args_is_help=True)
SrcOption = typer.Option(Path("policies"), "--src",
                         help="The policies folder (federation.yaml, mous/, mash/, tests/).")
TodayOption = typer.Option(None, "--today", help="Evaluate as on this date (YYYY-MM-DD).")
console = Console()


def _today(text: str | None) -> dt.date:
    if text is None:
        return dt.datetime.now(dt.UTC).date()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        fail(f"--today {text!r} is not a date like 2026-11-22", USAGE)


def _load(src: Path) -> LoadedPolicy:
    def run() -> LoadedPolicy:
        built = bundle_mod.build(src)
        return LoadedPolicy(built, RegoEngine(built))
    return guarded(run)


def _load_either(path: Path) -> LoadedPolicy:
    """A policies folder (built here) or a bundle file (parsed; its signature not checked)."""
    if path.is_dir():
        return _load(path)
    if not path.is_file():
        fail(f"{path}: neither a policies folder nor a bundle file", USAGE)

    def run() -> LoadedPolicy:
        parsed = bundle_mod.parse(path.read_bytes(), str(path))
        return LoadedPolicy(parsed, RegoEngine(parsed))
    return guarded(run)


def _print_changes(changes: list[Change], title: str) -> None:
    if not changes:
        console.print(f"{title}: no difference over the whole decision space")
        return
    table = Table(title=title)
    for column in ("Change", "Owner", "To", "Roles", "Purpose", "Stage", "Field", "Was",
                   "Now"):
        table.add_column(column, overflow="fold")
    for c in changes:
        table.add_row(c.kind, c.owner or "-", c.requester or "-", ", ".join(c.roles) or "-",
                      c.purpose or "-", c.stage or "-", c.field or "-", c.old or "-",
                      c.new or "-")
    console.print(table)
    console.print(f"{len(changes)} change(s)")


def _agent_configs(paths: list[Path]) -> list[AgentConfig]:
    from mash.agent import config as agent_config

    return [guarded(partial(agent_config.load, path)) for path in paths]


def _mapped_fields(agent_configs: list[Path]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for cfg in _agent_configs(agent_configs):
        out.setdefault(cfg.agency, set()).update(cfg.field_names)
    return out


@app.command("check")
def check(
    src: Path = SrcOption,
    agent_config: list[Path] = typer.Option(
        [], "--agent-config", help="An agent.yaml whose field mapping the agreements must fit "
                                   "(repeatable)."),
    today: str = TodayOption,
) -> None:
    """Validate every agreement: schema, parties, stages, dates, lawful basis, fields."""
    on = _today(today)
    federation, loaded = guarded(lambda: agreements_mod.load_all(src))
    from mash.agent.datecheck import date_transform_warnings

    policy = _load(src)
    agents = _agent_configs(agent_config)
    mapped: dict[str, set[str]] = {}
    for cfg in agents:
        mapped.setdefault(cfg.agency, set()).update(cfg.field_names)
    errors: list[str] = []
    warnings: list[str] = [w for cfg in agents for w in date_transform_warnings(
        policy.bundle, cfg.agency, cfg.sources)]
    table = Table(title=f"Agreements in {src} (as on {on})")
    table.add_column("Agreement", no_wrap=True)
    for column in ("Parties", "In force", "Review by", "Expires", "Status"):
        table.add_column(column)
    for agreement in loaded:
        d = agreement.data
        problems = agreements_mod.lawful_basis_problems(agreement)
        errors += problems
        dates = agreements_mod.date_warnings(agreement, on)
        status = "ok"
        if on.isoformat() > d["expires"]:
            status, errors = "EXPIRED", errors + dates
        elif dates:
            status, warnings = dates[0].split(": ", 1)[1], warnings + dates
        if problems:
            status = "NO LAWFUL BASIS"
        warnings += agreement.warnings
        for grant in d["grants"]:
            owner = grant["owner"]
            if owner in mapped:
                unknown = agreement.fields_released_by(owner) - mapped[owner]
                if unknown:
                    errors.append(f"{agreement.id}: {owner}'s agent does not map "
                                  f"{', '.join(sorted(unknown))}")
        table.add_row(agreement.id, ", ".join(d["parties"]), d["valid_from"], d["review_by"],
                      d["expires"], status)
    console.print(table)
    # Two agreements covering the same owner, requester, purpose and stage: the first by id
    # wins, which an IG lead should know about.
    index = bundle_mod.grant_index(policy.bundle.agreements)
    for owner, by_requester in index.items():
        for requester, by_purpose in by_requester.items():
            for purpose, by_stage in by_purpose.items():
                for stage, entries in by_stage.items():
                    if len(entries) > 1:
                        ids = ", ".join(e["agreement_id"] for e in entries)
                        warnings.append(f"{owner} -> {requester} {purpose}/{stage} is covered by "
                                        f"several agreements ({ids}); the first in force wins")
    rules = guarded(lambda: assertions_mod.load(src, policy.bundle))
    warnings += assertions_mod.unused_fields(rules, policy.bundle)
    proofs = guarded(lambda: assertions_mod.prove(policy, rules, on))
    if proofs:
        proven = Table(title=f"Rules that must never be broken ({src / 'assertions'})")
        for column in ("Rule", "Result"):
            proven.add_column(column)
        for proof in proofs:
            proven.add_row(proof.assertion.rule, proof.words() if proof.holds
                           else f"[red]{proof.words()}[/red]")
            if not proof.holds:
                errors.append(f"{proof.assertion.where}: {proof.assertion.rule!r} is broken: "
                              f"{proof.words().split(': ', 1)[1]}")
        console.print(proven)
    for message in warnings:
        console.print(f"[yellow]warning:[/yellow] {message}")
    for message in errors:
        console.print(f"[red]error:[/red] {message}")
    console.print(f"{len(loaded)} agreement(s), {len(federation.agencies)} agencies, revision "
                  f"{policy.revision}: {len(errors)} error(s), {len(warnings)} warning(s)")
    if errors:
        raise typer.Exit(FAILED)


@app.command("explain")
def explain(
    owner: str = typer.Option(..., help="The data owner, e.g. police."),
    requester: str = typer.Option("mash", help="The requesting agency."),
    role: str = typer.Option("analyst", help="The requester's role."),
    purpose: str = typer.Option(..., help="e.g. child_safeguarding."),
    stage: str = typer.Option(..., help="e.g. triage, research, s47."),
    src: Path = SrcOption,
    agent_config: Path = typer.Option(None, "--agent-config",
                                      help="Explain every field this agent maps."),
    today: str = TodayOption,
) -> None:
    """A plain table: each field, released or not, with which transform, and why."""
    policy = _load(src)
    fields = set()
    if agent_config is not None:
        fields = _mapped_fields([agent_config]).get(owner, set())
    fields = fields or (policy.bundle.released_fields(owner)
                        | policy.bundle.condition_fields(owner))
    who = Requester(requester, role, purpose, stage)
    result = guarded(lambda: explain_policy(policy, owner, who, _today(today), fields))
    gate = result.gate
    headline = explain_headline(result)
    console.print(f"[bold]{owner}[/bold] asked by {requester} ({role}) for {purpose} at "
                  f"{stage}: {headline}")
    if gate.allowed:
        console.print(f"Agreement: {gate.agreement_id}")
        for key, text in result.lawful_basis.items():
            console.print(f"  lawful basis ({key.replace('_', ' ')}): {text}")
        for line in result.restrictions:
            console.print(f"  {line}")
        for line in gate.warnings:
            console.print(f"[yellow]warning:[/yellow] {line}")
    table = Table()
    for column in ("Field", "Released", "Transform", "Parameters", "Why"):
        table.add_column(column, overflow="fold")
    for row in result.rows:
        table.add_row(row.field, "yes" if row.released else "no", row.transform or "-",
                      row.params or "-", row.why)
    console.print(table)


@app.command("diff")
def diff(
    old: Path = typer.Argument(..., help="The bundle or policies folder in force."),
    new: Path = typer.Argument(..., help="The bundle or policies folder proposed."),
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
    today: str = TodayOption,
) -> None:
    """Every difference NEW makes against OLD over the whole decision space."""
    on = _today(today)
    before, after = _load_either(old), _load_either(new)
    changes = guarded(lambda: diff_policies(before, after, on))
    if as_json:
        typer.echo(json.dumps({"old": before.revision, "new": after.revision,
                               "today": on.isoformat(),
                               "changes": [c.to_dict() for c in changes]}, indent=1))
        return
    _print_changes(changes, f"{old} ({before.revision}) -> {new} ({after.revision}), as on "
                            f"{on}")


@app.command("replay")
def replay(
    config: Path = typer.Option(..., "--config", exists=True, dir_okay=False,
                                help="The agent's agent.yaml (its audit: section is read)."),
    bundle: Path = typer.Option(..., "--bundle", help="The proposed bundle or policies folder."),
    since: str = typer.Option("", "--since", help="From this date or ISO time (UTC)."),
    until: str = typer.Option("", "--until", help="Up to this date (inclusive) or ISO time."),
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Re-decide the agent's audited answers under a proposed bundle: what would change."""
    from mash.agent import config as agent_config
    from mash.audit.report import parse_when
    from mash.policy.replay import replay as replay_audit

    cfg = guarded(lambda: agent_config.load(config))
    proposed = _load_either(bundle)
    start, end = guarded(lambda: (parse_when(since), parse_when(until, end=True)))

    def run() -> ReplayResult:
        with cfg.audit.open_store() as store:
            return replay_audit(proposed, store, agency=cfg.agency,
                                writer_id=cfg.audit.writer_id, since=start, until=end)
    result = guarded(run)
    if as_json:
        typer.echo(json.dumps({
            "agency": result.agency, "bundle": proposed.revision, "since": start,
            "until": end, "replayed": result.replayed, "changed": result.changed,
            "changes": [{**dataclasses.asdict(k), "count": n} for k, n in result.rows()],
            "not_redecided": dict(sorted(result.not_redecided.items()))}, indent=1))
        return
    table = Table(title=f"{result.agency}'s audited answers under {proposed.revision}"
                        + (f" since {since}" if since else ""))
    for column in ("Requester", "Purpose", "Stage", "Change", "Field", "Detail", "Answers"):
        table.add_column(column, overflow="fold")
    for k, n in result.rows():
        table.add_row(k.requester, k.purpose, k.stage, k.change, k.field or "-",
                      k.detail or "-", str(n))
    console.print(table)
    for why, n in sorted(result.not_redecided.items()):
        console.print(f"not re-decided: {n} ({why})")
    console.print(f"{result.replayed} answer(s) replayed: {result.changed} would change")


@app.command("test")
def test(
    src: Path = SrcOption,
    today: str = TodayOption,
    with_coverage: bool = typer.Option(False, "--coverage", help="Also list the grants, "
                                       "stages and released fields no table case exercises."),
) -> None:
    """Run the Rego library's test_ rules and the table cases in policies/tests/*.yaml."""
    policy = _load(src)
    results = run_rego_tests(src, policy.bundle)
    results += guarded(lambda: run_cases(src, policy, today=_today(today)))
    table = Table(title=f"Policy tests ({src})")
    for column in ("Suite", "Test", "Result", "Detail"):
        table.add_column(column)
    for r in results:
        table.add_row(r.suite, r.name, "[green]pass[/green]" if r.passed else "[red]FAIL[/red]",
                      "" if r.passed else r.detail)
    console.print(table)
    failed = [r for r in results if not r.passed]
    console.print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if with_coverage:
        gaps = guarded(lambda: coverage(src, policy, _today(today)))
        console.print(f"Coverage: the cases reach {gaps.exercised} agreement stage(s); not "
                      f"exercised by any case: {len(gaps.grants)} grant(s), "
                      f"{len(gaps.stages)} stage(s), {len(gaps.fields)} released field(s)")
        for label, items in (("grant", gaps.grants), ("stage", gaps.stages),
                             ("field", gaps.fields)):
            for item in items:
                console.print(f"  untested {label}: {item}", soft_wrap=True)
    if failed or not results:
        raise typer.Exit(FAILED)


@app.command("keygen")
def keygen(
    out: Path = typer.Option(..., help="Private key path; the .pub goes beside it."),
) -> None:
    """Create an IG lead's Ed25519 signing key pair."""
    private, public = signing.generate_key()
    write_atomic(out, private, private=True)
    write_atomic(out.with_suffix(".pub"), public)
    typer.echo(f"private key (keep secret): {out}\n"
               f"public key (list it in brokers' and agents' trusted_signers): "
               f"{out.with_suffix('.pub')}")


@app.command("sign")
def sign(
    key: Path = typer.Option(..., exists=True, dir_okay=False, help="Your private key."),
    signer: str = typer.Option(..., help="Your name and role, recorded in the signature."),
    out: Path = typer.Option(..., help="Bundle file to write; the signature goes beside it."),
    src: Path = SrcOption,
    serial: int = typer.Option(0, min=0, help="The bundle's serial (default: the time in "
                                              "milliseconds, or one more than the bundle at "
                                              "--out). Services refuse lower serials."),
) -> None:
    """Check and test the agreements, then write a signed bundle for brokers and agents."""
    policy = _load(src)
    _, loaded = guarded(lambda: agreements_mod.load_all(src))
    problems = [p for a in loaded for p in agreements_mod.lawful_basis_problems(a)]
    if problems:
        fail(f"not signing: {problems[0]}")
    failed = [r for r in run_rego_tests(src, policy.bundle)
              + guarded(lambda: run_cases(src, policy)) if not r.passed]
    if failed:
        fail(f"not signing: policy test {failed[0].suite}/{failed[0].name} fails: "
             f"{failed[0].detail}")
    on = dt.datetime.now(dt.UTC).date()
    proofs = guarded(lambda: assertions_mod.prove(
        policy, assertions_mod.load(src, policy.bundle), on))
    broken = [p for p in proofs if not p.holds]
    if broken:
        fail(f"not signing: {broken[0].assertion.where}: {broken[0].assertion.rule!r} is "
             f"broken: {broken[0].words().split(': ', 1)[1]}")
    private = guarded(lambda: signing.load_private_key(key))
    replaced = _replaced(out)
    previous = bundle_mod.serial_of(out)
    if serial and serial <= previous:
        fail(f"--serial {serial} is not above the serial of {out} ({previous}): brokers and "
             "agents that accepted it would refuse this bundle as a rollback", USAGE)
    chosen = serial or bundle_mod.next_serial(previous)
    entry: dict[str, object] = {
        "serial": chosen, "revision": policy.revision, "signer": signer,
        "signed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "replaces": replaced.revision if replaced else "",
        "assertions": [p.assertion.rule for p in proofs]}
    history: tuple[dict[str, object], ...] = ()
    if replaced is not None:
        changes = guarded(lambda: diff_policies(replaced, policy, on))
        _print_changes(changes, f"What this bundle changes against {out} "
                                f"({replaced.revision}), as on {on}")
        entry["changes"] = [c.to_dict() for c in changes]
        history = replaced.bundle.change_log
    else:
        entry["changes"] = []
        console.print(f"{out}: no bundle to replace; this is the first in its change log")
    raw = dataclasses.replace(policy.bundle, serial=chosen,
                              change_log=(*history, entry)).to_json()
    signature = guarded(lambda: signing.sign(raw, private, signer))
    guarded(lambda: signing.write_signed(out, raw, signature))
    typer.echo(f"signed revision {policy.revision} serial {chosen} "
               f"({len(policy.bundle.agreements)} agreements) as {signer}: {out}")


def _replaced(out: Path) -> LoadedPolicy | None:
    """The bundle a signing replaces, to diff against (None when there is none)."""
    if not out.exists():
        return None

    def run() -> LoadedPolicy:
        parsed = bundle_mod.parse(out.read_bytes(), str(out))
        return LoadedPolicy(parsed, RegoEngine(parsed))
    try:
        return run()
    except AgreementError as exc:
        fail(f"not signing: cannot show what this bundle changes: {exc} (move {out} aside "
             "to sign a first bundle)")


@app.command("show")
def show(
    bundle: Path = typer.Option(..., exists=True, dir_okay=False, help="A signed bundle."),
    trusted: list[Path] = typer.Option([], help="A trusted signer's public key (repeatable)."),
) -> None:
    """Print a bundle's revision, signer and agreements; verify it against trusted keys."""
    raw = bundle.read_bytes()
    parsed = guarded(lambda: bundle_mod.parse(raw, str(bundle)))
    sig_path = signing.signature_path(bundle)
    sig = sig_path.read_bytes() if sig_path.exists() else None
    if trusted:
        keys = [guarded(partial(signing.load_public_key, p)) for p in trusted]
        verified = guarded(lambda: signing.verify(raw, sig, keys))
        typer.echo(f"signature: valid, signed by {verified.signer} (key {verified.key_id}"
                   + (f", {verified.signed_at}" if verified.signed_at else "") + ")")
    else:
        typer.echo("signature: not checked (pass --trusted KEY.pub)")
    typer.echo(f"revision: {parsed.revision}\nserial: {parsed.serial}\nbuilt: {parsed.built_at}")
    for agreement_id, agreement in sorted(parsed.agreements.items()):
        typer.echo(f"  {agreement_id}: {agreement['title']} "
                   f"({agreement['valid_from']} to {agreement['expires']})")
    typer.echo("change log:" if parsed.change_log else "change log: none (signed before "
                                                        "change logs were kept)")
    for entry in parsed.change_log:
        changes = entry.get("changes") or []
        replaces = entry.get("replaces") or "nothing"
        typer.echo(f"  serial {entry.get('serial')} revision {entry.get('revision')} signed by "
                   f"{entry.get('signer')} at {entry.get('signed_at')}, replacing {replaces}: "
                   f"{len(changes)} change(s), {len(entry.get('assertions') or [])} rule(s) "
                   "proven")
        for change in changes:
            typer.echo(f"    {change.get('kind')}: {change.get('text')}")
