"""Running a case: one lookup per person through the broker, under the case's context."""

from __future__ import annotations

from collections.abc import Callable
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
        details = (error.details() or "").splitlines()
        super().__init__(f"people[{index}] ({relationship}): "
                         f"{error.code().name.lower()}: "
                         f"{details[0] if details else 'no detail'}")


def run_case(*, client: BrokerClient, case: Case, requests: list[lookup_pb2.LookupRequest],
             timeout: float = 15.0) -> FamilyPicture:
    """Ask about every person; a refusal for any of them stops the case with its reason
    (the lookups already made are in the audit trail)."""
    return run_case_with(ask=lambda r: client.lookup(r, timeout=timeout), case=case,
                         requests=requests)


def run_case_with(*, ask: Callable[[lookup_pb2.LookupRequest], lookup_pb2.LookupResponse],
                  case: Case, requests: list[lookup_pb2.LookupRequest]) -> FamilyPicture:
    """As run_case, with any way of asking the broker (the console's, with the analyst's
    own token)."""
    def one(i: int) -> Row:
        try:
            return Row(i, case.people[i], ask(requests[i]))
        except grpc.RpcError as exc:
            raise CaseLookupError(i, case.people[i].relationship, exc) from None

    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(requests))) as pool:
        rows = list(pool.map(one, range(len(requests))))
    return FamilyPicture(case, tuple(rows))
