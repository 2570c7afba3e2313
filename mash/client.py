"""The analyst's side: a client for the broker's lookup and federation APIs."""

from __future__ import annotations

import datetime as dt
import queue
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import grpc
from pydantic import BeforeValidator

from mash import addresses as broker_addresses
from mash import balancing, rpc_errors
from mash.addresses import BrokerAddresses
from mash.blind.config import BlindClientConfig, BlindClientKeys
from mash.blind.session import BlindLookupError, BlindSession
from mash.config import ConfigModel, File, load_model, whole
from mash.errors import ConfigError, IdentityError, MashError, ValidationError
from mash.grpc_options import channel_options
from mash.identity import pinning
from mash.identity.cert_binding import CertKey
from mash.identity.device import fresh_token, load_proof_key, proof_key_path
from mash.identity.dpop import ClientKey
from mash.identity.pinning import BrokerPins
from mash.identity.request_binding import BoundKey, bound_thumbprint, sign_lookup
from mash.identity.tls import TlsFiles
from mash.normalise import IDENTIFIER_NORMALISERS
from mash.subject import IDENTIFIER_ENUMS
from mash.v1 import blind_pb2, lookup_pb2, lookup_pb2_grpc, subject_pb2

DEFAULT_ATTEMPTS = 3
MAX_ATTEMPTS = 10  # the broker refuses more (mash.broker.lookup.MAX_ATTEMPTS)
RETRY_PAUSE_SECONDS = 0.1  # times the attempt: the failed broker's connection settles
MIN_ATTEMPT_SECONDS = 0.5  # no retry with less time than this left
READY_WAIT_SECONDS = 2.0  # a retry waits this long at most for a broker to be ready


class ClientBroker(BrokerAddresses):
    """client.yaml `broker:`: where the brokers are, which identities they may have, and how
    many tries a lookup gets."""

    identities: Annotated[BrokerPins, BeforeValidator(BrokerPins.validate)] = BrokerPins()
    attempts: Annotated[int, BeforeValidator(whole(1, MAX_ATTEMPTS))] = DEFAULT_ATTEMPTS


class ClientSettings(ConfigModel):
    """client.yaml: a plain value. The token, the proof key and the blind keys it names are
    read by `ClientConfig.load`, as the client starts."""

    broker: ClientBroker
    tls: TlsFiles
    token_file: File | None = None  # or --token / MASH_TOKEN
    blind: BlindClientConfig | None = None  # set: every lookup is blind


@dataclass
class ClientConfig:
    """What a BrokerClient runs with: client.yaml's settings and the credentials they name,
    read (`load`) as the client starts; or built in code (the console)."""

    broker: str | list[str]  # one broker's host:port (a name may resolve to several), or a list
    server_name: str | None
    tls: TlsFiles
    token: str
    blind: BlindClientKeys | None = None  # set: every lookup is blind
    pins: BrokerPins = field(default_factory=BrokerPins)  # broker.identities (empty: any broker)
    attempts: int = DEFAULT_ATTEMPTS  # tries of one lookup, on other brokers after UNAVAILABLE
    # the key a bound token is bound to (cnf.jkt: the proof key; cnf.x5t#S256: the client
    # certificate's key): every lookup attempt is signed with it
    proof_key: BoundKey | None = None

    @property
    def addresses(self) -> list[str]:
        return [self.broker] if isinstance(self.broker, str) else list(self.broker)

    @classmethod
    def load(cls, path: str | Path, token: str | None = None) -> ClientConfig:
        """client.yaml (ClientSettings), then the token (`token`, else `token_file`), its
        proof key and the blind keys."""
        settings = load_model(ClientSettings, path)
        tls, broker = settings.tls, settings.broker
        blind = BlindClientKeys.read(settings.blind) if settings.blind is not None else None
        if token is not None:  # given on the command line: no key file goes with it
            return cls(broker.targets, broker.server_name, tls, token, blind,
                       broker.identities, broker.attempts,
                       proof_key=bound_key(token, None, None) or certificate_key(token, tls))
        if settings.token_file is None:
            raise ConfigError(f"{path}: no token_file and no --token/MASH_TOKEN given")
        token_file = settings.token_file
        token = fresh_token(token_file)
        return cls(broker.targets, broker.server_name, tls, token, blind, broker.identities,
                   broker.attempts,
                   proof_key=(bound_key(token, load_proof_key(token_file), token_file)
                              or certificate_key(token, tls)))


def certificate_key(token: str, tls: TlsFiles) -> CertKey | None:
    """The client certificate and key to sign lookups with, when the token is bound to that
    certificate (cnf.x5t#S256) and not to a proof key. A token bound to another certificate
    is sent unsigned: the broker refuses it and says so."""
    x5t = bound_thumbprint(token, "x5t#S256")
    if not x5t or bound_thumbprint(token):
        return None
    key = CertKey.from_files(tls.cert, tls.key)
    return key if key.thumbprint == x5t else None


def bound_key(token: str, key: ClientKey | None, token_file: Path | None) -> ClientKey | None:
    """The key to sign lookups with: the one beside the token file, when the token is bound
    to it (cnf.jkt); IdentityError when a bound token has no key here to prove it with."""
    jkt = bound_thumbprint(token)
    if not jkt:
        return None
    where = proof_key_path(token_file) if token_file is not None else None
    if key is None:
        if where is None:
            raise IdentityError("the token given (--token or MASH_TOKEN) is bound to a proof "
                                "key (cnf.jkt), which only the token file's FILE.key holds: "
                                "use token_file from mash login --bind-key instead")
        raise IdentityError(f"the token is bound to a proof key (cnf.jkt) but {where} is "
                            "missing: run mash login --bind-key again")
    if key.thumbprint != jkt:
        raise IdentityError(f"{where} is not the key the token is bound to: run mash login "
                            "--bind-key again")
    return key


@dataclass
class BlindResult:
    response: lookup_pb2.LookupResponse
    evidence: list[blind_pb2.SignedAnswer]  # every agency's signed answer, to prove it later


BrokerAgents = lookup_pb2.ListAgentsResponse | grpc.RpcError  # one broker's view, or why not


class BrokerError(MashError, grpc.RpcError):
    """A broker's refusal, as grpc raised it (code(), details()), with the google.rpc.Status
    details read: the ErrorInfo reason, every invalid field (BadRequest) and how long to wait
    before trying again (RetryInfo). Empty when the broker sent none. A `MashError` too, so
    ``except mash.MashError`` catches every error the client raises."""

    def __init__(self, error: grpc.RpcError, info: rpc_errors.ErrorDetails | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.info = info if info is not None else rpc_errors.details_of(error)

    def code(self) -> grpc.StatusCode:
        return self.error.code()

    def details(self) -> str | None:
        return self.error.details()

    def trailing_metadata(self) -> Any:  # grpc.Call metadata, as grpc returned it
        return self.error.trailing_metadata()

    @property
    def reason(self) -> str:
        return self.info.reason

    @property
    def violations(self) -> tuple[rpc_errors.Violation, ...]:
        return self.info.violations

    @property
    def retry_delay(self) -> float | None:
        return self.info.retry_delay

    def __str__(self) -> str:
        return f"{self.code().name}: {self.details() or ''}"


class BrokerClient:
    """One channel to every configured broker, balanced round robin over those whose health
    says they serve lookups; a lookup that fails with UNAVAILABLE is tried again on another
    broker, under the same lookup id (see mash.balancing)."""

    def __init__(self, cfg: ClientConfig) -> None:
        self.cfg = cfg
        target, _ = balancing.target(cfg.addresses, cfg.server_name or pinning.ANY_BROKER)
        self._channel = grpc.secure_channel(
            target, cfg.tls.channel_credentials(),
            options=[*channel_options(self._pin_name()), *balancing.channel_options()])
        self._lookup = lookup_pb2_grpc.LookupServiceStub(self._channel)
        self._federation = lookup_pb2_grpc.FederationServiceStub(self._channel)
        self.retried = 0  # lookups tried again on another broker, by this client
        self.waited = 0.0  # seconds waited, as a broker's RetryInfo asked, before trying again

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
        return self._retrying(request, timeout)

    def _pin_name(self) -> str:
        """The name every broker's certificate must carry for this channel (pinning.py)."""
        name = self.cfg.pins.fixed_name()
        if name is not None:
            return name
        # several brokers pinned: each address must present one of them now; one channel
        # asks for one name, so with several identities it then holds each to a broker's
        chosen = {pinning.choose(pinning.fetch_sync(a.target, self.cfg.tls, a.server_name),
                                 self.cfg.pins, a.target)
                  for a in broker_addresses.expand(self.cfg.addresses, self.cfg.server_name)}
        return chosen.pop() if len(chosen) == 1 else pinning.ANY_BROKER

    def _retrying(self, request: lookup_pb2.LookupRequest,
                  timeout: float) -> lookup_pb2.LookupResponse:
        """Lookup, and on UNAVAILABLE (the broker died, is restarting or cannot write its
        audit) the same lookup again, on another broker, until `attempts` or the time runs
        out. Each broker's audit records a retry as a retry of the one lookup id. A refusal
        with a RetryInfo (RESOURCE_EXHAUSTED: rate limited) is tried again after the delay it
        asks for, when that fits in the time left."""
        attempt_request = lookup_pb2.LookupRequest()
        attempt_request.CopyFrom(request)
        attempt_request.lookup_id = request.lookup_id or uuid.uuid4().hex
        deadline = time.monotonic() + timeout
        attempt = max(request.attempt, 1)
        while True:
            attempt_request.attempt = attempt
            if self.cfg.proof_key is not None:  # a new proof for each attempt (a new nonce)
                attempt_request.proof = sign_lookup(
                    self.cfg.proof_key, token=self.cfg.token, subject=request.subject,
                    context=request.context)
            try:
                return self._lookup.Lookup(
                    attempt_request, timeout=max(deadline - time.monotonic(), 0.05),
                    metadata=self._metadata())
            except grpc.RpcError as exc:
                info = rpc_errors.details_of(exc)
                # the broker's RetryInfo, when it sent one, is the least wait before trying again
                asked = info.retry_delay
                pause = max(RETRY_PAUSE_SECONDS * attempt, asked or 0.0)
                limited = exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and asked is not None
                if ((exc.code() != grpc.StatusCode.UNAVAILABLE and not limited)
                        or attempt >= self.cfg.attempts
                        or deadline - time.monotonic() < pause + MIN_ATTEMPT_SECONDS
                        or not self._a_broker_ready(pause, deadline)):
                    raise self._explained(exc, info) from None
                if limited:
                    self.waited += pause
                else:
                    self.retried += 1
            attempt += 1

    def _a_broker_ready(self, pause: float, deadline: float) -> bool:
        """After `pause`, wait (at most READY_WAIT_SECONDS, within the time left) for the
        channel to have a broker ready: the others may be between connections."""
        time.sleep(pause)
        wait = min(READY_WAIT_SECONDS, deadline - time.monotonic() - MIN_ATTEMPT_SECONDS)
        try:
            grpc.channel_ready_future(self._channel).result(timeout=max(wait, 0.01))
        except grpc.FutureTimeoutError:
            return False
        return True

    def blind_lookup(self, request: lookup_pb2.LookupRequest,
                     timeout: float = 15.0) -> BlindResult:
        if self.cfg.blind is None:
            raise ConfigError("blind lookups need a blind: section in the client config "
                              "(linkage keys and the federation key directory)")
        # both rounds signed with the key the token is bound to, as a plain lookup is
        session = BlindSession(self.cfg.blind, self.cfg.blind.directory.load(), request,
                               proof_key=self.cfg.proof_key, token=self.cfg.token)
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

    def _explained(self, exc: grpc.RpcError,
                   info: rpc_errors.ErrorDetails | None = None) -> Exception:
        """A refused pin as one line that says which identity the server showed; any other
        refusal as a BrokerError, with its details read."""
        code, details = exc.code(), exc.details()
        if code == grpc.StatusCode.UNAVAILABLE and pinning.PIN_FAILURE in (details or ""):
            addresses = broker_addresses.expand(self.cfg.addresses, self.cfg.server_name)
            for address in addresses[1:]:  # the first: diagnose's own words, below
                try:
                    pinning.choose(pinning.fetch_sync(address.target, self.cfg.tls,
                                                      address.server_name),
                                   self.cfg.pins, address.target)
                except IdentityError as refused:
                    return pinning.PeerRefused(str(refused))
            return pinning.PeerRefused(pinning.diagnose(
                addresses[0].target, self.cfg.tls, self.cfg.pins, addresses[0].server_name))
        return exc if isinstance(exc, BrokerError) else BrokerError(exc, info)

    def list_agents_by_broker(self, timeout: float = 5.0) -> dict[str, BrokerAgents]:
        """Every broker's own view (its agents' streams), asked of each broker directly."""
        out: dict[str, BrokerAgents] = {}
        for address in broker_addresses.expand(self.cfg.addresses, self.cfg.server_name):
            # a broker that is not one this client accepts stops the whole command
            name = self.cfg.pins.fixed_name() or pinning.choose(
                pinning.fetch_sync(address.target, self.cfg.tls, address.server_name),
                self.cfg.pins, address.target)
            with grpc.secure_channel(address.target, self.cfg.tls.channel_credentials(),
                                     options=channel_options(name)) as channel:
                try:
                    out[address.target] = lookup_pb2_grpc.FederationServiceStub(
                        channel).ListAgents(lookup_pb2.ListAgentsRequest(), timeout=timeout,
                                            metadata=self._metadata())
                except grpc.RpcError as exc:
                    explained = self._explained(exc)
                    if isinstance(explained, pinning.PeerRefused):
                        raise explained from None  # not a broker this client accepts
                    out[address.target] = exc
        return out

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
