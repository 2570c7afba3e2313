"""The broker's check of a lookup's request proof (mash/identity/request_binding.py), before
it routes: a refusal is UNAUTHENTICATED, saying why, and is on the audit record."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import grpc

from mash.audit import AuditEntry, AuditError, AuditLog
from mash.audit import build as audit_build
from mash.blind.proofs import check_blind_proof
from mash.broker import metrics
from mash.context import LookupContext
from mash.errors import IdentityError
from mash.identity.cert_binding import CertProofVerifier, FederationCa
from mash.identity.dpop import ProofVerifier
from mash.identity.request_binding import check_lookup_proof
from mash.identity.tokens import Analyst
from mash.logs import get_logger
from mash.rpc_errors import abort
from mash.v1 import lookup_pb2

log = get_logger(__name__)


class LookupProofs:
    """One broker's proof checks, with its own replay cache. Agents check again with theirs;
    theirs is the check that matters (they share no cache with any broker)."""

    def __init__(self, audit: AuditLog, *, require: bool, ca: Path) -> None:
        self.audit = audit
        self.require = require
        self.verifier = ProofVerifier()
        # certificate proofs (cnf.x5t#S256): the federation CA, the same replay cache
        self.cert_verifier = CertProofVerifier(self.verifier, FederationCa(ca))

    async def check(self, context: grpc.aio.ServicerContext[Any, Any], *, analyst: Analyst,
                    token: str, request: lookup_pb2.LookupRequest, lookup_id: str,
                    ctx: LookupContext, subject: Iterable[str]) -> None:
        """Return if the lookup may be routed; else audit the refusal and abort."""
        try:
            check_lookup_proof(self.verifier, analyst=analyst, token=token, proof=request.proof,
                               subject=request.subject, context=request.context,
                               require=self.require, cert_proofs=self.cert_verifier)
        except IdentityError as exc:
            await self.refuse(context, analyst=analyst, reason=str(exc), entry=(
                audit_build.refused_entry(lookup_id=lookup_id, analyst=analyst, context=ctx,
                                          subject=subject, detail=f"request proof: {exc}")))

    async def check_blind(self, context: grpc.aio.ServicerContext[Any, Any], *, analyst: Analyst,
                          token: str, proof: str, request: bytes, lookup_id: str,
                          ctx: LookupContext, step: str) -> None:
        """A blind round's proof (mash/blind/proofs.py) over `request`, the bytes of that
        round the broker relays: return if it may be relayed, else audit and abort."""
        try:
            check_blind_proof(self.verifier, analyst=analyst, token=token, proof=proof,
                              request=request, require=self.require,
                              cert_proofs=self.cert_verifier)
        except IdentityError as exc:
            await self.refuse(context, analyst=analyst, reason=f"{step}: {exc}", entry=(
                audit_build.refused_entry(lookup_id=lookup_id, analyst=analyst, context=ctx,
                                          subject=(), detail=f"request proof: {step}: {exc}")))

    async def refuse(self, context: grpc.aio.ServicerContext[Any, Any], *, analyst: Analyst,
                     reason: str, entry: AuditEntry) -> None:
        metrics.lookups("proof_refused").inc()
        log.warning("lookup_proof_refused", lookup_id=entry.lookup_id,
                    requester=analyst.subject, requester_agency=analyst.agency, reason=reason)
        try:
            await self.audit.append_async(entry)
        except AuditError as exc:  # refused all the same; say so in the broker's log
            log.error("refusal_not_audited", lookup_id=entry.lookup_id, error=str(exc))
        await abort(context, grpc.StatusCode.UNAUTHENTICATED, reason, reason="PROOF_REFUSED")
