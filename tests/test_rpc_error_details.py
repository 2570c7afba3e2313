"""Errors people and programs can act on (issue 19): every refusal carries a google.rpc.Status
beside its readable message, with an ErrorInfo reason, a BadRequest naming every invalid field
(never the value given) and a RetryInfo where trying again can work. Real broker and agents
on loopback with mTLS."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from mash import rpc_errors
from mash.broker import ratelimit
from mash.client import BrokerClient, BrokerError, ClientConfig
from mash.v1 import subject_pb2
from tests.helpers import Running, build_federation, client_tls, lookup_request

DOB, POSTCODE, REASON = "2030-01-01", "NOT A POSTCODE", "short"


def _bad_request() -> object:
    """Four invalid fields at once: a future date of birth, a postcode that is not one, no
    case reference and a justification too short."""
    return lookup_request(dob=DOB, postcodes=(POSTCODE,), case="", reason=REASON)


@pytest.fixture
async def police(tmp_path) -> AsyncIterator[Running]:
    fed = build_federation(tmp_path / "fed", agencies=["police"], background=50)
    async with Running.up(fed, ["police"]) as run:
        yield run


async def _refused(run: Running, request: object, **kw: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await run.analyst(**kw).lookup(request)  # type: ignore[arg-type]
    return err.value


async def test_every_invalid_field_is_named_at_once_and_no_value_is_quoted(police) -> None:
    # positive control: the same federation answers a valid lookup, with no error
    response = await police.analyst().lookup(lookup_request())
    assert [a.agency_id for a in response.answers] == ["police"]

    err = await _refused(police, _bad_request())
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    # the readable message is as before: the first problem's own words first
    assert err.details().startswith("subject.date_of_birth is in the future")
    details = rpc_errors.details_of(err)
    assert details.reason == "INVALID_SUBJECT" and details.domain == "mash.exchange"
    assert [v.field for v in details.violations] == [
        "subject.date_of_birth", "subject.addresses[0].postcode", "context.case_reference",
        "context.justification"]
    for v in details.violations:
        assert v.description.startswith(v.field)  # the field and its rule ...
        assert DOB not in v.description and POSTCODE not in v.description  # ... not the value
    # the raw Status, as an implementer in another language reads it
    status = rpc_status.from_call(err)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert status.message == err.details()
    kinds = {d.type_url.rsplit("/", 1)[1] for d in status.details}
    assert kinds == {"google.rpc.ErrorInfo", "google.rpc.BadRequest"}


async def test_one_invalid_field_keeps_its_message_exactly(police) -> None:
    err = await _refused(police, lookup_request(reason=REASON))
    assert err.details() == "context.justification must say why, in at least 10 characters"
    details = rpc_errors.details_of(err)
    assert details.reason == "INVALID_CONTEXT"
    assert [v.field for v in details.violations] == ["context.justification"]
    assert details.retry_delay is None


async def test_an_unknown_purpose_names_the_field_not_the_value(police) -> None:
    err = await _refused(police, lookup_request(purpose="fishing_trip"))
    assert "unknown purpose 'fishing_trip'" in err.details()
    details = rpc_errors.details_of(err)
    assert details.reason == "UNKNOWN_PURPOSE"
    (violation,) = details.violations
    assert violation.field == "context.purpose" and "fishing_trip" not in violation.description


async def test_unauthenticated_calls_carry_their_reason(police) -> None:
    err = await _refused(police, lookup_request(), token="garbage")
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "malformed" in err.details()
    assert rpc_errors.details_of(err).reason == "UNAUTHENTICATED_TOKEN"
    err = await _refused(police, lookup_request(), token=None)
    assert rpc_errors.details_of(err).reason == "UNAUTHENTICATED_TOKEN"
    # an agent's certificate on the analyst API
    err = await _refused(police, lookup_request(), tls=client_tls(police.fed, "police-agent"))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert rpc_errors.details_of(err).reason == "WRONG_CERTIFICATE_KIND"


async def test_a_rate_limited_lookup_says_when_to_try_again(tmp_path, monkeypatch) -> None:
    now = [1000.0]  # the broker's buckets on a clock held still (as tests/test_ratelimit.py)
    monkeypatch.setattr(ratelimit, "clock", lambda: now[0])
    fed = build_federation(tmp_path / "fed", agencies=["police"], background=50,
                           broker_overrides={"rate_limit": {"lookups_per_minute": 6,
                                                            "burst": 1}})
    async with Running.up(fed, ["police"]) as run:
        analyst = run.analyst()
        await analyst.lookup(lookup_request())
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await analyst.lookup(lookup_request())
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "try again in 10 s" in err.value.details()
        details = rpc_errors.details_of(err.value)
        assert details.reason == "RATE_LIMITED" and details.retry_delay == 10.0
        assert details.metadata == {"lookups_per_minute": "6", "burst": "1"}
        status = rpc_status.from_call(err.value)
        retry = next(d for d in status.details if d.Is(error_details_pb2.RetryInfo.DESCRIPTOR))
        info = error_details_pb2.RetryInfo()
        retry.Unpack(info)
        assert info.retry_delay.seconds == 10


async def test_the_client_waits_as_retry_info_asks_then_succeeds(tmp_path) -> None:
    # 60 a minute, bursts of 1: the second lookup at once is refused for about a second
    fed = build_federation(tmp_path / "fed", agencies=["police"], background=50,
                           broker_overrides={"rate_limit": {"lookups_per_minute": 60,
                                                            "burst": 1}})
    async with Running.up(fed, ["police"]):
        with BrokerClient(ClientConfig.load(fed.client_config)) as client:
            await asyncio.to_thread(client.lookup, lookup_request(), 10)
            response = await asyncio.to_thread(client.lookup, lookup_request(), 10)
            assert [a.agency_id for a in response.answers] == ["police"]
            assert client.waited >= 1.0 and client.retried == 0
            # no time to wait: the refusal comes back with its details read
            await asyncio.to_thread(client.lookup, lookup_request(), 10)  # after the wait
            with pytest.raises(BrokerError) as refused:
                await asyncio.to_thread(client.lookup, lookup_request(), 1.0)
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert refused.value.reason == "RATE_LIMITED"
            assert refused.value.retry_delay is not None and refused.value.retry_delay >= 1


async def test_the_client_error_carries_the_field_violations(police) -> None:
    with (BrokerClient(ClientConfig.load(police.fed.client_config)) as client,
          pytest.raises(BrokerError) as refused):
        await asyncio.to_thread(client.lookup, _bad_request(), 10)
    assert isinstance(refused.value, grpc.RpcError)  # what callers caught before
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.reason == "INVALID_SUBJECT"
    assert len(refused.value.violations) == 4


async def test_mash_lookup_names_every_bad_option_and_exits_2(police) -> None:
    args = ["--name", "Leah Thompson", "--dob", DOB, "--postcode", "LS9 8AB",
            "--purpose", "child_safeguarding", "--stage", "research", "--case", "MASH-2026-1",
            "--reason", REASON, "--config", str(police.fed.client_config)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mash", "lookup", *args, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env={"COLUMNS": "160", "PATH": "/usr/bin:/bin"})
    _, err_bytes = await proc.communicate()
    err = err_bytes.decode()
    assert proc.returncode == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == ["mash: error: invalid_argument: --dob is in the future",
                     "mash: error: invalid_argument: --reason must say why, in at least 10 "
                     "characters"], err
    assert "Traceback" not in err and "date_of_birth" not in err and "justification" not in err


def test_mash_lookup_checks_every_option_it_can_before_sending(tmp_path) -> None:
    """No broker needed: the shapes the CLI checks itself are all reported, without values."""
    result = subprocess.run(
        [sys.executable, "-m", "mash", "lookup", "--name", "Leah Thompson",
         "--dob", "31/02/2014", "--sex", "Q", "--urgency", "purple", "--purpose", "p",
         "--stage", "s", "--case", "c", "--reason", "r", "--config", str(tmp_path / "none")],
        capture_output=True, text=True)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines == ["mash: error: --dob: date is not a calendar date",
                     "mash: error: --sex: sex is not F, M or X",
                     "mash: error: --urgency: urgency is not red, amber or green"], result.stderr
    assert "31/02/2014" not in result.stderr and "purple" not in result.stderr


# --- the helper on its own -----------------------------------------------------------------


def test_violations_never_carry_the_value() -> None:
    nhs, upn = "1234567890", "ZZZ"
    subject = subject_pb2.Subject(
        name=subject_pb2.PersonName(middle="Ann"),
        date_of_birth=subject_pb2.Date(year=2014, month=2, day=30),
        addresses=[subject_pb2.Address(postcode="LS9 8AB"),
                   subject_pb2.Address(postcode="QQ1 'x' 9")],
        identifiers=[subject_pb2.Identifier(kind=subject_pb2.IDENTIFIER_KIND_NHS_NUMBER,
                                            value=nhs),
                     subject_pb2.Identifier(kind=subject_pb2.IDENTIFIER_KIND_UPN, value=upn)])
    violations = rpc_errors.subject_violations(subject)
    assert [v.field for v in violations] == [
        "subject.name", "subject.date_of_birth", "subject.addresses[1].postcode",
        "subject.identifiers[0]", "subject.identifiers[1]"]
    text = " ".join(v.description for v in violations)
    for value in (nhs, upn, "2014-02-30", "QQ1", "Ann"):
        assert value not in text, text
    # each part valid, the whole not: two different NHS numbers
    two = subject_pb2.Subject(name=subject_pb2.PersonName(given="A", family="B"), identifiers=[
        subject_pb2.Identifier(kind=subject_pb2.IDENTIFIER_KIND_NHS_NUMBER, value="9434765919"),
        subject_pb2.Identifier(kind=subject_pb2.IDENTIFIER_KIND_NHS_NUMBER, value="4010232137")])
    assert [v.field for v in rpc_errors.subject_violations(two)] == ["subject.identifiers"]
    assert rpc_errors.subject_violations(lookup_request().subject) == []
    assert [v.field for v in rpc_errors.subject_violations(subject_pb2.Subject())] == ["subject"]


def test_a_status_round_trips_and_unknown_reasons_are_refused() -> None:
    status = rpc_errors.rich_status(
        grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down", reason="RATE_LIMITED",
        retry_after=2.5, violations=[rpc_errors.Violation("a.b", "a.b is wrong")])
    details = rpc_errors.parse_status(status)
    assert details.reason == "RATE_LIMITED" and details.retry_delay == 2.5
    assert details.violations == (rpc_errors.Violation("a.b", "a.b is wrong"),)
    with pytest.raises(ValueError, match="unknown error reason"):
        rpc_errors.rich_status(grpc.StatusCode.INTERNAL, "x", reason="NOT_A_REASON")
    assert all(r.isupper() and " " not in r for r in rpc_errors.REASONS)


async def test_field_and_routing_problems_are_named_together(police) -> None:
    """A future date of birth, an unknown purpose and an unknown agency: all three at once,
    though the purpose and agencies are checked against the routing policy."""
    request = lookup_request(dob=DOB, purpose="fishing_trip")
    request.agencies.append("mi5")
    err = await _refused(police, request)
    details = rpc_errors.details_of(err)
    assert details.reason == "INVALID_SUBJECT"
    assert [v.field for v in details.violations] == [
        "subject.date_of_birth", "context.purpose", "agencies"]
    assert err.details().startswith("subject.date_of_birth is in the future; ")
    assert not any("fishing_trip" in v.description or "mi5" in v.description
                   for v in details.violations)
    # the fields right, the routing still wrong: both routing problems in one refusal
    request = lookup_request(purpose="fishing_trip")
    request.agencies.append("mi5")
    err = await _refused(police, request)
    assert err.details().startswith("unknown purpose 'fishing_trip'")
    assert "unknown agency id(s): mi5" in err.details()
    details = rpc_errors.details_of(err)
    assert details.reason == "UNKNOWN_PURPOSE"
    assert [v.field for v in details.violations] == ["context.purpose", "agencies"]


def test_every_field_violation_is_named_by_its_lookup_option() -> None:
    """The broker's field paths for each option of `mash lookup` (identifiers by their kind,
    a postcode by its place), in the analyst's terms: no protobuf path is left."""
    from mash.cli.common import say
    from mash.cli.lookup import field_options
    from mash.requests import build_request

    request = build_request(
        given="Leah", family="", aliases=["X"], dob="2099-01-01", postcodes=["LS9 8AB", "QQ"],
        nhs="1234567890", upn="ZZZ", purpose="child_safeguarding", stage="research",
        case="MASH-1", reason="short", urgency="amber")
    options = field_options(request, name=None, given="Leah", family="")
    violations = [*rpc_errors.subject_violations(request.subject),
                  *rpc_errors.context_violations(request.context)]
    named = {v.field: say(v.field, v.description, options) for v in violations}
    assert {f: text.split(" ")[0].rstrip(":") for f, text in named.items()} == {
        "subject.date_of_birth": "--dob", "subject.addresses[1].postcode": "--postcode",
        "subject.identifiers[0]": "--nhs", "subject.identifiers[1]": "--upn",
        "context.justification": "--reason", **{f: "--alias" for f in named
                                                if f.startswith("subject.aliases")}}, named
    assert not any(path in text for text in named.values()
                   for path in ("subject.", "context.", "date_of_birth", "justification"))
