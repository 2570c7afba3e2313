"""The MASH console: lookups, agents, agreements and audit search in the browser."""
