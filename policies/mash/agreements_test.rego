# Tests for the agreement engine, run by `mash policy test` (and by the test suite).
# Each test sets its own grant index with a single `with data.grants as <local variable>`
# (rego-cpp mis-handles `with ... as <rule reference>` and chained `with`, so neither is used).
package mash.agreements_test

import rego.v1

import data.mash.agreements

entry(id, answer, rules) := json.unmarshal(json.marshal({
	"agreement_id": id,
	"roles": ["analyst"],
	"valid_from": "2026-01-01",
	"review_by": "2026-12-31",
	"expires": "2027-12-31",
	"lawful_basis": {"article_6": "6(1)(e)", "article_9": "9(2)(g)", "schedule_1": "para 18"},
	"answer": answer,
	"release": object.remove(rules, dropped_fields(rules)),
	"dropped": dropped_fields(rules),
	"withhold_when": [{"field": "restricted", "equals": ["Y"], "reason": "restricted record"}],
}))

# The index (built with the bundle) keeps dropped fields apart from the release rules.
dropped_fields(rules) := sort([f |
	rule := rules[f]
	rule.transform == "drop"
])

release := {
	"markers": {"transform": "keep", "params": {}},
	"dob": {"transform": "year", "params": {}},
	"officer": {"transform": "drop", "params": {}},
}

index := {"police": {"mash": {"child": {
	"research": [entry("a-police", "known", release)],
	"triage": [entry("a-police", "existence", {})],
}}}}

# Inputs are round-tripped through JSON so that they look exactly like a real input document
# (rego-cpp keeps the quotes of string literals passed as function arguments in sprintf).
req(stage, role, today) := json.unmarshal(json.marshal({
	"requester": {"agency": "mash", "role": role},
	"purpose": "child",
	"stage": stage,
	"today": today,
}))

owner := "police"

decide(stage, role, today) := agreements.gate(owner, inp, cands, ok) if {
	inp := req(stage, role, today)
	cands := agreements.covering(owner, inp)
	ok := agreements.usable(cands, inp)
}

test_grant_covers_requester_role_purpose_stage if {
	fixture := index
	d := decide("research", "analyst", "2026-06-01") with data.grants as fixture
	d.allowed
	d.agreement_id == "a-police"
	d.answer == "known"
	d.warnings == []
}

test_no_grant_for_another_role if {
	fixture := index
	d := decide("research", "supervisor", "2026-06-01") with data.grants as fixture
	not d.allowed
	d.refusal == "no_agreement"
	d.reasons == ["no agreement lets mash (supervisor) ask police for child at stage research"]
}

test_no_grant_for_another_stage if {
	fixture := index
	d := decide("s47", "analyst", "2026-06-01") with data.grants as fixture
	d.refusal == "no_agreement"
}

test_expired_agreement_fails_closed if {
	fixture := index
	d := decide("research", "analyst", "2028-01-01") with data.grants as fixture
	not d.allowed
	d.refusal == "policy_error"
	d.reasons == ["agreement a-police expired on 2027-12-31"]
}

test_not_yet_in_force if {
	fixture := index
	d := decide("research", "analyst", "2025-12-31") with data.grants as fixture
	d.reasons == ["agreement a-police is not in force until 2026-01-01"]
}

test_review_overdue_warns_but_shares if {
	fixture := index
	d := decide("research", "analyst", "2027-03-01") with data.grants as fixture
	d.allowed
	d.warnings == ["agreement a-police was due for review on 2026-12-31"]
}

no_basis := {"police": {"mash": {"child": {"research": [object.union(
	entry("b-police", "known", release),
	{"lawful_basis": {"article_6": "6(1)(e)"}},
)]}}}}

part_3 := {"police": {"mash": {"child": {"research": [object.union(
	entry("c-police", "known", release),
	{"lawful_basis": {"part_3": "DPA 2018 Part 3"}},
)]}}}}

test_incomplete_lawful_basis_fails_closed if {
	fixture := no_basis
	d := decide("research", "analyst", "2026-06-01") with data.grants as fixture
	d.refusal == "policy_error"
	d.reasons == ["agreement b-police gives no complete lawful basis for child"]
}

test_part_3_is_a_complete_basis if {
	fixture := part_3
	d := decide("research", "analyst", "2026-06-01") with data.grants as fixture
	d.allowed
}

c_research := entry("a-police", "known", release)

test_allowed_gate_carries_the_stage_rules if {
	fixture := index
	d := decide("research", "analyst", "2026-06-01") with data.grants as fixture
	d.rules.release == {"markers": {"transform": "keep", "params": {}}, "dob": {"transform": "year", "params": {}}}
	d.rules.dropped == ["officer"]
	d.rules.not_released_reason == "not released at research under a-police"
	d.rules.dropped_reason == "dropped by a-police"
}

test_an_unrestricted_record_shows_its_fields if {
	r := agreements.record_level(c_research, req("research", "analyst", "2026-06-01"), {"values": {"restricted": "N"}})
	r == {"level": "fields", "reasons": []}
}

test_restricted_record_is_existence_only if {
	r := agreements.record_level(c_research, req("research", "analyst", "2026-06-01"), {"values": {"restricted": "Y"}})
	r.level == "existence"
	r.reasons == ["restricted record"]
}

test_a_record_without_the_flag_is_not_restricted if {
	r := agreements.record_level(c_research, req("research", "analyst", "2026-06-01"), {"values": {}})
	r.level == "fields"
}

test_existence_stage_releases_nothing if {
	r := agreements.record_level(entry("a-police", "existence", {}), req("triage", "analyst", "2026-06-01"), {"values": {}})
	r.level == "existence"
	r.reasons == ["the agreement allows no detail at triage"]
}

two := {"police": {"mash": {"child": {"research": [
	object.union(entry("a-old", "known", release), {"expires": "2026-03-01"}),
	entry("b-new", "known", {}),
]}}}}

test_first_usable_grant_in_id_order_wins if {
	fixture := two
	d := decide("research", "analyst", "2026-06-01") with data.grants as fixture
	d.agreement_id == "b-new"
}

test_a_missing_date_fails_closed if {
	fixture := index
	inp := json.unmarshal(json.marshal({
		"requester": {"agency": "mash", "role": "analyst"},
		"purpose": "child",
		"stage": "research",
	}))
	cands := agreements.covering(owner, inp) with data.grants as fixture
	count(cands) == 1
	ok := agreements.usable(cands, inp)
	count(ok) == 0
	d := agreements.gate(owner, inp, cands, ok)
	not d.allowed
	d.refusal == "policy_error"
}

test_a_date_that_is_not_text_fails_closed if {
	fixture := index
	d := decide("research", "analyst", 20260601) with data.grants as fixture
	not d.allowed
}
