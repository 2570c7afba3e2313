"""`mash policy explain`: what one agency releases to whom, per purpose and stage, and why."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from mash.policy import transforms
from mash.policy.decisions import LoadedPolicy
from mash.policy.model import Gate, Requester


@dataclass(frozen=True)
class Row:
    field: str
    released: bool
    transform: str
    why: str
    params: str = ""  # the transform's parameters in words (transforms.describe)


@dataclass(frozen=True)
class Explanation:
    gate: Gate
    answer: str  # what a match would produce: known, withheld, or not_checked
    rows: list[Row]
    lawful_basis: dict[str, str]
    restrictions: list[str]


def explain(policy: LoadedPolicy, owner: str, requester: Requester, today: dt.date,
            fields: set[str]) -> Explanation:
    gate = policy.gate(owner, requester, today)
    if not gate.allowed:
        return Explanation(gate, "not_checked",
                           [Row(f, False, "", gate.reason) for f in sorted(fields)], {}, [])
    agreement = policy.bundle.agreements[gate.agreement_id]
    basis: dict[str, str] = {}
    restrictions: list[str] = []
    for grant in agreement["grants"]:
        if grant["owner"] == owner and grant["requester"] == requester.agency:
            basis = grant["purposes"].get(requester.purpose, {}).get("lawful_basis", {})
            restrictions = [f"records with {c['field']} = {'/'.join(c['equals'])} are withheld "
                            f"whole: {c['reason']}" for c in grant["withhold_when"]]
    rules = gate.rules
    assert rules is not None
    if gate.answer == "existence":
        reason = f"the agreement allows no detail at {requester.stage}"
        return Explanation(gate, "withheld", [Row(f, False, "", reason) for f in sorted(fields)],
                           basis, restrictions)
    rows = []
    for name in sorted(fields | set(rules.release)):
        if name in rules.release:
            transform, params = rules.release[name]
            rows.append(Row(name, True, transform,
                            f"released under {gate.agreement_id} for {requester.purpose} at "
                            f"{requester.stage}", transforms.describe(transform, params)))
        elif name in rules.dropped:
            rows.append(Row(name, False, "drop", rules.dropped_reason))
        else:
            rows.append(Row(name, False, "", rules.not_released_reason))
    return Explanation(gate, "known", sorted(rows, key=lambda r: (not r.released, r.field)),
                       basis, restrictions)


def headline(result: Explanation) -> str:
    """What an analyst sees from this agency, in the same words for every agency.

    `answer: known` answers KNOWN (with the released fields, possibly none, and the contact
    route) or NOT_KNOWN; `answer: existence` answers WITHHELD when a record matches ("holds
    something: contact us") or NOT_KNOWN. A record withheld whole by a restriction is
    WITHHELD under either.
    """
    if result.answer == "not_checked":
        return f"is NOT asked (NOT_CHECKED): {result.gate.reason}"
    if result.answer == "withheld":
        return ("answers WITHHELD when it holds the person (it may say only that it holds "
                "something: contact it), NOT_KNOWN when it does not (answer: existence)")
    if not any(r.released for r in result.rows):
        return ("answers KNOWN when it holds the person, with no field at this stage (only its "
                "contact route), NOT_KNOWN when it does not (answer: known)")
    return ("answers KNOWN when it holds the person, releasing the fields below, NOT_KNOWN when "
            "it does not (answer: known)")
