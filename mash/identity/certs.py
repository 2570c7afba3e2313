"""A development certificate authority and the certificates it issues.

Production deployments use their own PKI; the only contract is the URI SAN in
`mash.identity.names`. Private keys are written with mode 0600 and never committed.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mash.errors import IdentityError
from mash.files import write_atomic
from mash.identity.names import (
    PIN_DOMAIN,
    SERVER_KINDS,
    PeerIdentity,
    check_host_name,
    parse_identity_uri,
)

CA_CERT = "ca.pem"
CA_KEY = "ca.key"


@dataclass(frozen=True)
class IssuedPaths:
    cert: Path
    key: Path


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def default_stem(identity: PeerIdentity) -> str:
    """The file name (without .pem/.key) `issue` writes for an identity."""
    if identity.kind in SERVER_KINDS:
        return f"{identity.kind}-{identity.name}"
    return f"{identity.name}-{identity.kind}"


def create_ca(
    directory: Path, common_name: str = "MASH Exchange development CA", days: int = 3650,
    force: bool = False,
) -> IssuedPaths:
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    if cert_path.exists() and not force:
        raise IdentityError(f"{cert_path} already exists: pass --force to replace the CA")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_atomic(key_path, _key_pem(key), private=True)
    write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), private=False)
    return IssuedPaths(cert_path, key_path)


def load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    if not cert_path.exists() or not key_path.exists():
        raise IdentityError(f"no CA in {directory}: run `mash certs init --dir {directory}` first")
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise IdentityError(f"{key_path}: expected an EC private key")
    return cert, key


def issue(
    directory: Path,
    identity: PeerIdentity,
    *,
    dns_names: tuple[str, ...] = (),
    ip_addresses: tuple[str, ...] = (),
    days: int = 365,
    not_before: dt.datetime | None = None,
    out_stem: str | None = None,
) -> IssuedPaths:
    """Issue a certificate for `identity`, signed by the CA in `directory`.

    Agents and clients get clientAuth. Brokers get serverAuth and clientAuth, consoles (an
    HTTPS server only) serverAuth; both carry the DNS names and IP addresses they are reached
    on, and their identity's pin name (mash.identity.names). `not_before` lets tests make
    expired certificates.
    """
    if identity.kind not in SERVER_KINDS and (dns_names or ip_addresses):
        raise IdentityError(f"a {identity.kind} certificate names no host: only broker and "
                            "console certificates take --host and --ip")
    for host in dns_names:
        check_host_name(host)
    try:
        addresses = [ipaddress.ip_address(ip) for ip in ip_addresses]
    except ValueError as exc:
        raise IdentityError(f"{exc}: give --ip as an IPv4 or IPv6 address") from None
    ca_cert, ca_key = load_ca(directory)
    key = ec.generate_private_key(ec.SECP256R1())
    start = not_before or (_now() - dt.timedelta(minutes=5))
    sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(identity.uri)]
    if identity.kind in SERVER_KINDS:  # the names pinned channels ask for (pinning.py)
        sans += [x509.DNSName(identity.pin_name), x509.DNSName(f"{identity.kind}.{PIN_DOMAIN}")]
    sans += [x509.DNSName(d) for d in dns_names]
    sans += [x509.IPAddress(a) for a in addresses]
    usages = {"agent": [ExtendedKeyUsageOID.CLIENT_AUTH],
              "client": [ExtendedKeyUsageOID.CLIENT_AUTH],
              "broker": [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
              "console": [ExtendedKeyUsageOID.SERVER_AUTH]}[identity.kind]
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "MASH Exchange"),
                    x509.NameAttribute(NameOID.COMMON_NAME, str(identity)),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    stem = out_stem or default_stem(identity)
    paths = IssuedPaths(directory / f"{stem}.pem", directory / f"{stem}.key")
    write_atomic(paths.key, _key_pem(key), private=True)
    write_atomic(paths.cert, cert.public_bytes(serialization.Encoding.PEM), private=False)
    return paths


@lru_cache(maxsize=1024)
def identity_from_pem(pem: bytes) -> PeerIdentity | None:
    """The MASH identity in a certificate's URI SAN, or None when it carries none.

    Remembered per certificate (a pure function of its bytes): every call of a connection
    presents the same certificate, and parsing it costs more than the rest of a lookup's
    authentication."""
    try:
        cert = x509.load_pem_x509_certificate(pem)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return None
    found = [parse_identity_uri(uri) for uri in sans.get_values_for_type(
        x509.UniformResourceIdentifier)]
    identities = [f for f in found if f is not None]
    # A certificate naming two identities is ambiguous: treat it as naming none.
    return identities[0] if len(identities) == 1 else None


def load_certificate(path: Path) -> x509.Certificate:
    """A PEM certificate file, or an IdentityError saying what is wrong with it."""
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except OSError as exc:
        raise IdentityError(f"cannot read certificate {path}: {exc.strerror}") from None
    except ValueError:
        raise IdentityError(f"{path} is not a PEM certificate") from None


def describe(cert_path: Path) -> dict[str, str]:
    cert = load_certificate(cert_path)
    ident = identity_from_pem(cert_path.read_bytes())
    return {
        "subject": cert.subject.rfc4514_string(),
        "identity": ident.uri if ident else "(none)",
        "kind": ident.kind if ident else "(none)",
        "serial": format(cert.serial_number, "x"),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
    }
