"""Every answer state, end to end over real gRPC with mutual TLS."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from mash.v1 import answer_pb2
from tests.helpers import Running, lookup_request

R = answer_pb2


def by_agency(response):
    return {a.agency_id: a for a in response.answers}


async def test_known_child_is_known_with_released_fields(running: Running) -> None:
    response = await running.analyst().lookup(lookup_request())
    answers = by_agency(response)
    assert set(answers) == {"police", "health", "csc", "education", "probation", "housing",
                            "asc", "ambulance"}
    police = answers["police"]
    assert police.state == R.ANSWER_STATE_KNOWN
    match = police.matches[0]
    released = {f.name: f for f in match.released}
    assert released["markers"].value == "DA victim"
    assert released["last_incident_date"].transform == "month"
    assert len(released["last_incident_date"].value) == 7  # YYYY-MM, not the full date
    withheld = {f.name: f.reason for f in match.withheld}
    assert "officer_in_case" in withheld and "officer_in_case" not in released
    assert police.contact_route and police.HasField("data_as_at")
    assert len(police.policy_revision) == 16  # the signed bundle's revision
    assert answers["health"].state == R.ANSWER_STATE_KNOWN
    assert {f.name: f.value for f in answers["health"].matches[0].released}["cp_flag"] == "Y"


async def test_every_answer_state_and_reason(running: Running) -> None:
    analyst = running.analyst()
    known = by_agency(await analyst.lookup(lookup_request()))
    # housing is registered but its agent is not running
    assert known["housing"].state == R.ANSWER_STATE_NOT_CHECKED
    assert known["housing"].not_checked_reason == R.NOT_CHECKED_REASON_AGENT_OFFLINE
    assert "not connected" in known["housing"].detail
    # probation has no agreement for child safeguarding
    assert known["probation"].not_checked_reason == R.NOT_CHECKED_REASON_NO_AGREEMENT
    assert not known["probation"].matches

    triage = by_agency(await analyst.lookup(lookup_request(stage="triage")))
    assert triage["education"].state == R.ANSWER_STATE_WITHHELD
    assert "holds information" in triage["education"].detail
    assert not triage["education"].matches

    restricted = by_agency(await analyst.lookup(
        lookup_request("Ruby Clarke", "2017-02-03", ("WF1 3LP",))))
    assert restricted["health"].state == R.ANSWER_STATE_WITHHELD
    assert "restricted" in restricted["health"].detail

    nobody = by_agency(await analyst.lookup(
        lookup_request("Oliver Grant", "2012-09-30", ("HX1 2RS",))))
    for agency in ("police", "health", "csc", "education"):
        answer = nobody[agency]
        assert answer.state == R.ANSWER_STATE_NOT_KNOWN, agency
        assert answer.searched.sources and answer.searched.sources[0].record_count > 0
        assert answer.searched.name_variants
        assert answer.searched.sources[0].HasField("as_at")

    # a given name alone could not reach any of these indexes' match thresholds
    given_only = lookup_request(None, dob=None, postcodes=())
    given_only.subject.name.given = "Leah"
    name_only = by_agency(await analyst.lookup(given_only))
    for agency in ("police", "health", "csc", "education"):
        assert name_only[agency].state == R.ANSWER_STATE_NOT_CHECKED
        assert name_only[agency].not_checked_reason == R.NOT_CHECKED_REASON_TOO_FEW_IDENTIFIERS


async def test_a_subject_with_no_name_is_answered_by_the_evidence_rule(running: Running
                                                                          ) -> None:
    """No name, a date of birth and a postcode: a valid question (a baby not yet named),
    which each agent searches or refuses by what the details could prove in its records,
    never an invalid request and never a NOT_KNOWN from a search that was not made."""
    answers = by_agency(await running.analyst().lookup(lookup_request(None)))
    # Leah Thompson's date of birth and postcode are enough in these agencies' records
    assert answers["police"].state == R.ANSWER_STATE_KNOWN
    assert answers["police"].matches
    # health's own stricter rule (search.require_any_of) still wants a name with the date
    assert answers["health"].not_checked_reason == R.NOT_CHECKED_REASON_TOO_FEW_IDENTIFIERS
    assert "name" in answers["health"].detail
    # a date of birth alone is too little anywhere, and the answer says what to add
    dob_only = by_agency(await running.analyst().lookup(lookup_request(None, postcodes=())))
    for agency in ("police", "health", "csc", "education"):
        assert dob_only[agency].state == R.ANSWER_STATE_NOT_CHECKED, agency
        assert dob_only[agency].not_checked_reason == R.NOT_CHECKED_REASON_TOO_FEW_IDENTIFIERS
    for agency in ("police", "csc", "education"):  # health's own rule speaks for itself
        assert "add" in dob_only[agency].detail, agency


async def test_health_needs_date_of_birth_others_accept_postcode(running: Running) -> None:
    answers = by_agency(await running.analyst().lookup(lookup_request(dob=None)))
    assert answers["health"].not_checked_reason == R.NOT_CHECKED_REASON_TOO_FEW_IDENTIFIERS
    assert "date of birth" in answers["health"].detail
    assert answers["police"].state == R.ANSWER_STATE_KNOWN


async def test_restricting_the_lookup_to_some_agencies(running: Running) -> None:
    request = lookup_request()
    request.agencies.extend(["police", "health"])
    answers = by_agency(await running.analyst().lookup(request))
    assert set(answers) == {"police", "health"}


async def test_agents_panel_lists_online_and_offline(running: Running) -> None:
    analyst = running.analyst()

    async def statuses():
        return {a.agency_id: a for a in (await analyst.agents()).agents}

    for _ in range(50):  # the ready flag travels in the agent's status message
        agents = await statuses()
        if agents["police"].ready:
            break
        await asyncio.sleep(0.05)
    assert agents["police"].online and agents["police"].ready
    assert agents["police"].record_count > 0 and agents["police"].HasField("data_as_at")
    assert len(agents["police"].policy_revision) == 16
    assert not agents["housing"].online


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(purpose="fishing"), "unknown purpose 'fishing'"),
        (dict(stage="s42"), "unknown stage 's42'"),
        (dict(reason="because"), "justification"),
        (dict(case=""), "case_reference is missing"),
        (dict(dob="2030-01-01"), "in the future"),
        (dict(name=None, dob=None, postcodes=()), "the subject is empty"),
        (dict(postcodes=("NOT A POSTCODE",)), "is not a UK postcode"),
    ],
)
async def test_bad_requests_are_refused_with_a_reason(running: Running, change, message) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await running.analyst().lookup(lookup_request(**change))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in err.value.details()


async def test_unknown_agency_filter_is_refused(running: Running) -> None:
    request = lookup_request()
    request.agencies.append("mi5")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await running.analyst().lookup(request)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "mi5" in err.value.details()


async def test_oversize_request_is_refused_by_grpc(running: Running) -> None:
    from mash.identity.tls import TlsFiles
    from mash.v1 import lookup_pb2_grpc

    tls = TlsFiles(ca=running.fed.certs / "ca.pem", cert=running.fed.certs / "mash-client.pem",
                   key=running.fed.certs / "mash-client.key")
    channel = grpc.aio.secure_channel(
        f"127.0.0.1:{running.fed.broker_port}", tls.channel_credentials(),
        options=[("grpc.ssl_target_name_override", "localhost"),
                 ("grpc.max_send_message_length", 64 * 1024 * 1024)])
    request = lookup_request(reason="x" * (2 * 1024 * 1024))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await lookup_pb2_grpc.LookupServiceStub(channel).Lookup(
            request, timeout=10, metadata=(("authorization", f"Bearer {running.fed.token()}"),))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in err.value.details()
    await channel.close()


async def test_agent_failure_is_not_checked_never_not_known(running: Running) -> None:
    def broken(_subject):
        raise RuntimeError("index corrupted")

    running.agents["police"].state.snapshot.matcher.search = broken  # fault injection
    answers = by_agency(await running.analyst().lookup(lookup_request()))
    assert answers["police"].state == R.ANSWER_STATE_NOT_CHECKED
    assert answers["police"].not_checked_reason == R.NOT_CHECKED_REASON_AGENT_ERROR
    assert answers["health"].state == R.ANSWER_STATE_KNOWN


async def test_unreadable_source_is_data_unavailable(running: Running) -> None:
    import pathlib

    import yaml

    cfg = yaml.safe_load(running.fed.agent_configs["housing"].read_text())
    pathlib.Path(cfg["sources"][0]["path"]).write_text("tenancy_ref,forename\nT1,Amy\n")
    agent = await running.start_agent("housing", wait=False)
    for _ in range(100):
        if agent.state.error:
            break
        await asyncio.sleep(0.05)
    answers = by_agency(await running.analyst().lookup(lookup_request()))
    assert answers["housing"].not_checked_reason == R.NOT_CHECKED_REASON_DATA_UNAVAILABLE
    assert "has no column" in answers["housing"].detail
