"""Which agencies may be asked, for this requester, role, purpose and stage.

`RoutingPolicy` is the seam; `StaticRouting` reads routes from broker.yaml.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Protocol

from mash.broker.config import Agency, Route, read_routes
from mash.config import Reader


@dataclass(frozen=True)
class RouteDecision:
    agency: str
    allowed: bool
    reason: str = ""  # when refused: a sentence for the analyst
    agreement_id: str = ""


class RoutingError(Exception):
    """Routing could not be evaluated: nothing is asked, every agency is NOT_CHECKED."""


class RoutingPolicy(Protocol):
    @property
    def revision(self) -> str: ...

    def purposes(self) -> dict[str, frozenset[str]]:
        """Known purposes and the stages each has: anything else is a bad request."""
        ...

    def route(self, requester: str, role: str, purpose: str, stage: str) -> list[RouteDecision]:
        ...


class StaticRouting:
    def __init__(self, routes: list[Route], agencies: dict[str, Agency]) -> None:
        self._routes = routes
        self._agencies = agencies
        blob = json.dumps([[r.requester, *map(sorted, (r.roles, r.purposes, r.stages,
                                                       r.agencies))] for r in routes])
        self._revision = "static-" + hashlib.sha256(blob.encode()).hexdigest()[:12]

    @classmethod
    def read(cls, section: Reader, agencies: dict[str, Agency]) -> StaticRouting:
        routes = read_routes(section.sections("routes"), agencies)
        section.done()
        return cls(routes, agencies)

    @property
    def revision(self) -> str:
        return self._revision

    def purposes(self) -> dict[str, frozenset[str]]:
        out: dict[str, set[str]] = {}
        for route in self._routes:
            for purpose in route.purposes:
                out.setdefault(purpose, set()).update(route.stages)
        return {p: frozenset(s) for p, s in out.items()}

    def route(self, requester: str, role: str, purpose: str, stage: str) -> list[RouteDecision]:
        allowed: set[str] = set()
        for route in self._routes:
            if (route.requester == requester and role in route.roles
                    and purpose in route.purposes and stage in route.stages):
                allowed |= route.agencies
        return [
            RouteDecision(a, True) if a in allowed else RouteDecision(
                a, False, f"no agreement lets {requester} ({role}) ask {self._agencies[a].name} "
                          f"for {purpose} at stage {stage}")
            for a in sorted(self._agencies)
        ]
