"""gRPC mutual-TLS credentials from PEM files, and the identity of the peer on a call.

The files may be replaced while a broker or agent runs (key and certificate rotation, a new
CA bundle): the broker's server credentials read them again on the next handshake after a
change (`ReloadingServerCredentials`), and an agent re-creates its channel (`TlsWatch`).
A replacement that does not hold together (a key that is not the certificate's, an identity
that is not ours) is refused and the files in use are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Annotated, Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pydantic import BeforeValidator, ConfigDict

from mash.config import ConfigModel, File, number
from mash.errors import ConfigError, IdentityError
from mash.files import file_stamp
from mash.identity.certs import identity_from_pem
from mash.identity.names import PeerIdentity
from mash.logs import get_logger

log = get_logger(__name__)


class TlsFiles(ConfigModel):
    """A `tls:` section: the files (read when credentials are made, never here)."""

    model_config = ConfigDict(frozen=True)

    ca: File
    cert: File
    key: File
    # how often an agent looks for replaced files
    reload_seconds: Annotated[float, BeforeValidator(number(0.1, 3600))] = 5.0

    def _read(self) -> tuple[bytes, bytes, bytes]:
        try:
            return self.ca.read_bytes(), self.cert.read_bytes(), self.key.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read TLS file {exc.filename}: {exc.strerror}") from None

    def stamp(self) -> tuple[tuple[int, int, int] | None, ...]:
        return file_stamp(self.ca, self.cert, self.key)

    def read_checked(self, expect: Callable[[PeerIdentity | None], str | None] | None = None,
                     ) -> tuple[bytes, bytes, bytes]:
        """The three files, or IdentityError if they do not hold together."""
        ca, cert, key = self._read()
        try:
            x509.load_pem_x509_certificates(ca)
            leaf = x509.load_pem_x509_certificate(cert)
            private = serialization.load_pem_private_key(key, password=None)
        except (ValueError, TypeError) as exc:
            raise IdentityError(f"TLS files {self.cert}, {self.key}, {self.ca}: not PEM "
                                f"certificates and an unencrypted key ({exc})") from None
        der = serialization.Encoding.DER
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        if private.public_key().public_bytes(der, spki) != leaf.public_key().public_bytes(
                der, spki):
            raise IdentityError(f"{self.key} is not the key of {self.cert}: replace both")
        if expect is not None:
            problem = expect(identity_from_pem(cert))
            if problem:
                raise IdentityError(f"{self.cert}: {problem}")
        return ca, cert, key

    def server_credentials(self) -> grpc.ServerCredentials:
        ca, cert, key = self._read()
        return grpc.ssl_server_credentials(
            [(key, cert)], root_certificates=ca, require_client_auth=True
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        ca, cert, key = self._read()
        return grpc.ssl_channel_credentials(
            root_certificates=ca, private_key=key, certificate_chain=cert
        )

    def own_identity(self) -> PeerIdentity | None:
        return identity_from_pem(self._read()[1])


class ReloadingServerCredentials:
    """Server credentials that gRPC asks, on each new handshake, whether the files changed."""

    def __init__(self, files: TlsFiles,
                 expect: Callable[[PeerIdentity | None], str | None]) -> None:
        self.files = files
        self.expect = expect
        self._stamp = files.stamp()
        self.loaded = 1  # how many sets of files have been taken into use

    def _config(self, ca: bytes, cert: bytes, key: bytes,
                ) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)

    def credentials(self) -> grpc.ServerCredentials:
        initial = self._config(*self.files.read_checked(self.expect))
        # gRPC takes a fetch returning None as "keep the configuration in use" (its docs and
        # implementation); types-grpcio's signature leaves out the None
        return grpc.dynamic_ssl_server_credentials(
            initial, self._fetch,  # type: ignore[arg-type]
            require_client_authentication=True)

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """Called by gRPC before each handshake: None keeps the files in use."""
        stamp = self.files.stamp()
        if stamp == self._stamp:
            return None
        self._stamp = stamp
        try:
            config = self._config(*self.files.read_checked(self.expect))
        except (IdentityError, ConfigError) as exc:  # half-replaced, or wrong: keep the old
            log.warning("tls_reload_refused", reason=str(exc))
            return None
        self.loaded += 1
        log.info("tls_reloaded", cert=str(self.files.cert))
        return config


class TlsWatch:
    """Notice replaced TLS files (for a client, which re-creates its channel on a change)."""

    def __init__(self, files: TlsFiles,
                 expect: Callable[[PeerIdentity | None], str | None]) -> None:
        self.files = files
        self.expect = expect
        self._stamp = files.stamp()

    def changed(self) -> bool:
        """True once the files changed and hold together (a half-written set waits)."""
        stamp = self.files.stamp()
        if stamp == self._stamp:
            return False
        try:
            self.files.read_checked(self.expect)
        except (IdentityError, ConfigError) as exc:
            log.warning("tls_reload_refused", reason=str(exc))
            self._stamp = stamp
            return False
        self._stamp = stamp
        log.info("tls_reloaded", cert=str(self.files.cert))
        return True

    async def watch(self, stop: asyncio.Event, on_change: Callable[[], None]) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.files.reload_seconds)
            if not stop.is_set() and await asyncio.to_thread(self.changed):
                on_change()


def _peer_pems(context: grpc.aio.ServicerContext[Any, Any]) -> list[bytes]:
    """The PEM certificates in the call's verified auth context (one for a client cert)."""
    return list((context.auth_context() or {}).get("x509_pem_cert") or [])


def peer_certificate(context: grpc.aio.ServicerContext[Any, Any]) -> bytes | None:
    """The PEM certificate the client on this call presented (verified by the handshake)."""
    pems = _peer_pems(context)
    return pems[0] if len(pems) == 1 else None


def peer_identity(context: grpc.aio.ServicerContext[Any, Any]) -> PeerIdentity | None:
    """The MASH identity of the client on this call, from its verified certificate.

    The TLS handshake has already checked the chain against our CA and the validity dates;
    this reads the URI SAN. None means the peer presented no usable identity.
    """
    pems = _peer_pems(context)
    if len(pems) != 1:
        return None
    return identity_from_pem(pems[0])
