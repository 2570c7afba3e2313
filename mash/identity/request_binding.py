"""The lookup a proof is made over (mash/identity/dpop.py), and the one check broker and
agents share.

The broker assigns the lookup id, so the analyst's client signs what it chooses: the subject
and the request context (purpose, stage, case, justification, urgency), serialised
deterministically, with the time (`iat`) and a nonce (`jti`) in the proof. The broker passes
the proof on beside the subject and context it forwards; an agent recomputes the digest from
the Query it receives, so a broker that alters the subject or context, or replays an old
proof, is refused by the agent itself.
"""

from __future__ import annotations

from typing import Any

import jwt

from mash.errors import IdentityError
from mash.identity.cert_binding import CertKey, CertProofVerifier
from mash.identity.dpop import ClientKey, ProofVerifier
from mash.identity.tokens import Analyst
from mash.v1 import subject_pb2

LOOKUP_METHOD = "mash.v1.Lookup/Lookup"
LOOKUP_TARGET = "mash-exchange"
DOMAIN = b"mash-lookup-proof-v1\n"


def lookup_bytes(subject: subject_pb2.Subject, context: subject_pb2.RequestContext) -> bytes:
    """What a lookup proof covers: the subject and context, deterministically serialised
    (length-prefixed so neither can bleed into the other)."""
    parts = [subject.SerializeToString(deterministic=True),
             context.SerializeToString(deterministic=True)]
    return DOMAIN + b"".join(len(p).to_bytes(4, "big") + p for p in parts)


# The key an analyst token is bound to, which signs every request proof: a proof key
# (cnf.jkt, a dpop+jwt) or the mTLS client certificate's key (cnf.x5t#S256, a
# mash-cert-proof+jwt). Plain and blind lookups alike are signed with it.
BoundKey = ClientKey | CertKey


def check_request_proof(proofs: ProofVerifier, *, analyst: Analyst, token: str, proof: str,
                        method: str, request: bytes, require: bool = False,
                        cert_proofs: CertProofVerifier | None = None) -> None:
    """Refuse (IdentityError) a request whose token is key-bound (or, with `require`, any
    token) unless `proof` proves the key's holder sent exactly `request` (the bytes of a
    lookup, or of a blind round), for `method`, now, once. The one check of every request
    proof, at the broker and at every agent.

    A token bound to a proof key (cnf.jkt) needs a DPoP proof by that key. A token bound to
    a client certificate only (cnf.x5t#S256) needs a certificate proof (`cert_proofs`) when
    it carries one or when proofs are required; without either the broker's check of the
    connection's certificate is what binds it (as before certificate proofs existed)."""
    if analyst.key_thumbprint:
        proofs.verify(proof, key_thumbprint=analyst.key_thumbprint, method=method,
                      target=LOOKUP_TARGET, access_token=token, request=request)
        return
    if analyst.certificate_thumbprint and (proof or require):
        if not proof:
            raise IdentityError("no request proof: this service requires every lookup to be "
                                "signed (require_bound_proof) and the analyst token is bound "
                                "to the client certificate: sign each lookup with its key "
                                "(mash lookup does, with a token from mash login --bind-cert)")
        if cert_proofs is None:
            raise IdentityError("this service cannot check certificate request proofs")
        cert_proofs.verify(proof, certificate_thumbprint=analyst.certificate_thumbprint,
                           agency=analyst.agency, method=method, target=LOOKUP_TARGET,
                           access_token=token, request=request)
        return
    if require:
        raise IdentityError("analyst tokens here must be bound to a proof key (cnf.jkt) or to "
                            "the client certificate (cnf.x5t#S256): "
                            "sign in with mash login --bind-key or --bind-cert")


def check_lookup_proof(proofs: ProofVerifier, *, analyst: Analyst, token: str, proof: str,
                       subject: subject_pb2.Subject, context: subject_pb2.RequestContext,
                       require: bool = False,
                       cert_proofs: CertProofVerifier | None = None) -> None:
    """`check_request_proof` for a plain lookup: the proof covers this subject and context."""
    check_request_proof(proofs, analyst=analyst, token=token, proof=proof,
                        method=LOOKUP_METHOD, request=lookup_bytes(subject, context),
                        require=require, cert_proofs=cert_proofs)


def sign_lookup(key: BoundKey, *, token: str, subject: subject_pb2.Subject,
                context: subject_pb2.RequestContext, now: float | None = None) -> str:
    """A fresh proof (new nonce, this time) that the key's holder asks this lookup. Made
    again for every attempt: a retry on another broker is never a replayed proof."""
    return key.proof(method=LOOKUP_METHOD, target=LOOKUP_TARGET, access_token=token,
                     request=lookup_bytes(subject, context), now=now)


def bound_thumbprint(token: str, member: str = "jkt") -> str:
    """The proof key thumbprint (cnf.jkt) a token names, or with `member="x5t#S256"` its
    client certificate's, read without verifying it (the client's own token, to know whether
    and with what it must sign); "" when none or unreadable."""
    try:
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return ""
    cnf = claims.get("cnf")
    value = cnf.get(member) if isinstance(cnf, dict) else None
    return value if isinstance(value, str) else ""

