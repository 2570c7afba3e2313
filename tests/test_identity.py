"""Identity: the broker trusts certificates from its CA only, and reads the agency from them."""

from __future__ import annotations

import asyncio
import datetime as dt

import grpc
import pytest
import yaml

from mash.grpc_options import channel_options
from mash.identity import certs, tokens
from mash.identity.names import PeerIdentity, parse_identity_uri
from mash.identity.tls import TlsFiles
from mash.v1 import agent_pb2, agent_pb2_grpc, answer_pb2
from tests.helpers import Running, client_tls, lookup_request

R = answer_pb2


def test_identity_uris_round_trip() -> None:
    for ident in (PeerIdentity("agent", "police"), PeerIdentity("client", "mash"),
                  PeerIdentity("broker", "broker")):
        assert parse_identity_uri(ident.uri) == ident
    assert parse_identity_uri("spiffe://evil.example/agency/police/agent") is None
    assert parse_identity_uri("spiffe://mash.exchange/agency/Police/agent") is None


def test_issued_certificate_carries_the_agency(tmp_path) -> None:
    certs.create_ca(tmp_path)
    paths = certs.issue(tmp_path, PeerIdentity("agent", "police"))
    assert certs.identity_from_pem(paths.cert.read_bytes()) == PeerIdentity("agent", "police")
    assert oct(paths.key.stat().st_mode & 0o777) == "0o600"


def _foreign_tls(tmp_path, kind: str, agency: str) -> TlsFiles:
    other = tmp_path / "foreign"
    certs.create_ca(other, common_name="Someone else's CA")
    paths = certs.issue(other, PeerIdentity(kind, agency))  # type: ignore[arg-type]
    return TlsFiles(ca=(other / "ca.pem"), cert=paths.cert, key=paths.key)


async def _denied(running: Running, tls: TlsFiles, token: str | None = "default"):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await running.analyst(token=token, tls=tls).lookup(lookup_request(), timeout=5)
    return err.value


async def _served(running: Running) -> None:
    """Positive control: the same broker, up and serving, answers the federation's own
    analyst certificate (so an UNAVAILABLE beside it is the refusal, not a stopped broker)."""
    response = await running.analyst().lookup(lookup_request(), timeout=10)
    assert {a.agency_id for a in response.answers} >= {"police"}


def _handshake_refused(err: grpc.aio.AioRpcError) -> None:
    assert err.code() == grpc.StatusCode.UNAVAILABLE  # the TLS handshake itself fails


async def test_client_certificate_from_a_foreign_ca_is_refused(running: Running, tmp_path) -> None:
    foreign = _foreign_tls(tmp_path, "client", "mash")
    # trust our broker's CA, but present a certificate our CA never signed
    tls = TlsFiles(ca=running.fed.certs / "ca.pem", cert=foreign.cert, key=foreign.key)
    _handshake_refused(await _denied(running, tls))
    await _served(running)


async def test_expired_client_certificate_is_refused(running: Running) -> None:
    paths = certs.issue(running.fed.certs, PeerIdentity("client", "mash"), days=1,
                        not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=30),
                        out_stem="expired-client")
    tls = TlsFiles(ca=running.fed.certs / "ca.pem", cert=paths.cert, key=paths.key)
    _handshake_refused(await _denied(running, tls))
    await _served(running)


async def test_agent_certificate_cannot_be_used_as_an_analyst(running: Running) -> None:
    err = await _denied(running, client_tls(running.fed, "police-agent"))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "agent certificate cannot call the analyst API" in err.details()


async def test_token_and_certificate_must_name_the_same_agency(running: Running) -> None:
    certs.issue(running.fed.certs, PeerIdentity("client", "police"))
    err = await _denied(running, client_tls(running.fed, "police-client"))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "belongs to 'police'" in err.details()


@pytest.mark.parametrize(
    ("token", "message"),
    [(None, "no analyst token"), ("garbage", "malformed")],
)
async def test_missing_or_malformed_token(running: Running, token, message) -> None:
    err = await _denied(running, client_tls(running.fed), token=token)
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert message in err.details()


async def test_forged_and_expired_tokens(running: Running) -> None:
    stranger = tokens.generate_issuer_key()[0]
    forged = tokens.issue_token(stranger, issuer="https://idp.mash.example", subject="x",
                                agency="mash", role="analyst")
    err = await _denied(running, client_tls(running.fed), token=forged)
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED and "forged" in err.details()
    expired = running.fed.token(ttl=dt.timedelta(minutes=-5))
    err = await _denied(running, client_tls(running.fed), token=expired)
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED and "expired" in err.details()


async def test_role_escalation_is_refused(running: Running) -> None:
    err = await _denied(running, client_tls(running.fed),
                        token=running.fed.token(role="administrator"))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "role" in err.details()


def _agent_stub(running: Running, stem: str, tls: TlsFiles | None = None):
    tls = tls or client_tls(running.fed, stem)
    channel = grpc.aio.secure_channel(f"127.0.0.1:{running.fed.broker_port}",
                                      tls.channel_credentials(),
                                      options=channel_options("localhost"))
    return channel, agent_pb2_grpc.AgentServiceStub(channel)


async def _connect(stub):
    call = stub.Connect()
    await call.write(agent_pb2.ConnectRequest(hello=agent_pb2.AgentHello(
        agent_version="test", ready=True)))
    return call


async def _refusal(stub) -> grpc.aio.AioRpcError:
    """How the broker ends a Connect it refuses. It may refuse before the hello is even
    written; the write then fails with gRPC core's own INTERNAL ("Failed execute_batch"),
    and the broker's refusal is the call's final status, read here."""
    call = stub.Connect()
    try:
        await call.write(agent_pb2.ConnectRequest(hello=agent_pb2.AgentHello(
            agent_version="test", ready=True)))
        first = await call.read()
    except grpc.aio.AioRpcError:
        pass
    else:
        pytest.fail(f"the broker took the stream: {first}")
    return grpc.aio.AioRpcError(await call.code(), await call.initial_metadata(),
                                await call.trailing_metadata(), await call.details())


async def test_unregistered_agency_cannot_connect(running: Running) -> None:
    certs.issue(running.fed.certs, PeerIdentity("agent", "spies"))
    channel, stub = _agent_stub(running, "spies-agent")
    err = await _refusal(stub)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "'spies' is not registered" in err.details()
    from mash.rpc_errors import details_of

    assert details_of(err).reason == "AGENCY_NOT_REGISTERED"  # issue 19: for programs
    await channel.close()


async def test_client_certificate_cannot_connect_as_an_agent(running: Running) -> None:
    channel, stub = _agent_stub(running, "mash-client")
    err = await _refusal(stub)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    await channel.close()


async def test_agent_with_foreign_certificate_never_comes_online(running: Running,
                                                                 tmp_path) -> None:
    foreign = _foreign_tls(tmp_path, "agent", "housing")
    tls = TlsFiles(ca=running.fed.certs / "ca.pem", cert=foreign.cert, key=foreign.key)
    channel, stub = _agent_stub(running, "", tls)
    err = await _refusal(stub)
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    assert running.broker.registry.get("housing") is None
    await channel.close()
    # Positive control: the same broker takes housing's own agent certificate.
    channel, stub = _agent_stub(running, "housing-agent")
    call = await _connect(stub)
    assert (await call.read()).welcome.agency_id == "housing"
    assert running.broker.registry.get("housing") is not None
    await channel.close()


async def test_agent_answering_in_another_agencys_name_is_refused(running: Running) -> None:
    """A housing agent (its own certificate) that claims its answer comes from police."""
    channel, stub = _agent_stub(running, "housing-agent")
    call = await _connect(stub)
    welcome = await call.read()
    assert welcome.welcome.agency_id == "housing"  # from the certificate, not the hello

    async def impostor() -> None:
        while True:
            message = await call.read()
            if message.WhichOneof("message") == "query":
                answer = R.AgencyAnswer(agency_id="police", state=R.ANSWER_STATE_NOT_KNOWN)
                answer.data_as_at.GetCurrentTime()
                await call.write(agent_pb2.ConnectRequest(answer=agent_pb2.QueryAnswer(
                    query_id=message.query.query_id, answer=answer)))
                return

    task = asyncio.create_task(impostor())
    response = await running.analyst().lookup(lookup_request())
    await task
    answers = {a.agency_id: a for a in response.answers}
    assert answers["housing"].state == R.ANSWER_STATE_NOT_CHECKED
    assert answers["housing"].not_checked_reason == R.NOT_CHECKED_REASON_AGENT_ERROR
    assert "another agency's name" in answers["housing"].detail
    assert answers["police"].state == R.ANSWER_STATE_KNOWN  # the real police answer stands
    await channel.close()


async def test_agent_checks_the_token_itself(running: Running) -> None:
    """An agent that does not trust the broker's issuer refuses the token: NOT_CHECKED."""
    cfg_path = running.fed.agent_configs["housing"]
    cfg = yaml.safe_load(cfg_path.read_text())
    other = running.fed.certs / "other-issuer.key"
    private, public = tokens.generate_issuer_key()
    other.write_bytes(private)
    other.with_suffix(".pub").write_bytes(public)
    cfg["auth"]["issuers"][0]["public_key"] = str(other.with_suffix(".pub"))
    cfg_path.write_text(yaml.safe_dump(cfg))
    await running.start_agent("housing")
    answers = {a.agency_id: a for a in (await running.analyst().lookup(lookup_request())).answers}
    assert answers["housing"].not_checked_reason == R.NOT_CHECKED_REASON_TOKEN_REJECTED
    assert "refused the analyst's token" in answers["housing"].detail


async def test_agent_refuses_to_start_with_another_agencys_certificate(running: Running) -> None:
    from mash.agent import config as agent_config
    from mash.errors import ConfigError

    cfg_path = running.fed.agent_configs["housing"]
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["tls"]["cert"] = str(running.fed.certs / "police-agent.pem")
    cfg["tls"]["key"] = str(running.fed.certs / "police-agent.key")
    cfg_path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match="does not identify the agent of 'housing'"):
        agent_config.load(cfg_path)


async def test_a_token_replayed_from_another_client_is_refused(running: Running) -> None:
    """A token stolen from one analyst's machine cannot be used from another client."""
    certs.issue(running.fed.certs, PeerIdentity("client", "mash"), out_stem="mash-laptop-2")
    stolen = running.fed.token(bind="mash-client")
    err = await _denied(running, client_tls(running.fed, "mash-laptop-2"), token=stolen)
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "bound to another client certificate" in err.details()
    # the same token over its own certificate works
    await running.analyst(token=stolen).lookup(lookup_request())


async def test_unbound_tokens_are_refused_where_binding_is_required(running: Running) -> None:
    err = await _denied(running, client_tls(running.fed), token=running.fed.token(bind=None))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "must be bound to your client certificate" in err.details()
