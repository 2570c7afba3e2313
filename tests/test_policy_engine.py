"""The Rego library: its own tests, the IG table cases, and the decisions it makes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from mash.demo.federation import POLICIES
from mash.policy import bundle, transforms
from mash.policy.decisions import LoadedPolicy
from mash.policy.engine import RegoEngine
from mash.policy.errors import PolicyError
from mash.policy.model import Requester
from mash.policy.testing import run_case, run_cases, run_rego_tests
from mash.records import PersonRecord
from tests.policy_helpers import copy_policies, edit_mou

TODAY = dt.date(2026, 6, 1)
CTX = transforms.TransformContext(hmac_key=b"k" * 32)


@pytest.fixture(scope="module")
def policy() -> LoadedPolicy:
    built = bundle.build(POLICIES)
    return LoadedPolicy(built, RegoEngine(built))


def test_the_rego_librarys_own_tests_pass(policy: LoadedPolicy) -> None:
    results = run_rego_tests(POLICIES, policy.bundle)
    assert len(results) >= 12
    failed = [(r.name, r.detail) for r in results if not r.passed]
    assert not failed


def test_the_ig_table_cases_pass(policy: LoadedPolicy) -> None:
    results = run_cases(POLICIES, policy)
    assert len(results) >= 12
    assert not [(r.name, r.detail) for r in results if not r.passed]


def test_a_wrong_expectation_fails_and_says_why(policy: LoadedPolicy) -> None:
    case = {"owner": "police", "requester": "mash", "role": "analyst",
            "purpose": "child_safeguarding", "stage": "research", "today": "2026-06-01",
            "record": {"officer_in_case": "DC 1"},
            "expect": {"answer": "known", "released": {"officer_in_case": "DC 1"}}}
    passed, detail = run_case(policy, case, CTX, TODAY)
    assert not passed
    assert "released {} (expected {'officer_in_case': 'DC 1'})" in detail


def test_a_failing_rego_test_is_reported(tmp_path: Path, policy: LoadedPolicy) -> None:
    src = copy_policies(tmp_path / "p")
    (src / "mash" / "broken_test.rego").write_text(
        "package mash.broken_test\n\nimport rego.v1\n\ntest_wrong if {\n\t1 == 2\n}\n")
    results = {r.name: r for r in run_rego_tests(src, policy.bundle)}
    assert not results["test_wrong"].passed


def requester(stage: str = "research", role: str = "analyst",
              purpose: str = "child_safeguarding") -> Requester:
    return Requester("mash", role, purpose, stage)


def record(**values: str) -> PersonRecord:
    return PersonRecord("r1", "src", (), None, "", (), {}, values)


def test_routing_decisions(policy: LoadedPolicy) -> None:
    decisions = {d.agency: d for d in policy.route(
        requester(), ["police", "health", "csc", "education", "probation", "housing"], TODAY)}
    assert all(decisions[a].allowed for a in ("police", "health", "csc", "education",
                                                "housing"))
    assert decisions["probation"].refusal == "no_agreement"
    assert decisions["probation"].reason == (
        "no agreement lets mash (analyst) ask probation for child_safeguarding at stage research")
    assert decisions["police"].agreement_id == "police-mash-safeguarding"


def test_disclosure_with_transforms(policy: LoadedPolicy) -> None:
    out = policy.disclose("police", requester(), record(
        markers="DA victim", last_incident_date="2026-03-14", officer_in_case="DC 1",
        given_name="Leah"), TODAY, CTX)
    assert out.level == "fields"
    assert {r.name: (r.value, r.transform) for r in out.released} == {
        "markers": ("DA victim", "keep"), "last_incident_date": ("2026-03", "month")}
    assert {w.name for w in out.withheld} == {"officer_in_case", "given_name"}
    assert all("not released at research" in w.reason for w in out.withheld)


def test_a_value_a_transform_cannot_take_is_withheld_not_leaked(policy: LoadedPolicy) -> None:
    out = policy.disclose("police", requester(), record(last_incident_date="last Tuesday"),
                          TODAY, CTX)
    assert out.released == []
    assert [(w.name, w.reason) for w in out.withheld] == [
        ("last_incident_date", "the recorded value is not a date")]


def test_review_overdue_warns(policy: LoadedPolicy) -> None:
    gate = policy.gate("police", requester(), dt.date(2028, 3, 1))
    assert gate.allowed
    assert gate.warnings == ("agreement police-mash-safeguarding was due for review on "
                             "2027-12-31",)


def test_expired_agreement_refuses(policy: LoadedPolicy) -> None:
    gate = policy.gate("police", requester(), dt.date(2031, 1, 1))
    assert not gate.allowed and gate.refusal == "policy_error"
    assert gate.reason == "agreement police-mash-safeguarding expired on 2030-12-31"
    with pytest.raises(PolicyError):  # no usable grant: the record decision is undefined
        policy.disclose("police", requester(), record(markers="x"), dt.date(2031, 1, 1), CTX)


def test_missing_lawful_basis_refuses(tmp_path: Path) -> None:
    src = copy_policies(tmp_path / "p")

    def drop_basis(data):
        data["grants"][0]["purposes"]["child_safeguarding"]["lawful_basis"] = {
            "article_6": "6(1)(e)"}
    edit_mou(src, "health-mash-safeguarding", drop_basis)
    built = bundle.build(src)
    gate = LoadedPolicy(built, RegoEngine(built)).gate("health", requester(), TODAY)
    assert gate.refusal == "policy_error"
    assert "no complete lawful basis for child_safeguarding" in gate.reason


def test_evaluation_errors_fail_closed(policy: LoadedPolicy) -> None:
    class Broken:
        def evaluate(self, entrypoint, input_doc):
            raise PolicyError("engine exploded")

    broken = LoadedPolicy(policy.bundle, Broken())
    with pytest.raises(PolicyError, match="engine exploded"):
        broken.gate("police", requester(), TODAY)

    class Undefined:
        def evaluate(self, entrypoint, input_doc):
            return None

    with pytest.raises(PolicyError, match="no decision"):
        LoadedPolicy(policy.bundle, Undefined()).gate("police", requester(), TODAY)
    with pytest.raises(PolicyError, match="no decision"):
        LoadedPolicy(policy.bundle, Undefined()).disclose("police", requester(), record(),
                                                          TODAY, CTX)


@pytest.mark.parametrize(
    "change",
    [{"today": 20260601}, {"today": None}, {"requester": "mash"}, {"purpose": None},
     {"requester": {"agency": "mash"}}],
)
def test_malformed_policy_input_never_allows(policy: LoadedPolicy, change) -> None:
    """Defence in depth: whatever the caller gets wrong, the library does not say yes."""
    doc = {"owner": "police", "requester": {"agency": "mash", "role": "analyst"},
           "purpose": "child_safeguarding", "stage": "research", "today": "2026-06-01"}
    doc.update(change)
    doc = {k: v for k, v in doc.items() if v is not None}
    try:
        result = policy.engine.evaluate("mash/disclosure/gate", doc)
    except PolicyError:
        return  # an evaluation error is fail-closed too
    assert result is None or result["allowed"] is False


def test_record_decisions_are_remembered_per_distinct_input(policy: LoadedPolicy) -> None:
    """Matched records that share what the restrictions look at share one decision: the
    policy is asked only about inputs it has not decided, and the answers stay per record."""
    asked: list[int] = []

    class Counting:
        def evaluate(self, entrypoint, input_doc):
            if entrypoint == "mash/disclosure/records":
                asked.append(len(input_doc["records"]))
            return policy.engine.evaluate(entrypoint, input_doc)

    counted = LoadedPolicy(policy.bundle, Counting())
    gate = counted.gate("police", requester(), TODAY)
    batch = [record(restricted="Y", markers="a"), record(restricted="N", markers="b"),
             record(restricted="Y", markers="c"), record(markers="d")]
    first = counted.disclose_all("police", requester(), gate, batch, TODAY, CTX)
    assert [d.level for d in first] == ["existence", "fields", "existence", "fields"]
    assert "restricted" in first[0].reason and first[1].reason == ""
    assert asked == [3]  # Y, N and no value: three distinct inputs for four records
    again = counted.disclose_all("police", requester(), gate,
                                 [record(restricted="N", markers="e"),
                                  record(restricted="yes")], TODAY, CTX)
    assert [d.level for d in again] == ["fields", "existence"]
    assert [r.value for r in again[0].released if r.name == "markers"] == ["e"]
    assert asked == [3, 1]  # only "yes" was new
    counted.disclose_all("police", requester("triage"), gate, [record(restricted="N")],
                         TODAY, CTX)
    assert asked == [3, 1, 1]  # another stage is another question
