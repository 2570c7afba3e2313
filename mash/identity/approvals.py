"""Stage approvals: a supervisor's signed say-so for a lookup at a stage that needs one.

`policies/federation.yaml` marks the stages (`approval_required: [strategy, s47, s42]`) and
who may approve (`approvers: {roles: [supervisor]}`); it travels in the signed policy bundle,
so an agent takes it from its IG lead's signature, never from the broker. An approval is a
JWS (a JWT) signed by an identity provider the verifier already trusts for analyst tokens,
naming the approver (`sub`, `agency`, `role`) and bound to one case reference, purpose,
stage and requesting analyst (the analyst token's `sub` and agency), with `nbf` and `exp`.
Its audience (`mash-exchange/approval`) and type differ from analyst tokens', so neither can
stand in for the other. Every agent verifies it itself; the broker also checks it, only to
refuse early with a message the analyst can act on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from mash.errors import IdentityError
from mash.identity.tokens import Analyst, TokenVerifier, decode

AUDIENCE = "mash-exchange/approval"
TYPE = "mash-approval+jwt"
MAX_CHARS = 8192
DEFAULT_MAX_HOURS = 72.0
LEEWAY = dt.timedelta(seconds=30)
BINDING = ("case_reference", "purpose", "stage", "analyst", "analyst_agency")


class ApprovalError(IdentityError):
    """An approval is missing or refused; the message says what is missing or wrong."""


@dataclass(frozen=True)
class ApprovalRules:
    """From the federation section of the signed bundle."""

    stages: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset({"supervisor"})
    max_hours: float = DEFAULT_MAX_HOURS

    @classmethod
    def from_federation(cls, federation: Mapping[str, Any]) -> ApprovalRules:
        approvers = federation.get("approvers") or {}
        return cls(stages=frozenset(federation.get("approval_required") or ()),
                   roles=frozenset(approvers.get("roles") or ("supervisor",)),
                   max_hours=float(federation.get("approval_max_hours") or DEFAULT_MAX_HOURS))

    def required(self, stage: str) -> bool:
        return stage in self.stages


@dataclass(frozen=True)
class Approval:
    """A verified approval: what the audit records of it (no personal data)."""

    approval_id: str  # jti
    digest: str  # SHA-256 of the JWS, first 16 hex digits
    approver: str
    approver_agency: str
    approver_role: str
    issuer: str
    case_reference: str
    purpose: str
    stage: str
    analyst: str
    not_before: dt.datetime
    expires_at: dt.datetime

    def describe(self) -> str:
        """One line for the audit entry's detail."""
        return (f"stage approved by {self.approver} ({self.approver_role}, "
                f"{self.approver_agency}; issuer {self.issuer}), approval {self.approval_id} "
                f"sha256:{self.digest}, expires {self.expires_at:%Y-%m-%dT%H:%M:%SZ}")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def issue_approval(private_key_pem: bytes, *, issuer: str, approver: str, agency: str,
                   role: str, analyst: str, case_reference: str, purpose: str, stage: str,
                   expires_at: dt.datetime, analyst_agency: str | None = None,
                   not_before: dt.datetime | None = None,
                   now: dt.datetime | None = None) -> str:
    """A signed approval (see the module doc). `analyst_agency` defaults to `agency`."""
    key = serialization.load_pem_private_key(private_key_pem, password=None)
    algorithm = "EdDSA" if isinstance(key, ed25519.Ed25519PrivateKey) else "ES256"
    issued = now or dt.datetime.now(dt.UTC)
    start = not_before or issued
    if expires_at <= start:
        raise ApprovalError("the approval would expire before it starts")
    claims = {
        "iss": issuer, "sub": approver, "aud": AUDIENCE, "agency": agency, "role": role,
        "iat": int(issued.timestamp()), "nbf": int(start.timestamp()),
        "exp": int(expires_at.timestamp()), "jti": uuid.uuid4().hex,
        "case_reference": case_reference, "purpose": purpose, "stage": stage,
        "analyst": analyst, "analyst_agency": analyst_agency or agency,
    }
    return jwt.encode(claims, key, algorithm=algorithm,  # type: ignore[arg-type]
                      headers={"typ": TYPE})


def _claims(token: str, verifier: TokenVerifier) -> tuple[dict[str, Any], str]:
    if len(token) > MAX_CHARS:
        raise ApprovalError("the approval is too long to be genuine")
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise ApprovalError("the approval is not a signed approval (malformed): ask the "
                            "supervisor for the file `mash approval grant` wrote") from None
    if header.get("typ") != TYPE:
        raise ApprovalError("the approval is not a stage approval (an analyst token, or "
                            "another kind of token)")
    trusted = verifier.issuer(str(unverified.get("iss", "")))
    if trusted is None:
        raise ApprovalError("the approval is from an issuer this service does not trust")
    try:
        claims = decode(token, trusted, audience=AUDIENCE, leeway=LEEWAY,
                        require=["exp", "nbf", "iat", "iss", "aud", "sub", "jti"],
                        noun="the approval", renew="ask a supervisor for a new one")
    except IdentityError as exc:
        raise ApprovalError(str(exc)) from None
    agency, role = claims.get("agency"), claims.get("role")
    if not isinstance(agency, str) or agency not in trusted.agencies:
        raise ApprovalError("the approval names an agency its issuer may not vouch for")
    if not isinstance(role, str) or role not in trusted.roles:
        raise ApprovalError("the approval claims a role its issuer may not grant")
    return claims, trusted.issuer


def verify_approval(token: str, *, verifier: TokenVerifier, rules: ApprovalRules,
                    analyst: Analyst, case_reference: str, purpose: str, stage: str,
                    now: dt.datetime | None = None) -> Approval:
    """The approval for this query, or ApprovalError saying what is missing or wrong."""
    if not token:
        raise ApprovalError(
            f"stage {stage} needs a {' or '.join(sorted(rules.roles))}'s approval for this "
            f"case: ask one to run `mash approval grant --case {case_reference} --purpose "
            f"{purpose} --stage {stage} --analyst {analyst.subject}` and attach the file "
            "(mash lookup --approval FILE, or the console's approval field)")
    claims, issuer = _claims(token, verifier)
    role = str(claims["role"])
    if role not in rules.roles:
        raise ApprovalError(f"the approval is by a {role}; stage {stage} needs a "
                            f"{' or '.join(sorted(rules.roles))}")
    wanted = {"case_reference": case_reference, "purpose": purpose, "stage": stage,
              "analyst": analyst.subject, "analyst_agency": analyst.agency}
    for name in BINDING:
        if claims.get(name) != wanted[name]:
            raise ApprovalError(
                f"the approval is for another {name.replace('_', ' ')} "
                f"({claims.get(name)!r}, this lookup: {wanted[name]!r})")
    approver = claims["sub"]
    if not isinstance(approver, str) or not approver:
        raise ApprovalError("the approval names no approver")
    if str(claims["agency"]) != analyst.agency:
        raise ApprovalError("the approval is by a supervisor of another agency")
    if approver == analyst.subject:
        raise ApprovalError("an analyst cannot approve their own lookup: ask another "
                            "supervisor")
    starts = dt.datetime.fromtimestamp(int(claims["nbf"]), dt.UTC)
    expires = dt.datetime.fromtimestamp(int(claims["exp"]), dt.UTC)
    if (expires - starts).total_seconds() > rules.max_hours * 3600:
        raise ApprovalError(f"the approval lasts longer than the {rules.max_hours:g} hours "
                            "the federation allows")
    if now is not None and not (starts - LEEWAY <= now <= expires + LEEWAY):
        raise ApprovalError("the approval is not valid at this time")
    return Approval(approval_id=str(claims["jti"]), digest=digest(token), approver=approver,
                    approver_agency=str(claims["agency"]), approver_role=role, issuer=issuer,
                    case_reference=case_reference, purpose=purpose, stage=stage,
                    analyst=analyst.subject, not_before=starts, expires_at=expires)
