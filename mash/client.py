"""The analyst's side: a client for the broker's lookup and federation APIs."""

from __future__ import annotations

import datetime as dt
import queue
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from mash.blind.config import BlindClientConfig
from mash.blind.session import BlindLookupError, BlindSession
from mash.config import load_yaml
from mash.errors import ConfigError, ValidationError
from mash.grpc_options import channel_options
from mash.identity import pinning
from mash.identity.device import fresh_token
from mash.identity.pinning import BrokerPins
from mash.identity.tls import TlsFiles
from mash.normalise import IDENTIFIER_NORMALISERS
from mash.subject import IDENTIFIER_ENUMS
from mash.v1 import blind_pb2, lookup_pb2, lookup_pb2_grpc, subject_pb2


@dataclass
class ClientConfig:
    broker: str
    server_name: str | None
    tls: TlsFiles
    token: str
    blind: BlindClientConfig | None = None  # set: every lookup is blind
    pins: BrokerPins = field(default_factory=BrokerPins)  # broker.identities (empty: any broker)

    @classmethod
    def load(cls, path: str | Path, token: str | None = None) -> ClientConfig:
        top = load_yaml(path)
        broker = top.section("broker")
        address = broker.str("address")
        server_name = broker.str("server_name", None)
        pins = BrokerPins.read(broker)
        broker.done()
        tls = TlsFiles.read(top.section("tls"))
        token_file = top.path("token_file", None)
        blind = BlindClientConfig.read(top.section("blind")) if top.has("blind") else None
        top.done()
        if token is None:
            if token_file is None:
                raise ConfigError(f"{path}: no token_file and no --token/MASH_TOKEN given")
            token = fresh_token(token_file)
        return cls(address, server_name, tls, token, blind, pins)


@dataclass
class BlindResult:
    response: lookup_pb2.LookupResponse
    evidence: list[blind_pb2.SignedAnswer]  # every agency's signed answer, to prove it later


class BrokerClient:
    def __init__(self, cfg: ClientConfig) -> None:
        self.cfg = cfg
        target = cfg.pins.fixed_name()
        if target is None:  # several brokers pinned: see which one answers (pinning.py)
            target = pinning.choose(pinning.fetch_sync(cfg.broker, cfg.tls, cfg.server_name),
                                    cfg.pins, cfg.broker)
        self._channel = grpc.secure_channel(
            cfg.broker, cfg.tls.channel_credentials(), options=channel_options(target))
        self._lookup = lookup_pb2_grpc.LookupServiceStub(self._channel)
        self._federation = lookup_pb2_grpc.FederationServiceStub(self._channel)

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.cfg.token}"),)

    def lookup(self, request: lookup_pb2.LookupRequest, timeout: float = 15.0,
               blind: bool | None = None) -> lookup_pb2.LookupResponse:
        """Ask the broker. Blind (the broker reads neither subject nor answers) when the
        config has a `blind:` section, unless `blind=False`."""
        if blind is None:
            blind = self.cfg.blind is not None
        if blind:
            return self.blind_lookup(request, timeout).response
        try:
            return self._lookup.Lookup(request, timeout=timeout, metadata=self._metadata())
        except grpc.RpcError as exc:
            raise self._explained(exc) from None

    def blind_lookup(self, request: lookup_pb2.LookupRequest,
                     timeout: float = 15.0) -> BlindResult:
        if self.cfg.blind is None:
            raise ConfigError("blind lookups need a blind: section in the client config "
                              "(linkage keys and the federation key directory)")
        session = BlindSession(self.cfg.blind, self.cfg.blind.directory.load(), request)
        outbox: queue.Queue[blind_pb2.BlindLookupRequest | None] = queue.Queue()
        outbox.put(session.first())

        def requests() -> Iterator[blind_pb2.BlindLookupRequest]:
            while (item := outbox.get()) is not None:
                yield item

        metadata = self._metadata()
        if request.approval:  # the blind query has no field for it: the broker passes it on
            metadata += (("mash-approval", request.approval),)
        call = self._lookup.BlindLookup(requests(), timeout=timeout, metadata=metadata)
        try:
            one = next(call)
            outbox.put(session.second(one.round_one))
            two = next(call)
            response = session.result(two.round_two)
        except StopIteration:
            raise BlindLookupError("the broker ended the blind lookup early") from None
        except grpc.RpcError as exc:
            raise self._explained(exc) from None
        finally:
            outbox.put(None)
            call.cancel()
        return BlindResult(response, list(session.evidence))

    def list_agents(self, timeout: float = 10.0) -> lookup_pb2.ListAgentsResponse:
        try:
            return self._federation.ListAgents(lookup_pb2.ListAgentsRequest(), timeout=timeout,
                                               metadata=self._metadata())
        except grpc.RpcError as exc:
            raise self._explained(exc) from None

    def _explained(self, exc: grpc.RpcError) -> Exception:
        """A refused pin as one line that says which identity the server showed."""
        code, details = exc.code(), exc.details()  # type: ignore[attr-defined]
        if code == grpc.StatusCode.UNAVAILABLE and pinning.PIN_FAILURE in (details or ""):
            return pinning.PeerRefused(pinning.diagnose(self.cfg.broker, self.cfg.tls,
                                                        self.cfg.pins, self.cfg.server_name))
        return exc

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> BrokerClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def split_name(text: str) -> subject_pb2.PersonName:
    """'Jane Ann Smith' -> given Jane, middle Ann, family Smith; 'Smith, Jane' works too."""
    text = " ".join(text.split())
    if "," in text:
        family, _, rest = text.partition(",")
        words = rest.split()
        return subject_pb2.PersonName(given=words[0] if words else "",
                                      middle=" ".join(words[1:]), family=family.strip())
    words = text.split(" ")
    if len(words) == 1:
        return subject_pb2.PersonName(family=words[0])
    return subject_pb2.PersonName(given=words[0], middle=" ".join(words[1:-1]), family=words[-1])


def parse_date(text: str) -> subject_pb2.Date:
    """YYYY-MM-DD or DD/MM/YYYY. Calendar validity is checked by the broker and agents too."""
    text = text.strip()
    for pattern, order in ((r"(\d{4})-(\d{1,2})-(\d{1,2})", "ymd"),
                           (r"(\d{1,2})/(\d{1,2})/(\d{4})", "dmy")):
        match = re.fullmatch(pattern, text)
        if match:
            parts = dict(zip(order, map(int, match.groups()), strict=True))
            try:
                dt.date(parts["y"], parts["m"], parts["d"])
            except ValueError:
                raise ValidationError(f"date {text!r} is not a calendar date") from None
            return subject_pb2.Date(year=parts["y"], month=parts["m"], day=parts["d"])
    raise ValidationError(f"date {text!r} is not like 2014-03-09 or 09/03/2014")


def identifier(kind: str, value: str, issuer: str = "") -> subject_pb2.Identifier:
    if kind not in IDENTIFIER_NORMALISERS:
        raise ValidationError(f"unknown identifier kind {kind!r}")
    return subject_pb2.Identifier(kind=IDENTIFIER_ENUMS[kind], value=value, issuer=issuer)
