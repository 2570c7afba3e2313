"""gRPC mutual-TLS credentials from PEM files, and the identity of the peer on a call."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

from mash.config import Reader
from mash.errors import ConfigError
from mash.identity.certs import identity_from_pem
from mash.identity.names import PeerIdentity


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path

    @classmethod
    def read(cls, section: Reader) -> TlsFiles:
        files = cls(ca=section.path("ca"), cert=section.path("cert"), key=section.path("key"))
        section.done()
        return files

    def _read(self) -> tuple[bytes, bytes, bytes]:
        try:
            return self.ca.read_bytes(), self.cert.read_bytes(), self.key.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read TLS file {exc.filename}: {exc.strerror}") from None

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


def peer_certificate(context: grpc.aio.ServicerContext) -> bytes | None:
    """The PEM certificate the client on this call presented (verified by the handshake)."""
    pems = (context.auth_context() or {}).get("x509_pem_cert") or []
    return pems[0] if len(pems) == 1 else None


def peer_identity(context: grpc.aio.ServicerContext) -> PeerIdentity | None:
    """The MASH identity of the client on this call, from its verified certificate.

    The TLS handshake has already checked the chain against our CA and the validity dates;
    this reads the URI SAN. None means the peer presented no usable identity.
    """
    auth = context.auth_context() or {}
    pems = auth.get("x509_pem_cert") or []
    if len(pems) != 1:
        return None
    return identity_from_pem(pems[0])
