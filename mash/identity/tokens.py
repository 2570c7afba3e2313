"""Analyst tokens: JWTs signed by an agency's identity provider (ES256 or EdDSA).

The broker and every agent verify the same token independently against the issuers they
trust: a data owner never takes the broker's word for who is asking.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from pydantic import BeforeValidator, Field, model_validator

from mash.config import (
    AnyMapping,
    ConfigModel,
    File,
    Flag,
    Invalid,
    NewFile,
    Text,
    TextList,
    number,
)
from mash.errors import ConfigError, IdentityError
from mash.identity.analyst_revocation import RevocationList
from mash.identity.claims import ClaimMap
from mash.identity.jwks import RemoteKeys
from mash.keyfiles import read_public_key

AUDIENCE = "mash-exchange"
ALGORITHMS = ("ES256", "EdDSA")
MAX_TOKEN_CHARS = 8192
CACHE_SIZE = 4096
# The key bindings (cnf members) understood: RFC 8705 x5t#S256 and RFC 9449 jkt. A token
# bound any other way is refused (fail closed).
CNF_MEMBERS = ("x5t#S256", "jkt")


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
    # RFC 7638 thumbprint of the proof key the token is bound to (RFC 9449 cnf.jkt): each
    # request must then carry a proof signed with it (mash/identity/dpop.py).
    key_thumbprint: str = ""

    def describe(self) -> str:
        return f"{self.subject} ({self.role}, {self.agency})"


REMOTE_ALGORITHMS = ("ES256", "EdDSA", "RS256", "PS256")


class IssuerConfig(ConfigModel):
    """One of `auth.issuers`: a trusted issuer as configured (keys are read by TrustedIssuer)."""

    issuer: Text
    agencies: TextList
    roles: TextList
    claims: AnyMapping = {}
    claim_values: AnyMapping = {}
    discovery: Flag = False
    jwks_uri: Text | None = None
    public_key: NewFile | None = None  # checked below: refused with discovery/jwks_uri first
    jwks_cache_seconds: Annotated[float, BeforeValidator(number(1, 86400))] = 300.0
    jwks_refetch_cooldown_seconds: Annotated[float, BeforeValidator(number(0, 3600))] | None = (
        None)
    fetch_timeout_seconds: Annotated[float, BeforeValidator(number(0.1, 60))] = 5.0
    algorithms: TextList = list(REMOTE_ALGORITHMS)

    @property
    def remote(self) -> bool:
        return self.discovery or bool(self.jwks_uri)

    @property
    def claim_map(self) -> ClaimMap:
        return ClaimMap.of(self.claims, self.claim_values)

    @model_validator(mode="after")
    def _check(self) -> IssuerConfig:
        self.claim_map  # noqa: B018 (checks both settings)
        if self.remote:
            if self.public_key is not None:
                raise Invalid("give either public_key or discovery/jwks_uri, not both",
                              key="public_key")
            cooldown = self.jwks_refetch_cooldown_seconds
            if cooldown is not None and cooldown > self.jwks_cache_seconds:
                raise Invalid(RemoteKeys.cooldown_problem(self.issuer, cooldown,
                                                          self.jwks_cache_seconds),
                              key="jwks_refetch_cooldown_seconds")
            unknown = set(self.algorithms) - set(REMOTE_ALGORITHMS)
            if unknown or not self.algorithms:
                raise Invalid(f"choose from {', '.join(REMOTE_ALGORITHMS)}", key="algorithms")
        elif self.public_key is None:
            raise Invalid("required setting is missing", key="public_key")
        elif not self.public_key.exists():
            raise Invalid(f"file not found: {self.public_key}", key="public_key")
        if not self.agencies or not self.roles:
            raise Invalid("an issuer must name the agencies and roles it vouches for",
                          key="agencies")
        return self


class AuthConfig(ConfigModel):
    """An `auth:` section: the issuers trusted and how tokens are checked (a plain value;
    `TokenVerifier.from_config` reads the keys and builds the verifier)."""

    audience: Text = AUDIENCE
    issuers: list[IssuerConfig]
    max_token_lifetime_hours: Annotated[float, BeforeValidator(number(0.1, 72))] = 12.0
    require_binding: Flag = Field(False, validation_alias="require_certificate_binding")
    require_bound_proof: Flag = False
    revocation_list: File | None = None

    @model_validator(mode="after")
    def _check(self) -> AuthConfig:
        if not self.issuers:
            raise Invalid("at least one trusted token issuer is required", key="issuers")
        return self


@dataclass(frozen=True)
class TrustedIssuer:
    """An issuer and its keys: a PEM file (`public_key`), or its published JWKS found by
    OpenID discovery (`discovery: true`) or at `jwks_uri` (mash/identity/jwks.py)."""

    issuer: str
    public_key: Any  # EllipticCurvePublicKey | Ed25519PublicKey | None (remote keys)
    agencies: frozenset[str]
    roles: frozenset[str]
    remote: RemoteKeys | None = None
    claims: ClaimMap = field(default_factory=ClaimMap)
    algorithms: tuple[str, ...] = ()

    @property
    def algorithm(self) -> str:
        return "EdDSA" if isinstance(self.public_key, ed25519.Ed25519PublicKey) else "ES256"

    def signing_key(self, token: str, header: dict[str, Any], noun: str) -> tuple[Any, str]:
        """The key and algorithm to verify `token` with, or IdentityError."""
        alg = header.get("alg")
        if self.remote is None:
            if alg != self.algorithm:
                raise IdentityError(f"{noun} is signed with an algorithm its issuer does not "
                                    "use")
            return self.public_key, self.algorithm
        if alg not in self.algorithms:
            raise IdentityError(f"{noun} is signed with {alg!r}, which this service does not "
                                f"accept from {self.issuer} (algorithms: "
                                f"{', '.join(self.algorithms)})")
        # PyJWT verifies with the published key's own algorithm (alg must also be allowed).
        return self.remote.key_for(token), str(alg)

    @classmethod
    def from_config(cls, cfg: IssuerConfig) -> TrustedIssuer:
        """The issuer, its key read (a PEM file) or its published keys ready to fetch."""
        remote: RemoteKeys | None = None
        public_key: Any = None
        algorithms: tuple[str, ...] = ()
        if cfg.remote:
            remote = RemoteKeys(
                cfg.issuer, jwks_uri=cfg.jwks_uri or "", cache_seconds=cfg.jwks_cache_seconds,
                cooldown_seconds=cfg.jwks_refetch_cooldown_seconds,
                timeout_seconds=cfg.fetch_timeout_seconds)
            algorithms = tuple(cfg.algorithms)
        else:
            assert cfg.public_key is not None  # checked by IssuerConfig
            public_key = load_public_key(cfg.public_key)
        return cls(cfg.issuer, public_key, frozenset(cfg.agencies), frozenset(cfg.roles),
                   remote, cfg.claim_map, algorithms)


def decode(token: str, trusted: TrustedIssuer, *, audience: str, leeway: dt.timedelta,
           require: list[str], noun: str, renew: str) -> dict[str, Any]:
    """The verified claims of `token`, or IdentityError in words a person can act on: the
    one place PyJWT's errors become messages (analyst tokens and stage approvals)."""
    header = jwt.get_unverified_header(token)
    key, algorithm = trusted.signing_key(token, header, noun)
    try:
        return jwt.decode(token, key, algorithms=[algorithm], audience=audience,
                          issuer=trusted.issuer, leeway=leeway, options={"require": require})
    except jwt.ExpiredSignatureError:
        raise IdentityError(f"{noun} has expired: {renew}") from None
    except jwt.ImmatureSignatureError:
        raise IdentityError(f"{noun} is not valid yet (check the clock)") from None
    except jwt.InvalidAudienceError:
        raise IdentityError(f"{noun} is for another service (wrong audience)") from None
    except jwt.InvalidSignatureError:
        raise IdentityError(f"{noun}'s signature does not verify: forged or altered") \
            from None
    except jwt.MissingRequiredClaimError as exc:
        raise IdentityError(f"{noun} lacks the {exc.claim!r} claim") from None
    except jwt.PyJWTError:
        raise IdentityError(f"{noun} is invalid") from None


ISSUER_KEY_KINDS = "issuer keys must be P-256 (ES256) or Ed25519 (EdDSA)"


def load_public_key(path: Path) -> ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey:
    # read_public_key has checked the kind; with two kinds its type says only `object`
    key = read_public_key(path, accept=(ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey),
                          wrong_kind=ISSUER_KEY_KINDS)
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise ConfigError(f"{path}: {ISSUER_KEY_KINDS}")


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
    bind_key: str = "",
) -> str:
    """A signed analyst token; `bind_certificate` (PEM) binds it to that client certificate,
    so a stolen token cannot be replayed from another client; `bind_key` (a proof key's
    RFC 7638 thumbprint) binds it to that key, whose proofs each lookup must then carry."""
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
    cnf: dict[str, str] = {}
    if bind_certificate is not None:
        cnf["x5t#S256"] = certificate_thumbprint(bind_certificate)
    if bind_key:
        cnf["jkt"] = bind_key
    if cnf:
        claims["cnf"] = cnf
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
        revocations: RevocationList | None = None,
        require_bound_proof: bool = False,
    ) -> None:
        self._issuers = {i.issuer: i for i in issuers}
        self._revocations = revocations
        self.require_binding = require_binding
        # Every lookup's token must be bound to a proof key (cnf.jkt) and carry a proof made
        # with it (mash/identity/request_binding.py); off: only bound tokens need one.
        self.require_bound_proof = require_bound_proof
        # Verified tokens, so that a session's many lookups verify one signature. A token's
        # claims cannot change without changing the token, so only expiry is re-checked.
        self._verified: dict[str, Analyst] = {}
        self._audience = audience
        self._leeway = leeway
        self._max_lifetime = max_lifetime

    @classmethod
    def from_config(cls, cfg: AuthConfig) -> TokenVerifier:
        """The verifier an `auth:` section describes: issuers' keys and the revocation list
        are read here (ConfigError when a key file is not one), by the code that starts a
        service, never by the config itself."""
        revocations = (RevocationList(cfg.revocation_list) if cfg.revocation_list
                       else None)
        return cls([TrustedIssuer.from_config(i) for i in cfg.issuers], cfg.audience,
                   max_lifetime=dt.timedelta(hours=cfg.max_token_lifetime_hours),
                   require_binding=cfg.require_binding, revocations=revocations,
                   require_bound_proof=cfg.require_bound_proof)

    def issuer(self, name: str) -> TrustedIssuer | None:
        """The trusted issuer of that name (stage approvals are checked against the same
        issuers as analyst tokens: mash/identity/approvals.py)."""
        return self._issuers.get(name)

    def cached(self, token: str) -> Analyst | None:
        """The analyst of a token verified before and not expired (nor revoked) since,
        without network I/O."""
        cached = self._verified.get(token)
        if cached is not None:
            if dt.datetime.now(dt.UTC) < cached.expires_at + self._leeway:
                self._check_revoked(cached)
                return cached
            self._verified.pop(token, None)
        return None

    def _check_revoked(self, analyst: Analyst) -> None:
        if self._revocations is not None:
            self._revocations.check(issuer=analyst.issuer, subject=analyst.subject,
                                    token_id=analyst.token_id)

    @property
    def remote(self) -> bool:
        """True when verifying may fetch keys over the network (call it off the event loop)."""
        return any(i.remote is not None for i in self._issuers.values())

    def verify(self, token: str) -> Analyst:
        """Return the analyst, or raise IdentityError saying why the token is refused."""
        cached = self.cached(token)
        if cached is not None:
            return cached
        analyst = self._verify(token)
        self._check_revoked(analyst)
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
            jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise IdentityError("analyst token is malformed") from None
        trusted = self._issuers.get(str(unverified.get("iss", "")))
        if trusted is None:
            raise IdentityError("analyst token is from an issuer this service does not trust")
        claims = decode(token, trusted, audience=self._audience, leeway=self._leeway,
                        require=["exp", "iat", "iss", "aud", "sub", "jti"],
                        noun="analyst token", renew="sign in again")
        lifetime = int(claims["exp"]) - int(claims["iat"])
        if lifetime > self._max_lifetime.total_seconds():
            raise IdentityError("analyst token lives longer than this service allows")
        agency = trusted.claims.value(claims, "agency")
        role = trusted.claims.value(claims, "role")
        if agency not in trusted.agencies:
            raise IdentityError("analyst token names an agency its issuer may not vouch for")
        if role not in trusted.roles:
            raise IdentityError("analyst token claims a role its issuer may not grant")
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject or len(subject) > 200:
            raise IdentityError("analyst token has no usable subject")
        team = trusted.claims.value(claims, "team", required=False)
        cnf = claims.get("cnf")
        thumbprint = jkt = ""
        if cnf is not None:
            if not isinstance(cnf, dict) or not any(
                    isinstance(cnf.get(k), str) and cnf[k] for k in CNF_MEMBERS):
                raise IdentityError("analyst token has a malformed key binding (cnf)")
            if set(cnf) - set(CNF_MEMBERS):  # a binding not understood is not ignored
                raise IdentityError("analyst token is bound in a way this service does not "
                                    "know (cnf members other than x5t#S256 and jkt): ask the "
                                    "identity provider for a DPoP or certificate-bound token")
            if any(not isinstance(v, str) or not v for v in cnf.values()):
                raise IdentityError("analyst token has a malformed key binding (cnf)")
            thumbprint = str(cnf.get("x5t#S256") or "")
            jkt = str(cnf.get("jkt") or "")
        return Analyst(
            subject=subject,
            agency=agency,
            role=role,
            team=team,
            issuer=trusted.issuer,
            token_id=str(claims["jti"]),
            expires_at=dt.datetime.fromtimestamp(int(claims["exp"]), dt.UTC),
            certificate_thumbprint=thumbprint,
            key_thumbprint=jkt,
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
                                "a replayed or stolen token, or the wrong tls.cert (use the "
                                "certificate it was issued for, or sign in again with mash "
                                "login --bind-cert)")
