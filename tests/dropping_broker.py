"""A real broker process that drops sealed answers: for tests/test_blind_not_relayed.py only.

It runs `mash broker serve` unchanged except that, after each blind round, the sealed
answers of the agency named in the file $MASH_TEST_DROP_FILE ("police 1" drops police's
round-one answer, "police 2" its round-two answer, an empty file drops nothing) are left out
of what goes back to the analyst. Everything else (mTLS, routing, audit, the agents' signed
and sealed answers) is the real broker's. It proves what the analyst's side does when a
broker drops an answer, not anything about the broker itself.

    python -m tests.dropping_broker --config broker.yaml
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from mash.broker import blind as blind_mod
from mash.v1 import blind_pb2

_round = blind_mod.BlindRelay._round


async def _dropping_round(self: blind_mod.BlindRelay, *args: Any,
                          **kwargs: Any) -> blind_pb2.BlindRound:
    out = await _round(self, *args, **kwargs)
    round_ = args[4]
    target = Path(os.environ["MASH_TEST_DROP_FILE"]).read_text().split()
    if len(target) == 2 and int(target[1]) == round_:
        kept = [s for s in out.answers if s.agency_id != target[0]]
        del out.answers[:]
        out.answers.extend(kept)
    return out


def main() -> None:
    blind_mod.BlindRelay._round = _dropping_round  # type: ignore[method-assign]
    from mash.cli import app

    app(["broker", "serve", *sys.argv[1:]])


if __name__ == "__main__":
    main()
