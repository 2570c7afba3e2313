"""Date transforms on fields a source does not declare as dates: warned, never silent.

`month`, `year` and `age_band` read YYYY-MM-DD. A source declares its date fields
(`date_fields`, read in its `date_formats` and kept as YYYY-MM-DD when loaded); a date
transform on any other field withholds every value not already written YYYY-MM-DD as "not a
date", and `keep` releases such a field as the agency wrote it. `mash agent check` and
`mash policy check --agent-config` say so.
"""

from __future__ import annotations

from mash.agent.sources import SourceConfig
from mash.policy.bundle import Bundle
from mash.policy.transforms import DATE_TRANSFORMS


def date_transform_warnings(bundle: Bundle, agency: str,
                            sources: list[SourceConfig]) -> list[str]:
    """One warning per agreement, field, transform and source that does not hold it as a date."""
    found: set[tuple[str, str, str, str]] = set()
    for aid, agreement in sorted(bundle.agreements.items()):
        for grant in agreement["grants"]:
            if grant["owner"] != agency:
                continue
            for purpose in grant["purposes"].values():
                for stage in purpose["stages"].values():
                    for name, rule in stage["release"].items():
                        if rule["transform"] not in DATE_TRANSFORMS:
                            continue
                        for source in sources:
                            mapping = source.mapping
                            if name in mapping.field_names and name not in mapping.dates:
                                found.add((aid, name, rule["transform"], source.name))
    return [f"{aid} releases {name} as {transform}, but source {source} does not declare it "
            "a date (list it under date_fields): a value not written YYYY-MM-DD is withheld "
            "as not a date" for aid, name, transform, source in sorted(found)]
