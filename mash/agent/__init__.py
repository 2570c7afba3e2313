"""The agency agent: loads the agency's records, dials out to the broker, answers lookups."""
