"""Routing at the broker: which agencies are registered, and which may be asked, decided by
the agreements in force.

The broker asks the same question each agent asks itself (may this requester ask this
agency for this purpose and stage?), so that agencies without an agreement are never sent
the subject at all. The agents still decide for themselves.

Registration: when the signed bundle names `agents` (policies/federation.yaml), those are the
agencies registered with the broker, and a new bundle registers or withdraws one without a
restart; a bundle that names none leaves broker.yaml's `agencies:` in force (federations
that have not moved their list into the bundle).
"""

from __future__ import annotations

import datetime as dt

from mash.broker.config import BrokerConfig
from mash.policy.decisions import LoadedPolicy, RouteDecision
from mash.policy.model import Requester
from mash.policy.store import PolicyStore

__all__ = ["RouteDecision", "Routing", "build_routing"]


class Routing:
    def __init__(self, store: PolicyStore, configured: dict[str, str]) -> None:
        self.store = store
        self.configured = dict(configured)  # broker.yaml's agencies: id -> name

    @property
    def revision(self) -> str:
        return self.store.revision or "none"

    def registered(self, policy: LoadedPolicy | None = None) -> dict[str, str]:
        """The agencies registered now, or by `policy` (id -> display name)."""
        policy = policy or self.store.current
        named = policy.bundle.registered() if policy is not None else None
        return dict(self.configured) if named is None else named

    @property
    def source(self) -> str:
        """Where the registrations come from, for logs and `mash agents`."""
        policy = self.store.current
        if policy is not None and policy.bundle.registered() is not None:
            return f"bundle {policy.revision}"
        return "broker.yaml"

    @property
    def agencies(self) -> list[str]:
        return sorted(self.registered())

    def name(self, agency: str) -> str:
        return self.registered().get(agency, agency)

    def loaded(self) -> LoadedPolicy:
        """The policy in force; raises PolicyError (fail closed) when there is none."""
        return self.store.loaded()

    def route(self, policy: LoadedPolicy, requester: Requester) -> list[RouteDecision]:
        return policy.route(requester, sorted(self.registered(policy)),
                            dt.datetime.now(dt.UTC).date())


def build_routing(cfg: BrokerConfig) -> Routing:
    return Routing(PolicyStore(cfg.policy), {a.id: a.title for a in cfg.agencies.values()})
