"""The federation as a whole, from every broker's own view of its agents' streams."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mash.v1 import lookup_pb2


@dataclass
class FederationView:
    agents: list[lookup_pb2.AgentStatus]  # one per agency: as a broker it is online at sees it
    links: dict[str, list[str]]  # agency -> the brokers (addresses) its agent is online at
    reached: int  # brokers that answered


def federation_view(by_broker: Mapping[str, object]) -> FederationView:
    """Merge the brokers' ListAgents answers (errors are brokers that did not answer)."""
    agents: dict[str, lookup_pb2.AgentStatus] = {}
    links: dict[str, list[str]] = {}
    reached = 0
    for address, reply in by_broker.items():
        if not isinstance(reply, lookup_pb2.ListAgentsResponse):
            continue
        reached += 1
        for status in reply.agents:
            links.setdefault(status.agency_id, [])
            if status.online:
                links[status.agency_id].append(address)
            seen = agents.get(status.agency_id)
            if seen is None or (status.online and not seen.online):
                agents[status.agency_id] = status
    return FederationView([agents[a] for a in sorted(agents)], links, reached)
