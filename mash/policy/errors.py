"""Policy errors. Any of them means: share nothing, answer NOT_CHECKED with the reason."""

from __future__ import annotations

from mash.errors import MashError


class PolicyError(MashError):
    """A decision could not be made (no valid bundle, evaluation error, undefined result)."""


class AgreementError(MashError):
    """An agreement or bundle is invalid and is rejected at load, naming the file and key."""
