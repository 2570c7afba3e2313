"""Who is calling the analyst API: a client certificate AND an analyst token of one agency."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from mash.errors import IdentityError
from mash.identity.revocation import RevocationError, RevocationList
from mash.identity.tls import peer_certificate, peer_identity
from mash.identity.tokens import Analyst, TokenVerifier
from mash.rpc_errors import abort


def bearer_token(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            scheme, _, token = str(value).partition(" ")
            if scheme.lower() == "bearer":
                return token.strip()
    return ""


APPROVAL_METADATA = "mash-approval"


def approval_metadata(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    """A stage approval sent as call metadata (blind lookups carry it this way; a plain
    lookup's is LookupRequest.approval)."""
    for key, value in context.invocation_metadata() or ():
        if key == APPROVAL_METADATA:
            return str(value).strip()
    return ""


async def authenticate(context: grpc.aio.ServicerContext[Any, Any], verifier: TokenVerifier,
                       revocation: RevocationList | None = None) -> Analyst:
    """The analyst on this call, or abort with UNAUTHENTICATED / PERMISSION_DENIED."""
    peer = peer_identity(context)
    if peer is None:
        await abort(context, grpc.StatusCode.PERMISSION_DENIED,
                    "your client certificate carries no MASH identity", reason="NO_MASH_IDENTITY")
    assert peer is not None
    if peer.kind != "client":
        await abort(
            context, grpc.StatusCode.PERMISSION_DENIED,
            f"a {peer.kind} certificate cannot call the analyst API: use an analyst client "
            "certificate (mash certs issue --client)", reason="WRONG_CERTIFICATE_KIND")
    if revocation is not None:
        try:
            revocation.check(peer_certificate(context))
        except RevocationError as exc:
            await abort(context, grpc.StatusCode.PERMISSION_DENIED, f"client certificate: {exc}",
                        reason="CERTIFICATE_REVOKED")
    token = bearer_token(context)
    try:
        analyst = verifier.cached(token)
        if analyst is None:
            analyst = (await asyncio.to_thread(verifier.verify, token) if verifier.remote
                       else verifier.verify(token))
    except IdentityError as exc:
        await abort(context, grpc.StatusCode.UNAUTHENTICATED, str(exc),
                    reason="UNAUTHENTICATED_TOKEN")
    if analyst.agency != peer.name:
        await abort(
            context, grpc.StatusCode.PERMISSION_DENIED,
            f"the token is for agency {analyst.agency!r} but the client certificate belongs to "
            f"{peer.name!r}", reason="AGENCY_MISMATCH")
    try:
        pems = list((context.auth_context() or {}).get("x509_pem_cert") or [])
        verifier.check_binding(analyst, pems[0] if pems else None)
    except IdentityError as exc:
        await abort(context, grpc.StatusCode.UNAUTHENTICATED, str(exc),
                    reason="TOKEN_BINDING_REFUSED")
    return analyst
