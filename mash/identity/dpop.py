"""Sender-constrained lookups: RFC 9449 (DPoP) style proofs over each request.

An analyst token bound to a client key carries `cnf.jkt`, the RFC 7638 thumbprint of that
key's public JWK. With each lookup the client (the CLI from its token file's key, the console
from the session's key) signs a proof JWT: header `typ: dpop+jwt` with the public `jwk`;
claims `jti` (a nonce), `htm` (the method, e.g. "Lookup"), `htu` (the target), `iat`, `ath`
(hash of the access token) and `mash_req` (hash of the request: lookup id, subject, context).
The broker and every agent check it with `ProofVerifier`: signature by the bound key, the same
token, method and request, `iat` within the allowed clock skew, and a `jti` never seen before
(`ReplayCache`). A token copied off the console or the broker, without the key, cannot make a
proof; a proof copied with it cannot be used for another request, nor twice.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from mash.errors import IdentityError

PROOF_TYPE = "dpop+jwt"
ALGORITHM = "ES256"
MAX_PROOF_CHARS = 4096
DEFAULT_SKEW_SECONDS = 60.0
DEFAULT_REPLAY_ENTRIES = 100_000


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def digest(data: bytes) -> str:
    """base64url(SHA-256(data)): `ath` of a token, `mash_req` of a serialised request."""
    return b64url(hashlib.sha256(data).digest())


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint of a public EC P-256 JWK (the members crv, kty, x, y)."""
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256" or "d" in jwk:
        raise IdentityError("the proof's key is not a public P-256 key")
    members = {k: jwk[k] for k in ("crv", "kty", "x", "y") if isinstance(jwk.get(k), str)}
    if len(members) != 4:
        raise IdentityError("the proof's key lacks x or y")
    return digest(json.dumps(members, separators=(",", ":"), sort_keys=True).encode())


class ClientKey:
    """The analyst's proof key: P-256, kept beside the token (CLI) or in the session."""

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(key.curve, ec.SECP256R1):
            raise IdentityError("proof keys must be P-256")
        self._key = key
        self.jwk: dict[str, Any] = json.loads(ECAlgorithm.to_jwk(key.public_key()))
        self.thumbprint = jwk_thumbprint(self.jwk)

    @classmethod
    def generate(cls) -> ClientKey:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_pem(cls, pem: bytes) -> ClientKey:
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except ValueError as exc:
            raise IdentityError(f"the proof key is not a readable PEM private key ({exc})") \
                from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise IdentityError("proof keys must be P-256")
        return cls(key)

    def to_pem(self) -> bytes:
        return self._key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())

    def proof(self, *, method: str, target: str, access_token: str = "",
              request: bytes | None = None, now: float | None = None) -> str:
        """A fresh proof for one request (RFC 9449 section 4.2, plus `mash_req`)."""
        return jwt.encode(proof_claims(method=method, target=target, access_token=access_token,
                                       request=request, now=now),
                          self._key, algorithm=ALGORITHM,
                          headers={"typ": PROOF_TYPE, "jwk": self.jwk})


def proof_claims(*, method: str, target: str, access_token: str, request: bytes | None,
                 now: float | None) -> dict[str, Any]:
    """The claims every request proof carries, DPoP or certificate (the verifiers check
    the same set): a fresh nonce, the call, the time, the token's and request's digests."""
    claims: dict[str, Any] = {"jti": uuid.uuid4().hex, "htm": method, "htu": target,
                              "iat": int(now if now is not None else time.time())}
    if access_token:
        claims["ath"] = digest(access_token.encode())
    if request is not None:
        claims["mash_req"] = digest(request)
    return claims


def proof_header(proof: str, *, proof_type: str, max_chars: int) -> dict[str, Any]:
    """A request proof's header, read before its signature is checked (it names the key
    to check it with): refused (IdentityError) when too long, unreadable, or not of
    ``proof_type`` signed ES256."""
    if len(proof) > max_chars:
        raise IdentityError("the request proof is too long to be genuine")
    try:
        header: dict[str, Any] = jwt.get_unverified_header(proof)
    except jwt.PyJWTError:
        raise IdentityError("the request proof is malformed") from None
    if header.get("typ") != proof_type or header.get("alg") != ALGORITHM:
        raise IdentityError(f"the request proof must be a {proof_type} signed {ALGORITHM}")
    return header


class ReplayCache:
    """Proof ids seen within the skew window. Bounded: when full of live entries it refuses
    new proofs (fail closed) rather than forget one that could then be replayed."""

    def __init__(self, window_seconds: float, *, max_entries: int = DEFAULT_REPLAY_ENTRIES,
                 clock: Any = time.monotonic) -> None:
        self._window = window_seconds
        self._max = max_entries
        self._clock = clock
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def use(self, key: str) -> None:
        """Record `key` as used, or IdentityError if it was used within the window."""
        now = self._clock()
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and now - seen < self._window:
                raise IdentityError("the request proof was used before: a replayed request")
            if len(self._seen) >= self._max:
                self._seen = {k: t for k, t in self._seen.items() if now - t < self._window}
                if len(self._seen) >= self._max:
                    raise IdentityError("too many request proofs in the replay window: "
                                        "refusing until older ones lapse")
            self._seen[key] = now


class ProofVerifier:
    """Checks request proofs against the key a token is bound to (`cnf.jkt`)."""

    def __init__(self, *, max_skew_seconds: float = DEFAULT_SKEW_SECONDS,
                 replay: ReplayCache | None = None) -> None:
        self._skew = max_skew_seconds
        # A proof is refused outside [iat - skew, iat + skew], so ids need keeping 2 * skew.
        self._replay = replay or ReplayCache(2 * max_skew_seconds)

    def verify(self, proof: str, *, key_thumbprint: str, method: str, target: str,
               access_token: str, request: bytes, now: float | None = None) -> None:
        """Return if `proof` proves the holder of the bound key asked for exactly this
        request, now, once; else IdentityError saying why."""
        if not key_thumbprint:
            raise IdentityError("the analyst token is not bound to a key (no cnf.jkt): sign "
                                "in again with a proof key")
        if not proof:
            raise IdentityError("no request proof: the analyst token is bound to a key, and "
                                "each request must be signed with it")
        header = proof_header(proof, proof_type=PROOF_TYPE, max_chars=MAX_PROOF_CHARS)
        jwk = header.get("jwk")
        if not isinstance(jwk, dict):
            raise IdentityError("the request proof carries no key (jwk)")
        if jwk_thumbprint(jwk) != key_thumbprint:
            raise IdentityError("the request proof is signed by a key other than the one the "
                                "analyst token is bound to: a copied token")
        try:
            public = ECAlgorithm.from_jwk(json.dumps(jwk))
            claims = jwt.decode(proof, public, algorithms=[ALGORITHM],  # type: ignore[arg-type]
                                options={"require": ["jti", "htm", "htu", "iat"],
                                         "verify_aud": False, "verify_iat": False})
        except jwt.InvalidSignatureError:
            raise IdentityError("the request proof's signature does not verify") from None
        except (jwt.PyJWTError, ValueError):
            raise IdentityError("the request proof is invalid") from None
        self.accept(claims, replay_key=key_thumbprint, method=method, target=target,
                    access_token=access_token, request=request, now=now)

    def accept(self, claims: dict[str, Any], *, replay_key: str, method: str, target: str,
               access_token: str, request: bytes, now: float | None = None) -> None:
        """The checks every request proof shares once its signature has verified (DPoP here,
        certificate proofs in mash/identity/cert_binding.py): the same call, token and
        request, `iat` within the skew, and a `jti` never seen before under `replay_key`
        (the key's thumbprint) in this verifier's one replay cache."""
        self._match(claims, method=method, target=target, access_token=access_token,
                    request=request)
        issued = claims["iat"]
        moment = now if now is not None else time.time()
        if not isinstance(issued, int) or abs(moment - issued) > self._skew:
            raise IdentityError(f"the request proof was made more than {self._skew:g} s from "
                                "now: check the clock, or a replayed request")
        jti = claims["jti"]
        if not isinstance(jti, str) or not 16 <= len(jti) <= 128:
            raise IdentityError("the request proof's jti is not a usable nonce")
        self._replay.use(f"{replay_key}:{jti}")

    @staticmethod
    def _match(claims: dict[str, Any], *, method: str, target: str, access_token: str,
               request: bytes) -> None:
        if claims.get("htm") != method or claims.get("htu") != target:
            # the proof's own words, cut short: they reach logs and the audit's refusal entry
            htm, htu = (str(claims.get(k))[:60] for k in ("htm", "htu"))
            raise IdentityError(f"the request proof is for another call ({htm!r} at {htu!r}), "
                                f"not {method!r} at {target!r}")
        if claims.get("ath") != digest(access_token.encode()):
            raise IdentityError("the request proof is for another analyst token")
        if claims.get("mash_req") != digest(request):
            raise IdentityError("the request proof is for another request: the lookup was "
                                "altered or forged")
