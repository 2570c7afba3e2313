"""Small-number suppression: counts from 1 to 4 are not shown (nor what would reveal them).

A suppressed count is the text "<5". Zero is shown: it says an agency never answered, which
is what the board needs to see. Where a group (e.g. the states of one agency) would have one
suppressed cell only, the next smallest non-zero cell is shown as "suppressed" too, so the
group total does not give the first away by subtraction. A share is hidden (None) when its
denominator is below 5 or either of its parts (the numerator, or the rest) is a count from 1
to 4.
"""

from __future__ import annotations

from collections.abc import Mapping

THRESHOLD = 5
HIDDEN = "<5"
ALSO_HIDDEN = "suppressed"  # a larger count hidden so that a "<5" is not recoverable
NOTE = (f"Counts from 1 to {THRESHOLD - 1} are shown as \"{HIDDEN}\"; where one alone would "
        f"be recoverable from a total, the next smallest count of its group is shown as "
        f"\"{ALSO_HIDDEN}\"; shares and median times resting on such counts are not shown "
        "(null).")

Shown = int | str


def small(n: int) -> bool:
    return 0 < n < THRESHOLD


def count(n: int) -> Shown:
    return HIDDEN if small(n) else n


def group(counts: Mapping[str, int]) -> dict[str, Shown]:
    """Suppress a group of counts that add up to a total shown elsewhere."""
    hidden = {k for k, n in counts.items() if small(n)}
    also = ""
    if len(hidden) == 1:
        others = sorted((n, k) for k, n in counts.items() if n and k not in hidden)
        also = others[0][1] if others else ""
    return {k: HIDDEN if k in hidden else ALSO_HIDDEN if k == also else n
            for k, n in sorted(counts.items())}


def share(part: int, whole: int) -> float | None:
    if whole < THRESHOLD or small(part) or small(whole - part):
        return None
    return round(part / whole, 4)
