"""Synthetic records for the demo agencies, each in the agency's own schema.

A small named cast makes the lookups tell a story; a background population makes the
matching honest. Everything is fictional and reproducible.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mash.synth.population import Person, nhs_number, pnc_id, population, upn

TODAY = dt.date(2026, 11, 1)


def cast() -> dict[str, Person]:
    rng = random.Random(2026)
    return {
        "leah": Person("C-leah", "Leah", "Marie", "Thompson", "F", dt.date(2014, 5, 17),
                       "LS9 8AB", "14 Beech Grove", ["LS8 2QT"], nhs_number(rng), upn(rng)),
        "tyler": Person("C-tyler", "Tyler", "", "Mason", "M", dt.date(2009, 11, 2),
                        "BD5 7HJ", "3 Mill Lane", [], nhs_number(rng), upn(rng),
                        pnc_id(rng, 2024), aliases=[("Ty", "Mason")]),
        "ruby": Person("C-ruby", "Ruby", "", "Clarke", "F", dt.date(2017, 2, 3),
                       "WF1 3LP", "88 Kirkgate", [], nhs_number(rng), upn(rng)),
        "oliver": Person("C-oliver", "Oliver", "", "Grant", "M", dt.date(2012, 9, 30),
                         "HX1 2RS", "5 Chapel Street", [], nhs_number(rng), upn(rng)),
        "darren": Person("C-darren", "Darren", "", "Thompson", "M", dt.date(1986, 7, 21),
                         "LS9 8AB", "14 Beech Grove", [], nhs_number(rng), "",
                         pnc_id(rng, 2005)),
    }


def _ddmmyyyy(d: dt.date) -> str:
    return d.strftime("%d/%m/%Y")


def _age(p: Person) -> int:
    return (TODAY - p.date_of_birth).days // 365


def police_row(p: Person, rng: random.Random) -> dict[str, Any]:
    incident = rng.choice(["Domestic incident", "Missing person", "Concern for welfare",
                           "Assault", "Antisocial behaviour", "Criminal damage"])
    when = TODAY - dt.timedelta(days=rng.randrange(5, 900))
    return {
        "person_ref": f"NCH{rng.randrange(10**6, 10**7)}",
        "forename": p.given, "middle": p.middle, "surname": p.family,
        "aka": "; ".join(f"{g} {f}" for g, f in p.aliases),
        "dob": _ddmmyyyy(p.date_of_birth), "gender": {"F": "Female", "M": "Male"}[p.sex],
        "postcode": p.postcode, "pnc": p.pnc_id,
        "last_incident_type": incident, "last_incident_date": when.isoformat(),
        "incident_summary": f"{incident} recorded; see occurrence log",
        "markers": rng.choice(["", "", "DA victim", "Vulnerable", "Missing episodes"]),
        "officer_in_case": f"DC {rng.randrange(1000, 9999)}",
        "restricted": "N",
    }


def health_row(p: Person, rng: random.Random) -> dict[str, Any]:
    return {
        "patient_id": f"H{rng.randrange(10**7, 10**8)}",
        "first_name": p.given, "last_name": p.family,
        "date_of_birth": p.date_of_birth.isoformat(), "sex": p.sex,
        "postcode": p.postcode, "nhs_number": p.nhs_number,
        "gp_practice": rng.choice(["Beeston Hill Surgery", "Harehills Medical Centre",
                                   "Kirkgate Practice", "Moorside Surgery"]),
        "cp_flag": "N",
        "last_ae_attendance": (TODAY - dt.timedelta(days=rng.randrange(1, 2000))).isoformat(),
        "safeguarding_note": "",
        "restricted": "N",
    }


def csc_row(p: Person, rng: random.Random) -> dict[str, Any]:
    return {
        "person_id": f"MOS{rng.randrange(10**5, 10**6)}",
        "given_names": f"{p.given} {p.middle}".strip(), "surname": p.family,
        "dob": p.date_of_birth.isoformat(), "gender": p.sex, "postcode": p.postcode,
        "nhs_no": p.nhs_number, "upn": p.upn,
        "case_status": rng.choice(["open", "closed", "closed"]),
        "plan_type": rng.choice(["Child in Need", "Early Help", "None"]),
        "allocated_team": rng.choice(["Leeds East", "Leeds West", "Bradford South"]),
        "social_worker": f"SW {rng.randrange(100, 999)}",
        "last_assessment_date": (TODAY - dt.timedelta(days=rng.randrange(10, 1500))).isoformat(),
    }


def education_row(p: Person, rng: random.Random) -> dict[str, Any]:
    return {
        "upn": p.upn, "pupil_forename": p.given, "pupil_surname": p.family,
        "dob": p.date_of_birth.isoformat(), "sex": p.sex, "home_postcode": p.postcode,
        "school_name": rng.choice(["Beckfield Primary", "Harehills Academy",
                                   "Kirkstall Valley Primary", "Cliffe Hill High"]),
        "year_group": str(max(0, _age(p) - 4)),
        "attendance_pct": str(rng.choice([72, 84, 88, 91, 95, 97, 99])),
        "exclusions": str(rng.choice([0, 0, 0, 1, 2])),
        "sen_status": rng.choice(["None", "None", "SEN support", "EHC plan"]),
    }


def probation_row(p: Person, rng: random.Random) -> dict[str, Any]:
    return {
        "crn": f"X{rng.randrange(10**5, 10**6)}", "first": p.given, "last": p.family,
        "dob": p.date_of_birth.isoformat(), "pnc": p.pnc_id, "postcode": p.postcode,
        "risk_level": rng.choice(["Low", "Medium", "High"]),
        "offender_manager": f"PO {rng.randrange(100, 999)}",
    }


def housing_row(p: Person, rng: random.Random) -> dict[str, Any]:
    return {
        "tenancy_ref": f"T{rng.randrange(10**5, 10**6)}", "forename": p.given,
        "surname": p.family, "dob": p.date_of_birth.isoformat(), "postcode": p.postcode,
        "tenancy_status": rng.choice(["Secure", "Introductory", "Temporary accommodation"]),
    }


def asc_row(p: Person, rng: random.Random) -> dict[str, Any]:
    return {
        "client_id": f"ASC{rng.randrange(10**5, 10**6)}", "forename": p.given,
        "surname": p.family, "dob": p.date_of_birth.isoformat(), "postcode": p.postcode,
        "nhs_number": p.nhs_number,
        "care_package": rng.choice(["Home care", "Day services", "Residential", "None"]),
        "s42_enquiry_open": rng.choice(["N", "N", "N", "Y"]),
        "named_worker": f"ASW {rng.randrange(100, 999)}",
    }


def ambulance_row(p: Person, rng: random.Random) -> dict[str, Any]:
    return {
        "incident_ref": f"YAS{rng.randrange(10**6, 10**7)}", "patient_forename": p.given,
        "patient_surname": p.family, "patient_dob": _ddmmyyyy(p.date_of_birth),
        "incident_postcode": p.postcode, "nhs_no": p.nhs_number,
        "call_category": rng.choice(["Cat 1", "Cat 2", "Cat 3", "Cat 4"]),
        "call_date": (TODAY - dt.timedelta(days=rng.randrange(1, 1000))).isoformat(),
        "safeguarding_referral": rng.choice(["N", "N", "Y"]),
    }


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _write_sqlite(path: Path, table: str, rows: list[dict[str, Any]]) -> None:
    path.unlink(missing_ok=True)
    columns = list(rows[0])
    with sqlite3.connect(path) as db:
        db.execute(f"CREATE TABLE {table} ({', '.join(f'{c} TEXT' for c in columns)})")
        db.executemany(
            f"INSERT INTO {table} VALUES ({', '.join('?' for _ in columns)})",
            [tuple(r[c] for c in columns) for r in rows])
    db.close()


def write_all(directory: Path, background: int = 3000) -> dict[str, Path]:
    """Write every agency's records; returns agency -> data file."""
    directory.mkdir(parents=True, exist_ok=True)
    people = population(background, seed=7, today=TODAY)
    c = cast()
    rng = random.Random(11)

    def pick(share: float, keep: Callable[[Person], bool] = lambda p: True) -> list[Person]:
        return [p for p in people if keep(p) and rng.random() < share]

    police = [police_row(p, rng) for p in [c["leah"], c["tyler"], c["darren"], *pick(0.25)]]
    police[0].update(markers="DA victim", last_incident_type="Domestic incident",
                     incident_summary="Present at domestic incident at home address; "
                                      "DASH risk assessed medium")
    police[2].update(markers="DA perpetrator", last_incident_type="Domestic incident")

    health = [health_row(p, rng) for p in [c["leah"], c["ruby"], c["darren"], *pick(0.9)]]
    health[0].update(cp_flag="Y", safeguarding_note="Subject to CP plan (CP-IS)")
    health[1].update(restricted="Y", safeguarding_note="Sensitive: contact named nurse")

    school_age = pick(0.95, lambda p: 4 <= _age(p) <= 18)
    csc = [csc_row(p, rng) for p in [c["leah"], c["tyler"], *pick(0.08, lambda p: _age(p) < 18)]]
    csc[0].update(case_status="open", plan_type="Child Protection", allocated_team="Leeds East")
    education = [education_row(p, rng) for p in [c["leah"], c["tyler"], *school_age]]
    education[0].update(attendance_pct="84", exclusions="0")
    probation = [probation_row(p, rng) for p in [c["darren"], *pick(0.04, lambda p: _age(p) > 18)]]
    housing = [housing_row(p, rng) for p in [c["darren"], c["leah"], *pick(0.2)]]
    asc = [asc_row(p, rng) for p in [c["darren"], *pick(0.06, lambda p: _age(p) > 18)]]
    ambulance = [ambulance_row(p, rng) for p in [c["leah"], c["darren"], *pick(0.12)]]
    ambulance[0].update(call_category="Cat 2", safeguarding_referral="Y")

    files = {
        "police": directory / "police_niche_extract.csv",
        "health": directory / "health_patients.db",
        "csc": directory / "csc_mosaic.db",
        "education": directory / "education_pupils.csv",
        "probation": directory / "probation_ndelius.csv",
        "housing": directory / "housing_tenancies.csv",
        "asc": directory / "asc_clients.db",
        "ambulance": directory / "ambulance_incidents.csv",
    }
    _write_csv(files["police"], police)
    _write_sqlite(files["health"], "patients", health)
    _write_sqlite(files["csc"], "people", csc)
    _write_csv(files["education"], education)
    _write_csv(files["probation"], probation)
    _write_csv(files["housing"], housing)
    _write_sqlite(files["asc"], "clients", asc)
    _write_csv(files["ambulance"], ambulance)
    return files
