"""Policy bundles: the Rego library and the compiled agreements in one signed file.

A bundle is canonical JSON. Its revision is a hash of its content, so the same policies
always give the same revision and every answer can name exactly the rules it was decided by.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mash.policy.agreements import Federation, load_all
from mash.policy.errors import AgreementError

FORMAT = "mash-policy-bundle/1"
LIBRARY_DIR = "mash"


@dataclass(frozen=True)
class Bundle:
    revision: str
    modules: dict[str, str]  # relative path -> Rego source
    federation: dict[str, Any]
    agreements: dict[str, dict[str, Any]]  # id -> compiled agreement
    built_at: str = ""

    def data(self) -> dict[str, Any]:
        """The base document the Rego library reads."""
        return {"agreements": self.agreements, "federation": self.federation,
                "grants": grant_index(self.agreements)}

    def to_json(self) -> bytes:
        return json.dumps({
            "format": FORMAT, "revision": self.revision, "built_at": self.built_at,
            "modules": self.modules, "federation": self.federation,
            "agreements": self.agreements,
        }, sort_keys=True, indent=1).encode()

    def condition_fields(self, owner: str) -> set[str]:
        """Fields whose values the owner's record-level restrictions look at."""
        return {c["field"] for a in self.agreements.values() for g in a["grants"]
                if g["owner"] == owner for c in g["withhold_when"]}

    def released_fields(self, owner: str) -> set[str]:
        return {f for a in self.agreements.values() for g in a["grants"] if g["owner"] == owner
                for p in g["purposes"].values() for s in p["stages"].values()
                for f in s["release"]}

    def retention_days(self) -> dict[str, int]:
        return {i: int(a["retention_days"]) for i, a in self.agreements.items()}


def grant_index(agreements: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """grants[owner][requester][purpose][stage] -> entries in agreement id order.

    A reshaping of the agreements, nothing more: every rule about them lives in Rego. It lets
    one decision read a few entries instead of walking every agreement.
    """
    index: dict[str, Any] = {}
    for agreement_id in sorted(agreements):
        a = agreements[agreement_id]
        for g in a["grants"]:
            for purpose, p in g["purposes"].items():
                for stage, spec in p["stages"].items():
                    entries = (index.setdefault(g["owner"], {}).setdefault(g["requester"], {})
                               .setdefault(purpose, {}).setdefault(stage, []))
                    entries.append({
                        "agreement_id": agreement_id, "roles": g["roles"],
                        "valid_from": a["valid_from"], "review_by": a["review_by"],
                        "expires": a["expires"], "lawful_basis": p["lawful_basis"],
                        "answer": spec["answer"],
                        "release": {f: r for f, r in spec["release"].items()
                                    if r["transform"] != "drop"},
                        "dropped": sorted(f for f, r in spec["release"].items()
                                          if r["transform"] == "drop"),
                        "withhold_when": g["withhold_when"],
                    })
    return index


def _revision(modules: dict[str, str], federation: dict[str, Any],
              agreements: dict[str, Any]) -> str:
    content = json.dumps([modules, federation, agreements], sort_keys=True).encode()
    return hashlib.sha256(content).hexdigest()[:16]


def library_modules(src: Path) -> dict[str, str]:
    """The Rego library, tests excluded (they are run by `mash policy test`, not shipped)."""
    modules = {}
    for path in sorted((src / LIBRARY_DIR).glob("*.rego")):
        if path.stem.endswith("_test"):
            continue
        modules[f"{LIBRARY_DIR}/{path.name}"] = path.read_text(encoding="utf-8")
    if not modules:
        raise AgreementError(f"{src / LIBRARY_DIR}: no Rego library found")
    return modules


def build(src: Path, now: dt.datetime | None = None) -> Bundle:
    """Validate every agreement under `src` and assemble a bundle (not yet signed)."""
    federation, agreements = load_all(src)
    return assemble(library_modules(src), federation, {a.id: a.data for a in agreements}, now)


def assemble(modules: dict[str, str], federation: Federation,
             agreements: dict[str, dict[str, Any]], now: dt.datetime | None = None) -> Bundle:
    fed = federation.data()
    return Bundle(
        revision=_revision(modules, fed, agreements),
        modules=modules,
        federation=fed,
        agreements=agreements,
        built_at=(now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"),
    )


def parse(raw: bytes, where: str = "bundle") -> Bundle:
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise AgreementError(f"{where}: not a policy bundle (invalid JSON)") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise AgreementError(f"{where}: not a {FORMAT} bundle")
    try:
        bundle = Bundle(revision=str(doc["revision"]), modules=dict(doc["modules"]),
                        federation=dict(doc["federation"]), agreements=dict(doc["agreements"]),
                        built_at=str(doc.get("built_at", "")))
    except (KeyError, TypeError, ValueError):
        raise AgreementError(f"{where}: bundle is missing parts") from None
    if _revision(bundle.modules, bundle.federation, bundle.agreements) != bundle.revision:
        raise AgreementError(f"{where}: content does not match its revision")
    return bundle
