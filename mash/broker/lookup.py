"""LookupService: validate, route, fan out to the agents with a deadline, aggregate."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc

from mash import context as lookup_context
from mash import rpc_errors
from mash import subject as subject_mod
from mash.answers import NOT_CHECKED_LABELS, STATE_LABELS, not_checked, problem, timestamp
from mash.audit import AuditEntry, AuditError, AuditLog, SubjectHasher
from mash.audit import build as audit_build
from mash.broker import metrics
from mash.broker.auth import approval_metadata, authenticate, bearer_token
from mash.broker.blind import BlindRelay
from mash.broker.config import BrokerConfig
from mash.broker.ratelimit import RateLimiter
from mash.broker.registry import AgentGone, AgentSession, Registry
from mash.broker.request_proofs import LookupProofs
from mash.broker.routing import RouteDecision, Routing
from mash.broker.shared_limits import RateLimitUnavailable, SharedRateLimiter
from mash.errors import ValidationError
from mash.identity import approvals
from mash.identity.tokens import Analyst, TokenVerifier
from mash.logs import get_logger
from mash.policy.errors import PolicyError
from mash.policy.model import Requester
from mash.v1 import agent_pb2, answer_pb2, blind_pb2, lookup_pb2, lookup_pb2_grpc, subject_pb2

log = get_logger(__name__)
R = answer_pb2
# Time kept back from the caller's deadline so answers can be gathered and returned.
DEADLINE_MARGIN_SECONDS = 0.25
LOOKUP_ID = re.compile(r"[0-9a-f]{32}")
MAX_ATTEMPTS = 10  # a client's retries of one lookup on other brokers


@dataclass
class Plan:
    """One lookup's routing: who is asked, who is not and why, and the time allowed."""

    lookup_id: str
    asked_at: dt.datetime
    budget: float
    revision: str
    routing_error: str
    decided: dict[str, RouteDecision]
    agencies: list[str]  # every agency the lookup is about (the filter applied)
    names: dict[str, str]

    @property
    def deadline(self) -> dt.datetime:
        return self.asked_at + dt.timedelta(seconds=self.budget)

    @property
    def asked(self) -> list[str]:
        return [a for a in self.agencies if self.refusal(a) is None]

    def refusal(self, agency: str) -> answer_pb2.AgencyAnswer | None:
        """The NOT_CHECKED answer for an agency that is not asked; None when it is."""
        name = self.names[agency]
        decision = self.decided.get(agency)
        if self.routing_error:
            return not_checked(agency, R.NOT_CHECKED_REASON_POLICY_ERROR,
                               f"the broker's routing policy could not decide: "
                               f"{self.routing_error}", name)
        if decision is None:
            return not_checked(agency, R.NOT_CHECKED_REASON_POLICY_ERROR,
                               "the routing policy gave no decision for this agency", name)
        if not decision.allowed:
            reason = (R.NOT_CHECKED_REASON_NO_AGREEMENT if decision.refusal == "no_agreement"
                      else R.NOT_CHECKED_REASON_POLICY_ERROR)
            return not_checked(agency, reason, decision.reason, name)
        return None


class LookupService(lookup_pb2_grpc.LookupServiceServicer):
    def __init__(self, cfg: BrokerConfig, registry: Registry, routing: Routing,
                 audit: AuditLog, *, hasher: SubjectHasher,
                 verifier: TokenVerifier | None = None) -> None:
        self.cfg = cfg
        # analysts' tokens: the issuers' keys are read here, as the broker starts
        self.verifier = verifier or TokenVerifier.from_config(cfg.auth)
        self.registry = registry
        self.routing = routing
        self.limiter = RateLimiter(cfg.rate_limit)
        # every broker's lookups against one bucket per analyst, when configured
        self.shared = (SharedRateLimiter(cfg.rate_limit.store, cfg.rate_limit.per_minute,
                                         cfg.rate_limit.burst)
                       if cfg.rate_limit.store else None)
        self.audit = audit
        self.hasher = hasher
        self.proofs = LookupProofs(audit, require=cfg.auth.require_bound_proof,
                                   ca=cfg.tls.ca)
        self._probes: set[asyncio.Future[None]] = set()

    async def Lookup(
        self, request: lookup_pb2.LookupRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> lookup_pb2.LookupResponse:
        started = time.monotonic()
        analyst = await self.admit(context)
        try:
            subject = subject_mod.from_proto(request.subject)
            ctx = lookup_context.from_proto(request.context)
        except ValidationError as exc:
            metrics.lookups("invalid").inc()
            await rpc_errors.abort_invalid_lookup(
                context, str(exc), subject=request.subject, request_context=request.context,
                extra=self.unroutable(request.context, set(request.agencies)))
        lookup_id = await self.lookup_id(context, request)
        token = bearer_token(context)
        hashes = self.hasher.hashes(subject)
        await self.proofs.check(context, analyst=analyst, token=token, request=request,
                                lookup_id=lookup_id, ctx=ctx, subject=hashes)
        plan = await self.plan(context, analyst, ctx, set(request.agencies), lookup_id)
        approval = request.approval or approval_metadata(context)
        approved = await self.check_approval(context, analyst, ctx, approval)
        # The question is on the record before anyone is asked: no audit, no lookup.
        await self.record(context, audit_build.lookup_entry(
            lookup_id=plan.lookup_id, analyst=analyst, context=ctx, subject=hashes,
            asked=plan.asked, policy_revision=plan.revision,
            agreements=[plan.decided[a].agreement_id for a in plan.asked], detail=approved,
            attempt=request.attempt))
        tasks = {}
        answer_ms: dict[str, int] = {}  # per agency asked: fan-out to answer, for the report
        fanned_out = time.monotonic()
        deadline = timestamp(plan.deadline)
        for agency in plan.agencies:
            refused = plan.refusal(agency)
            if refused is not None:
                tasks[agency] = _ready(refused)
                continue
            # unique without another uuid4 (os.urandom is a system call): one query per
            # agency per lookup, and each agent's answers are matched within its own stream
            query = agent_pb2.Query(
                query_id=f"{plan.lookup_id}-{agency}", lookup_id=plan.lookup_id,
                analyst_token=token, subject=request.subject,
                context=request.context, deadline=deadline, approval=approval,
                proof=request.proof)
            tasks[agency] = asyncio.ensure_future(
                self._timed(agency, query, plan.budget, fanned_out, answer_ms))
        answers = await asyncio.gather(*tasks.values())
        # ... and so is every answer, before any of them leaves.
        await self.record(context, audit_build.answers_entry(
            lookup_id=plan.lookup_id, analyst=analyst, context=ctx, subject=hashes,
            answers=answers, policy_revision=plan.revision, answer_ms=answer_ms,
            elapsed_ms=int((time.monotonic() - started) * 1000)))
        response = lookup_pb2.LookupResponse(
            lookup_id=plan.lookup_id, asked_at=timestamp(plan.asked_at),
            requester=analyst.subject, requester_agency=analyst.agency,
            routing_revision=plan.revision, answers=answers)
        self.finished(plan, answers, started)
        return response

    def BlindLookup(
        self, request_iterator: AsyncIterator[blind_pb2.BlindLookupRequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[blind_pb2.BlindLookupResponse]:
        return BlindRelay(self).run(request_iterator, context)

    def unroutable(self, msg: subject_pb2.RequestContext,
                   wanted: set[str]) -> list[rpc_errors.Violation]:
        """What plan() would refuse too, for a request refused already on its fields: so
        that every problem is named at once (none when there is no policy to ask)."""
        try:
            policy = self.routing.loaded()
            purposes = policy.purposes()
        except PolicyError:
            return []
        problems = routing_problems(purpose=msg.purpose.strip(), stage=msg.stage.strip(),
                                    wanted=wanted, purposes=purposes,
                                    registered=self.routing.registered(policy))
        return [p.violation for p in problems]

    async def lookup_id(self, context: grpc.aio.ServicerContext[Any, Any],
                        request: lookup_pb2.LookupRequest) -> str:
        """The client's lookup id (kept across its retries on other brokers), or a new one."""
        if request.lookup_id and not LOOKUP_ID.fullmatch(request.lookup_id):
            metrics.lookups("invalid").inc()
            await rpc_errors.abort_invalid(context,
                                           "lookup_id must be 32 lowercase hex digits (a uuid4 "
                                           "in hex), or empty for the broker to choose one",
                                           reason="INVALID_LOOKUP_ID", field_path="lookup_id")
        if request.attempt > 1 and not request.lookup_id:
            metrics.lookups("invalid").inc()
            await rpc_errors.abort_invalid(context,
                                           f"attempt {request.attempt} is a retry, which needs "
                                           "the lookup_id of the first attempt",
                                           reason="INVALID_LOOKUP_ID", field_path="lookup_id",
                                           rule="a retry (attempt above 1) needs the lookup_id "
                                                "of the first attempt")
        if request.attempt > MAX_ATTEMPTS:
            metrics.lookups("invalid").inc()
            await rpc_errors.abort_invalid(context,
                                           f"attempt {request.attempt} is above {MAX_ATTEMPTS}: "
                                           "start a new lookup",
                                           reason="TOO_MANY_ATTEMPTS", field_path="attempt",
                                           rule=f"at most {MAX_ATTEMPTS}: start a new lookup")
        if request.attempt > 1:
            metrics.RETRIES.inc()
        return request.lookup_id or uuid.uuid4().hex

    async def admit(self, context: grpc.aio.ServicerContext[Any, Any]) -> Analyst:
        """The authenticated analyst, within their rate limit; otherwise abort."""
        analyst = await authenticate(context, self.verifier, self.registry.revocation)
        who = f"{analyst.issuer}|{analyst.subject}"
        if self.shared is None:
            wait = self.limiter.take(who)
        else:
            try:
                wait = await asyncio.to_thread(self.shared.take, who)
            except RateLimitUnavailable as exc:
                metrics.lookups("rate_limit_unavailable").inc()
                log.error("rate_limit_unavailable", error=str(exc))
                await rpc_errors.abort(
                    context, grpc.StatusCode.UNAVAILABLE,
                    f"the shared rate limits cannot be checked, so no lookup is admitted: {exc}",
                    reason="RATE_LIMIT_UNAVAILABLE",
                    retry_after=rpc_errors.UNAVAILABLE_RETRY_SECONDS)
        if wait:
            metrics.lookups("rate_limited").inc()
            log.warning("lookup_rate_limited", requester=analyst.subject,
                        requester_agency=analyst.agency)
            await rpc_errors.abort(
                context, grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"rate limit reached: at most {self.cfg.rate_limit.per_minute:g} lookups a "
                f"minute per analyst (bursts of {self.cfg.rate_limit.burst}); try again in "
                f"{math.ceil(wait)} s", reason="RATE_LIMITED", retry_after=math.ceil(wait),
                metadata={"lookups_per_minute": f"{self.cfg.rate_limit.per_minute:g}",
                          "burst": str(self.cfg.rate_limit.burst)})
        return analyst

    async def check_approval(self, context: grpc.aio.ServicerContext[Any, Any], analyst: Analyst,
                             ctx: lookup_context.LookupContext, approval: str) -> str:
        """At a stage that needs a stage approval, refuse early (FAILED_PRECONDITION) when it
        is missing or would be refused; the agents check it again themselves, and theirs is
        the check that matters. Returns what the audit records of it ("" when none needed)."""
        try:
            rules = approvals.ApprovalRules.from_federation(
                self.routing.loaded().bundle.federation)
        except PolicyError:
            return ""  # no policy: nobody is asked, and every answer says why
        if not rules.required(ctx.stage):
            return ""
        try:
            checked = approvals.verify_approval(
                approval, verifier=self.verifier, rules=rules, analyst=analyst,
                case_reference=ctx.case_reference, purpose=ctx.purpose, stage=ctx.stage,
                now=dt.datetime.now(dt.UTC))
        except approvals.ApprovalError as exc:
            metrics.lookups("approval_refused").inc()
            log.warning("lookup_approval_refused", requester=analyst.subject,
                        purpose=ctx.purpose, stage=ctx.stage, present=bool(approval))
            await rpc_errors.abort(context, grpc.StatusCode.FAILED_PRECONDITION, str(exc),
                                   reason="APPROVAL_REFUSED")
        return checked.describe()

    async def plan(self, context: grpc.aio.ServicerContext[Any, Any], analyst: Analyst,
                   ctx: lookup_context.LookupContext, wanted: set[str],
                   lookup_id: str | None = None) -> Plan:
        """Check purpose, stage and agencies, and decide who may be asked."""
        try:
            policy = self.routing.loaded()
            purposes = policy.purposes()
            routing_error = ""
        except PolicyError as exc:
            # No valid policy: nobody is asked, and every answer says why.
            policy, purposes, routing_error = None, {ctx.purpose: frozenset({ctx.stage})}, str(exc)
        registered = self.routing.registered(policy)
        problems = routing_problems(purpose=ctx.purpose, stage=ctx.stage, wanted=wanted,
                                    purposes=purposes, registered=registered)
        if problems:  # every one at once: an unknown purpose and an unknown agency, say
            metrics.lookups("invalid").inc()
            await rpc_errors.abort(
                context, grpc.StatusCode.INVALID_ARGUMENT, "; ".join(p.message for p in problems),
                reason=problems[0].reason, violations=[p.violation for p in problems])
        asked_at = dt.datetime.now(dt.UTC)
        remaining = context.time_remaining()
        budget = self.cfg.deadline_seconds
        if remaining is not None:
            budget = min(budget, max(remaining - DEADLINE_MARGIN_SECONDS, 0.05))
        decisions = []
        if policy is not None:
            try:
                decisions = self.routing.route(policy, Requester(
                    analyst.agency, analyst.role, ctx.purpose, ctx.stage))
            except PolicyError as exc:
                routing_error = str(exc)
        plan = Plan(
            lookup_id=lookup_id or uuid.uuid4().hex, asked_at=asked_at, budget=budget,
            revision=policy.revision if policy else "none", routing_error=routing_error,
            decided={d.agency: d for d in decisions},
            agencies=[a for a in sorted(registered) if not wanted or a in wanted],
            names=registered)
        log.info("lookup_received", lookup_id=plan.lookup_id, requester=analyst.subject,
                 requester_agency=analyst.agency, role=analyst.role, purpose=ctx.purpose,
                 stage=ctx.stage, case_reference=ctx.case_reference, urgency=ctx.urgency)
        return plan

    def finished(self, plan: Plan, answers: list[answer_pb2.AgencyAnswer],
                 started: float) -> None:
        for answer in answers:
            metrics.answers(answer.agency_id, STATE_LABELS.get(answer.state, "SEALED"),
                            NOT_CHECKED_LABELS.get(answer.not_checked_reason, "")).inc()
        elapsed = time.monotonic() - started
        metrics.lookups("answered").inc()
        metrics.LOOKUP_SECONDS.observe(elapsed)
        log.info("lookup_answered", lookup_id=plan.lookup_id, elapsed_ms=int(elapsed * 1000),
                 states={a.agency_id: STATE_LABELS.get(a.state, "SEALED") for a in answers})

    async def record(self, context: grpc.aio.ServicerContext[Any, Any], entry: AuditEntry) -> None:
        try:
            await self.audit.append_async(entry)
        except AuditError as exc:
            metrics.lookups("audit_failed").inc()
            await rpc_errors.abort(context, grpc.StatusCode.UNAVAILABLE,
                                   f"the audit trail cannot be written, so nothing is asked or "
                                   f"answered: {exc}", reason="AUDIT_UNAVAILABLE",
                                   retry_after=rpc_errors.UNAVAILABLE_RETRY_SECONDS)

    async def _timed(self, agency: str, query: agent_pb2.Query, budget: float,
                     fanned_out: float, times: dict[str, int]) -> answer_pb2.AgencyAnswer:
        answer = await self._ask(agency, query, budget)
        times[agency] = int((time.monotonic() - fanned_out) * 1000)
        return answer

    async def _ask(self, agency: str, query: agent_pb2.Query,
                   budget: float) -> answer_pb2.AgencyAnswer:
        reply = await self.send(agency, query, budget)
        if isinstance(reply, answer_pb2.AgencyAnswer):
            return reply
        return self.checked(agency, reply.answer)

    async def send(self, agency: str, query: agent_pb2.Query,
                   budget: float) -> agent_pb2.QueryAnswer | answer_pb2.AgencyAnswer:
        """The agent's reply, or the NOT_CHECKED answer saying why there is none."""
        name = self.routing.name(agency)
        session = self.registry.get(agency)
        if session is None:
            seen = self.registry.last_seen(agency)
            when = f" (last seen {seen:%Y-%m-%d %H:%M} UTC)" if seen else ""
            return not_checked(agency, R.NOT_CHECKED_REASON_AGENT_OFFLINE,
                               f"{name}'s agent is not connected to the broker{when}", name)
        if query.HasField("blind") and not session.hello.accepts_blind:
            return not_checked(agency, R.NOT_CHECKED_REASON_AGENT_ERROR,
                               f"{name}'s agent does not take blind lookups (its hello does not "
                               "say accepts_blind: no blind keys, or a release before blind "
                               "lookups), so it was not asked", name)
        unresponsive = session.liveness.state()
        if unresponsive is not None:  # answer at once; one query goes to it as a probe
            self._probe(session, query, budget)
            return not_checked(agency, R.NOT_CHECKED_REASON_AGENT_UNRESPONSIVE,
                               unresponsive.detail(name), name)
        started = time.monotonic()
        sent_at = dt.datetime.now(dt.UTC)
        try:
            future = session.ask(query)
            return await asyncio.wait_for(future, timeout=budget)
        except TimeoutError:
            session.liveness.timed_out(sent_at, query.query_id)
            return not_checked(agency, R.NOT_CHECKED_REASON_TIMED_OUT,
                               f"{name} did not answer within {budget:.1f} s", name)
        except AgentGone:
            return not_checked(agency, R.NOT_CHECKED_REASON_AGENT_DISCONNECTED,
                               f"{name}'s agent disconnected during the lookup", name)
        finally:
            session.forget(query.query_id)  # answered, timed out or cancelled: nobody waits
            metrics.agency_seconds(agency).observe(time.monotonic() - started)

    def _probe(self, session: AgentSession, query: agent_pb2.Query, budget: float) -> None:
        """Send `query` to an agent taken as not answering, without waiting for it: its
        answer (seen by AgentService) brings the agent back. One probe at a time."""
        if not session.liveness.take_probe(query.query_id):
            return
        try:
            future = session.ask(query)
        except AgentGone:
            session.liveness.probe_done(query.query_id)
            return

        sent_at = dt.datetime.now(dt.UTC)

        async def settle() -> None:
            try:
                await asyncio.wait_for(future, timeout=budget)
            except TimeoutError:
                session.liveness.timed_out(sent_at, query.query_id)  # a late answer counts
            except AgentGone:
                pass
            finally:
                session.forget(query.query_id)
                session.liveness.probe_done(query.query_id)

        task = asyncio.ensure_future(settle())
        self._probes.add(task)
        task.add_done_callback(self._probes.discard)

    def checked(self, agency: str,
                answer: answer_pb2.AgencyAnswer) -> answer_pb2.AgencyAnswer:
        """The broker forwards only well-formed answers, and names the agency itself."""
        name = self.routing.name(agency)
        if answer.agency_id and answer.agency_id != agency:
            log.warning("agent_answer_refused", agency=agency, reason="claimed another agency")
            return not_checked(agency, R.NOT_CHECKED_REASON_AGENT_ERROR,
                               f"{name}'s agent answered in another agency's name", name)
        fault = problem(answer)
        if fault is not None:
            log.warning("agent_answer_refused", agency=agency, reason=fault)
            return not_checked(agency, R.NOT_CHECKED_REASON_AGENT_ERROR,
                               f"{name}'s agent sent a malformed answer: {fault}", name)
        answer.agency_id = agency
        answer.agency_name = name
        return answer


@dataclass(frozen=True)
class Problem:
    """A request the routing policy cannot route: the message (it may quote the code asked
    for) and the field violation (it does not)."""

    message: str
    reason: str
    violation: rpc_errors.Violation


def routing_problems(*, purpose: str, stage: str, wanted: set[str],
                     purposes: dict[str, frozenset[str]],
                     registered: dict[str, str]) -> list[Problem]:
    """Purpose, stage and agency filter against the routing policy and the registrations."""
    out = []
    if purpose not in purposes:
        known = ", ".join(sorted(purposes)) or "none"
        out.append(Problem(
            f"unknown purpose {purpose!r}: known purposes are {known}", "UNKNOWN_PURPOSE",
            rpc_errors.Violation("context.purpose", "context.purpose is not a purpose of the "
                                 f"routing policy: known purposes are {known}")))
    elif stage not in purposes[purpose]:
        known = ", ".join(sorted(purposes[purpose]))
        out.append(Problem(
            f"unknown stage {stage!r} for {purpose}: known stages are {known}", "UNKNOWN_STAGE",
            rpc_errors.Violation("context.stage", f"context.stage is not a stage of {purpose} "
                                 f"in the routing policy: known stages are {known}")))
    unknown = wanted - registered.keys()
    if unknown:
        out.append(Problem(
            f"unknown agency id(s): {', '.join(sorted(unknown))}", "UNKNOWN_AGENCY",
            rpc_errors.Violation("agencies", "every agency id must be one registered with the "
                                 "broker (mash agents)")))
    return out


def _ready(answer: answer_pb2.AgencyAnswer) -> asyncio.Future[answer_pb2.AgencyAnswer]:
    future: asyncio.Future[answer_pb2.AgencyAnswer] = asyncio.get_running_loop().create_future()
    future.set_result(answer)
    return future


class FederationService(lookup_pb2_grpc.FederationServiceServicer):
    def __init__(self, cfg: BrokerConfig, registry: Registry,
                 verifier: TokenVerifier | None = None) -> None:
        self.cfg = cfg
        self.registry = registry
        self.verifier = verifier or TokenVerifier.from_config(cfg.auth)

    async def ListAgents(
        self, request: lookup_pb2.ListAgentsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> lookup_pb2.ListAgentsResponse:
        analyst: Analyst = await authenticate(context, self.verifier,
                                              self.registry.revocation)
        log.info("agents_listed", requester=analyst.subject)
        return lookup_pb2.ListAgentsResponse(agents=self.registry.statuses())
