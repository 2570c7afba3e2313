"""No rollback: the newest bundle serial a broker or agent accepted, remembered across restarts.

A genuinely signed bundle stays genuinely signed after it is superseded, so a signature alone
cannot stop an older, more permissive bundle being copied back into place. Every bundle
carries a serial (mash.policy.bundle) and the service keeps the newest serial it accepted, with
that bundle's revision, in a small state file (`policy.state_file`, written atomically). A
bundle is refused when its serial is lower, or equal with other content; the policy in force
stays. Removing the state file is the deliberate way to accept an older bundle.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from mash.files import write_atomic
from mash.policy.bundle import Bundle
from mash.policy.errors import PolicyError

FORMAT = "mash-policy-state/1"


@dataclass(frozen=True)
class Accepted:
    serial: int
    revision: str
    accepted_at: str


class SerialState:
    """The state file; `path` None keeps the newest serial in memory only."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._newest: Accepted | None = None

    def read(self) -> Accepted | None:
        if self.path is None or not self.path.exists():
            return self._newest
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            if doc.get("format") != FORMAT:
                raise ValueError
            stored = Accepted(int(doc["serial"]), str(doc["revision"]), str(doc["accepted_at"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            raise PolicyError(f"the policy state file {self.path} is unreadable: refusing every "
                              "bundle until it is repaired (remove it deliberately to accept "
                              "whatever bundle is in place)") from None
        newest = self._newest
        return stored if newest is None or stored.serial >= newest.serial else newest

    def check(self, bundle: Bundle) -> None:
        """PolicyError if `bundle` is older than (or conflicts with) the newest accepted."""
        newest = self.read()
        if newest is None:
            return
        if bundle.serial < newest.serial:
            raise PolicyError(
                f"bundle serial {bundle.serial} (revision {bundle.revision}) is older than "
                f"serial {newest.serial} (revision {newest.revision}), accepted "
                f"{newest.accepted_at}: refusing a rollback to an older bundle")
        if bundle.serial == newest.serial and bundle.revision != newest.revision:
            raise PolicyError(
                f"bundle serial {bundle.serial} was accepted with revision {newest.revision}; "
                f"this bundle has the same serial and other content (revision "
                f"{bundle.revision}): refusing it")

    def remember(self, bundle: Bundle) -> None:
        """Record `bundle` as the newest accepted (PolicyError if that cannot be written)."""
        newest = self.read()
        if newest is not None and newest.serial >= bundle.serial:
            return
        accepted = Accepted(bundle.serial, bundle.revision,
                            dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
        if self.path is not None:
            doc = {"format": FORMAT, "serial": accepted.serial, "revision": accepted.revision,
                   "accepted_at": accepted.accepted_at}
            try:
                write_atomic(self.path, json.dumps(doc, indent=1).encode())
            except OSError as exc:
                raise PolicyError(f"cannot record the bundle's serial in {self.path} "
                                  f"({exc.strerror}): not loading it") from None
        self._newest = accepted
