"""Policy bundles: the Rego library and the compiled agreements in one signed file.

A bundle is canonical JSON. Its revision is a hash of its content, so the same policies
always give the same revision and every answer can name exactly the rules it was decided by.
Its serial grows with every bundle signed (by default the signing time in milliseconds, or one
more than the bundle it replaces): brokers and agents refuse a bundle older than the newest
they accepted (mash.policy.serial), so a genuinely signed but superseded, more permissive
bundle cannot be copied back into place. The serial is inside the signed file.
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

FORMAT = "mash-policy-bundle/2"  # 2: the serial
LIBRARY_DIR = "mash"


@dataclass(frozen=True)
class Bundle:
    revision: str
    modules: dict[str, str]  # relative path -> Rego source
    federation: dict[str, Any]
    agreements: dict[str, dict[str, Any]]  # id -> compiled agreement
    built_at: str = ""
    serial: int = 0  # grows with every bundle signed; see the module docstring
    # What each signing changed (mash policy sign): outside the revision, inside the signature.
    change_log: tuple[dict[str, Any], ...] = ()

    def data(self) -> dict[str, Any]:
        """The base document the Rego library reads."""
        return {"agreements": self.agreements, "federation": self.federation,
                "grants": grant_index(self.agreements)}

    def to_json(self) -> bytes:
        return json.dumps({
            "format": FORMAT, "revision": self.revision, "built_at": self.built_at,
            "serial": self.serial,
            "modules": self.modules, "federation": self.federation,
            "agreements": self.agreements, "change_log": list(self.change_log),
        }, sort_keys=True, indent=1).encode()

    def condition_fields(self, owner: str) -> set[str]:
        """Fields whose values the owner's record-level restrictions look at."""
        return {c["field"] for a in self.agreements.values() for g in a["grants"]
                if g["owner"] == owner for c in g["withhold_when"]}

    def released_fields(self, owner: str) -> set[str]:
        return {f for a in self.agreements.values() for g in a["grants"] if g["owner"] == owner
                for p in g["purposes"].values() for s in p["stages"].values()
                for f in s["release"]}

    def registered(self) -> dict[str, str] | None:
        """The agencies this bundle registers with the brokers (id -> name), or None when it
        names none (the broker's own `agencies:` list applies)."""
        agents = self.federation.get("agents")
        if agents is None:
            return None
        names = self.federation.get("agencies", {})
        return {str(a): str(names.get(a, a)) for a in agents}

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


def next_serial(previous: int = 0, now: dt.datetime | None = None) -> int:
    """The serial for a new bundle: the time in milliseconds, or one more than `previous`."""
    moment = now or dt.datetime.now(dt.UTC)
    return max(int(moment.timestamp() * 1000), previous + 1)


def build(src: Path, now: dt.datetime | None = None, serial: int | None = None) -> Bundle:
    """Validate every agreement under `src` and assemble a bundle (not yet signed)."""
    federation, agreements = load_all(src)
    return assemble(library_modules(src), federation, {a.id: a.data for a in agreements}, now,
                    serial)


def assemble(modules: dict[str, str], federation: Federation,
             agreements: dict[str, dict[str, Any]], now: dt.datetime | None = None,
             serial: int | None = None) -> Bundle:
    fed = federation.data()
    now = now or dt.datetime.now(dt.UTC)
    return Bundle(
        revision=_revision(modules, fed, agreements),
        modules=modules,
        federation=fed,
        agreements=agreements,
        built_at=now.isoformat(timespec="seconds"),
        serial=next_serial(0, now) if serial is None else serial,
    )


def serial_of(path: Path) -> int:
    """The serial of the bundle file at `path` (0 if there is none, or it is unreadable)."""
    try:
        doc = json.loads(path.read_bytes())
        return int(doc.get("serial", 0)) if isinstance(doc, dict) else 0
    except (OSError, ValueError, TypeError):
        return 0


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
                        built_at=str(doc.get("built_at", "")), serial=doc["serial"],
                        change_log=tuple(dict(e) for e in doc.get("change_log", [])))
    except (KeyError, TypeError, ValueError):
        raise AgreementError(f"{where}: bundle is missing parts") from None
    if isinstance(bundle.serial, bool) or not isinstance(bundle.serial, int) \
            or bundle.serial < 1:
        raise AgreementError(f"{where}: the bundle's serial must be a positive whole number")
    if _revision(bundle.modules, bundle.federation, bundle.agreements) != bundle.revision:
        raise AgreementError(f"{where}: content does not match its revision")
    return bundle
