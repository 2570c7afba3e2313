"""Analyst tokens: JWTs signed by an agency's identity provider (ES256 or EdDSA).

The broker and every agent verify the same token independently against the issuers they
trust: a data owner never takes the broker's word for who is asking.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from mash.config import Reader
from mash.errors import ConfigError, IdentityError

AUDIENCE = "mash-exchange"
ALGORITHMS = ("ES256", "EdDSA")
MAX_TOKEN_CHARS = 8192
CACHE_SIZE = 4096


@dataclass(frozen=True)
class Analyst:
    """The verified claims of an analyst token."""

    subject: str
    agency: str
    role: str
    team: str
    issuer: str
    token_id: str
    expires_at: dt.datetime
    # SHA-256 thumbprint of the client certificate the token is bound to (RFC 8705 cnf).
    certificate_thumbprint: str = ""

    def describe(self) -> str:
        return f"{self.subject} ({self.role}, {self.agency})"


@dataclass(frozen=True)
class TrustedIssuer:
    issuer: str
    public_key: Any  # EllipticCurvePublicKey | Ed25519PublicKey
    agencies: frozenset[str]
    roles: frozenset[str]

    @property
    def algorithm(self) -> str:
        return "EdDSA" if isinstance(self.public_key, ed25519.Ed25519PublicKey) else "ES256"

    @classmethod
    def read(cls, section: Reader) -> TrustedIssuer:
        issuer = section.str("issuer")
        key_path = section.path("public_key")
        agencies = frozenset(section.str_list("agencies"))
        roles = frozenset(section.str_list("roles"))
        section.done()
        if not agencies or not roles:
            raise section.error("agencies",
                                "an issuer must name the agencies and roles it vouches for")
        return cls(issuer, load_public_key(key_path), agencies, roles)


def load_public_key(path: Path) -> Any:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable PEM public key ({exc})") from None
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise ConfigError(f"{path}: issuer keys must be P-256 (ES256) or Ed25519 (EdDSA)")


def generate_issuer_key(algorithm: str = "ES256") -> tuple[bytes, bytes]:
    """A new issuer key pair as (private PEM, public PEM)."""
    if algorithm == "ES256":
        key: Any = ec.generate_private_key(ec.SECP256R1())
    elif algorithm == "EdDSA":
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        raise IdentityError(f"unknown algorithm {algorithm!r}: use ES256 or EdDSA")
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def issue_token(
    private_key_pem: bytes,
    *,
    issuer: str,
    subject: str,
    agency: str,
    role: str,
    team: str = "",
    ttl: dt.timedelta = dt.timedelta(hours=8),
    audience: str = AUDIENCE,
    now: dt.datetime | None = None,
    extra: dict[str, Any] | None = None,
    bind_certificate: bytes | None = None,
) -> str:
    """A signed analyst token; `bind_certificate` (PEM) binds it to that client certificate,
    so a stolen token cannot be replayed from another client."""
    key = serialization.load_pem_private_key(private_key_pem, password=None)
    algorithm = "EdDSA" if isinstance(key, ed25519.Ed25519PrivateKey) else "ES256"
    issued = now or dt.datetime.now(dt.UTC)
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "iat": int(issued.timestamp()),
        "nbf": int(issued.timestamp()),
        "exp": int((issued + ttl).timestamp()),
        "jti": uuid.uuid4().hex,
        "agency": agency,
        "role": role,
        "team": team,
    }
    if bind_certificate is not None:
        claims["cnf"] = {"x5t#S256": certificate_thumbprint(bind_certificate)}
    claims.update(extra or {})
    return jwt.encode(claims, key, algorithm=algorithm)  # type: ignore[arg-type]


@functools.lru_cache(maxsize=1024)
def certificate_thumbprint(pem: bytes) -> str:
    """base64url(SHA-256(DER)), as in RFC 8705's x5t#S256."""
    import base64
    import hashlib

    from cryptography import x509

    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


class TokenVerifier:
    """Verifies analyst tokens against a fixed set of trusted issuers."""

    def __init__(
        self,
        issuers: list[TrustedIssuer],
        audience: str = AUDIENCE,
        leeway: dt.timedelta = dt.timedelta(seconds=30),
        max_lifetime: dt.timedelta = dt.timedelta(hours=12),
        require_binding: bool = False,
    ) -> None:
        self._issuers = {i.issuer: i for i in issuers}
        self.require_binding = require_binding
        # Verified tokens, so that a session's many lookups verify one signature. A token's
        # claims cannot change without changing the token, so only expiry is re-checked.
        self._verified: dict[str, Analyst] = {}
        self._audience = audience
        self._leeway = leeway
        self._max_lifetime = max_lifetime

    @classmethod
    def read(cls, section: Reader) -> TokenVerifier:
        audience = section.str("audience", AUDIENCE)
        issuers = [TrustedIssuer.read(s) for s in section.sections("issuers")]
        max_hours = section.float("max_token_lifetime_hours", 12.0, minimum=0.1, maximum=72)
        require_binding = section.bool("require_certificate_binding", False)
        section.done()
        if not issuers:
            raise section.error("issuers", "at least one trusted token issuer is required")
        return cls(issuers, audience, max_lifetime=dt.timedelta(hours=max_hours),
                   require_binding=require_binding)

    def issuer(self, name: str) -> TrustedIssuer | None:
        """The trusted issuer of that name (stage approvals are checked against the same
        issuers as analyst tokens: mash/identity/approvals.py)."""
        return self._issuers.get(name)

    def verify(self, token: str) -> Analyst:
        """Return the analyst, or raise IdentityError saying why the token is refused."""
        cached = self._verified.get(token)
        if cached is not None:
            if dt.datetime.now(dt.UTC) < cached.expires_at + self._leeway:
                return cached
            self._verified.pop(token, None)
        analyst = self._verify(token)
        if len(self._verified) >= CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = analyst
        return analyst

    def _verify(self, token: str) -> Analyst:
        if not token:
            raise IdentityError("no analyst token: sign in and pass a token (mash token issue)")
        if len(token) > MAX_TOKEN_CHARS:
            raise IdentityError("analyst token is too long to be genuine")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise IdentityError("analyst token is malformed") from None
        trusted = self._issuers.get(str(unverified.get("iss", "")))
        if trusted is None:
            raise IdentityError("analyst token is from an issuer this service does not trust")
        if header.get("alg") != trusted.algorithm:
            raise IdentityError("analyst token is signed with an algorithm its issuer does not use")
        try:
            claims = jwt.decode(
                token,
                trusted.public_key,
                algorithms=[trusted.algorithm],
                audience=self._audience,
                issuer=trusted.issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise IdentityError("analyst token has expired: sign in again") from None
        except jwt.ImmatureSignatureError:
            raise IdentityError("analyst token is not valid yet (check the clock)") from None
        except jwt.InvalidAudienceError:
            raise IdentityError("analyst token is for another service (wrong audience)") from None
        except jwt.InvalidSignatureError:
            raise IdentityError("analyst token signature does not verify: forged or corrupted") \
                from None
        except jwt.MissingRequiredClaimError as exc:
            raise IdentityError(f"analyst token lacks the {exc.claim!r} claim") from None
        except jwt.PyJWTError:
            raise IdentityError("analyst token is invalid") from None
        lifetime = int(claims["exp"]) - int(claims["iat"])
        if lifetime > self._max_lifetime.total_seconds():
            raise IdentityError("analyst token lives longer than this service allows")
        agency, role = claims.get("agency"), claims.get("role")
        if not isinstance(agency, str) or agency not in trusted.agencies:
            raise IdentityError("analyst token names an agency its issuer may not vouch for")
        if not isinstance(role, str) or role not in trusted.roles:
            raise IdentityError("analyst token claims a role its issuer may not grant")
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject or len(subject) > 200:
            raise IdentityError("analyst token has no usable subject")
        team = claims.get("team", "")
        cnf = claims.get("cnf")
        thumbprint = ""
        if cnf is not None:
            if not isinstance(cnf, dict) or not isinstance(cnf.get("x5t#S256"), str):
                raise IdentityError("analyst token has a malformed certificate binding")
            thumbprint = cnf["x5t#S256"]
        return Analyst(
            subject=subject,
            agency=agency,
            role=role,
            team=team if isinstance(team, str) else "",
            issuer=trusted.issuer,
            token_id=str(claims["jti"]),
            expires_at=dt.datetime.fromtimestamp(int(claims["exp"]), dt.UTC),
            certificate_thumbprint=thumbprint,
        )

    def check_binding(self, analyst: Analyst, client_certificate: bytes | None) -> None:
        """Refuse a token used over a client certificate other than the one it is bound to."""
        if not analyst.certificate_thumbprint:
            if self.require_binding:
                raise IdentityError("analyst tokens here must be bound to your client "
                                    "certificate (issue one with --bind-cert)")
            return
        if client_certificate is None or certificate_thumbprint(
                client_certificate) != analyst.certificate_thumbprint:
            raise IdentityError("the analyst token is bound to another client certificate: "
                                "a replayed or stolen token")
