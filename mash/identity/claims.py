"""Which claims of an issuer's tokens carry the analyst's agency, role and team.

Identity providers name these claims their own way (`org`, `groups`, `nhsid_nrbac_roles`...).
Per issuer, config says the claim's name and, optionally, a value map: the first entry of the
map that the claim carries (a string, or one element of a list) gives the value, so list the
stronger role first (`{mash-supervisors: supervisor, mash-analysts: analyst}`). With a map, an
unmapped value is refused; without one the claim must be a plain string.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mash.config import Invalid
from mash.errors import IdentityError

FIELDS = ("agency", "role", "team")


@dataclass(frozen=True)
class ClaimMap:
    names: Mapping[str, str] = field(default_factory=lambda: {f: f for f in FIELDS})
    values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @classmethod
    def of(cls, given: Mapping[Any, Any], tables: Mapping[Any, Any]) -> ClaimMap:
        """An issuer's `claims` and `claim_values` settings (Invalid names the key)."""
        names = {f: f for f in FIELDS}
        for key, value in given.items():
            if key not in FIELDS or not isinstance(value, str) or not value:
                raise Invalid(f"map {', '.join(FIELDS)} to claim names "
                              f"(got {key!r}: {value!r})", key="claims")
            names[key] = value
        values: dict[str, dict[str, str]] = {}
        for key, table in tables.items():
            if key not in FIELDS or not isinstance(table, Mapping) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in table.items()):
                raise Invalid(f"{key}: give a map of claim value to {key} (e.g. "
                              "mash-supervisors: supervisor)", key="claim_values")
            values[key] = dict(table)
        return cls(names, values)

    def value(self, claims: Mapping[str, Any], name: str, *, required: bool = True) -> str:
        """The mapped value of field `name`, or IdentityError naming the claim to fix."""
        claim = self.names[name]
        raw = claims.get(claim)
        table = self.values.get(name)
        if raw is None or raw == "" or raw == []:
            if not required:
                return ""
            raise IdentityError(f"analyst token lacks the {claim!r} claim that gives the "
                                f"{name}: map it in the issuer's claims ({name}: CLAIM)")
        if table is None:
            if not isinstance(raw, str):
                raise IdentityError(f"analyst token's {claim!r} claim is not a string: give "
                                    f"the issuer a claim_values map for {name}")
            return raw
        carried = set(raw) if isinstance(raw, list) else {raw}
        for source, mapped in table.items():
            if source in carried:
                return mapped
        if not required:
            return ""
        raise IdentityError(f"analyst token's {claim!r} claim has no value the issuer's "
                            f"claim_values map for {name} knows")
