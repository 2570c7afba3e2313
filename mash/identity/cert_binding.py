"""Certificate-bound lookups: RFC 8705 tokens (`cnf.x5t#S256`) and a proof over each request.

An analyst token bound to the analyst's mTLS client certificate carries `cnf.x5t#S256`, the
base64url (no padding) SHA-256 of the certificate's DER. The broker sees the certificate on
the connection and compares it (mash/identity/tokens.py, `check_binding`); an agent never sees
the analyst's connection, so the client also signs each lookup with the certificate's key: a
JWT with header `typ: mash-cert-proof+jwt`, `alg: ES256` and `x5c` (the client certificate,
base64 DER, leaf first), and the same claims as a DPoP proof (`jti`, `htm`, `htu`, `iat`,
`ath`, `mash_req`: mash/identity/dpop.py). `CertProofVerifier` checks, at the broker and at
every agent: the leaf's thumbprint is the token's `cnf.x5t#S256`, the leaf is an analyst
client certificate of the token's agency, issued by the federation CA, valid now and not
revoked (when a revocation list is configured: the federation CRL the service reloads for
its own connections, mash/identity/revocation.py), the signature is by its key, and then
what every proof must hold (the same call, token and request, the time window, a nonce
never seen) with the DPoP verifier's replay cache. Plain lookups and both blind rounds
(mash/blind/proofs.py) are signed and checked so.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import threading
import time
from pathlib import Path

import jwt
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mash.errors import IdentityError
from mash.files import file_stamp
from mash.identity.certs import identity_from_pem
from mash.identity.dpop import (
    ALGORITHM,
    ProofVerifier,
    b64url,
    proof_claims,
    proof_header,
)
from mash.identity.revocation import RevocationError, RevocationList

PROOF_TYPE = "mash-cert-proof+jwt"
MAX_PROOF_CHARS = 8192  # a proof carries the client certificate (about 1 kB of base64)
MAX_CHAIN = 3


def thumbprint_der(der: bytes) -> str:
    """RFC 8705 x5t#S256: base64url(SHA-256(DER)), no padding."""
    return b64url(hashlib.sha256(der).digest())


class CertKey:
    """The analyst's mTLS client certificate and its key (P-256), signing lookup proofs."""

    def __init__(self, certificate_pem: bytes, key_pem: bytes) -> None:
        try:
            cert = x509.load_pem_x509_certificate(certificate_pem)
            key = serialization.load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError) as exc:
            raise IdentityError(f"the client certificate or its key is not readable PEM "
                                f"({exc})") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(
                key.curve, ec.SECP256R1):
            raise IdentityError("certificate proofs need a P-256 client key")
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        der = serialization.Encoding.DER
        if key.public_key().public_bytes(der, spki) != cert.public_key().public_bytes(der, spki):
            raise IdentityError("the client key is not the client certificate's")
        self._key = key
        self.der = cert.public_bytes(der)
        self.thumbprint = thumbprint_der(self.der)

    @classmethod
    def from_files(cls, cert: Path, key: Path) -> CertKey:
        try:
            return cls(cert.read_bytes(), key.read_bytes())
        except OSError as exc:
            raise IdentityError(f"cannot read {exc.filename}: {exc.strerror}") from None

    def proof(self, *, method: str, target: str, access_token: str = "",
              request: bytes | None = None, now: float | None = None) -> str:
        """A fresh proof for one request: the DPoP claims, signed by the certificate's key,
        the certificate in `x5c`."""
        claims = proof_claims(method=method, target=target, access_token=access_token,
                              request=request, now=now)
        return jwt.encode(claims, self._key, algorithm=ALGORITHM,
                          headers={"typ": PROOF_TYPE,
                                   "x5c": [base64.b64encode(self.der).decode()]})


def proof_type(proof: str) -> str:
    """The `typ` of a proof's header ("" when unreadable): which verifier checks it."""
    try:
        return str(jwt.get_unverified_header(proof).get("typ") or "")
    except jwt.PyJWTError:
        return ""


class FederationCa:
    """The federation CA bundle (the `tls.ca` file), read again when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: object = None
        self._certs: list[x509.Certificate] = []

    def certificates(self) -> list[x509.Certificate]:
        stamp = file_stamp(self.path)
        with self._lock:
            if stamp != self._stamp:
                try:
                    self._certs = x509.load_pem_x509_certificates(self.path.read_bytes())
                except (OSError, ValueError):
                    self._certs = []  # fail closed: no proof verifies until it is readable
                self._stamp = stamp
            return list(self._certs)


class CertProofVerifier:
    """Checks certificate proofs against a token's `cnf.x5t#S256`, sharing `proofs`'s replay
    cache and time window (one per broker, one per agent)."""

    def __init__(self, proofs: ProofVerifier, ca: FederationCa, *,
                 revocation: RevocationList | None = None) -> None:
        self.proofs = proofs
        self.ca = ca
        # the federation CRL, reloaded by its owner while running: each proof's certificate
        # is checked against the list as it stands (None: no list configured)
        self.revocation = revocation

    def verify(self, proof: str, *, certificate_thumbprint: str, agency: str, method: str,
               target: str, access_token: str, request: bytes,
               now: float | None = None) -> None:
        """Return if `proof` proves the holder of the bound certificate's key asked for
        exactly this request, now, once; else IdentityError saying why."""
        if not proof:
            raise IdentityError("no request proof: the analyst token is bound to a client "
                                "certificate, and each request must be signed with its key")
        header = proof_header(proof, proof_type=PROOF_TYPE, max_chars=MAX_PROOF_CHARS)
        chain = header.get("x5c")
        if not isinstance(chain, list) or not 1 <= len(chain) <= MAX_CHAIN or not all(
                isinstance(c, str) for c in chain):
            raise IdentityError("the request proof carries no client certificate (x5c)")
        try:
            der = base64.b64decode(chain[0], validate=True)
            leaf = x509.load_der_x509_certificate(der)
        except (binascii.Error, ValueError):
            raise IdentityError("the request proof's certificate (x5c) is unreadable") from None
        if thumbprint_der(der) != certificate_thumbprint:
            raise IdentityError("the request proof is signed with a certificate other than the "
                                "one the analyst token is bound to (cnf.x5t#S256): a copied "
                                "token")
        moment = dt.datetime.fromtimestamp(now if now is not None else time.time(), dt.UTC)
        self._check_certificate(leaf, agency=agency, now=moment)
        public = leaf.public_key()
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise IdentityError("the request proof's certificate has no P-256 key")
        try:
            claims = jwt.decode(proof, public, algorithms=[ALGORITHM],
                                options={"require": ["jti", "htm", "htu", "iat"],
                                         "verify_aud": False, "verify_iat": False})
        except jwt.InvalidSignatureError:
            raise IdentityError("the request proof's signature does not verify") from None
        except (jwt.PyJWTError, ValueError):
            raise IdentityError("the request proof is invalid") from None
        self.proofs.accept(claims, replay_key=f"x5t:{certificate_thumbprint}", method=method,
                           target=target, access_token=access_token, request=request, now=now)

    def _check_certificate(self, leaf: x509.Certificate, *, agency: str,
                           now: dt.datetime) -> None:
        if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
            raise IdentityError("the request proof's client certificate is not valid now "
                                "(expired or not yet valid): renew it and sign in again")
        identity = identity_from_pem(leaf.public_bytes(serialization.Encoding.PEM))
        if identity is None or identity.kind != "client" or identity.name != agency:
            raise IdentityError("the request proof's certificate is not an analyst client "
                                f"certificate of agency {agency!r}")
        for ca in self.ca.certificates():
            try:
                leaf.verify_directly_issued_by(ca)
            except (ValueError, TypeError, InvalidSignature):
                continue
            break
        else:
            raise IdentityError("the request proof's client certificate was not issued by the "
                                "federation CA")
        if self.revocation is not None:
            try:
                self.revocation.check(leaf.public_bytes(serialization.Encoding.PEM))
            except RevocationError as exc:  # revoked, or the list unusable: fail closed
                raise IdentityError(f"the request proof's client certificate is refused: "
                                    f"{exc}") from None
