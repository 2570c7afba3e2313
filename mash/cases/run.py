"""Running a case: one lookup per person through the broker, under the case's context."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc

from mash.cases.model import Case
from mash.cases.picture import FamilyPicture, Row
from mash.client import BrokerClient
from mash.errors import MashError
from mash.v1 import lookup_pb2

MAX_PARALLEL = 4  # a household at once, without flooding the broker's rate limit


class CaseLookupError(MashError):
    """One person's lookup was refused: which person (by place and relationship) and why."""

    def __init__(self, index: int, relationship: str, error: grpc.RpcError) -> None:
        self.index, self.relationship, self.error = index, relationship, error
        details = (error.details() or "").splitlines()  # type: ignore[attr-defined]
        super().__init__(f"people[{index}] ({relationship}): "
                         f"{error.code().name.lower()}: "  # type: ignore[attr-defined]
                         f"{details[0] if details else 'no detail'}")


def run_case(*, client: BrokerClient, case: Case, requests: list[lookup_pb2.LookupRequest],
             timeout: float = 15.0) -> FamilyPicture:
    """Ask about every person; a refusal for any of them stops the case with its reason
    (the lookups already made are in the audit trail)."""
    def ask(i: int) -> Row:
        try:
            return Row(i, case.people[i], client.lookup(requests[i], timeout=timeout))
        except grpc.RpcError as exc:
            raise CaseLookupError(i, case.people[i].relationship, exc) from None

    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(requests))) as pool:
        rows = list(pool.map(ask, range(len(requests))))
    return FamilyPicture(case, tuple(rows))
