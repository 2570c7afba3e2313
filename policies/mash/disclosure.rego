# Disclosure at an agent (the data owner). input: {owner, requester: {agency, role}, purpose,
# stage, today, records: [{values: {field: value}}]}; records is for `records` only and holds
# just the values the agreements' restrictions look at.
package mash.disclosure

import rego.v1

import data.mash.agreements

covering := agreements.covering(input.owner, input)

usable := agreements.usable(covering, input)

# May this agency even say whether it knows the person? If so: under which agreement, and
# the stage's rules (fields released with their transforms; the reason for the others).
gate := agreements.gate(input.owner, input, covering, usable)

# For every matched record, in order: existence only (with reasons) or its fields. Each
# record must be decided from itself and the request alone (never from the other records):
# agents remember a decision per distinct record input.
# Undefined when no grant is usable: the caller fails closed.
records := out if {
	c := usable[0]
	out := [d |
		some record in input.records
		d := agreements.record_level(c, input, record)
	]
}
