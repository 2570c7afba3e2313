"""The federation CA's certificate revocation list: revoking a certificate, re-signing the list.

The list itself (`crl.pem` beside the CA) is the record of what is revoked: revoking adds an
entry to the current list and signs a new one, with a higher CRL number and a fresh next
update. Broker and agents refuse every certificate once the list is past its next update
(mash.identity.revocation), so the CA re-signs it (`mash certs crl`) well before then.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization

from mash.errors import IdentityError
from mash.files import write_atomic
from mash.identity.certs import load_ca, load_certificate

CRL_FILE = "crl.pem"
DEFAULT_DAYS = 7
REASONS = {
    "unspecified": x509.ReasonFlags.unspecified,
    "key-compromise": x509.ReasonFlags.key_compromise,
    "superseded": x509.ReasonFlags.superseded,
    "cessation-of-operation": x509.ReasonFlags.cessation_of_operation,
    "affiliation-changed": x509.ReasonFlags.affiliation_changed,
}


def load_crl(path: Path) -> x509.CertificateRevocationList:
    try:
        return x509.load_pem_x509_crl(path.read_bytes())
    except OSError as exc:
        raise IdentityError(f"cannot read the revocation list {path}: {exc.strerror}") from None
    except ValueError:
        raise IdentityError(f"{path} is not a PEM certificate revocation list") from None


def _current(directory: Path, ca: x509.Certificate) -> x509.CertificateRevocationList | None:
    path = directory / CRL_FILE
    if not path.exists():
        return None
    crl = load_crl(path)
    if crl.issuer != ca.subject or not crl.is_signature_valid(ca.public_key()):  # type: ignore[arg-type]
        raise IdentityError(f"{path} was not signed by the CA in {directory}: move it aside, "
                            "then run `mash certs crl` to start a new list")
    return crl


def _number(crl: x509.CertificateRevocationList | None) -> int:
    if crl is None:
        return 0
    try:
        return int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)
    except x509.ExtensionNotFound:
        return 0


def sign_crl(directory: Path, *, days: int = DEFAULT_DAYS,
             add: tuple[x509.RevokedCertificate, ...] = ()) -> Path:
    """Sign the current list (plus `add`) afresh, valid for `days`; return its path."""
    if days < 1:
        raise IdentityError("--days must be at least 1")
    ca, key = load_ca(directory)
    current = _current(directory, ca)
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateRevocationListBuilder()
               .issuer_name(ca.subject)
               .last_update(now - dt.timedelta(minutes=1))
               .next_update(now + dt.timedelta(days=days))
               .add_extension(x509.CRLNumber(_number(current) + 1), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   key.public_key()), critical=False))
    seen: set[int] = set()
    for entry in (*(current or ()), *add):
        if entry.serial_number not in seen:
            seen.add(entry.serial_number)
            builder = builder.add_revoked_certificate(entry)
    crl = builder.sign(key, hashes.SHA256())
    path = directory / CRL_FILE
    write_atomic(path, crl.public_bytes(serialization.Encoding.PEM))
    return path


def parse_serial(text: str) -> int:
    try:
        serial = int(text.lower().removeprefix("0x").replace(":", ""), 16)
    except ValueError:
        raise IdentityError(f"serial {text!r} is not hexadecimal: copy it from "
                            "`mash certs show FILE`") from None
    if serial <= 0:
        raise IdentityError(f"serial {text!r} is not a certificate serial number")
    return serial


def revoke(directory: Path, *, serial: int | None = None, cert: Path | None = None,
           reason: str = "unspecified", days: int = DEFAULT_DAYS) -> tuple[Path, int]:
    """Add a certificate (by file or serial) to the CA's list; return the list and serial."""
    if (serial is None) == (cert is None):
        raise IdentityError("name the certificate to revoke: a certificate file or --serial")
    if reason not in REASONS:
        raise IdentityError(f"reason {reason!r} is not one of {', '.join(REASONS)}")
    ca, _ = load_ca(directory)
    if cert is not None:
        found = load_certificate(cert)
        try:
            found.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            raise IdentityError(f"{cert} was not issued by the CA in {directory}: revoke it "
                                "with the CA that issued it") from None
        serial = found.serial_number
    assert serial is not None
    entry = (x509.RevokedCertificateBuilder()
             .serial_number(serial)
             .revocation_date(dt.datetime.now(dt.UTC))
             .add_extension(x509.CRLReason(REASONS[reason]), critical=False)
             .build())
    return sign_crl(directory, days=days, add=(entry,)), serial
