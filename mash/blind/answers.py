"""Signed answers, bound to the request they answer, and the request hash they are bound to.

An agency signs (agency, request hash, round, candidate, answer bytes) with its answer key.
The analyst's side checks the signature against the agency's keys in the signed directory and
that the request hash is its own: an answer cannot be altered, moved to another agency, or
replayed into another lookup without failing.
"""

from __future__ import annotations

import hashlib
import struct

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from mash.blind.keys import key_id, raw
from mash.v1 import answer_pb2, blind_pb2

CONTEXT = b"mash-answer-v1"
TOKEN_BYTES = 16  # a match token: keyed BLAKE2b, truncated (mash.blind.tokens)


class AnswerRejected(Exception):
    """An answer failed verification: it is not shown, and says why."""


def request_hash(query: blind_pb2.BlindQuery) -> bytes:
    return hashlib.sha256(b"mash-blind-query-v1\0" + query.SerializeToString(deterministic=True)
                          ).digest()


def _signed_bytes(agency: str, digest: bytes, round_: int, candidate: bool,
                  answer: bytes) -> bytes:
    return b"".join((CONTEXT, b"\0", agency.encode(), b"\0", digest,
                     struct.pack(">I?", round_, candidate), answer))


def sign(key: ed25519.Ed25519PrivateKey, agency: str, digest: bytes, round_: int,
         candidate: bool, answer: answer_pb2.AgencyAnswer) -> blind_pb2.SignedAnswer:
    payload = answer.SerializeToString(deterministic=True)
    return blind_pb2.SignedAnswer(
        agency_id=agency, request_hash=digest, round=round_, candidate=candidate,
        answer=payload, key_id=key_id(raw(key.public_key())),
        signature=key.sign(_signed_bytes(agency, digest, round_, candidate, payload)))


def verify(signed: blind_pb2.SignedAnswer, keys: dict[str, ed25519.Ed25519PublicKey],
           agency: str, digest: bytes, round_: int) -> tuple[bool, answer_pb2.AgencyAnswer]:
    """(candidate, answer) when the answer is genuine and for this request; else refuse."""
    if signed.agency_id != agency:
        raise AnswerRejected(f"an answer for {agency} claims to come from {signed.agency_id}")
    if signed.request_hash != digest:
        raise AnswerRejected(f"{agency}'s answer is bound to another request (replayed?)")
    if signed.round != round_:
        raise AnswerRejected(f"{agency}'s answer is from round {signed.round}, not {round_}")
    public = keys.get(signed.key_id)
    if public is None:
        raise AnswerRejected(f"{agency}'s answer is signed with a key the directory does not "
                             "list for it")
    try:
        public.verify(signed.signature, _signed_bytes(agency, digest, round_, signed.candidate,
                                                      signed.answer))
    except InvalidSignature:
        raise AnswerRejected(f"{agency}'s answer does not match its signature "
                             "(altered in transit)") from None
    answer = answer_pb2.AgencyAnswer.FromString(signed.answer)
    if answer.agency_id != agency:
        raise AnswerRejected(f"{agency}'s signed answer names {answer.agency_id}")
    return signed.candidate, answer


SUBJECT_LABEL = b"mash-subject-v1"
ANSWER_LABEL = b"mash-answer-v1"


def subject_aad(digest: bytes, agency: str) -> bytes:
    """What a second-round subject box is bound to: this request and this agency."""
    return digest + b"\0" + agency.encode()


def answer_aad(digest: bytes, agency: str, round_: int) -> bytes:
    """What an answer box is bound to: this request, this agency and this round."""
    return digest + b"\0" + agency.encode() + struct.pack(">I", round_)
