"""Subject access as the agency holds the person: which of its records are this person.

An analyst may have typed the subject any way (a nickname, a postcode, no date of birth); the
agent's audit records which of its records each lookup matched (keyed hashes, as
`SubjectHasher.record_ref(source, record_id)`). So the agency answers "who looked up this
person?" by finding the person in its own records, with its own matcher, and listing every
lookup that matched any of those records (`mash audit search --held`).
"""

from __future__ import annotations

from dataclasses import dataclass

from mash.agent.config import AgentConfig
from mash.agent.state import load_snapshot
from mash.errors import ValidationError
from mash.subject import SubjectQuery


@dataclass(frozen=True)
class HeldRecord:
    source: str
    record_id: str
    band: str  # match | possible

    def __str__(self) -> str:
        return f"{self.source}:{self.record_id} ({self.band})"


def held_records(cfg: AgentConfig, subject: SubjectQuery) -> list[HeldRecord]:
    """The agency's records the matcher finds for `subject`, both bands (a subject access
    search errs towards including a lookup; each entry says what it matched)."""
    snapshot = load_snapshot(cfg.sources, cfg.index_path,
                             target_false_known=cfg.target_false_known,
                             workers=cfg.index.build_workers)
    reach = snapshot.matcher.reach(subject)
    if not reach.searchable:
        raise ValidationError(f"the agency's records cannot be searched with this: "
                              f"{reach.explain()}")
    outcome = snapshot.matcher.search(subject)
    return [HeldRecord(c.record.source, c.record.record_id, str(c.band))
            for c in outcome.candidates]
