"""`mash policy test`: the Rego library's own `test_` rules, and IG leads' table cases.

A table case is plain YAML an IG lead can read and write (policies/tests/*.yaml):

    - name: police say only "known" at triage
      owner: police
      requester: mash
      role: analyst
      purpose: child_safeguarding
      stage: triage
      today: 2026-06-01
      record: {markers: DA victim, incident_summary: "Assault, 2025"}
      expect:
        answer: known          # known | withheld | not_checked
        released: {}           # exactly these fields, with their values after transforms
        withheld: [markers]    # at least these fields are withheld
        reason: triage         # (withheld / not_checked) the reason mentions this

Each case runs through the same code path as an agent: the gate, the record decision, and
the transforms.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mash.errors import ConfigError
from mash.policy import transforms
from mash.policy.bundle import LIBRARY_DIR, Bundle
from mash.policy.decisions import LoadedPolicy
from mash.policy.errors import AgreementError, PolicyError
from mash.policy.model import Requester
from mash.records import PersonRecord
from mash.yamlfile import read_yaml

TEST_RULE = re.compile(r"^(test_\w+)\s+if\b", re.MULTILINE)
PACKAGE = re.compile(r"^package\s+([\w.]+)", re.MULTILINE)


@dataclass(frozen=True)
class Result:
    suite: str
    name: str
    passed: bool
    detail: str = ""


def run_rego_tests(src: Path, bundle: Bundle) -> list[Result]:
    """Evaluate every `test_` rule of policies/mash/*_test.rego against the library."""
    from regopy import Interpreter, RegoError

    results = []
    for path in sorted((src / LIBRARY_DIR).glob("*_test.rego")):
        text = path.read_text(encoding="utf-8")
        package = PACKAGE.search(text)
        if package is None:
            results.append(Result(path.name, "(file)", False, "no package declaration"))
            continue
        rego = Interpreter()
        rego.strict_built_in_errors = True
        try:
            for name, source in sorted(bundle.modules.items()):
                rego.add_module(name, source)
            rego.add_module(path.name, text)
            rego.add_data_json(json.dumps(bundle.data()))
        except RegoError as exc:
            results.append(Result(path.name, "(compile)", False, str(exc)[:300]))
            continue
        for rule in TEST_RULE.findall(text):
            try:
                output = rego.query(f"x := data.{package[1]}.{rule}")
                passed = output.ok() and bool(output.results) and \
                    output.results[0].bindings.get("x") is True
                detail = "" if passed else ("failed" if output.ok() else str(output)[:300])
            except RegoError as exc:
                passed, detail = False, str(exc)[:300]
            results.append(Result(path.name, rule, passed, detail))
    return results


def _date(value: Any, default: dt.date) -> dt.date:
    if value is None:
        return default
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def run_case(policy: LoadedPolicy, case: dict[str, Any], context: transforms.TransformContext,
             default_today: dt.date) -> tuple[bool, str]:
    """(passed, what happened) for one table case."""
    try:
        requester = Requester(str(case["requester"]), str(case.get("role", "analyst")),
                              str(case["purpose"]), str(case["stage"]))
        owner, expect = str(case["owner"]), dict(case["expect"])
        record_values = {str(k): str(v) for k, v in (case.get("record") or {}).items()}
        today = _date(case.get("today"), default_today)
    except (KeyError, TypeError, ValueError) as exc:
        return False, f"the case is malformed: {exc}"
    wanted = str(expect.get("answer", ""))
    if wanted not in ("known", "withheld", "not_checked"):
        return False, "expect.answer must be known, withheld or not_checked"
    released: dict[str, str | None]
    withheld: dict[str, str]
    try:
        gate = policy.gate(owner, requester, today)
        if not gate.allowed:
            got, reason, released, withheld = "not_checked", gate.reason, {}, {}
        else:
            record = PersonRecord("case", "case", (), None, "", (), {}, record_values)
            decision = policy.disclose(owner, requester, record, today, context)
            if decision.level == "existence":
                got, reason, released, withheld = "withheld", decision.reason, {}, {}
            else:
                got, reason = "known", ""
                released = {r.name: r.value for r in decision.released}
                withheld = {w.name: w.reason for w in decision.withheld}
    except PolicyError as exc:
        got, reason, released, withheld = "not_checked", str(exc), {}, {}
    problems = []
    if got != wanted:
        problems.append(f"answer {got} (expected {wanted})" + (f": {reason}" if reason else ""))
    if "released" in expect:
        expected = {str(k): (None if v is None else str(v))
                    for k, v in (expect["released"] or {}).items()}
        if released != expected:
            problems.append(f"released {released} (expected {expected})")
    for name in expect.get("withheld") or []:
        if name not in withheld:
            problems.append(f"{name} was not withheld")
    if "reason" in expect and str(expect["reason"]).lower() not in reason.lower():
        problems.append(f"reason {reason!r} does not mention {expect['reason']!r}")
    return (not problems), "; ".join(problems) or got


def _cases(src: Path) -> Iterator[tuple[Path, str, Any]]:
    """(file, name, case) for every table case under src/tests."""
    for path in sorted((src / "tests").glob("*.yaml")):
        try:
            cases = read_yaml(path) or []
        except ConfigError as exc:
            raise AgreementError(str(exc)) from None
        if not isinstance(cases, list):
            raise AgreementError(f"{path}: expected a list of cases")
        for i, case in enumerate(cases):
            name = str(case.get("name", f"case {i + 1}")) if isinstance(case, dict) else str(i)
            yield path, name, case


def run_cases(src: Path, policy: LoadedPolicy, hmac_key: bytes = b"t" * 32,
              today: dt.date | None = None) -> list[Result]:
    results = []
    context = transforms.TransformContext(hmac_key=hmac_key, today=today)
    for path, name, case in _cases(src):
        if not isinstance(case, dict):
            results.append(Result(path.name, name, False, "a case must be a mapping"))
            continue
        passed, detail = run_case(policy, case, context, today or dt.date.today())
        results.append(Result(path.name, name, passed, detail))
    return results


@dataclass(frozen=True)
class Coverage:
    """What the agreements grant that no table case exercises."""

    grants: list[str]  # "agreement: owner -> requester for purpose"
    stages: list[str]  # "... at stage"
    fields: list[str]  # "... at stage: field"
    exercised: int  # (agreement, owner, requester, purpose, stage) cells some case reaches


def coverage(src: Path, policy: LoadedPolicy, today: dt.date | None = None) -> Coverage:
    """Grants, stages and released fields no case exercises.

    A case exercises the stage of the agreement the policy itself chooses for it (the gate, as
    on the case's date), and a released field when its record holds that field or its
    expectation names it.
    """
    stages_hit: set[tuple[str, ...]] = set()
    fields_hit: set[tuple[str, ...]] = set()
    for _path, _name, case in _cases(src):
        if not isinstance(case, dict):
            continue
        try:
            who = Requester(str(case["requester"]), str(case.get("role", "analyst")),
                            str(case["purpose"]), str(case["stage"]))
            owner = str(case["owner"])
            on = _date(case.get("today"), today or dt.date.today())
            gate = policy.gate(owner, who, on)
        except (KeyError, TypeError, ValueError, PolicyError):
            continue  # a malformed case fails in run_cases; it exercises nothing
        if not gate.allowed:
            continue
        stage = (gate.agreement_id, owner, who.agency, who.purpose, who.stage)
        stages_hit.add(stage)
        given = case.get("expect")
        expect: dict[str, Any] = given if isinstance(given, dict) else {}
        named = set(case.get("record") or {}) | set(expect.get("released") or {}) \
            | set(expect.get("withheld") or [])
        fields_hit |= {(*stage, str(f)) for f in named}
    grants, stages, fields = [], [], []
    for aid, agreement in sorted(policy.bundle.agreements.items()):
        for g in agreement["grants"]:
            for purpose, spec in sorted(g["purposes"].items()):
                grant = f"{aid}: {g['owner']} -> {g['requester']} for {purpose}"
                keys = [(aid, g["owner"], g["requester"], purpose, s) for s in spec["stages"]]
                if not any(k in stages_hit for k in keys):
                    grants.append(grant)
                    continue
                for key in keys:
                    rules = spec["stages"][key[-1]]
                    if key not in stages_hit:
                        stages.append(f"{grant} at {key[-1]}")
                        continue
                    fields += [f"{grant} at {key[-1]}: {f}" for f, r in
                               sorted(rules["release"].items())
                               if r["transform"] != "drop" and (*key, f) not in fields_hit]
    return Coverage(grants, stages, fields, len(stages_hit))
