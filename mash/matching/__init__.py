"""Finding a subject in an agency's records."""

from mash.matching.engine import Candidate, Matcher, SearchOutcome

__all__ = ["Candidate", "Matcher", "SearchOutcome"]
