"""`mash audit`: verify the trail, answer subject access requests, export, notify, purge.

Every command reads the `audit:` section of a broker or agent config (--config, or the
MASH_AUDIT_CONFIG environment variable). `verify` can also run without secrets, from a store URL
and public keys, e.g. by an auditor.
"""

from __future__ import annotations

import dataclasses
import functools
import getpass
import json
import sys
from pathlib import Path

import typer

from mash.audit.checkpoint import SignedCheckpoint, Verifier, load_public_key
from mash.audit.config import AuditConfig, AuditKeys
from mash.audit.errors import AuditError
from mash.audit.keys import write_keys
from mash.audit.notifications import Notice, list_notices, mark_seen
from mash.audit.proof import check as check_inclusion
from mash.audit.proof import prove as prove_entry
from mash.audit.report import (
    Criteria,
    Found,
    outcome_text,
    parse_when,
    read_lookup_ids,
    search,
    write_csv,
)
from mash.audit.report import write_json as write_json_report
from mash.audit.retention import RetentionPolicy, preview, purge
from mash.audit.search_terms import search_criteria
from mash.audit.store import AuditStore, open_store
from mash.audit.verify import ChainReport, verify_store
from mash.audit.witness import load_heads
from mash.cli.common import FAILED, USAGE, fail, guarded
from mash.errors import ConfigError, ValidationError

app = typer.Typer(help="Tamper-evident audit: verify, search (subject access), export, "
                       "owner notifications, retention.", no_args_is_help=True)

ConfigOption = typer.Option(None, "--config", envvar="MASH_AUDIT_CONFIG",
                            help="Broker or agent config with an audit: section. "
                                 "Env: MASH_AUDIT_CONFIG.")
SinceOption = typer.Option("", "--since", help="From this date or ISO time (UTC).")
UntilOption = typer.Option("", "--until", help="Up to this date (inclusive) or ISO time.")
WriterOption = typer.Option("", "--writer", help="Only this writer's entries.")


def _config(path: Path | None) -> AuditKeys:
    """The `audit:` section of --config, with its key files read (errors name the key)."""
    if path is None:
        fail("no audit config: pass --config broker.yaml or set MASH_AUDIT_CONFIG", USAGE)
    return guarded(lambda: AuditKeys.read(AuditConfig.load(path)))


def _store(cfg: AuditKeys) -> AuditStore:
    return guarded(cfg.open_store)


# keys


@app.command("keygen")
def keygen(directory: Path = typer.Option(..., "--dir", help="Where to write the keys."),
           force: bool = typer.Option(False, help="Replace existing keys (old entries become "
                                                  "unsearchable).")) -> None:
    """Create a writer's keyed-hash key and Ed25519 checkpoint signing key."""
    files = guarded(lambda: write_keys(directory, force=force))
    typer.echo(f"hash key (keep secret, share with writers searched together): {files.hash_key}"
               f"\nsigning key (keep secret): {files.signing_key}"
               f"\npublic key (give to auditors and other writers): {files.public_key}"
               f"\nkey id: {files.key_id}")


# verify and checkpoints


def _print_report(report: ChainReport) -> None:
    typer.echo(report.summary())
    for problem in report.problems:
        typer.echo(f"  {problem}")
    for warning in report.warnings:
        typer.echo(f"  warning: {warning}")


def _witnesses(path: Path | None) -> list[SignedCheckpoint]:
    if path is None:
        return []
    out = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            try:
                out.append(SignedCheckpoint.from_json(line))
            except (ValueError, KeyError, TypeError):
                raise ValidationError(f"{path}:{number}: not a checkpoint line") from None
    return out


@app.command("verify")
def verify(
    config: Path | None = ConfigOption,
    store_url: str = typer.Option("", "--store", help="Store URL, instead of a config."),
    public_key: list[Path] = typer.Option([], "--public-key",
                                          help="Trust checkpoints signed by this key."),
    witness: Path | None = typer.Option(None, "--witness", exists=True, dir_okay=False,
                                        help="Checkpoint lines kept outside the store."),
    witnesses: list[Path] = typer.Option(
        [], "--witnesses", help="Another party's witness directory: the heads of this store's "
                                "writers it holds (repeatable; adds to audit.witnesses)."),
    every: int = typer.Option(0, "--checkpoint-every", min=0,
                              help="The writers' checkpoint cadence in entries (default: "
                                   "audit.checkpoint_every; with --store, not checked)."),
    writer: list[str] = typer.Option([], "--writer", help="Only these writers."),
) -> None:
    """Check every chain; name the first break (edited, missing, reordered, truncated)."""
    def run() -> list[ChainReport]:
        dirs = list(witnesses)
        if store_url:
            verifier = Verifier([load_public_key(p) for p in public_key])
            if not verifier.key_ids:
                raise ValidationError("with --store, give the writers' --public-key files")
            store = open_store(store_url)
            cadence = every or None
        else:
            cfg = _config(config)
            verifier = cfg.verifier(tuple(public_key))
            store = cfg.open_store()
            cadence = every or cfg.config.checkpoint_every
            dirs += [d for d in cfg.config.witnesses if d not in dirs]
        held = _witnesses(witness)
        for directory in dirs:
            held += load_heads(directory)
        with store:
            return verify_store(store, verifier, held, writer or None, cadence)

    reports = guarded(run)
    for report in reports:
        _print_report(report)
    broken = [r for r in reports if not r.ok]
    if not reports:
        typer.echo("the store holds no audit entries")
    if broken:
        first = broken[0].first_problem
        fail(f"the audit trail is broken: {first}", FAILED)


@app.command("checkpoint")
def checkpoint(
    config: Path | None = ConfigOption,
    all_writers: bool = typer.Option(False, "--all", help="Every writer in the store, not only "
                                                          "this one."),
    out: Path | None = typer.Option(None, "--out", help="Also append the signed checkpoints to "
                                                        "this witness file (keep it elsewhere)."),
) -> None:
    """Sign the chain head now (e.g. hourly from cron) and print it."""
    cfg = _config(config)

    def run() -> list[SignedCheckpoint]:
        with cfg.open_log() as log:
            writers = log.store.writers() if all_writers else [cfg.config.writer_id]
            return [log.checkpoint(w) for w in writers]

    signed = guarded(run)
    if out is not None:
        with out.open("a", encoding="utf-8") as fh:
            fh.writelines(s.to_json() + "\n" for s in signed)
    for s in signed:
        cp = s.checkpoint
        typer.echo(f"{cp.writer_id}: seq {cp.seq} head {cp.entry_hash} signed {cp.signed_at} "
                   f"by key {cp.key_id}")


@app.command("prove")
def prove_command(
    config: Path | None = ConfigOption,
    entry: int = typer.Option(..., "--entry", min=1, help="The entry's sequence number."),
    writer: str = typer.Option("", "--writer", help="Whose chain (default: this config's "
                                                    "writer)."),
    out: str = typer.Option("-", "--out", help="Proof file, or - for standard output."),
) -> None:
    """Prove one entry is in the signed log, for an inspector, without the other entries."""
    cfg = _config(config)

    def run() -> dict[str, object]:
        with cfg.open_store() as store:
            return prove_entry(store, cfg.verifier(), writer or cfg.config.writer_id, entry)

    proof = guarded(run)
    text = json.dumps(proof, indent=1, ensure_ascii=False) + "\n"
    if out == "-":
        typer.echo(text, nl=False)
        return
    guarded(lambda: Path(out).write_text(text, encoding="utf-8"))
    typer.echo(f"{proof['writer_id']} seq {entry}: proof against the checkpoint at seq "
               f"{proof['tree_size']} written to {out}")


@app.command("check-proof")
def check_proof(
    proof: Path = typer.Option(..., "--proof", exists=True, dir_okay=False,
                               help="A file written by mash audit prove."),
    public_key: list[Path] = typer.Option(..., "--public-key",
                                          help="The writer's checkpoint public key."),
) -> None:
    """Check an inclusion proof offline, with the writer's public key only."""
    def run() -> str:
        try:
            doc = json.loads(proof.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            raise ValidationError(f"{proof}: not a proof file (JSON)") from None
        if not isinstance(doc, dict):
            raise ValidationError(f"{proof}: not a proof file")
        verifier = Verifier([load_public_key(p) for p in public_key])
        try:
            checked = check_inclusion(doc, verifier)
        except AuditError as exc:
            raise AuditError(f"the proof does not hold: {exc}") from None
        cp = checked.checkpoint
        return (f"OK: {checked.writer_id} seq {checked.seq} ({checked.event or 'entry'}, "
                f"recorded {checked.recorded_at}) is in the log of {cp.seq} entries signed at "
                f"{cp.signed_at} by key {cp.key_id}")

    typer.echo(guarded(run))


# search and export


# the search terms as typed on the command line: errors name the option
CLI_LABELS = {"date_of_birth": "--dob", "local_ids": "--local"}
_criteria = functools.partial(search_criteria, labels=CLI_LABELS)


def _search(config: Path | None, criteria: Criteria, limit: int | None = None) -> list[Found]:
    cfg = _config(config)

    def run() -> list[Found]:
        with cfg.open_store() as store:
            return search(store, criteria, cfg.hasher, limit)

    return guarded(run)


def _describe(found: Found) -> str:
    row, entry = found.row, found.entry
    state = "intact" if found.intact else "TAMPERED (run mash audit verify)"
    head = f"{row.recorded_at}  {row.writer_id} #{row.seq}"
    if entry is None:
        return f"{head}  purged by retention  {state}"
    lines = [f"{head}  {entry.event}  lookup {entry.lookup_id or '-'}  {state}",
             f"  who:     {entry.requester or 'unknown'} ({entry.role or '-'}, "
             f"{entry.requester_agency or '-'}" + (f", team {entry.team}" if entry.team else "")
             + ")",
             f"  why:     {entry.purpose or '-'} / {entry.stage or '-'}, case "
             f"{entry.case_reference or '-'}, urgency {entry.urgency or '-'}",
             f"           {entry.justification}" if entry.justification else ""]
    if found.matched_on:
        lines.append(f"  matched: {', '.join(found.matched_on)}")
    if entry.asked:
        lines.append(f"  asked:   {', '.join(entry.asked)}")
    for o in entry.outcomes:
        released = " ".join(f"{r.field}:{r.transform}" for r in o.released)
        lines.append(f"  answer:  {o.agency}={o.state}" + (f" ({o.reason})" if o.reason else "")
                     + (f" released [{released}]" if released else "")
                     + (f" withheld [{' '.join(o.withheld)}]" if o.withheld else "")
                     + (f" under {o.agreement_id}" if o.agreement_id else "")
                     + (f", policy {o.policy_revision}" if o.policy_revision else ""))
    if entry.policy_revision:
        lines.append(f"  policy:  {entry.policy_revision}"
                     + (f", agreements {', '.join(entry.all_agreements())}"
                        if entry.all_agreements() else ""))
    if entry.detail:
        lines.append(f"  detail:  {entry.detail}")
    return "\n".join(line for line in lines if line)


def _filters_given(criteria: Criteria) -> bool:
    return bool(criteria.names_a_person or criteria.case_reference or criteria.requester
                or criteria.lookup_id)


NHS = typer.Option("", "--nhs", help="NHS number.")
UPN = typer.Option("", "--upn", help="Unique Pupil Number.")
PNC = typer.Option("", "--pnc", help="PNC ID.")
NI = typer.Option("", "--ni", help="National Insurance number.")
LOCAL = typer.Option([], "--local", help="A local identifier as ISSUER:ID.")
NAME = typer.Option([], "--name", help="Full name (with --dob), e.g. 'Jane Smith'.")
GIVEN = typer.Option("", "--given", help="Given name (with --family and --dob).")
FAMILY = typer.Option("", "--family", help="Family name.")
DOB = typer.Option("", "--dob", help="Date of birth, e.g. 2012-01-02.")
CASE = typer.Option("", "--case-reference", help="A case reference.")
REQUESTER = typer.Option("", "--requester", help="An analyst's user id.")
LOOKUP = typer.Option("", "--lookup-id", help="One lookup, across broker and agents.")
RECORD = typer.Option([], "--record", help="Agency: one of its records, as SOURCE:RECORD_ID: "
                                           "every lookup that matched it (repeatable).")
HELD = typer.Option(False, "--held", help="Agency: find the person given in the agency's own "
                                          "records and list every lookup that matched them, "
                                          "however the analyst typed the subject.")
LOOKUPS_FROM = typer.Option(None, "--lookups-from", exists=True, dir_okay=False,
                            help="Broker: also the lookups an agency's subject access report "
                                 "names (its `mash audit export --format json`).")


def _person(config: Path | None, criteria: Criteria, record: list[str], held: bool,
            lookups_from: Path | None) -> Criteria:
    """Add the person as an agency holds them (records) or as its report names them."""
    if not (record or held or lookups_from):
        return criteria
    cfg = _config(config)
    refs: list[str] = []
    for item in record:
        source, sep, record_id = item.partition(":")
        if not sep or not source or not record_id:
            raise ValidationError(f"--record {item!r}: write SOURCE:RECORD_ID")
        refs.append(cfg.hasher.record_ref(source, record_id))
    if held:
        if criteria.subject is None:
            raise ValidationError("--held needs the person: a name with --dob, or an identifier")
        from mash.agent import config as agent_config
        from mash.agent.subject_access import held_records

        assert config is not None
        found = held_records(agent_config.load(config), criteria.subject)
        typer.echo(f"held: {len(found)} record{'' if len(found) == 1 else 's'} of this agency"
                   + (": " + ", ".join(map(str, found)) if found else ""), err=True)
        refs += [cfg.hasher.record_ref(r.source, r.record_id) for r in found]
    lookups = read_lookup_ids(lookups_from) if lookups_from is not None else ()
    return dataclasses.replace(criteria, record_refs=tuple(refs), lookup_ids=lookups)


@app.command("search")
def search_command(
    config: Path | None = ConfigOption, nhs: str = NHS, upn: str = UPN, pnc: str = PNC,
    ni: str = NI, local: list[str] = LOCAL, name: list[str] = NAME, given: str = GIVEN,
    family: str = FAMILY, dob: str = DOB, case: str = CASE, requester: str = REQUESTER,
    lookup_id: str = LOOKUP, since: str = SinceOption, until: str = UntilOption,
    writer: str = WriterOption,
    limit: int = typer.Option(1000, min=1, help="At most this many entries."),
    record: list[str] = RECORD, held: bool = HELD, lookups_from: Path | None = LOOKUPS_FROM,
) -> None:
    """Who looked up this person (or case, or analyst), when and why."""
    criteria = guarded(lambda: _criteria(
        nhs_number=nhs, upn=upn, pnc_id=pnc, ni_number=ni, local_ids=local, names=name,
        given=given, family=family, date_of_birth=dob, case_reference=case,
        requester=requester, lookup_id=lookup_id, since=since, until=until, writer=writer))
    criteria = guarded(lambda: _person(config, criteria, record, held, lookups_from))
    if not _filters_given(criteria):
        fail("say what to search for: an identifier, --name with --dob, --case-reference, "
             "--requester or --lookup-id (mash audit export lists everything)", USAGE)
    found = _search(config, criteria, limit)
    for item in found:
        typer.echo(_describe(item))
    typer.echo(f"{len(found)} entr{'y' if len(found) == 1 else 'ies'} found")


@app.command("export")
def export(
    config: Path | None = ConfigOption,
    out: str = typer.Option(..., "--out", help="Report file, or - for standard output."),
    fmt: str = typer.Option("csv", "--format", help="csv (one row per agency answer) or json."),
    nhs: str = NHS, upn: str = UPN, pnc: str = PNC, ni: str = NI, local: list[str] = LOCAL,
    name: list[str] = NAME, given: str = GIVEN, family: str = FAMILY, dob: str = DOB,
    case: str = CASE, requester: str = REQUESTER, lookup_id: str = LOOKUP,
    since: str = SinceOption, until: str = UntilOption, writer: str = WriterOption,
    record: list[str] = RECORD, held: bool = HELD, lookups_from: Path | None = LOOKUPS_FROM,
) -> None:
    """Write a report for a subject access request or a case review (everything if no filter)."""
    if fmt not in ("csv", "json"):
        fail(f"--format {fmt!r}: use csv or json", USAGE)
    criteria = guarded(lambda: _criteria(
        nhs_number=nhs, upn=upn, pnc_id=pnc, ni_number=ni, local_ids=local, names=name,
        given=given, family=family, date_of_birth=dob, case_reference=case,
        requester=requester, lookup_id=lookup_id, since=since, until=until, writer=writer))
    criteria = guarded(lambda: _person(config, criteria, record, held, lookups_from))
    found = _search(config, criteria)

    def write() -> None:
        fh = sys.stdout if out == "-" else open(out, "w", encoding="utf-8", newline="")  # noqa: SIM115
        try:
            if fmt == "csv":
                write_csv(found, fh)
            else:
                write_json_report(found, fh, criteria)
        finally:
            if fh is not sys.stdout:
                fh.close()

    guarded(write)
    if out != "-":
        typer.echo(f"{len(found)} entries written to {out}")


# owner notifications


def _describe_notice(notice: Notice) -> str:
    e = notice.entry
    seen = f"seen {notice.seen_at}" if notice.seen_at else "NEW"
    return (f"{notice.recorded_at}  {notice.writer_id} #{notice.seq}  {seen}  "
            f"{outcome_text(e)}\n"
            f"  who: {e.requester or 'unknown'} ({e.role or '-'}, {e.requester_agency or '-'})  "
            f"why: {e.purpose or '-'} / {e.stage or '-'}, case {e.case_reference or '-'}"
            + ("" if notice.intact else "\n  TAMPERED (run mash audit verify)"))


@app.command("notifications")
def notifications(
    config: Path | None = ConfigOption, since: str = SinceOption, until: str = UntilOption,
    unseen: bool = typer.Option(False, "--unseen", help="Only those not yet marked seen."),
    record: list[str] = typer.Option([], "--record", help="Only lookups that matched this record "
                                                          "of ours, as SOURCE:RECORD_ID."),
    mark: bool = typer.Option(False, "--mark-seen", help="Mark the listed ones as seen."),
) -> None:
    """Lookups that matched this agency's records: who asked about our people, and why."""
    cfg = _config(config)

    def run() -> list[Notice]:
        refs = []
        for item in record:
            source, sep, record_id = item.partition(":")
            if not sep or not source or not record_id:
                raise ValidationError(f"--record {item!r}: write SOURCE:RECORD_ID")
            refs.append(cfg.hasher.record_ref(source, record_id))
        with cfg.open_store() as store:
            notices = list_notices(store, parse_when(since), parse_when(until, end=True),
                                   unseen_only=unseen, record_refs=tuple(refs))
            if mark and notices:
                mark_seen(store, notices)
        return notices

    notices = guarded(run)
    for notice in notices:
        typer.echo(_describe_notice(notice))
    typer.echo(f"{len(notices)} notification{'' if len(notices) == 1 else 's'}"
               + (" marked seen" if mark and notices else ""))


# retention


def _bundle_retention(path: Path, trusted: list[Path],
                      configured: RetentionPolicy) -> RetentionPolicy:
    """Retention per agreement as the signed agreements state it (they win over the config)."""
    from mash import signing
    from mash.policy import bundle as bundle_mod

    if not trusted:
        raise ConfigError("--bundle needs --trusted KEY.pub: retention comes only from a "
                          "signed bundle")
    raw = path.read_bytes()
    sig_path = signing.signature_path(path)
    signing.verify(raw, sig_path.read_bytes() if sig_path.exists() else None,
                   [signing.load_public_key(p) for p in trusted])
    days = bundle_mod.parse(raw, str(path)).retention_days()
    return RetentionPolicy(configured.default_days, {**configured.agreements, **days})


@app.command("purge")
def purge_command(
    config: Path | None = ConfigOption,
    by: str = typer.Option("", "--by", help="Who runs the purge (default: the OS user)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only count what would go."),
    force: bool = typer.Option(False, help="Purge even if verification fails (destroys "
                                           "evidence of tampering)."),
    bundle: Path | None = typer.Option(
        None, "--bundle", exists=True, dir_okay=False,
        help="Take each agreement's retention_days from this signed policy bundle."),
    trusted: list[Path] = typer.Option(
        [], "--trusted", help="An IG lead's public key the bundle must be signed with."),
) -> None:
    """Delete entries past their agreement's retention, leaving a signed checkpoint."""
    cfg = _config(config)
    if bundle is not None:
        retention = guarded(lambda: _bundle_retention(bundle, trusted, cfg.config.retention))
        cfg = dataclasses.replace(cfg, config=cfg.config.model_copy(
            update={"retention": retention}))
    if not cfg.config.retention.purges_anything:
        fail("the audit config sets no retention: nothing is ever purged", USAGE)
    operator = by or getpass.getuser()

    def run() -> None:
        with cfg.open_log() as log:
            if dry_run:
                for writer, count in preview(log.store, cfg.config.retention).items():
                    typer.echo(f"{writer}: {count} entries would be purged")
                return
            broken = [r for r in verify_store(log.store, cfg.verifier()) if not r.ok]
            if broken and not force:
                fail(f"not purging: the audit trail is broken ({broken[0].first_problem}); "
                     "purging would destroy the evidence (use --force to purge anyway)", FAILED)
            result = purge(log, cfg.config.retention, operator)
            for r in result.results:
                typer.echo(f"{r.writer_id}: {r.purged} entries purged, {r.deleted} removed; "
                           f"chain now starts after seq {r.base_seq}")
            if result.recorded is not None:
                typer.echo(f"purge recorded in {cfg.config.writer_id}'s chain")

    guarded(run)
