"""The analyst's side of a blind lookup, as a small state machine with no I/O.

    session = BlindSession(cfg, directory, request, proof_key=key, token=token)
    send(session.first())                 # tokens only
    send(session.second(round_one))        # the subject, sealed to candidate agencies only
    response = session.result(round_two)   # verified answers, as a LookupResponse

Every answer is opened with the session's one-time key and its signature checked against the
agency's keys in the signed directory, bound to this request's hash, round and agency. An
answer that fails any check is shown as NOT_CHECKED saying so, never dropped and never
believed. Round two goes to every agency that answered round one: the subject to those with a
candidate, a box of the same size holding only padding to the rest, so the broker cannot tell
which agencies hold someone.

With a proof key (the key the analyst token is bound to: cnf.jkt's proof key or
cnf.x5t#S256's client certificate key), both rounds are signed (mash/blind/proofs.py): round
one over the request hash, and each round-two box with a fresh proof over the request hash,
that box and the agency it is for.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import x25519

from mash import subject as subject_mod
from mash.answers import not_checked, timestamp
from mash.blind import answers as signed_answers
from mash.blind import proofs
from mash.blind.config import BlindClientKeys
from mash.blind.directory import Directory
from mash.blind.seal import Box, SealError, open_box, raw_public, seal, unpad
from mash.blind.tokens import subject_tokens
from mash.errors import ConfigError, MashError
from mash.identity.request_binding import BoundKey
from mash.v1 import answer_pb2, blind_pb2, lookup_pb2

R = answer_pb2
ENVELOPE_BLOCK = 1024


class BlindLookupError(MashError):
    """The broker's replies do not belong to this lookup: nothing from it can be trusted."""


@dataclass
class _Opened:
    candidate: bool
    answer: answer_pb2.AgencyAnswer


@dataclass
class BlindSession:
    cfg: BlindClientKeys
    directory: Directory
    request: lookup_pb2.LookupRequest
    today: dt.date = field(default_factory=dt.date.today)
    # the key the analyst token is bound to: set, both rounds are signed with it
    proof_key: BoundKey | None = None
    token: str = ""  # the analyst token the proofs name (their `ath`)

    def __post_init__(self) -> None:
        subject = subject_mod.from_proto(self.request.subject)  # ValidationError: say so now
        epoch = self.directory.current_epoch(self.today)
        key = self.cfg.linkage.for_epoch(epoch)
        if key is None:
            raise ConfigError(f"no linkage key for the current epoch {epoch}: fetch "
                              f"linkage-{epoch}.key from the federation's key custodian")
        self._answer_key = x25519.X25519PrivateKey.generate()
        self.query = blind_pb2.BlindQuery(
            context=self.request.context, linkage_epoch=epoch,
            match_tokens=subject_tokens(key, subject),
            answer_key=raw_public(self._answer_key.public_key()), nonce=os.urandom(16),
            agencies=sorted(self.request.agencies), evidence=sorted(subject.present()))
        self.digest = signed_answers.request_hash(self.query)
        self.warnings: list[str] = []
        if not self.query.match_tokens:
            self.warnings.append("the subject gives no match tokens, so every agency asked "
                                 "receives it sealed in round two")
        self.evidence: list[blind_pb2.SignedAnswer] = []  # what each agency signed
        self._lookup_id = ""
        self._revision = ""
        self._first: dict[str, _Opened] = {}
        self._final: dict[str, answer_pb2.AgencyAnswer] = {}

    def first(self) -> blind_pb2.BlindLookupRequest:
        """Round one: the tokens, signed afresh (a new nonce) on every call."""
        step = blind_pb2.BlindLookupRequest(query=self.query)
        if self.proof_key is not None:
            step.proof = proofs.sign_round_one(self.proof_key, token=self.token,
                                               digest=self.digest)
        return step

    def second(self, one: blind_pb2.BlindRound) -> blind_pb2.BlindLookupRequest:
        self._check_round(one)
        self._lookup_id, self._revision = one.lookup_id, one.routing_revision
        for answer in one.broker_answers:
            self._final[answer.agency_id] = self._from_broker(answer)
        out = blind_pb2.SealedSubjects()
        envelopes: dict[str, blind_pb2.SubjectEnvelope] = {}
        twice = _twice(one.answers)
        for sealed in one.answers:
            agency = sealed.agency_id
            try:
                if agency in twice:
                    raise signed_answers.AnswerRejected(
                        f"the broker relayed {twice[agency]} answers for {agency}")
                opened = self._open(sealed, 1)
            except (signed_answers.AnswerRejected, SealError) as exc:
                self._final[agency] = self._rejected(agency, exc)
                opened = _Opened(False, self._final[agency])
            else:
                self._first[agency] = opened
                self._final.pop(agency, None)  # its own signed answer, not the broker's word
            envelope = blind_pb2.SubjectEnvelope()
            if opened.candidate:
                envelope.subject.CopyFrom(self.request.subject)
            envelopes[agency] = envelope
        size = _padded_size(envelopes.values())
        for agency, envelope in envelopes.items():
            try:
                key_id, public = self.directory.sealing_key(agency, self.today)
            except ConfigError as exc:
                if agency in self._first and self._first[agency].candidate:
                    self._final[agency] = not_checked(
                        agency, R.NOT_CHECKED_REASON_POLICY_ERROR,
                        f"the subject cannot be sealed to {agency}: {exc}")
                continue
            box = seal(public, key_id, _pad_envelope(envelope, size),
                       signed_answers.subject_aad(self.digest, agency),
                       signed_answers.SUBJECT_LABEL)
            sealed_subject = out.subjects.add(agency_id=agency, box=box.message())
            if self.proof_key is not None:
                sealed_subject.proof = proofs.sign_round_two(
                    self.proof_key, token=self.token, digest=self.digest, agency=agency,
                    box=sealed_subject.box)
        # Every agency that should have answered and of which the broker said nothing: a
        # broker that drops an agency's sealed answer cannot make the agency vanish.
        for agency in self.expected():
            if agency not in self._final and agency not in self._first:
                self._final[agency] = not_checked(
                    agency, R.NOT_CHECKED_REASON_NOT_RELAYED,
                    f"no answer from {agency} was relayed by the broker, though the signed "
                    "key directory lists it for blind lookups: it is not known whether "
                    f"{agency} was searched")
        return blind_pb2.BlindLookupRequest(subjects=out)

    def expected(self) -> list[str]:
        """The agencies that should answer: every agency the signed key directory lists with
        a key valid today to sign its answers (narrowed to those the request names)."""
        listed = {a for a in self.directory.answer if self.directory.answer_keys(a, self.today)}
        wanted = set(self.request.agencies)
        return sorted(listed & wanted if wanted else listed)

    def result(self, two: blind_pb2.BlindRound) -> lookup_pb2.LookupResponse:
        self._check_round(two)
        late = {a.agency_id: a for a in two.broker_answers}
        second: dict[str, answer_pb2.AgencyAnswer] = {}
        twice = _twice(two.answers)
        for sealed in two.answers:
            try:
                if sealed.agency_id in twice:
                    raise signed_answers.AnswerRejected(
                        f"the broker relayed {twice[sealed.agency_id]} second answers for "
                        f"{sealed.agency_id}")
                second[sealed.agency_id] = self._open(sealed, 2).answer
            except (signed_answers.AnswerRejected, SealError) as exc:
                second[sealed.agency_id] = self._rejected(sealed.agency_id, exc)
        for agency, first in self._first.items():
            if not first.candidate:
                # Never saw the subject: its signed round-one NOT_KNOWN (or NOT_CHECKED) stands.
                self._final[agency] = first.answer
            elif agency in second:
                self._final[agency] = second[agency]
            elif agency in late:
                self._final[agency] = self._from_broker(late[agency])
            elif agency not in self._final:
                self._final[agency] = not_checked(
                    agency, R.NOT_CHECKED_REASON_NOT_RELAYED,
                    f"{agency} had a candidate but the broker relayed no second answer from "
                    f"it: it is not known what {agency} holds")
        response = lookup_pb2.LookupResponse(
            lookup_id=self._lookup_id, routing_revision=self._revision,
            answers=[self._final[a] for a in sorted(self._final)])
        response.asked_at.CopyFrom(timestamp(dt.datetime.now(dt.UTC)))
        for answer in response.answers:
            answer.warnings.extend(self.warnings)
        return response

    # -- checks ---------------------------------------------------------------------------

    def _check_round(self, round_: blind_pb2.BlindRound) -> None:
        if round_.request_hash != self.digest:
            raise BlindLookupError("the broker answered another request (request hash "
                                   "mismatch): the lookup is abandoned")
        if self._lookup_id and round_.lookup_id != self._lookup_id:
            raise BlindLookupError("the broker's second round belongs to another lookup")

    def _open(self, sealed: blind_pb2.SealedAnswer, round_: int) -> _Opened:
        agency = sealed.agency_id
        box = Box.from_message(sealed.box)
        plain = unpad(open_box(self._answer_key, box,
                               signed_answers.answer_aad(self.digest, agency, round_),
                               signed_answers.ANSWER_LABEL))
        try:
            signed = blind_pb2.SignedAnswer.FromString(plain)
        except (ValueError, RuntimeError):
            raise signed_answers.AnswerRejected(f"{agency}'s answer is not a signed answer"
                                                ) from None
        candidate, answer = signed_answers.verify(
            signed, self.directory.answer_keys(agency, self.today), agency, self.digest, round_)
        self.evidence.append(signed)
        if round_ == 1 and not candidate and answer.state not in (
                R.ANSWER_STATE_NOT_KNOWN, R.ANSWER_STATE_NOT_CHECKED):
            raise signed_answers.AnswerRejected(
                f"{agency}'s first-round answer is neither a candidate, NOT_KNOWN nor "
                "NOT_CHECKED")
        return _Opened(candidate, answer)

    @staticmethod
    def _rejected(agency: str, exc: Exception) -> answer_pb2.AgencyAnswer:
        return not_checked(agency, R.NOT_CHECKED_REASON_VERIFICATION_FAILED,
                           f"{agency}'s answer was rejected: {exc}")

    @staticmethod
    def _from_broker(answer: answer_pb2.AgencyAnswer) -> answer_pb2.AgencyAnswer:
        """The broker may only say NOT_CHECKED on an agency's behalf: it signs nothing."""
        if answer.state != R.ANSWER_STATE_NOT_CHECKED:
            return not_checked(answer.agency_id, R.NOT_CHECKED_REASON_AGENT_ERROR,
                               "the broker sent an unsigned answer that is not NOT_CHECKED; "
                               "it is not believed")
        return answer


def _twice(answers: object) -> dict[str, int]:
    """Agencies with more than one sealed answer in a round, and how many."""
    counts: dict[str, int] = {}
    for sealed in answers:  # type: ignore[attr-defined]
        counts[sealed.agency_id] = counts.get(sealed.agency_id, 0) + 1
    return {agency: n for agency, n in counts.items() if n > 1}


def _pad_envelope(envelope: blind_pb2.SubjectEnvelope, size: int) -> bytes:
    """Serialise with padding so that every envelope of the round is `size` bytes."""
    room = size - len(envelope.SerializeToString())
    for n in range(room - 2, 0, -1):  # one tag byte, a varint length, then n bytes
        padded = blind_pb2.SubjectEnvelope()
        padded.CopyFrom(envelope)
        padded.padding = bytes(n)
        data = padded.SerializeToString()
        if len(data) == size:
            return data
    raise AssertionError("envelope padding could not reach its size")  # pragma: no cover


def _padded_size(envelopes: object) -> int:
    largest = max((len(e.SerializeToString()) for e in envelopes), default=0)  # type: ignore
    return ((largest + 8) // ENVELOPE_BLOCK + 1) * ENVELOPE_BLOCK
