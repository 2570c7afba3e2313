"""Answering the broker's queries at the agency: one name per step, one place each.

A query's path through the agent, as its names say:

1. **receive**: `BrokerLink._receive` (link.py) takes it off a broker's stream and hands it to
   `Agent.receive` (service.py): a plain query to the query queue (batches.py), a blind one
   to the blind rounds (blind.py);
2. **admit** (`QueryHandler.admit`): the deadline, the analyst's token and request proof, the
   agreement's gate and any stage approval, all checked by the data owner itself;
3. **match** (`QueryHandler.match`): the minimum evidence, then the matcher
   (`mash.matching`, whose `search` finds candidates) and the consistency selection;
4. **disclose** (`QueryHandler.disclose`): the agreement decides, field by field, what of each
   matched record may be released;
5. **record** (`QueryHandler.record`): the audit entries, committed before any answer goes;
6. **answer** (`QueryHandler.answer`, `answer_batch`): the answer that may leave, NOT_CHECKED
   in place of one that could not be recorded; the link sends it back on the query's stream.

`decide_plain` runs steps 2-4 for a plain query; a blind round runs its own (blind.py). A
decision never raises and never says NOT_KNOWN on a failure.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mash import context as lookup_context
from mash import subject as subject_mod
from mash.agent import consistency
from mash.agent.batches import QueryQueue, Stopped
from mash.agent.config import AgentConfig
from mash.agent.describe import describer
from mash.agent.disclosure import AgentPolicy, OwnerDecisions, PolicyError, Requester
from mash.agent.record_store import StoreUnavailable
from mash.agent.state import AgentState, Snapshot
from mash.answers import not_checked
from mash.audit import AuditEntry, AuditError, AuditLog, Prepare, SubjectHasher
from mash.audit import build as audit_build
from mash.blind import proofs as blind_proofs
from mash.context import LookupContext
from mash.errors import IdentityError, ValidationError
from mash.identity import approvals
from mash.identity.cert_binding import CertProofVerifier, FederationCa
from mash.identity.dpop import ProofVerifier
from mash.identity.request_binding import check_lookup_proof
from mash.identity.revocation import RevocationList
from mash.identity.tokens import Analyst, TokenVerifier
from mash.logs import get_logger
from mash.matching import Candidate, SearchOutcome
from mash.policy.model import Gate, RecordDisclosure
from mash.records import PersonRecord
from mash.v1 import agent_pb2, answer_pb2, subject_pb2

log = get_logger(__name__)
R = answer_pb2


@dataclass(frozen=True)
class Admitted:
    """A query the owner's checks let through: who asks, and under which agreement."""

    requester: Requester
    decisions: OwnerDecisions
    gate: Gate


@dataclass
class Trace:
    """What one query turned out to be about, for the audit entry written before answering."""

    analyst: Analyst | None = None
    context: LookupContext | None = None
    subject: subject_mod.SubjectQuery | None = None
    matched: list[PersonRecord] = field(default_factory=list)
    audit_state: str = ""  # overrides the answer's state in the audit (blind: CANDIDATE)
    audit_detail: str = ""
    approval: str = ""  # the stage approval checked, or why it was refused (for the audit)


@dataclass
class Decided:
    """A query's answer and what it was about, waiting for its audit entry to be written."""

    query: agent_pb2.Query
    trace: Trace
    answer: answer_pb2.AgencyAnswer
    started: float


@dataclass
class Matched:
    """What matching found: the answer begun (what was searched, under which agreement, as at
    when), and the candidates chosen to answer about (None: no candidate at all)."""

    answer: answer_pb2.AgencyAnswer
    selection: consistency.Selection | None


# a decision on one query (steps 2-4): the answer, filling in what the audit needs in Trace
Decide = Callable[[agent_pb2.Query, Trace], answer_pb2.AgencyAnswer]


class QueryHandler:
    """Steps 2 to 6 of the module's path, for every kind of query (plain, blind rounds)."""

    def __init__(self, cfg: AgentConfig, state: AgentState, policy: AgentPolicy,
                 audit: AuditLog, *, hasher: SubjectHasher,
                 revocation: RevocationList | None = None) -> None:
        self.cfg = cfg
        # analysts' tokens: the issuers' keys are read here, as the agent starts
        self.verifier = TokenVerifier.from_config(cfg.auth)
        self.state = state
        self.policy = policy
        self.audit = audit
        self.hasher = hasher
        # the agent's own replay cache: one for every broker it serves, so a proof one broker
        # forwarded is refused when another (or the same) sends it again
        self.proofs = ProofVerifier()
        # certificate proofs (cnf.x5t#S256) share its replay cache and time window, and their
        # certificates are checked against the federation CRL the agent's links reload
        self.cert_proofs = CertProofVerifier(self.proofs, FederationCa(cfg.tls.ca),
                                             revocation=revocation)

    # -- 6. answer (with 5. record) ---------------------------------------------------------

    def answer(self, query: agent_pb2.Query, decide: Decide | None = None,
               ) -> answer_pb2.AgencyAnswer:
        """Decide one query (plain unless `decide` says otherwise), record it, answer it."""
        return self.answer_batch([query], decide)[0]

    async def answer_queued(self, query: agent_pb2.Query,
                            queries: QueryQueue) -> answer_pb2.AgencyAnswer:
        """Answer a plain query through `queries` (which calls `answer_batch` on a query
        thread); a query the agent stopped before searching is NOT_CHECKED, never lost."""
        try:
            return await queries.answer(query)
        except Stopped as exc:
            return self.not_checked(R.NOT_CHECKED_REASON_AGENT_ERROR,
                                     f"{self.cfg.name}'s agent {exc}")

    def answer_batch(self, queries: list[agent_pb2.Query],
                     decide: Decide | None = None) -> list[answer_pb2.AgencyAnswer]:
        """Answer queries that arrived together (on a query thread; see batches.py). Each is
        decided on its own; their audit entries are committed in one transaction (one fsync
        for them all), and no answer is given before that commit. Never raises: an entry that
        cannot be built fails closed for its own query, a commit that fails for all of them."""
        decided = [self._decided(query, decide or self.decide_plain) for query in queries]
        failed = self.record(decided)
        return [self._released(one, error) for one, error in zip(decided, failed, strict=True)]

    def _decided(self, query: agent_pb2.Query, decide: Decide) -> Decided:
        """The answer before its audit: never raises, never says NOT_KNOWN on a failure."""
        started = time.monotonic()
        trace = Trace()
        try:
            answer = decide(query, trace)
        except Exception as exc:  # the agent never dies on a query, and never says NOT_KNOWN
            log.exception("query_failed", query_id=query.query_id, error=type(exc).__name__)
            answer = self.not_checked(R.NOT_CHECKED_REASON_AGENT_ERROR,
                                       "the agent failed while searching; the agency has been "
                                       "alerted through its logs")
        return Decided(query, trace, answer, started)

    def record(self, decided: list[Decided]) -> list[AuditError | None]:
        """Write the audit entries of decided queries in one transaction: for each, None
        when it is recorded, else why not (its answer must then not be given)."""
        failed: list[AuditError | None] = [None] * len(decided)
        prepared: list[tuple[int, Prepare]] = []
        for i, one in enumerate(decided):
            try:
                prepared.append((i, self.audit.prepare(self.audit_entry(one))))
            except AuditError as exc:
                failed[i] = exc
            except Exception as exc:
                log.exception("audit_entry_failed", query_id=one.query.query_id,
                              error=type(exc).__name__)
                failed[i] = AuditError(f"its entry could not be built ({type(exc).__name__})")
        if prepared:
            try:
                self.audit.append_prepared([prepare for _, prepare in prepared])
            except AuditError as exc:
                for i, _ in prepared:
                    failed[i] = exc
        return failed

    def audit_entry(self, decided: Decided) -> AuditEntry:
        """What the audit records of a decided query (raises AuditError if it cannot)."""
        query, trace, answer = decided.query, decided.trace, decided.answer
        return audit_build.query_entry(
            lookup_id=query.lookup_id, query_id=query.query_id, analyst=trace.analyst,
            context=trace.context,
            subject=self.hasher.hashes(trace.subject) if trace.subject else (),
            answer=answer, state=trace.audit_state,
            detail="; ".join(d for d in (trace.audit_detail, trace.approval) if d),
            record_refs=[self.hasher.record_ref(r.source, r.record_id) for r in trace.matched])

    def _released(self, decided: Decided, failed: AuditError | None) -> answer_pb2.AgencyAnswer:
        """The answer that may leave: an answer that could not be recorded is not given (fail
        closed: NOT_CHECKED, releasing nothing)."""
        answer = decided.answer
        if failed is not None:
            answer = self.not_checked(
                R.NOT_CHECKED_REASON_AUDIT_FAILED,
                f"{self.cfg.name} could not record this query in its audit trail, so it "
                f"answers nothing: {failed}", answer.policy_revision or None)
        answer.elapsed_ms = int((time.monotonic() - decided.started) * 1000)
        log.info(
            "query_answered",
            query_id=decided.query.query_id,
            lookup_id=decided.query.lookup_id,
            state=R.AnswerState.Name(answer.state),
            reason=R.NotCheckedReason.Name(answer.not_checked_reason),
            matches=len(answer.matches),
            elapsed_ms=answer.elapsed_ms,
        )
        return answer

    def not_checked(self, reason: int, detail: str,
                     revision: str | None = None) -> answer_pb2.AgencyAnswer:
        answer = not_checked(self.cfg.agency, reason, detail, self.cfg.name,
                             contact_route=self.cfg.contact_route,
                             policy_revision=revision or self.policy.revision)
        snapshot = self.state.snapshot
        if snapshot is not None:
            answer.data_as_at.CopyFrom(snapshot.as_at_proto)
        return answer

    # -- 2-4. decide: admit, match, disclose ------------------------------------------------

    def decide_plain(self, query: agent_pb2.Query, trace: Trace) -> answer_pb2.AgencyAnswer:
        """A plain query's answer: admitted, matched, disclosed (or why not, NOT_CHECKED)."""
        admitted = self.admit(query, query.context, trace)
        if isinstance(admitted, answer_pb2.AgencyAnswer):
            return admitted
        try:
            subject = trace.subject = subject_mod.from_proto(query.subject)
        except ValidationError as exc:
            return self.not_checked(R.NOT_CHECKED_REASON_AGENT_ERROR,
                                     f"{self.cfg.name} could not read the request: {exc}")
        return self.match_and_disclose(admitted, subject, trace)

    def match_and_disclose(self, admitted: Admitted, subject: subject_mod.SubjectQuery,
                           trace: Trace) -> answer_pb2.AgencyAnswer:
        """Steps 3 and 4 for an admitted subject: a plain query's, or a blind round two's."""
        matched = self.match(admitted, subject)
        if isinstance(matched, answer_pb2.AgencyAnswer):
            return matched
        return self.disclose(admitted, matched, subject, trace)

    def admit(self, query: agent_pb2.Query, context: subject_pb2.RequestContext,
              trace: Trace) -> Admitted | answer_pb2.AgencyAnswer:
        """The owner's checks before searching: deadline, token, request, agreement.

        Returns what the search needs, or the NOT_CHECKED answer that says why not.
        """
        if query.HasField("deadline") and query.deadline.ToDatetime(dt.UTC) < dt.datetime.now(
                dt.UTC):
            return self.not_checked(R.NOT_CHECKED_REASON_TIMED_OUT,
                                     "the query reached the agent after its deadline")
        try:
            analyst = trace.analyst = self.verifier.verify(query.analyst_token)
        except IdentityError as exc:
            return self.not_checked(R.NOT_CHECKED_REASON_TOKEN_REJECTED,
                                     f"{self.cfg.name} refused the analyst's token: {exc}")
        try:
            ctx = trace.context = lookup_context.from_proto(context)
        except ValidationError as exc:
            return self.not_checked(R.NOT_CHECKED_REASON_AGENT_ERROR,
                                     f"{self.cfg.name} could not read the request: {exc}")
        refused = self.check_proof(query, analyst)
        if refused is not None:
            return refused
        requester = Requester(analyst.agency, analyst.role, ctx.purpose, ctx.stage)
        try:
            decisions = self.policy.snapshot()
            gate = decisions.gate(requester)
        except PolicyError as exc:
            return self.not_checked(R.NOT_CHECKED_REASON_POLICY_ERROR,
                                     f"{self.cfg.name} shares nothing: {exc}")
        if not gate.allowed:
            reason = (R.NOT_CHECKED_REASON_NO_AGREEMENT if gate.refusal == "no_agreement"
                      else R.NOT_CHECKED_REASON_POLICY_ERROR)
            return self.not_checked(reason, gate.reason, decisions.revision)
        refused = self.check_approval(query, analyst, ctx, decisions, trace)
        if refused is not None:
            return refused
        return Admitted(requester, decisions, gate)

    def check_proof(self, query: agent_pb2.Query,
                    analyst: Analyst) -> answer_pb2.AgencyAnswer | None:
        """The analyst's request proof, checked here against the subject and context as they
        reached the agent (mash/identity/request_binding.py; blind rounds:
        mash/blind/proofs.py): None when it may go on. A
        refusal is NOT_CHECKED (token rejected), never NOT_KNOWN."""
        require = self.cfg.auth.require_bound_proof
        try:
            if query.HasField("blind"):  # over the BlindQuery, box and agency received
                blind_proofs.check_blind_proof(
                    self.proofs, analyst=analyst, token=query.analyst_token, proof=query.proof,
                    request=blind_proofs.query_bytes(query.blind, query.round, self.cfg.agency,
                                                     query.sealed_subject), require=require,
                    cert_proofs=self.cert_proofs)
            else:
                check_lookup_proof(self.proofs, analyst=analyst, token=query.analyst_token,
                                   proof=query.proof, subject=query.subject,
                                   context=query.context, require=require,
                                   cert_proofs=self.cert_proofs)
        except IdentityError as exc:
            log.warning("query_proof_refused", query_id=query.query_id,
                        lookup_id=query.lookup_id, reason=str(exc))
            return self.not_checked(R.NOT_CHECKED_REASON_TOKEN_REJECTED,
                                    f"{self.cfg.name} refused the analyst's request proof: "
                                    f"{exc}")
        return None

    def check_approval(self, query: agent_pb2.Query, analyst: Analyst, ctx: LookupContext,
                       decisions: OwnerDecisions,
                       trace: Trace) -> answer_pb2.AgencyAnswer | None:
        """At a stage the signed federation policy says needs approval, the agent verifies
        the approval itself (mash/identity/approvals.py): None when it may search."""
        rules = approvals.ApprovalRules.from_federation(decisions.policy.bundle.federation)
        if not rules.required(ctx.stage):
            return None
        try:
            approval = approvals.verify_approval(
                query.approval, verifier=self.verifier, rules=rules, analyst=analyst,
                case_reference=ctx.case_reference, purpose=ctx.purpose, stage=ctx.stage,
                now=dt.datetime.now(dt.UTC))
        except approvals.ApprovalError as exc:
            trace.approval = (f"stage approval refused (sha256:{approvals.digest(query.approval)})"
                              if query.approval else "no stage approval")
            return self.not_checked(R.NOT_CHECKED_REASON_APPROVAL_REQUIRED,
                                    f"{self.cfg.name} did not search: {exc}", decisions.revision)
        trace.approval = approval.describe()
        return None

    def match(self, admitted: Admitted,
              subject: subject_mod.SubjectQuery) -> Matched | answer_pb2.AgencyAnswer:
        """The records that may be this person, from the snapshot searched, with the answer
        begun (what was searched, the agreement, the data's as-at time); or NOT_CHECKED
        when the query cannot be searched, the records cannot be had or cannot be read."""
        decisions, gate = admitted.decisions, admitted.gate
        if self.cfg.minimum is not None and not subject_mod.meets_minimum(
                subject, self.cfg.minimum):
            return self.not_checked(
                R.NOT_CHECKED_REASON_TOO_FEW_IDENTIFIERS,
                f"{self.cfg.name} searches only with: "
                f"{subject_mod.describe_minimum(self.cfg.minimum)}", decisions.revision)
        snapshot = self.state.snapshot
        if snapshot is None:
            return self.not_checked(R.NOT_CHECKED_REASON_DATA_UNAVAILABLE,
                                     self.state.unavailable(self.cfg.name), decisions.revision)
        enough = snapshot.matcher.reach(subject)
        if not enough.searchable:
            return self.not_checked(R.NOT_CHECKED_REASON_TOO_FEW_IDENTIFIERS,
                                    f"{self.cfg.name} did not search: {enough.explain()}",
                                    decisions.revision)
        try:
            outcome = snapshot.matcher.search(subject)
        except StoreUnavailable as exc:
            return self.store_unavailable(exc, decisions.revision)
        base = answer_pb2.AgencyAnswer(
            agency_id=self.cfg.agency,
            agency_name=self.cfg.name,
            contact_route=self.cfg.contact_route,
            policy_revision=decisions.revision,
            agreement_id=gate.agreement_id,
            searched=self._summary(outcome, snapshot),
            warnings=self.warnings(gate),
        )
        base.data_as_at.CopyFrom(snapshot.as_at_proto)
        if not outcome.candidates:
            return Matched(base, None)
        matcher = snapshot.matcher
        try:
            selection = consistency.select(
                outcome.candidates, subject, lambda: {
                    (c.record.source, c.record.record_id)
                    for c in matcher.search(consistency.primary_subject(subject)).candidates})
        except StoreUnavailable as exc:
            return self.store_unavailable(exc, decisions.revision)
        return Matched(base, selection)

    def disclose(self, admitted: Admitted, matched: Matched, subject: subject_mod.SubjectQuery,
                 trace: Trace) -> answer_pb2.AgencyAnswer:
        """The answer: NOT_KNOWN when nothing matched; else what the agreement releases of
        each matched record, field by field (WITHHELD when it releases none), with every
        matched record named in the audit (`trace.matched`)."""
        requester, decisions, gate = admitted.requester, admitted.decisions, admitted.gate
        base, selection = matched.answer, matched.selection
        if selection is None:
            base.state = R.ANSWER_STATE_NOT_KNOWN
            return base
        if selection.left_out:
            base.warnings.append(selection.summary())
        base.warnings.extend(selection.warnings)
        if not selection.released:
            trace.matched = [c.record for c in selection.left_out[: self.cfg.max_matches]]
            base.state = R.ANSWER_STATE_WITHHELD
            base.detail = (f"{self.cfg.name} holds records that may relate to this person but "
                           "cannot be told apart from the details given (see the warnings); "
                           f"add a date of birth or an identifier, or contact "
                           f"{self.cfg.contact_route}.")
            return base
        candidates = selection.released[: self.cfg.max_matches]
        # the audit names every record this lookup matched, released or left out, so that
        # each person's subject access search finds it (mash audit search --held)
        trace.matched = [c.record for c in
                         (*candidates, *selection.left_out[: self.cfg.max_matches])]
        try:
            decided = decisions.disclose(requester, gate, [c.record for c in candidates],
                                         fields=self.cfg.field_names)
            disclosures: list[tuple[Candidate, RecordDisclosure]] = list(
                zip(candidates, decided, strict=True))
        except PolicyError as exc:
            return self.not_checked(R.NOT_CHECKED_REASON_POLICY_ERROR,
                                     f"{self.cfg.name} shares nothing: {exc}",
                                     decisions.revision)
        shown = [(c, d) for c, d in disclosures if d.level == "fields"]
        if not shown:
            base.state = R.ANSWER_STATE_WITHHELD
            reasons = sorted({d.reason for _, d in disclosures if d.reason})
            base.detail = (f"{self.cfg.name} holds information that may relate to this person; "
                           f"{'; '.join(reasons)}.")
            return base
        base.state = R.ANSWER_STATE_KNOWN
        describe = describer(gate.rules.release if gate.rules else {}, self.cfg.field_names)
        if not describe.score_shown(subject):
            # no score to rank by: match before possible, then as the records lie
            shown.sort(key=lambda cd: (cd[0].band != "match", cd[0].record.source,
                                       cd[0].record.record_id))
        for candidate, disclosure in shown:
            match = base.matches.add(
                confidence=(R.CONFIDENCE_MATCH if candidate.band == "match"
                            else R.CONFIDENCE_POSSIBLE),
                score=describe.score(subject, candidate.score),
                matched_on=describe.matched_on(candidate.matched_on),
                source=candidate.record.source,
                agreement_id=disclosure.agreement_id,
            )
            for released in disclosure.released:
                match.released.add(name=released.name, value=released.value or "",
                                   transform=released.transform)
            for withheld in disclosure.withheld:
                match.withheld.add(name=withheld.name, reason=withheld.reason)
        hidden = len(disclosures) - len(shown)
        if hidden:
            base.detail = (f"{hidden} further record(s) may relate to this person but are "
                           f"restricted: contact {self.cfg.contact_route}")
        return base

    def store_unavailable(self, exc: StoreUnavailable,
                          revision: str) -> answer_pb2.AgencyAnswer:
        """The matched records could not be read: NOT_CHECKED, never NOT_KNOWN, nothing
        released (not a part of a record)."""
        log.error("record_store_unavailable", reason=str(exc))
        return self.not_checked(
            R.NOT_CHECKED_REASON_DATA_UNAVAILABLE,
            f"{self.cfg.name} could not complete the search: {exc}; it answers nothing "
            "rather than part of a record, and the agency has been alerted through its logs",
            revision)

    def warnings(self, gate: Gate) -> list[str]:
        """The agreement's warnings, and that the records are an older load if they are."""
        stale = self.state.stale_warning(self.cfg.name)
        return [*gate.warnings, stale] if stale else list(gate.warnings)

    def _summary(self, outcome: SearchOutcome, snapshot: Snapshot) -> answer_pb2.SearchSummary:
        summary = answer_pb2.SearchSummary(
            identifiers_used=outcome.identifiers_used,
            name_variants=outcome.name_variants,
            date_of_birth_tolerance_days=outcome.date_of_birth_tolerance_days,
            date_of_birth_day_month_swap=outcome.date_of_birth_day_month_swap,
            date_of_birth_rules=outcome.date_of_birth_rules,
            postcodes=outcome.postcodes,
            addresses=outcome.addresses,
            # never candidates_examined: how many records shared a blocking key with the
            # subject depends on the records held, not on what was searched (an oracle)
            sources=snapshot.sources_proto,
        )
        return summary
