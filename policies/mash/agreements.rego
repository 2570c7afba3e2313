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

usable(cands, inp) := [c |
	some c in cands
	count(problems(c, inp)) == 0
]

warnings(c, inp) := [m |
	inp.today > c.review_by
	m := sprintf("agreement %s was due for review on %s", [c.agreement_id, c.review_by])
]

# Note on style: rego-cpp has mis-evaluated one-line comprehensions whose body uses `;`
# with `not`; every comprehension here has a multi-line body, and every rule is covered
# by the tests in policies/mash/*_test.rego and tests/test_policy_*.py.

all_problems(cands, inp) := sort([m |
	some c in cands
	some m in problems(c, inp)
])

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

released(c, record) := {f: rule |
	some f in record.fields
	rule := c.release[f]
	rule.transform != "drop"
}

unreleased(c, f) if {
	not c.release[f]
}

dropped(c, f) if {
	c.release[f].transform == "drop"
}

not_released(c, inp, record) := {f: msg |
	some f in record.fields
	unreleased(c, f)
	msg := sprintf("not released at %s under %s", [inp.stage, c.agreement_id])
}

dropped_fields(c, record) := {f: msg |
	some f in record.fields
	dropped(c, f)
	msg := sprintf("dropped by %s", [c.agreement_id])
}

withheld(c, inp, record) := object.union(not_released(c, inp, record), dropped_fields(c, record))

# What one matched record releases under the chosen grant.
record_decision(c, inp) := {
	"level": "existence",
	"agreement_id": c.agreement_id,
	"reasons": reasons,
	"release": {},
	"withheld": {},
} if {
	reasons := existence_reasons(c, inp, inp.record)
	count(reasons) > 0
} else := {
	"level": "fields",
	"agreement_id": c.agreement_id,
	"reasons": [],
	"release": released(c, inp.record),
	"withheld": withheld(c, inp, inp.record),
}
