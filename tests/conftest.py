from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from mash.demo import federation
from mash.logs import configure
from tests import helpers
from tests.helpers import Running, build_federation

configure("warning")

CORE = ["police", "health", "csc", "education"]


@pytest.fixture(scope="session", autouse=True)
def _calibrations_shared_by_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Under xdist, in-process federations share calibrated models between the workers of
    this run (helpers.calibrations_shared), in the run's own temporary directory."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        yield
        return
    root = tmp_path_factory.getbasetemp().parent / "calibrations"
    root.mkdir(exist_ok=True)
    helpers.SHARED_CALIBRATIONS = root
    yield
    helpers.SHARED_CALIBRATIONS = None


@pytest.fixture
def fed(tmp_path: Path) -> federation.Federation:
    """A federation laid out on disk: every agency registered at the broker."""
    return build_federation(tmp_path / "fed")


@pytest.fixture
async def running(fed: federation.Federation) -> AsyncIterator[Running]:
    """A broker and the four core agents, in process, on loopback with mTLS."""
    async with Running.up(fed, CORE) as run:
        yield run
