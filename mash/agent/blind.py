"""The agent's half of a blind lookup.

Round one carries keyed match tokens only: the agent checks the analyst and the agreement as
for any query, looks the tokens up in its token index and answers "no candidate" (NOT_KNOWN,
signed) or "candidate, send me the subject". Round two carries a box sealed to this agency's
key: the subject when the agent had a candidate, padding when it did not (the broker cannot
tell which). Every answer is signed with the agency's answer key, bound to the request hash
and sealed to the analyst's one-time key before it leaves; the broker relays bytes.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import x25519

from mash import subject as subject_mod
from mash.agent.handler import Admitted, QueryHandler, Trace
from mash.agent.state import Snapshot
from mash.blind import answers as signed_answers
from mash.blind.config import BlindAgentKeys
from mash.blind.seal import Box, SealError, open_box, pad, seal
from mash.blind.tokens import TokenIndex, is_thin
from mash.errors import ValidationError
from mash.logs import get_logger
from mash.v1 import agent_pb2, answer_pb2, blind_pb2

log = get_logger(__name__)
R = answer_pb2


@dataclass
class _Verdict:
    candidate: bool = False


class BlindResponder:
    def __init__(self, handler: QueryHandler, blind: BlindAgentKeys) -> None:
        self.handler = handler
        self.cfg = handler.cfg
        self.blind = blind
        self._lock = threading.Lock()
        self._indexed: Snapshot | None = None
        self._indexes: dict[int, TokenIndex] = {}

    # -- token index -----------------------------------------------------------------------

    def prepare(self, snapshot: Snapshot) -> None:
        """Build the token indexes of a new snapshot, before it is published."""
        for epoch in self._epochs():
            self._index(snapshot, epoch)

    def _epochs(self) -> list[int]:
        try:
            valid = self.blind.directory.load().valid_epochs(dt.date.today())
        except Exception as exc:  # ConfigError: no epochs are valid; queries will say so
            log.warning("blind_directory_unreadable", reason=str(exc))
            return []
        return sorted(valid & self.blind.linkage.keys.keys())

    def _index(self, snapshot: Snapshot, epoch: int) -> TokenIndex:
        with self._lock:
            if self._indexed is not snapshot:
                self._indexed, self._indexes = snapshot, {}
            index = self._indexes.get(epoch)
            if index is None:
                key = self.blind.linkage.keys[epoch]
                index = self._indexes[epoch] = TokenIndex(key, snapshot.records())
                log.info("token_index_built", epoch=epoch, tokens=len(index),
                         records=snapshot.record_count)
            return index

    # -- answering --------------------------------------------------------------------------

    def receive(self, query: agent_pb2.Query) -> agent_pb2.QueryAnswer:
        """A blind round's query: decided, recorded and answered by the handler, then signed
        and sealed to the analyst's answer key."""
        digest = signed_answers.request_hash(query.blind)
        verdict = _Verdict()
        if query.round == 1:
            answer = self.handler.answer(query, lambda q, t: self._round_one(q, t, verdict))
        elif query.round == 2:
            answer = self.handler.answer(
                query, lambda q, t: self._round_two(q, t, digest, verdict))
        else:
            answer = self.handler.answer(query, lambda q, t: self.handler.not_checked(
                R.NOT_CHECKED_REASON_AGENT_ERROR,
                f"{self.cfg.name} cannot answer blind round {q.round} (rounds are 1 and 2)"))
        # Only an answer that survived its audit write may say "candidate".
        candidate = verdict.candidate and answer.state == R.ANSWER_STATE_UNSPECIFIED
        try:
            recipient = x25519.X25519PublicKey.from_public_bytes(query.blind.answer_key)
        except ValueError:
            return agent_pb2.QueryAnswer(query_id=query.query_id, answer=self.handler.not_checked(
                R.NOT_CHECKED_REASON_AGENT_ERROR,
                f"{self.cfg.name} cannot seal its answer: the request's answer key is not an "
                "X25519 public key"))
        signed = signed_answers.sign(self.blind.answer, self.cfg.agency, digest, query.round,
                                     candidate, answer)
        box = seal(recipient, "", pad(signed.SerializeToString()),
                   signed_answers.answer_aad(digest, self.cfg.agency, query.round),
                   signed_answers.ANSWER_LABEL)
        return agent_pb2.QueryAnswer(query_id=query.query_id, sealed_answer=box.message())

    def _admit(self, query: agent_pb2.Query,
               trace: Trace) -> Admitted | answer_pb2.AgencyAnswer:
        admitted = self.handler.admit(query, query.blind.context, trace)
        if isinstance(admitted, answer_pb2.AgencyAnswer):
            return admitted
        epoch = query.blind.linkage_epoch
        if epoch not in self._epochs():
            return self.handler.not_checked(
                R.NOT_CHECKED_REASON_POLICY_ERROR,
                f"{self.cfg.name} holds no valid linkage key for epoch {epoch}, so it cannot "
                "read the match tokens", admitted.decisions.revision)
        if self.handler.state.snapshot is None:
            return self.handler.not_checked(
                R.NOT_CHECKED_REASON_DATA_UNAVAILABLE,
                self.handler.state.unavailable(self.cfg.name), admitted.decisions.revision)
        return admitted

    def _round_one(self, query: agent_pb2.Query, trace: Trace,
                   verdict: _Verdict) -> answer_pb2.AgencyAnswer:
        admitted = self._admit(query, trace)
        if isinstance(admitted, answer_pb2.AgencyAnswer):
            return admitted
        evidence = set(query.blind.evidence)
        if self.cfg.minimum is not None and not subject_mod.evidence_meets(
                evidence, self.cfg.minimum):
            return self.handler.not_checked(
                R.NOT_CHECKED_REASON_TOO_FEW_IDENTIFIERS,
                f"{self.cfg.name} searches only with: "
                f"{subject_mod.describe_minimum(self.cfg.minimum)}", admitted.decisions.revision)
        snapshot = self.handler.state.snapshot
        assert snapshot is not None
        enough = snapshot.matcher.reach_of_kinds(evidence)
        if not enough.searchable:
            return self.handler.not_checked(
                R.NOT_CHECKED_REASON_TOO_FEW_IDENTIFIERS,
                f"{self.cfg.name} did not search: {enough.explain()}",
                admitted.decisions.revision)
        tokens = list(query.blind.match_tokens)
        hits = self._index(snapshot, query.blind.linkage_epoch).candidates(
            tokens, thin=is_thin(evidence))
        trace.audit_detail = f"blind round 1: {len(tokens)} tokens, {hits} candidate(s)"
        if hits or not tokens:
            # No tokens at all means nothing was searched: fall back to the sealed subject.
            verdict.candidate = True
            trace.audit_state = "CANDIDATE"
            return answer_pb2.AgencyAnswer(
                agency_id=self.cfg.agency, agency_name=self.cfg.name,
                policy_revision=admitted.decisions.revision,
                detail="a candidate: confirmation follows in round two")
        return self._not_known(admitted, snapshot, len(tokens))

    def _not_known(self, admitted: Admitted, snapshot: Snapshot,
                   tokens: int) -> answer_pb2.AgencyAnswer:
        answer = answer_pb2.AgencyAnswer(
            agency_id=self.cfg.agency, agency_name=self.cfg.name,
            contact_route=self.cfg.contact_route, policy_revision=admitted.decisions.revision,
            agreement_id=admitted.gate.agreement_id, state=R.ANSWER_STATE_NOT_KNOWN,
            warnings=self.handler.warnings(admitted.gate),
            detail=(f"no record shares any of the lookup's {tokens} keyed match tokens; "
                    f"{self.cfg.name} never saw who was asked about"))
        answer.data_as_at.CopyFrom(snapshot.as_at_proto)
        answer.searched.sources.extend(snapshot.sources_proto)
        return answer

    def _round_two(self, query: agent_pb2.Query, trace: Trace, digest: bytes,
                   verdict: _Verdict) -> answer_pb2.AgencyAnswer:
        admitted = self._admit(query, trace)
        if isinstance(admitted, answer_pb2.AgencyAnswer):
            return admitted
        sealed = query.sealed_subject
        key = self.blind.sealing.get(sealed.key_id)
        if key is None:
            return self.handler.not_checked(
                R.NOT_CHECKED_REASON_AGENT_ERROR,
                f"the subject was sealed to key {sealed.key_id or '(none)'}, which "
                f"{self.cfg.name} does not hold", admitted.decisions.revision)
        try:
            plain = open_box(key, Box.from_message(sealed),
                             signed_answers.subject_aad(digest, self.cfg.agency),
                             signed_answers.SUBJECT_LABEL)
            envelope = blind_pb2.SubjectEnvelope.FromString(plain)
        except (SealError, ValueError, RuntimeError) as exc:
            return self.handler.not_checked(
                R.NOT_CHECKED_REASON_AGENT_ERROR,
                f"{self.cfg.name} could not open the sealed subject: {exc}",
                admitted.decisions.revision)
        snapshot = self.handler.state.snapshot
        assert snapshot is not None
        if not envelope.HasField("subject"):
            trace.audit_detail = "blind round 2: no candidate, no subject"
            return self._not_known(admitted, snapshot, len(query.blind.match_tokens))
        try:
            subject = trace.subject = subject_mod.from_proto(envelope.subject)
        except ValidationError as exc:
            return self.handler.not_checked(
                R.NOT_CHECKED_REASON_AGENT_ERROR,
                f"{self.cfg.name} could not read the request: {exc}",
                admitted.decisions.revision)
        trace.audit_detail = "blind round 2: subject received"
        return self.handler.match_and_disclose(admitted, subject, trace)
