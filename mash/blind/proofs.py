"""Blind lookups bound to the analyst's key: the request proofs of both rounds.

A blind lookup's subject is sealed, so its proofs cannot cover the subject as a plain
lookup's do (mash/identity/request_binding.py). They cover what the broker relays instead,
each signed by the key the token is bound to (`BoundKey`: a dpop+jwt by the proof key,
mash/identity/dpop.py, or a mash-cert-proof+jwt by the client certificate's key,
mash/identity/cert_binding.py) with `htm` BLIND_METHOD and `htu` LOOKUP_TARGET, whose
`mash_req` is base64url(SHA-256) of:

- round one (BlindLookupRequest.proof): ROUND_ONE_DOMAIN || request hash (32 bytes, the
  SHA-256 of mash/blind/answers.py's `request_hash`, over the whole BlindQuery: context,
  tokens, answer key, nonce, agencies, evidence);
- round two (SealedSubject.proof, one fresh proof per agency): ROUND_TWO_DOMAIN || request
  hash (32) || box digest (32) || agency id (UTF-8, to the end), where the box digest is
  SHA-256 of the SealedBox's fields, each framed: version (uint32 big-endian), then key_id
  (UTF-8), encapsulated_key and ciphertext, each as a uint32 big-endian length and the bytes.

The broker checks each proof (request_binding.check_request_proof, as for a plain lookup)
and forwards it unchanged in Query.proof; each agent checks it again against the BlindQuery
and box it received and its own agency id, with its own replay cache. So a copied token (no
key) cannot start a blind lookup, and a broker cannot replay a round, move a box (or its
proof) to another agency, or pair a round-two box with another round-one request.
"""

from __future__ import annotations

import hashlib
import struct

from mash.blind.answers import request_hash
from mash.errors import IdentityError
from mash.identity.cert_binding import CertProofVerifier
from mash.identity.dpop import ProofVerifier
from mash.identity.request_binding import LOOKUP_TARGET, BoundKey, check_request_proof
from mash.identity.tokens import Analyst
from mash.v1 import blind_pb2

BLIND_METHOD = "mash.v1.Lookup/BlindLookup"
ROUND_ONE_DOMAIN = b"mash-blind-proof-v1 round 1\n"
ROUND_TWO_DOMAIN = b"mash-blind-proof-v1 round 2\n"


def box_digest(box: blind_pb2.SealedBox) -> bytes:
    """SHA-256 of a sealed box's fields, framed (independent of protobuf's encoding)."""
    parts = (box.key_id.encode(), box.encapsulated_key, box.ciphertext)
    return hashlib.sha256(struct.pack(">I", box.version) + b"".join(
        struct.pack(">I", len(p)) + p for p in parts)).digest()


def round_one_bytes(digest: bytes) -> bytes:
    """What a round-one proof covers: the request hash of the BlindQuery."""
    return ROUND_ONE_DOMAIN + digest


def round_two_bytes(digest: bytes, agency: str, box: blind_pb2.SealedBox) -> bytes:
    """What a round-two proof covers: the request, the box and the agency it is for."""
    return ROUND_TWO_DOMAIN + digest + box_digest(box) + agency.encode()


def sign_round_one(key: BoundKey, *, token: str, digest: bytes,
                   now: float | None = None) -> str:
    """A fresh proof (new nonce, this time) that the key's holder sends this round one."""
    return key.proof(method=BLIND_METHOD, target=LOOKUP_TARGET, access_token=token,
                     request=round_one_bytes(digest), now=now)


def sign_round_two(key: BoundKey, *, token: str, digest: bytes, agency: str,
                   box: blind_pb2.SealedBox, now: float | None = None) -> str:
    """A fresh proof that the key's holder sends `box` to `agency` for this request."""
    return key.proof(method=BLIND_METHOD, target=LOOKUP_TARGET, access_token=token,
                     request=round_two_bytes(digest, agency, box), now=now)


def check_blind_proof(proofs: ProofVerifier, *, analyst: Analyst, token: str, proof: str,
                      request: bytes, require: bool = False,
                      cert_proofs: CertProofVerifier | None = None) -> None:
    """Refuse (IdentityError) a blind round whose token is bound (or, with `require`, any
    token) unless `proof` proves the bound key's holder sent exactly `request` (the round's
    bytes above), now, once: the plain lookup's check (`check_request_proof`), for
    BLIND_METHOD."""
    check_request_proof(proofs, analyst=analyst, token=token, proof=proof,
                        method=BLIND_METHOD, request=request, require=require,
                        cert_proofs=cert_proofs)


def query_bytes(query: blind_pb2.BlindQuery, round_: int, agency: str,
                box: blind_pb2.SealedBox) -> bytes:
    """The bytes a blind query's proof must cover at the agency `agency`, from what it
    received (round 1: the BlindQuery; round 2: that and the sealed box)."""
    digest = request_hash(query)
    if round_ == 1:
        return round_one_bytes(digest)
    if round_ == 2:
        return round_two_bytes(digest, agency, box)
    raise IdentityError(f"a blind query of round {round_} carries no request proof")
