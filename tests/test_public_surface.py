"""The curated public surface: `mash.__all__` names resolve, lazily, and every error the
client raises is a MashError."""

from __future__ import annotations

import subprocess
import sys

import grpc
import pytest

import mash
from mash import client, errors


def test_every_public_name_resolves_to_its_home() -> None:
    for name in mash.__all__:
        assert getattr(mash, name) is not None, name
    assert mash.BrokerClient is client.BrokerClient
    assert mash.ValidationError is errors.ValidationError
    assert set(mash.__all__) <= set(dir(mash))


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Matcher'"):
        mash.Matcher  # noqa: B018


def test_import_mash_does_not_load_grpc() -> None:
    """The CLI imports mash first: the client (and grpc) load only when used."""
    code = "import sys, mash; print('grpc' in sys.modules, 'mash.client' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]
    # positive control: touching the name loads it
    code = "import sys, mash; mash.BrokerClient; print('mash.client' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "True"


def test_every_client_error_is_a_mash_error() -> None:
    for name in ("ConfigError", "IdentityError", "SignatureError", "ValidationError",
                 "BrokerError"):
        assert issubclass(getattr(mash, name), mash.MashError), name
    assert issubclass(mash.BrokerError, grpc.RpcError)  # and still what grpc raised


def test_the_readme_example_builds_a_request() -> None:
    request = mash.build_request(name="Leah Thompson", dob="2014-05-17",
                                 purpose="child_safeguarding", stage="s47",
                                 case="MASH-2026-0101", reason="...", urgency="amber")
    assert request.subject.name.family == "Thompson"
    assert request.subject.date_of_birth.year == 2014
    with pytest.raises(mash.ValidationError, match="not a calendar date"):
        mash.build_request(name="Leah Thompson", dob="2014-02-30", purpose="p", stage="s",
                           case="c", reason="r", urgency="amber")
