"""Routing at the broker: which agencies may be asked, decided by the agreements in force.

The broker asks the same question each agent asks itself (may this requester ask this
agency for this purpose and stage?), so that agencies without an agreement are never sent
the subject at all. The agents still decide for themselves.
"""

from __future__ import annotations

import datetime as dt

from mash.policy.decisions import LoadedPolicy, RouteDecision
from mash.policy.model import Requester
from mash.policy.store import PolicyStore

__all__ = ["RouteDecision", "Routing"]


class Routing:
    def __init__(self, store: PolicyStore, agencies: list[str]) -> None:
        self.store = store
        self.agencies = sorted(agencies)

    @property
    def revision(self) -> str:
        return self.store.revision or "none"

    def loaded(self) -> LoadedPolicy:
        """The policy in force; raises PolicyError (fail closed) when there is none."""
        return self.store.loaded()

    def route(self, policy: LoadedPolicy, requester: Requester) -> list[RouteDecision]:
        return policy.route(requester, self.agencies, dt.datetime.now(dt.UTC).date())
