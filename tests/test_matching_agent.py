"""Matching through a real federation: what NOT_KNOWN says was searched, and a swapped name
still found, over real gRPC with mutual TLS."""

from __future__ import annotations

from mash.v1 import answer_pb2, subject_pb2
from tests.helpers import Running, lookup_request

R = answer_pb2


def by_agency(response):
    return {a.agency_id: a for a in response.answers}


async def test_not_known_states_what_was_searched(running: Running) -> None:
    response = await running.analyst().lookup(
        lookup_request("Katherine Quarmby", "2013-04-07", ("LS6 2AA",)))
    for agency in ("police", "health", "csc", "education"):
        answer = by_agency(response)[agency]
        assert answer.state == R.ANSWER_STATE_NOT_KNOWN, agency
        searched = answer.searched
        assert {"katherine quarmby", "quarmby katherine", "kate quarmby",
                "kathy quarmby"} <= set(searched.name_variants)
        assert searched.date_of_birth_day_month_swap
        assert "day and month swapped" in searched.date_of_birth_rules
        assert "01/01 taken as a placeholder: the year alone" in searched.date_of_birth_rules
        assert list(searched.postcodes) == ["LS6 2AA"]
        assert searched.sources and all(s.HasField("as_at") and s.record_count > 0
                                        for s in searched.sources)
        assert list(searched.identifiers_used) == []
        # how many records were examined depends on the records held, not on what was
        # searched: never sent (tests/test_disclosure_metadata.py)
        assert searched.candidates_examined == 0


async def test_identifiers_used_are_named(running: Running) -> None:
    request = lookup_request("Katherine Quarmby", "2013-04-07", ())
    request.subject.identifiers.add(kind=subject_pb2.IDENTIFIER_KIND_NHS_NUMBER,
                                   value="943 476 5919")
    health = by_agency(await running.analyst().lookup(request))["health"]
    assert health.state == R.ANSWER_STATE_NOT_KNOWN
    assert list(health.searched.identifiers_used) == ["nhs_number"]


async def test_swapped_names_and_a_nickname_are_still_known(running: Running) -> None:
    answers = by_agency(await running.analyst().lookup(
        lookup_request("Thompson Leah", "2014-05-17", ("LS9 8AB",))))
    police = answers["police"]
    assert police.state == R.ANSWER_STATE_KNOWN
    assert police.matches[0].confidence == R.CONFIDENCE_MATCH
    # police release no names at research: how the names compared is not said
    # (tests/test_disclosure_metadata.py shows "names_swapped" where names are released)
    assert list(police.matches[0].matched_on) == []


async def test_a_subject_too_thin_to_search_says_what_would_make_it_searchable(
        running: Running) -> None:
    """A family name alone cannot tell one person from others: NOT_CHECKED (too few
    identifiers) with what to add; with a date of birth and a postcode it is searched."""
    thin = lookup_request(None, None, ())
    thin.subject.name.family = "Quarmby"
    answers = by_agency(await running.analyst().lookup(thin))
    for agency in ("police", "health", "csc", "education"):
        answer = answers[agency]
        assert answer.state == R.ANSWER_STATE_NOT_CHECKED, agency
        assert answer.not_checked_reason == R.NOT_CHECKED_REASON_TOO_FEW_IDENTIFIERS
        # health keeps a stricter rule of its own (search.require_any_of), which still holds
        assert ("searches only with" if agency == "health" else "a date of birth") in (
            answer.detail)
    enough = lookup_request(None, "2013-04-07", ("LS6 2AA",))  # the issue's own example
    enough.subject.name.family = "Quarmby"
    for answer in (await running.analyst().lookup(enough)).answers:
        if answer.agency_id in ("police", "csc", "education"):  # health: its own rule
            assert answer.not_checked_reason != R.NOT_CHECKED_REASON_TOO_FEW_IDENTIFIERS


async def test_not_known_names_the_addresses_searched(running: Running) -> None:
    request = lookup_request("Katherine Quarmby", "2013-04-07", ())
    request.subject.addresses.add(lines=["Flat 2, 14 Acacia Rd", "Leeds"], postcode="LS6 2AA")
    police = by_agency(await running.analyst().lookup(request))["police"]
    assert police.state == R.ANSWER_STATE_NOT_KNOWN
    assert list(police.searched.addresses) == ["flat 2 14 acacia road leeds"]
    assert list(police.searched.postcodes) == ["LS6 2AA"]
