"""The data owner's view of the agreements: may it answer, and what does a record release.

The agent asks the policy store for one `OwnerDecisions` per query, so a hot reload never
mixes two policy revisions within one answer. No valid policy means PolicyError: the agent
answers NOT_CHECKED(POLICY_ERROR) and shares nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mash.policy import transforms
from mash.policy.bundle import Bundle
from mash.policy.decisions import LoadedPolicy
from mash.policy.errors import AgreementError, PolicyError
from mash.policy.model import Gate, RecordDisclosure, Requester
from mash.policy.store import PolicyStore
from mash.records import PersonRecord

__all__ = ["AgentPolicy", "OwnerDecisions", "PolicyError", "Requester"]


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@dataclass(frozen=True)
class OwnerDecisions:
    policy: LoadedPolicy
    owner: str
    context: transforms.TransformContext

    @property
    def revision(self) -> str:
        return self.policy.revision

    def gate(self, requester: Requester) -> Gate:
        return self.policy.gate(self.owner, requester, _today())

    def disclose(self, requester: Requester, gate: Gate, records: list[PersonRecord],
                 fields: Iterable[str] | None = None) -> list[RecordDisclosure]:
        """`fields`: every field the agent maps, so the withheld list is the agreement's
        alone (see LoadedPolicy.disclose_all)."""
        return self.policy.disclose_all(self.owner, requester, gate, records, _today(),
                                        self.context, fields)


class AgentPolicy:
    def __init__(self, store: PolicyStore, owner: str, hmac_key: bytes) -> None:
        self.store = store
        self.owner = owner
        self.hmac_key = hmac_key

    @property
    def revision(self) -> str:
        return self.store.revision or "none"

    def snapshot(self) -> OwnerDecisions:
        return OwnerDecisions(self.store.loaded(), self.owner,
                              transforms.TransformContext(hmac_key=self.hmac_key))


def field_check(owner: str, mapped: set[str], hmac_key: bytes) -> Callable[[Bundle], None]:
    """A store validator: refuse bundles naming fields this agent's sources do not map."""

    def validate(bundle: Bundle) -> None:
        for agreement_id, agreement in sorted(bundle.agreements.items()):
            for grant in agreement["grants"]:
                if grant["owner"] != owner:
                    continue
                named = {c["field"] for c in grant["withhold_when"]}
                uses_hmac = False
                for purpose in grant["purposes"].values():
                    for stage in purpose["stages"].values():
                        named |= set(stage["release"])
                        uses_hmac |= any(r["transform"] == "hmac"
                                         for r in stage["release"].values())
                unknown = sorted(named - mapped)
                if unknown:
                    raise AgreementError(
                        f"agreement {agreement_id} names field(s) {', '.join(unknown)} that "
                        f"{owner}'s agent does not map: fix the agreement or the mapping")
                if uses_hmac and not hmac_key:
                    raise AgreementError(
                        f"agreement {agreement_id} uses the hmac transform but this agent has "
                        "no hmac_key_file")

    return validate
