from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mash.demo import federation
from mash.logs import configure
from tests.helpers import Running, build_federation

configure("warning")

CORE = ["police", "health", "csc", "education"]


@pytest.fixture
def fed(tmp_path: Path) -> federation.Federation:
    """A federation laid out on disk: every agency registered at the broker."""
    return build_federation(tmp_path / "fed")


@pytest.fixture
async def running(fed: federation.Federation) -> AsyncIterator[Running]:
    """A broker and the four core agents, in process, on loopback with mTLS."""
    async with Running.up(fed, CORE) as run:
        yield run
