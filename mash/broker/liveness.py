"""Whether a connected agent is still answering, so one silent agent cannot slow every lookup.

An agent that holds its stream but stops answering (hung, paused, overloaded past its
deadlines, or hostile) would make every all-agency lookup wait for the full deadline. Each
agent session has a `Liveness`, which takes the agent as unresponsive when either:

- it sent nothing at all (no heartbeat, no answer) for `missed_heartbeats` of its heartbeat
  intervals (the agent states its interval in its hello; older agents: the broker's); or
- its last `missed_answers` queries in a row went unanswered by their deadline.

While unresponsive, the broker answers NOT_CHECKED (agent unresponsive) for that agency at
once, saying since when. It comes back by itself: any message ends the first kind; an answer
(a late one too) ends the second, and for that the broker keeps sending the agent one query
at a time as a probe (the lookup is not held for it: its answer, if it comes, is recorded
by the agent as any late answer is, and dropped by the broker).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from pydantic import BeforeValidator, ConfigDict

from mash.config import ConfigModel, whole

LATE_KEPT = 256  # timed-out query ids remembered, so that their late answers count
SILENT = "silent"
NOT_ANSWERING = "not_answering"


class LivenessConfig(ConfigModel):
    """broker.yaml `liveness:`."""

    model_config = ConfigDict(frozen=True)

    # heartbeat intervals with nothing from the agent
    missed_heartbeats: Annotated[int, BeforeValidator(whole(2, 100))] = 3
    # queries in a row unanswered by their deadline
    missed_answers: Annotated[int, BeforeValidator(whole(1, 1000))] = 2


@dataclass(frozen=True)
class Unresponsive:
    """Why an agent is taken as not answering, and since when (wall clock, UTC)."""

    kind: str  # SILENT or NOT_ANSWERING
    since: dt.datetime
    reason: str  # words, without personal data

    def detail(self, name: str) -> str:
        return (f"{name}'s agent is connected but has not answered since "
                f"{self.since:%Y-%m-%d %H:%M:%S} UTC ({self.reason}); the broker did not wait "
                "for it, and asks it again as soon as it answers")


class Liveness:
    """One agent session's liveness. Not thread-safe: used on the broker's event loop."""

    def __init__(self, *, config: LivenessConfig, heartbeat_seconds: float,
                 clock: Callable[[], float] = time.monotonic,
                 on_change: Callable[[Unresponsive | None], None] | None = None) -> None:
        self.config = config
        self.heartbeat_seconds = heartbeat_seconds
        self.silence_limit = config.missed_heartbeats * heartbeat_seconds
        self._clock = clock
        self._on_change = on_change
        self._last_heard = clock()
        self._last_heard_at = dt.datetime.now(dt.UTC)
        self._timeouts = 0
        self._first_unanswered: dt.datetime | None = None
        self._marked: Unresponsive | None = None
        self.probe: str | None = None  # the query id out as a probe, if any
        self._late: dict[str, None] = {}  # queries that timed out, oldest first (bounded)

    # -- what the agent did -----------------------------------------------------------------

    def heard(self) -> None:
        """Any message from the agent (heartbeat or answer): it is not silent."""
        self._last_heard = self._clock()
        self._last_heard_at = dt.datetime.now(dt.UTC)
        if self._marked is not None and self._marked.kind == SILENT:
            self._set(None)

    def answered(self) -> None:
        """The agent answered a query (in time or late): it is answering again."""
        self.heard()
        self._timeouts = 0
        self._first_unanswered = None
        if self._marked is not None:
            self._set(None)

    def answer_counts(self, query_id: str, *, delivered: bool) -> bool:
        """Whether an answer shows the agent answering: one a lookup was waiting for, or a
        late one to a query that timed out. An answer to a query never sent shows nothing
        (an agent cannot keep itself "answering" with made-up answers)."""
        if delivered:
            return True
        if query_id in self._late:
            del self._late[query_id]
            return True
        return False

    def timed_out(self, sent_at: dt.datetime, query_id: str = "") -> None:
        """A query sent at `sent_at` was not answered by its deadline."""
        if query_id:
            self._late[query_id] = None
            while len(self._late) > LATE_KEPT:
                del self._late[next(iter(self._late))]
        self._timeouts += 1
        if self._first_unanswered is None:
            self._first_unanswered = sent_at
        if self._timeouts >= self.config.missed_answers and (
                self._marked is None or self._marked.kind != NOT_ANSWERING):
            self._set(Unresponsive(
                NOT_ANSWERING, self._first_unanswered,
                f"its last {self._timeouts} queries went unanswered by their deadline"))

    # -- what the broker asks ---------------------------------------------------------------

    def state(self) -> Unresponsive | None:
        """None when the agent is taken as answering; otherwise why not."""
        if self._marked is None or self._marked.kind == SILENT:
            quiet = self._clock() - self._last_heard
            if quiet > self.silence_limit and self._marked is None:
                self._set(Unresponsive(
                    SILENT, self._last_heard_at,
                    f"nothing from it for {quiet:.0f} s: {self.config.missed_heartbeats} "
                    f"heartbeats of {self.heartbeat_seconds:g} s missed"))
        return self._marked

    def take_probe(self, query_id: str) -> bool:
        """Whether `query_id` may go out as the probe of an agent not answering (one at a
        time; a silent agent needs none: its next heartbeat brings it back)."""
        if self._marked is None or self._marked.kind != NOT_ANSWERING or self.probe:
            return False
        self.probe = query_id
        return True

    def probe_done(self, query_id: str) -> None:
        if self.probe == query_id:
            self.probe = None

    def _set(self, marked: Unresponsive | None) -> None:
        self._marked = marked
        if self._on_change is not None:
            self._on_change(marked)
