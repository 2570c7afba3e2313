"""Subject and context validation: absurd input gets a message a person can act on."""

from __future__ import annotations

import datetime as dt

import pytest

from mash import context, subject
from mash.errors import ValidationError
from mash.v1 import subject_pb2 as S

TODAY = dt.date(2026, 11, 22)


def make(**kw) -> S.Subject:
    base = S.Subject(name=S.PersonName(given="Jane", family="Smith"))
    base.MergeFrom(S.Subject(**kw))
    return base


def test_a_good_subject_is_normalised() -> None:
    msg = make(date_of_birth=S.Date(year=2012, month=3, day=4),
               addresses=[S.Address(postcode="ls14ab")],
               identifiers=[S.Identifier(kind=S.IDENTIFIER_KIND_NHS_NUMBER,
                                         value="943 476 5919")],
               aliases=[S.PersonName(given="Mrs Janey", family="O'Brien-Smith")])
    q = subject.from_proto(msg, TODAY)
    assert q.names[0] == subject.Name("jane", "", "smith")
    assert q.names[1] == subject.Name("janey", "", "obrien smith")
    assert q.postcodes == ("LS1 4AB",)
    assert q.identifiers == {"nhs_number": "9434765919"}
    assert q.present() >= {"name", "date_of_birth", "postcode", "nhs_number"}


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (dict(date_of_birth=S.Date(year=2012, month=2, day=30)), "not a calendar date"),
        (dict(date_of_birth=S.Date(year=2027, month=1, day=1)), "in the future"),
        (dict(date_of_birth=S.Date(year=1850, month=1, day=1)), "before 1900"),
        (dict(date_of_birth=S.Date(year=2012)), "not a calendar date"),
        (dict(addresses=[S.Address(postcode="NOWHERE")]), "not a UK postcode"),
        (dict(identifiers=[S.Identifier(kind=S.IDENTIFIER_KIND_NHS_NUMBER,
                                        value="9434765918")]), "NHS number is not valid"),
        (dict(identifiers=[S.Identifier(value="x")]), "has no kind"),
        (dict(identifiers=[S.Identifier(kind=S.IDENTIFIER_KIND_LOCAL, value="A1")]),
         "needs its issuing agency"),
        (dict(aliases=[S.PersonName(family="x")] * 11), "at most 10"),
        (dict(addresses=[S.Address(postcode="LS1 4AB")] * 11), "at most 10"),
        (dict(identifiers=[S.Identifier(kind=S.IDENTIFIER_KIND_UPN, value="A1")] * 11),
         "at most 10"),
        (dict(name=S.PersonName(family="Smith\x00")), "control or invisible"),
        (dict(name=S.PersonName(family="Sm\u200bith")), "control or invisible"),
        (dict(name=S.PersonName(family="x" * 101)), "longer than 100"),
        (dict(name=S.PersonName(family="1234")), "has no letters"),
        (dict(sex=7), "sex is not a known value"),
        (dict(identifiers=[S.Identifier(kind=S.IDENTIFIER_KIND_NHS_NUMBER, value="9434765919"),
                           S.Identifier(kind=S.IDENTIFIER_KIND_NHS_NUMBER,
                                        value="4010232137")]), "two different NHS numbers"),
    ],
)
def test_absurd_subjects_are_refused(kw, message) -> None:
    msg = make()
    if "name" in kw:
        msg.name.CopyFrom(kw.pop("name"))
    msg.MergeFrom(S.Subject(**kw))
    with pytest.raises(ValidationError, match=message):
        subject.from_proto(msg, TODAY)


def test_empty_subject() -> None:
    with pytest.raises(ValidationError, match="the subject is empty"):
        subject.from_proto(S.Subject(), TODAY)
    with pytest.raises(ValidationError, match="the subject is empty"):  # sex alone
        subject.from_proto(S.Subject(sex=S.SEX_FEMALE), TODAY)


def test_a_subject_without_a_name_is_left_to_the_evidence_rule() -> None:
    """A date of birth and an address can single out a baby not yet named: whether that is
    enough to search is the agent's evidence rule, not a list of fields."""
    unnamed = subject.from_proto(S.Subject(
        date_of_birth=S.Date(year=2026, month=10, day=1),
        addresses=[S.Address(postcode="LS1 4AB", lines=["14 Beech Grove"])]), TODAY)
    assert not unnamed.names and unnamed.date_of_birth == dt.date(2026, 10, 1)
    assert unnamed.postcodes == ("LS1 4AB",)


def test_minimum_identifier_rules() -> None:
    name_only = subject.from_proto(make(), TODAY)
    assert not subject.meets_minimum(name_only, subject.DEFAULT_MINIMUM)
    with_dob = subject.from_proto(make(date_of_birth=S.Date(year=2012, month=3, day=4)), TODAY)
    assert subject.meets_minimum(with_dob, subject.DEFAULT_MINIMUM)
    nhs_only = subject.from_proto(S.Subject(identifiers=[S.Identifier(
        kind=S.IDENTIFIER_KIND_NHS_NUMBER, value="9434765919")]), TODAY)
    assert subject.meets_minimum(nhs_only, subject.DEFAULT_MINIMUM)
    assert "date of birth + name" in subject.describe_minimum(subject.DEFAULT_MINIMUM)


def ctx(**kw) -> S.RequestContext:
    base = dict(purpose="child_safeguarding", stage="triage", case_reference="MASH-1",
                justification="Referral from school about bruising", urgency=S.URGENCY_RED)
    base.update(kw)
    return S.RequestContext(**base)


def test_context_is_read() -> None:
    c = context.from_proto(ctx())
    assert (c.purpose, c.stage, c.urgency) == ("child_safeguarding", "triage", "red")


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (dict(purpose=""), "purpose is missing"),
        (dict(purpose="Child Safeguarding!"), "short lower-case code"),
        (dict(stage=""), "stage is missing"),
        (dict(case_reference=""), "case_reference is missing"),
        (dict(case_reference="MASH 1; DROP TABLE"), "letters, digits"),
        (dict(justification="because"), "at least 10 characters"),
        (dict(justification="x" * 2001), "longer than 2000"),
        (dict(urgency=S.URGENCY_UNSPECIFIED), "urgency is missing"),
    ],
)
def test_bad_context(kw, message) -> None:
    with pytest.raises(ValidationError, match=message):
        context.from_proto(ctx(**kw))


def test_every_invalid_field_of_a_subject_is_reported_at_once() -> None:
    msg = S.Subject(
        name=S.PersonName(given="Jane\x00", family="123"),
        aliases=[S.PersonName(given="Jo", family="Smith"), S.PersonName(middle="Ann")],
        date_of_birth=S.Date(year=2012, month=2, day=30),
        addresses=[S.Address(postcode="LS1 4AB"), S.Address(postcode="NOT A POSTCODE")],
        identifiers=[S.Identifier(kind=S.IDENTIFIER_KIND_NHS_NUMBER, value="1234567890"),
                     S.Identifier(kind=S.IDENTIFIER_KIND_LOCAL, value="X1")])
    with pytest.raises(ValidationError) as caught:
        subject.from_proto(msg, TODAY)
    fields = [p.field for p in caught.value.problems]
    assert fields == ["subject.name.given", "subject.name.family", "subject.aliases[1]",
                      "subject.date_of_birth", "subject.addresses[1].postcode",
                      "subject.identifiers[0]", "subject.identifiers[1]"]
    # the error reads as its first problem; each problem names its own field
    assert caught.value.field == "subject.name.given"
    assert str(caught.value) == caught.value.problems[0].message
    assert all(p.message.startswith(p.field) for p in caught.value.problems)
    # positive control: the same subject with those fields put right is accepted
    fixed = S.Subject(name=S.PersonName(given="Jane", family="Smith"),
                      aliases=[S.PersonName(given="Jo", family="Smith")],
                      date_of_birth=S.Date(year=2012, month=2, day=28),
                      addresses=[S.Address(postcode="LS1 4AB")],
                      identifiers=[S.Identifier(kind=S.IDENTIFIER_KIND_NHS_NUMBER,
                                                value="943 476 5919"),
                                   S.Identifier(kind=S.IDENTIFIER_KIND_LOCAL, value="X1",
                                                issuer="leeds_cc")])
    assert subject.from_proto(fixed, TODAY).postcodes == ("LS1 4AB",)


def test_two_different_numbers_of_one_kind_name_the_identifiers() -> None:
    msg = make(identifiers=[
        S.Identifier(kind=S.IDENTIFIER_KIND_NHS_NUMBER, value="943 476 5919"),
        S.Identifier(kind=S.IDENTIFIER_KIND_NHS_NUMBER, value="401 023 2137")])
    with pytest.raises(ValidationError, match="two different") as caught:
        subject.from_proto(msg, TODAY)
    assert [p.field for p in caught.value.problems] == ["subject.identifiers"]


def test_every_invalid_field_of_a_context_is_reported_at_once() -> None:
    with pytest.raises(ValidationError) as caught:
        context.from_proto(ctx(purpose="", stage="Triage!", case_reference="",
                               justification="short", urgency=S.URGENCY_UNSPECIFIED))
    assert [p.field for p in caught.value.problems] == [
        "context.purpose", "context.stage", "context.case_reference",
        "context.justification", "context.urgency"]
    assert caught.value.field == "context.purpose"
    with pytest.raises(ValidationError) as one:  # one wrong field: one problem
        context.from_proto(ctx(stage=""))
    assert [p.field for p in one.value.problems] == ["context.stage"]
