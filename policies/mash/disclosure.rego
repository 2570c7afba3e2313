# Disclosure at an agent (the data owner). input: {owner, requester: {agency, role}, purpose,
# stage, today, record: {fields: [names], values: {name: value}}}; record is for `record` only.
package mash.disclosure

import rego.v1

import data.mash.agreements

covering := agreements.covering(input.owner, input)

usable := agreements.usable(covering, input)

# May this agency even say whether it knows the person?
gate := agreements.gate(input.owner, input, covering, usable)

# For one matched record: existence only, or which fields with which transform, and why
# every other field is withheld. Undefined when no grant is usable: the caller fails closed.
record := agreements.record_decision(usable[0], input)
