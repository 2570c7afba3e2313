"""`mash lookup` and `mash agents`: the analyst's commands."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

import grpc
import typer

from mash.cli.approval import read_approval
from mash.cli.common import (
    OK,
    PARTIAL,
    USAGE,
    OptionFor,
    fail,
    grpc_failure,
    guarded,
    problems,
)
from mash.cli.federation import federation_view
from mash.cli.render import as_document, as_json, print_lookup
from mash.client import BrokerAgents, BrokerClient, ClientConfig
from mash.errors import ValidationError
from mash.requests import build_context, build_request, build_subject
from mash.rpc_errors import redact
from mash.v1 import answer_pb2, lookup_pb2, subject_pb2

ConfigOption = typer.Option(
    None, "--config", envvar="MASH_CLIENT_CONFIG",
    help="Client config (broker address, TLS files, token file). Env: MASH_CLIENT_CONFIG.")
TokenOption = typer.Option(
    None, "--token", envvar="MASH_TOKEN",
    help="Analyst token; overrides the config's token_file. Env: MASH_TOKEN.")


def _client(config: Path | None, token: str | None) -> BrokerClient:
    if config is None:
        fail("no client config: pass --config client.yaml or set MASH_CLIENT_CONFIG", USAGE)
    return BrokerClient(ClientConfig.load(config, token))


def lookup(
    name: str = typer.Option(None, help='Full name: "Jane Ann Smith" or "Smith, Jane".'),
    given: str = typer.Option(None, help="Given name (instead of --name)."),
    family: str = typer.Option(None, help="Family name (instead of --name)."),
    alias: list[str] = typer.Option([], help="Another name the person uses (repeatable)."),
    dob: str = typer.Option(None, help="Date of birth: 2014-03-09 or 09/03/2014."),
    sex: str = typer.Option(None, help="F, M or X."),
    postcode: list[str] = typer.Option([], help="A postcode, current or previous (repeatable)."),
    nhs: str = typer.Option(None, help="NHS number."),
    upn: str = typer.Option(None, help="Unique Pupil Number."),
    pnc: str = typer.Option(None, help="PNC ID."),
    ni: str = typer.Option(None, help="National Insurance number."),
    local: list[str] = typer.Option([], help="An agency's own id as AGENCY:ID (repeatable)."),
    purpose: str = typer.Option(..., help="e.g. child_safeguarding, adult_safeguarding."),
    stage: str = typer.Option(..., help="e.g. triage, research, s47, s42."),
    case: str = typer.Option(..., help="The MASH case reference."),
    reason: str = typer.Option(..., help="Why this lookup is necessary (recorded in the audit)."),
    urgency: str = typer.Option("amber", help="RAG rating: red, amber or green."),
    agency: list[str] = typer.Option([], help="Ask only this agency (repeatable)."),
    approval: Path = typer.Option(
        None, help="A supervisor's stage approval file (mash approval grant), for stages "
                   "that need one (e.g. s47)."),
    timeout: float = typer.Option(15.0, min=0.5, help="Seconds to wait for the answers."),
    json_out: bool = typer.Option(False, "--json", help="Print the response as JSON."),
    config: Path = ConfigOption,
    token: str = TokenOption,
) -> None:
    """Ask every agency the agreements allow whether they know this person.

    Exit codes: 0 every agency answered; 3 at least one agency was NOT CHECKED; 2 invalid
    input; 4 refused (token or certificate); 5 broker unreachable; 6 rate limited; 1 other.
    """
    retried, waited = 0, 0.0
    local_problems(dob=dob, sex=sex, local=local, urgency=urgency)
    request = guarded(lambda: build_request(
            name=name, given=given, family=family, aliases=alias, dob=dob, sex=sex,
            postcodes=postcode, nhs=nhs, upn=upn, pnc=pnc, ni=ni, local=local, purpose=purpose,
            stage=stage, case=case, reason=reason, urgency=urgency, agencies=agency))

    def run() -> lookup_pb2.LookupResponse:
        nonlocal retried, waited
        if approval is not None:
            request.approval = read_approval(approval)
        with _client(config, token) as client:
            try:
                return client.lookup(request, timeout=timeout)
            finally:
                retried, waited = client.retried, client.waited

    response = guarded(run, options=field_options(request, name=name, given=given,
                                                  family=family))
    if retried and not json_out:
        print(f"mash: note: a broker was unavailable; the lookup was tried again on another "
              f"({retried} time(s)), under the same lookup id", file=sys.stderr)
    if waited and not json_out:
        print(f"mash: note: rate limited; the lookup waited {waited:g} s, as the broker asked, "
              "and was tried again", file=sys.stderr)
    if json_out:
        typer.echo(as_json(response))
    else:
        print_lookup(response)
    not_checked = [a for a in response.answers
                   if a.state == answer_pb2.ANSWER_STATE_NOT_CHECKED]
    if not_checked and not json_out:
        print(f"{len(not_checked)} agency answer(s) NOT CHECKED: treat them as unknown, "
              "not as 'not known'.", file=sys.stderr)
    raise typer.Exit(PARTIAL if not_checked else OK)


def local_problems(*, dob: str | None, sex: str | None, local: list[str],
                   urgency: str) -> None:
    """The shape checks made before anything is sent, every one of them: one line for each
    option in error (without the value typed), then exit 2."""
    checks: list[tuple[str, Callable[[], object]]] = [
        ("--dob", lambda: build_subject(dob=dob)), ("--sex", lambda: build_subject(sex=sex)),
        ("--urgency", lambda: build_context(purpose="", stage="", case="", reason="",
                                            urgency=urgency))]
    checks += [("--local", partial(build_subject, local=[item])) for item in local]
    found = []
    for option, check in checks:
        try:
            check()
        except ValidationError as exc:
            found.append(f"{option}: {redact(str(exc))}")
    if found:
        problems(found)


IDENTIFIER_OPTIONS = {subject_pb2.IDENTIFIER_KIND_NHS_NUMBER: "--nhs",
                      subject_pb2.IDENTIFIER_KIND_UPN: "--upn",
                      subject_pb2.IDENTIFIER_KIND_PNC_ID: "--pnc",
                      subject_pb2.IDENTIFIER_KIND_NI_NUMBER: "--ni",
                      subject_pb2.IDENTIFIER_KIND_LOCAL: "--local"}
FIELD_OPTIONS = {"subject.aliases": "--alias", "subject.date_of_birth": "--dob",
                 "subject.sex": "--sex", "subject.addresses": "--postcode",
                 "context.purpose": "--purpose", "context.stage": "--stage",
                 "context.case_reference": "--case", "context.justification": "--reason",
                 "context.urgency": "--urgency", "agencies": "--agency"}


def field_options(request: lookup_pb2.LookupRequest, *, name: str | None, given: str | None,
                  family: str | None) -> OptionFor:
    """The option of `mash lookup` that a broker's field path (BadRequest) came from."""
    def option(path: str) -> str | None:
        path = path.removeprefix("query.")
        index = re.fullmatch(r"subject\.identifiers\[(\d+)\].*", path)
        if index:
            i = int(index.group(1))
            ids = request.subject.identifiers
            return IDENTIFIER_OPTIONS.get(ids[i].kind) if i < len(ids) else None
        if path.startswith("subject.name"):
            if path.endswith(".given") and given:
                return "--given"
            if path.endswith(".family") and family:
                return "--family"
            return "--name" if name else "--given" if given else "--family"
        bare = re.sub(r"\[\d+\]", "", path)
        return next((o for f, o in FIELD_OPTIONS.items()
                     if bare == f or bare.startswith(f + ".")), None)
    return option


def agents(
    json_out: bool = typer.Option(False, "--json", help="Print as JSON."),
    config: Path = ConfigOption,
    token: str = TokenOption,
) -> None:
    """Which agencies are registered, online (at how many of the brokers), and how current
    their data is. Every configured broker is asked for its own agents' streams."""
    from rich.console import Console
    from rich.table import Table

    from mash.answers import from_timestamp

    def run() -> dict[str, BrokerAgents]:
        with _client(config, token) as client:
            return client.list_agents_by_broker()

    by_broker = guarded(run)
    federation = federation_view(by_broker)
    if federation.reached == 0:
        first = next(iter(by_broker.values()))
        assert isinstance(first, grpc.RpcError)
        grpc_failure(first)
    for address, reply in by_broker.items():
        if isinstance(reply, grpc.RpcError):
            code = reply.code().name.lower()
            print(f"mash: warning: broker {address} did not answer ({code}): its agents' "
                  "links to it are not shown", file=sys.stderr)
    if json_out:
        doc = as_document(lookup_pb2.ListAgentsResponse(agents=federation.agents))
        doc["links"] = federation.links
        doc["brokers"] = [{"address": a, "reachable": not isinstance(r, grpc.RpcError)}
                          for a, r in by_broker.items()]
        typer.echo(json.dumps(doc, indent=2, sort_keys=True))
        return
    table = Table(title="Agents")
    for column in ("Agency", "Online", "Brokers", "Ready", "Records", "Data as at", "Data",
                   "Policy", "Version"):
        table.add_column(column)
    for a in federation.agents:
        as_at = from_timestamp(a.data_as_at)
        online = ("NOT ANSWERING" if a.online and a.unresponsive
                  else "yes" if a.online else "NO")
        links = f"{len(federation.links[a.agency_id])}/{len(by_broker)}"
        table.add_row(a.agency_name, online, links, "yes" if a.ready else "no",
                      str(a.record_count), f"{as_at:%Y-%m-%d %H:%M}" if as_at else "-",
                      _data_state(a), a.policy_revision or "-", a.agent_version or "-")
    Console().print(table)


def _data_state(agent: lookup_pb2.AgentStatus) -> str:
    """current; STALE (why the latest load was refused); or none (why)."""
    if not agent.online:
        return "-"
    problem = agent.data_status.refused_problem
    if agent.data_status.stale:
        return f"STALE: {problem}"
    if not agent.ready:
        return f"none: {problem}" if problem else "loading"
    return "current"

