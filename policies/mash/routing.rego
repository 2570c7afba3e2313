# Routing at the broker: for this requester, role, purpose and stage, which agencies may be
# asked at all. input: {requester: {agency, role}, purpose, stage, today, agencies: [ids]}
package mash.routing

import rego.v1

import data.mash.agreements

covering[owner] := agreements.covering(owner, input) if {
	some owner in input.agencies
}

usable[owner] := agreements.usable(covering[owner], input) if {
	some owner in input.agencies
}

decisions[owner] := agreements.gate(owner, input, covering[owner], usable[owner]) if {
	some owner in input.agencies
}

# The purposes and stages the federation recognises (policies/federation.yaml).
purposes := {p: spec.stages | some p, spec in data.federation.purposes}
