"""Checking certificates against the federation CA's revocation list, reloaded while running.

Broker and agents check every stream and call (`check`). The list fails closed: unreadable,
not signed by our CA, or past its next update, it refuses every certificate and says why,
because a certificate that could not be checked is not a certificate known to be good.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from cryptography import x509
from pydantic import BeforeValidator, ConfigDict

from mash.config import ConfigModel, File, number
from mash.errors import IdentityError
from mash.files import file_stamp
from mash.identity.crl import load_crl
from mash.logs import get_logger

log = get_logger(__name__)


class RevocationError(IdentityError):
    """A certificate is revoked, or could not be checked."""


class RevocationConfig(ConfigModel):
    """A `revocation:` section: the federation CA's CRL."""

    model_config = ConfigDict(frozen=True)

    crl: File
    reload_seconds: Annotated[float, BeforeValidator(number(0.1, 3600))] = 5.0


@lru_cache(maxsize=1024)
def _serial_and_issuer(pem: bytes) -> tuple[int, x509.Name] | None:
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        return None
    return cert.serial_number, cert.issuer


class RevocationList:
    """The list at `config.crl`, verified against the CA certificates in `ca_bundle`."""

    def __init__(self, config: RevocationConfig, ca_bundle: Path) -> None:
        self.config = config
        self.ca_bundle = ca_bundle
        self._stamp: tuple[tuple[int, int, int] | None, ...] = ()
        self._serials: frozenset[int] = frozenset()
        self._issuer: x509.Name | None = None
        self._next_update: dt.datetime | None = None
        self._number = 0
        self._problem: str | None = "the revocation list has not been read yet"
        self._was_usable = False

    @property
    def path(self) -> Path:
        return self.config.crl

    def _load(self) -> None:
        crl = load_crl(self.path)
        try:
            cas = x509.load_pem_x509_certificates(self.ca_bundle.read_bytes())
        except (OSError, ValueError):
            raise IdentityError(f"cannot read the CA bundle {self.ca_bundle}") from None
        issuer = next((ca for ca in cas if ca.subject == crl.issuer), None)
        if issuer is None or not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
            raise IdentityError(f"{self.path} is not signed by the federation's CA "
                                f"({self.ca_bundle}): fetch the list the CA published")
        if crl.next_update_utc is None:
            raise IdentityError(f"{self.path} has no next-update date: sign it with "
                                "`mash certs crl`")
        try:
            number = int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)
        except x509.ExtensionNotFound:
            number = 0
        if number < self._number:
            raise IdentityError(f"{self.path} is older (CRL number {number}) than the list "
                                f"already read ({self._number}): refusing to go back")
        self._serials = frozenset(entry.serial_number for entry in crl)
        self._issuer, self._next_update, self._number = crl.issuer, crl.next_update_utc, number

    def reload(self, *, report: bool = True) -> bool:
        """Read the list again if its file changed; True when what `check` says may differ.
        `report=False`: the caller raises the problem itself (at start), so no log line."""
        stamp = file_stamp(self.path, self.ca_bundle)
        changed = stamp != self._stamp
        if changed:
            self._stamp = stamp
            try:
                self._load()
                self._problem = None
                log.info("revocation_list_loaded", path=str(self.path),
                         revoked=len(self._serials), crl_number=self._number,
                         next_update=self._next_update.isoformat() if self._next_update else "")
            except IdentityError as exc:
                self._problem = str(exc)
                if report:
                    log.error("revocation_list_refused", path=str(self.path), reason=str(exc))
        usable = self.problem() is None
        if usable != self._was_usable:
            self._was_usable = usable
            changed = True
            if not usable and self._problem is None and report:
                log.error("revocation_list_expired", path=str(self.path),
                          reason=self.problem())
        return changed

    def problem(self) -> str | None:
        """Why no certificate can be checked now, or None."""
        if self._problem is not None:
            return f"certificates cannot be checked: {self._problem}"
        if self._next_update is not None and dt.datetime.now(dt.UTC) > self._next_update:
            return (f"certificates cannot be checked: the revocation list {self.path} expired "
                    f"at {self._next_update.isoformat()}; the federation's CA must sign a "
                    "fresh one (`mash certs crl`)")
        return None

    def check(self, pem: bytes | None) -> None:
        """Raise RevocationError unless this certificate is known not to be revoked."""
        problem = self.problem()
        if problem is not None:
            raise RevocationError(problem)
        found = _serial_and_issuer(pem) if pem else None
        if found is None:
            raise RevocationError("certificates cannot be checked: none was presented")
        serial, issuer = found
        if issuer != self._issuer:
            covered = self._issuer.rfc4514_string() if self._issuer else "-"
            raise RevocationError(
                f"the certificate's issuer ({issuer.rfc4514_string()}) publishes no list "
                f"here: {self.path} covers {covered}")
        if serial in self._serials:
            raise RevocationError(
                f"certificate serial {serial:x} has been revoked by the federation's CA: ask "
                "it for a new certificate")

    async def watch(self, stop: asyncio.Event, on_change: Callable[[], object]) -> None:
        """Poll the file (and the list's expiry) until `stop` is set."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.config.reload_seconds)
            if not stop.is_set() and await asyncio.to_thread(self.reload):
                on_change()


def open_list(config: RevocationConfig | None, ca_bundle: Path,
              where: str) -> RevocationList | None:
    """The list, read once now: a ConfigError-worthy IdentityError if it is unusable at start."""
    if config is None:
        return None
    crl = RevocationList(config, ca_bundle)
    crl.reload(report=False)
    problem = crl.problem()
    if problem is not None:
        raise IdentityError(f"{where}: revocation.crl: {problem}")
    return crl
