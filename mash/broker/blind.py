"""LookupService.BlindLookup: the broker relays a blind lookup it cannot read.

It sees the request context (purpose, stage, case reference: it routes and audits by them),
opaque match tokens, sealed boxes and which agencies answered. It never sees the subject or
an answer's contents, and it cannot forge an answer: every one is signed by its agency and
sealed to the analyst's one-time key. What it can still decide, and says so, is NOT_CHECKED:
an agency not asked (no agreement), offline or too slow.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc

from mash import context as lookup_context
from mash.answers import not_checked, timestamp
from mash.audit import build as audit_build
from mash.blind import proofs as blind_proofs
from mash.blind.answers import TOKEN_BYTES, request_hash
from mash.broker.auth import approval_metadata, bearer_token
from mash.errors import ValidationError
from mash.identity.tokens import Analyst
from mash.rpc import BadMessage
from mash.rpc_errors import abort, abort_invalid, abort_invalid_lookup
from mash.subject import EVIDENCE
from mash.v1 import agent_pb2, answer_pb2, blind_pb2

if TYPE_CHECKING:
    from mash.broker.lookup import LookupService, Plan

R = answer_pb2
MAX_TOKENS = 512


def check_query(query: blind_pb2.BlindQuery) -> None:
    """The envelope's shape; the broker can check nothing else."""
    if not query.match_tokens and not query.evidence:
        raise ValidationError("a blind lookup carries match tokens or at least says which "
                              "evidence it holds")
    if len(query.match_tokens) > MAX_TOKENS:
        raise ValidationError(f"too many match tokens ({len(query.match_tokens)}; at most "
                              f"{MAX_TOKENS})")
    if any(len(t) != TOKEN_BYTES for t in query.match_tokens):
        raise ValidationError(f"every match token is {TOKEN_BYTES} bytes")
    if len(query.answer_key) != 32:
        raise ValidationError("answer_key must be a 32-byte X25519 public key")
    if len(query.nonce) < 16:
        raise ValidationError("nonce must be at least 16 random bytes")
    unknown = set(query.evidence) - EVIDENCE
    if unknown:
        raise ValidationError(f"unknown evidence kind(s): {', '.join(sorted(unknown))}")


class BlindRelay:
    def __init__(self, service: LookupService) -> None:
        self.svc = service
        self.approval = ""  # the stage approval sent as call metadata, passed to agents

    async def run(self, requests: AsyncIterator[blind_pb2.BlindLookupRequest],
                  context: grpc.aio.ServicerContext[Any, Any],
                  ) -> AsyncIterator[blind_pb2.BlindLookupResponse]:
        started = time.monotonic()
        analyst = await self.svc.admit(context)
        first = await self._next(requests, context, "query", self.svc.cfg.deadline_seconds)
        query = first.query
        try:
            ctx = lookup_context.from_proto(query.context)
            check_query(query)
        except ValidationError as exc:
            await abort_invalid_lookup(context, str(exc), subject=None,
                                       request_context=query.context,
                                       blind_check=lambda: check_query(query))
        lookup_id = uuid.uuid4().hex
        digest = request_hash(query)
        token = bearer_token(context)
        await self.svc.proofs.check_blind(
            context, analyst=analyst, token=token, proof=first.proof,
            request=blind_proofs.round_one_bytes(digest), lookup_id=lookup_id, ctx=ctx,
            step="round one")
        plan = await self.svc.plan(context, analyst, ctx, set(query.agencies), lookup_id)
        self.approval = approval_metadata(context)
        approved = await self.svc.check_approval(context, analyst, ctx, self.approval)
        await self.svc.record(context, audit_build.lookup_entry(
            lookup_id=plan.lookup_id, analyst=analyst, context=ctx, subject=(),
            asked=plan.asked, policy_revision=plan.revision,
            agreements=[plan.decided[a].agreement_id for a in plan.asked],
            detail=f"blind lookup: {len(query.match_tokens)} match tokens, linkage epoch "
                   f"{query.linkage_epoch}" + (f"; {approved}" if approved else "")))

        queries = {a: self._query(plan, context, query, 1, proof=first.proof)
                   for a in plan.asked}
        one = await self._round(plan, analyst, ctx, context, 1, queries, digest)
        yield blind_pb2.BlindLookupResponse(round_one=one)

        budget = max(plan.budget - (time.monotonic() - started), 0.05)
        second = await self._next(requests, context, "subjects", budget)
        answered = {s.agency_id for s in one.answers}
        boxes: dict[str, blind_pb2.SealedSubject] = {}
        for sealed in second.subjects.subjects:
            if sealed.agency_id not in answered or sealed.agency_id in boxes:
                await abort_invalid(
                    context,
                    f"round two may carry one box for each agency that answered round one; "
                    f"{sealed.agency_id!r} is not one of them or appears twice",
                    reason="INVALID_BLIND_QUERY", field_path="subjects.subjects")
            boxes[sealed.agency_id] = sealed
        for agency, sealed in boxes.items():  # each box's own proof, before any is relayed
            await self.svc.proofs.check_blind(
                context, analyst=analyst, token=token, proof=sealed.proof,
                request=blind_proofs.round_two_bytes(digest, agency, sealed.box),
                lookup_id=plan.lookup_id, ctx=ctx, step=f"round two, the box for {agency}")
        queries = {}
        for agency, sealed in boxes.items():
            q = self._query(plan, context, query, 2, budget, proof=sealed.proof)
            q.sealed_subject.CopyFrom(sealed.box)
            queries[agency] = q
        two = await self._round(plan, analyst, ctx, context, 2, queries, digest, budget)
        yield blind_pb2.BlindLookupResponse(round_two=two)
        self.svc.finished(plan, [answer_pb2.AgencyAnswer(agency_id=s.agency_id)
                                 for s in two.answers] + list(two.broker_answers), started)

    async def _next(self, requests: AsyncIterator[blind_pb2.BlindLookupRequest],
                    context: grpc.aio.ServicerContext[Any, Any], step: str,
                    timeout: float) -> blind_pb2.BlindLookupRequest:
        try:
            message = await asyncio.wait_for(anext(requests), timeout)
        except TimeoutError:
            await abort(context, grpc.StatusCode.DEADLINE_EXCEEDED,
                        f"the blind lookup's {step} step did not arrive in time",
                        reason="STEP_TIMED_OUT")
        except StopAsyncIteration:
            await abort(context, grpc.StatusCode.CANCELLED,
                        f"the client closed the blind lookup before its {step} step",
                        reason="STREAM_CLOSED")
        except BadMessage as exc:
            await abort_invalid(context, str(exc), reason="MALFORMED_MESSAGE", field_path=step)
        if message.WhichOneof("step") != step:
            await abort(context, grpc.StatusCode.FAILED_PRECONDITION,
                        f"a blind lookup's next message must be its {step} step",
                        reason="OUT_OF_ORDER")
        return message

    def _query(self, plan: Plan, context: grpc.aio.ServicerContext[Any, Any],
               query: blind_pb2.BlindQuery, round_: int,
               budget: float | None = None, *, proof: str) -> agent_pb2.Query:
        deadline = (plan.deadline if budget is None
                    else dt.datetime.now(dt.UTC) + dt.timedelta(seconds=budget))
        return agent_pb2.Query(
            query_id=uuid.uuid4().hex, lookup_id=plan.lookup_id,
            analyst_token=bearer_token(context), context=query.context,
            deadline=timestamp(deadline), blind=query, round=round_, approval=self.approval,
            proof=proof)  # the analyst's, unchanged: each agent checks it itself

    async def _round(self, plan: Plan, analyst: Analyst, ctx: lookup_context.LookupContext,
                     context: grpc.aio.ServicerContext[Any, Any], round_: int,
                     queries: dict[str, agent_pb2.Query], digest: bytes,
                     budget: float | None = None) -> blind_pb2.BlindRound:
        budget = plan.budget if budget is None else budget
        agencies = sorted(queries)
        replies = await asyncio.gather(*(self.svc.send(a, queries[a], budget) for a in agencies))
        out = blind_pb2.BlindRound(lookup_id=plan.lookup_id, request_hash=digest)
        if round_ == 1:
            out.routing_revision = plan.revision
            for agency in plan.agencies:
                refused = plan.refusal(agency)
                if refused is not None:
                    out.broker_answers.append(refused)
        for agency, reply in zip(agencies, replies, strict=True):
            if isinstance(reply, answer_pb2.AgencyAnswer):
                out.broker_answers.append(reply)
            elif reply.HasField("sealed_answer"):
                out.answers.add(agency_id=agency, box=reply.sealed_answer)
            else:
                out.broker_answers.append(self._plain(agency, reply.answer))
        await self.svc.record(context, audit_build.sealed_answers_entry(
            lookup_id=plan.lookup_id, analyst=analyst, context=ctx,
            sealed=[s.agency_id for s in out.answers], answers=out.broker_answers,
            policy_revision=plan.revision, detail=f"blind round {round_}"))
        return out

    def _plain(self, agency: str, answer: answer_pb2.AgencyAnswer) -> answer_pb2.AgencyAnswer:
        """An unsealed reply to a blind query can only ever say NOT_CHECKED."""
        answer = self.svc.checked(agency, answer)
        if answer.state != R.ANSWER_STATE_NOT_CHECKED:
            name = self.svc.routing.name(agency)
            return not_checked(agency, R.NOT_CHECKED_REASON_AGENT_ERROR,
                               f"{name}'s agent answered a blind lookup in the clear", name)
        return answer
