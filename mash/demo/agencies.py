"""The demo agencies: how each maps its own schema onto canonical person fields.

What each releases to whom is not here: it is in the agreements, policies/mous/*.yaml.
"""

from __future__ import annotations

from typing import Any

AGENCIES: dict[str, dict[str, Any]] = {
    "police": {
        "name": "West Yorkshire Police (synthetic)",
        "contact_route": "Police MASH desk, 01632 960001, mash.police@example.org",
        "source": {
            "name": "niche_rms", "type": "csv", "file": "police_niche_extract.csv",
            "date_formats": ["%d/%m/%Y", "%Y-%m-%d"],
            "date_fields": ["last_incident_date"],
            "mapping": {"record_id": "person_ref", "given_name": "forename",
                        "middle_names": "middle", "family_name": "surname", "aliases": "aka",
                        "date_of_birth": "dob", "sex": "gender", "postcode": "postcode",
                        "pnc_id": "pnc"},
            "fields": {"last_incident_type": "last_incident_type",
                       "last_incident_date": "last_incident_date",
                       "incident_summary": "incident_summary", "markers": "markers",
                       "officer_in_case": "officer_in_case", "restricted": "restricted"},
        },
    },
    "health": {
        "name": "Leeds Health Partnership (synthetic)",
        "contact_route": "Named nurse for safeguarding, 01632 960002",
        "source": {
            "name": "patient_index", "type": "sqlite", "file": "health_patients.db",
            "table": "patients",
            "mapping": {"record_id": "patient_id", "given_name": "first_name",
                        "family_name": "last_name", "date_of_birth": "date_of_birth",
                        "sex": "sex", "postcode": "postcode", "nhs_number": "nhs_number"},
            "fields": {"gp_practice": "gp_practice", "cp_flag": "cp_flag",
                       "last_ae_attendance": "last_ae_attendance",
                       "safeguarding_note": "safeguarding_note", "restricted": "restricted"},
            "date_fields": ["last_ae_attendance"],
        },
        "require_any_of": [["nhs_number"], ["name", "date_of_birth"]],
    },
    "csc": {
        "name": "Children's Social Care (synthetic)",
        "contact_route": "Duty and Advice team, 01632 960003",
        "source": {
            "name": "mosaic", "type": "sqlite", "file": "csc_mosaic.db", "table": "people",
            "mapping": {"record_id": "person_id", "given_name": "given_names",
                        "family_name": "surname", "date_of_birth": "dob", "sex": "gender",
                        "postcode": "postcode", "nhs_number": "nhs_no", "upn": "upn"},
            "fields": {"case_status": "case_status", "plan_type": "plan_type",
                       "allocated_team": "allocated_team", "social_worker": "social_worker",
                       "last_assessment_date": "last_assessment_date"},
            "date_fields": ["last_assessment_date"],
        },
    },
    "education": {
        "name": "Education Services (synthetic)",
        "contact_route": "Education safeguarding officer, 01632 960004",
        "source": {
            "name": "school_census", "type": "csv", "file": "education_pupils.csv",
            "mapping": {"record_id": "upn", "upn": "upn", "given_name": "pupil_forename",
                        "family_name": "pupil_surname", "date_of_birth": "dob", "sex": "sex",
                        "postcode": "home_postcode"},
            "fields": {"school_name": "school_name", "year_group": "year_group",
                       "attendance_pct": "attendance_pct", "exclusions": "exclusions",
                       "sen_status": "sen_status"},
        },
    },
    "probation": {
        "name": "Probation Service (synthetic)",
        "contact_route": "Probation MASH liaison, 01632 960005",
        "source": {
            "name": "ndelius", "type": "csv", "file": "probation_ndelius.csv",
            "mapping": {"record_id": "crn", "given_name": "first", "family_name": "last",
                        "date_of_birth": "dob", "pnc_id": "pnc", "postcode": "postcode"},
            "fields": {"risk_level": "risk_level", "offender_manager": "offender_manager"},
        },
    },
    "housing": {
        "name": "Housing Services (synthetic)",
        "contact_route": "Housing safeguarding lead, 01632 960006",
        "source": {
            "name": "tenancies", "type": "csv", "file": "housing_tenancies.csv",
            "mapping": {"record_id": "tenancy_ref", "given_name": "forename",
                        "family_name": "surname", "date_of_birth": "dob",
                        "postcode": "postcode"},
            "fields": {"tenancy_status": "tenancy_status"},
        },
    },
    "asc": {
        "name": "Adult Social Care (synthetic)",
        "contact_route": "Adult safeguarding hub, 01632 960007",
        "source": {
            "name": "care_records", "type": "sqlite", "file": "asc_clients.db",
            "table": "clients",
            "mapping": {"record_id": "client_id", "given_name": "forename",
                        "family_name": "surname", "date_of_birth": "dob",
                        "postcode": "postcode", "nhs_number": "nhs_number"},
            "fields": {"care_package": "care_package", "s42_enquiry_open": "s42_enquiry_open",
                       "named_worker": "named_worker"},
        },
    },
    "ambulance": {
        "name": "Yorkshire Ambulance Service (synthetic)",
        "contact_route": "Ambulance safeguarding team, 01632 960008",
        "source": {
            "name": "cad", "type": "csv", "file": "ambulance_incidents.csv",
            "date_formats": ["%d/%m/%Y", "%Y-%m-%d"],
            "date_fields": ["call_date"],
            "mapping": {"record_id": "incident_ref", "given_name": "patient_forename",
                        "family_name": "patient_surname", "date_of_birth": "patient_dob",
                        "postcode": "incident_postcode", "nhs_number": "nhs_no"},
            "fields": {"call_category": "call_category", "call_date": "call_date",
                       "safeguarding_referral": "safeguarding_referral"},
        },
    },
}
