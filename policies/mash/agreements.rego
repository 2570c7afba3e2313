# The agreement engine's helpers: which grant of which agreement covers a request, whether it
# may be used today, and what it releases. The routing (broker) and disclosure (agent)
# packages evaluate them once per query through rules, which Rego caches.
#
# data.agreements is compiled from policies/mous/*.yaml by `mash policy sign`.
# Every decision says why: refusals and withheld fields carry a sentence a person can act on.
package mash.agreements

import rego.v1

# The grants covering owner <- requester/role/purpose/stage, in agreement id order.
# data.grants indexes the agreements' grants by owner, requester, purpose and stage (built with
# the bundle) so that a decision reads a handful of entries, not every agreement.
covering(owner, inp) := [c |
	some c in object.get(data.grants, [owner, inp.requester.agency, inp.purpose, inp.stage], [])
	inp.requester.role in c.roles
]

# Why a covering grant cannot be used today ("" when it can).
date_problem(c, today) := sprintf("agreement %s is not in force until %s", [c.agreement_id, c.valid_from]) if {
	today < c.valid_from
} else := sprintf("agreement %s expired on %s", [c.agreement_id, c.expires]) if {
	today > c.expires
} else := ""

# UK GDPR Art 6 with Art 9 and a DPA 2018 Schedule 1 condition, or DPA 2018 Part 3 (police).
complete_basis(b) if {
	b.part_3 != ""
}

complete_basis(b) if {
	b.article_6 != ""
	b.article_9 != ""
	b.schedule_1 != ""
}

basis_problem(c, inp) := "" if {
	complete_basis(c.lawful_basis)
} else := sprintf("agreement %s gives no complete lawful basis for %s", [c.agreement_id, inp.purpose])

problems(c, inp) := {m |
	some m in [date_problem(c, inp.today), basis_problem(c, inp)]
	m != ""
}

# Usable means positively in force and lawful: anything undefined (a missing date, a
# malformed input) leaves a grant unusable, so the policy fails closed by construction.
in_force(c, today) if {
	is_string(today)
	today >= c.valid_from
	today <= c.expires
}

usable(cands, inp) := [c |
	some c in cands
	in_force(c, inp.today)
	complete_basis(c.lawful_basis)
]

warnings(c, inp) := [m |
	inp.today > c.review_by
	m := sprintf("agreement %s was due for review on %s", [c.agreement_id, c.review_by])
]

# Note on style: rego-cpp (regopy 1.5) has mis-evaluated one-line comprehensions whose body
# uses `;` with `not`, and refuses `some k, v in` inside array comprehensions; so every
# comprehension here has a multi-line body, and every rule is covered by the tests in
# policies/mash/*_test.rego and tests/test_policy_*.py.

found_problems(cands, inp) := sort([m |
	some c in cands
	some m in problems(c, inp)
])

all_problems(cands, inp) := found if {
	found := found_problems(cands, inp)
	count(found) > 0
} else := ["the policy could not judge the agreements for this request (incomplete input)"]

# May the requester ask this owner at all, given the covering and usable grants?
gate(owner, inp, cands, ok) := {
	"allowed": false,
	"refusal": "no_agreement",
	"agreement_id": "",
	"answer": "",
	"reasons": [sprintf(
		"no agreement lets %s (%s) ask %s for %s at stage %s",
		[inp.requester.agency, inp.requester.role, owner, inp.purpose, inp.stage],
	)],
	"warnings": [],
} if {
	count(cands) == 0
} else := {
	"allowed": false,
	"refusal": "policy_error",
	"agreement_id": "",
	"answer": "",
	"reasons": all_problems(cands, inp),
	"warnings": [],
} if {
	count(ok) == 0
} else := {
	"allowed": true,
	"refusal": "",
	"agreement_id": ok[0].agreement_id,
	"answer": ok[0].answer,
	"reasons": [],
	"warnings": warnings(ok[0], inp),
	"rules": stage_rules(ok[0], inp),
}

# What the stage releases, decided once per query: the usable grant's release rules
# (field -> transform), the fields it drops on purpose, and the reason for every other field.
stage_rules(c, inp) := {
	"release": c.release,
	"dropped": c.dropped,
	"not_released_reason": sprintf("not released at %s under %s", [inp.stage, c.agreement_id]),
	"dropped_reason": sprintf("dropped by %s", [c.agreement_id]),
}

# Record-level restrictions: a matched record the grant says to withhold whole.
restrictions(c, record) := {r |
	some cond in c.withhold_when
	record.values[cond.field] in cond.equals
	r := cond.reason
}

stage_reasons(c, inp) := [m |
	c.answer == "existence"
	m := sprintf("the agreement allows no detail at %s", [inp.stage])
]

existence_reasons(c, inp, record) := sort(array.concat(
	[r |
		some r in restrictions(c, record)
	],
	stage_reasons(c, inp),
))

# One matched record: existence only (with the reasons), or its fields under the stage rules.
record_level(c, inp, record) := {"level": "existence", "reasons": reasons} if {
	reasons := existence_reasons(c, inp, record)
	count(reasons) > 0
} else := {"level": "fields", "reasons": []}
