"""The emergency revocation list for analysts: by subject or token id, reloaded without a
restart, failing closed when it cannot be read."""

from __future__ import annotations

import os
from pathlib import Path

import grpc
import jwt
import pytest
import yaml

from mash.config import read_model
from mash.demo import federation
from mash.errors import ConfigError, IdentityError
from mash.identity import analyst_revocation as revocation
from mash.identity.tokens import AuthConfig, TokenVerifier
from tests.helpers import Running, build_federation, lookup_request


def write(path: Path, text: str) -> None:
    path.write_text(text)
    st = path.stat()  # a distinct mtime even within the file system's clock tick
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))


@pytest.fixture(autouse=True)
def no_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(revocation, "CHECK_SECONDS", 0.0)


def make_verifier(fed: federation.Federation, listing: Path) -> TokenVerifier:
    section = yaml.safe_load(fed.broker_config.read_text())["auth"]
    section["revocation_list"] = str(listing)
    return TokenVerifier.from_config(read_model(AuthConfig, section, "auth", Path.cwd()))


def test_subjects_and_token_ids_are_refused_and_reloaded(tmp_path: Path) -> None:
    fed = build_federation(tmp_path / "fed", agencies=["police"], background=5)
    listing = tmp_path / "revoked.yaml"
    write(listing, "subjects: []\ntoken_ids: []\n")
    v = make_verifier(fed, listing)
    alice, bob = fed.token(subject="alice"), fed.token(subject="bob")
    assert v.verify(alice).subject == "alice" and v.verify(bob).subject == "bob"
    write(listing, "subjects: [alice]\n")
    with pytest.raises(IdentityError, match="this analyst's access has been revoked"):
        v.verify(alice)  # also a token verified (and cached) before the change
    assert v.verify(bob).subject == "bob"
    bob_id = jwt.decode(bob, options={"verify_signature": False})["jti"]
    write(listing, f"token_ids: [{bob_id}]\n")
    with pytest.raises(IdentityError, match="this token has been revoked"):
        v.verify(bob)
    assert v.verify(alice).subject == "alice"  # lifted again
    assert v.verify(fed.token(subject="bob")).subject == "bob"  # bob's next token is fine


def test_an_unreadable_list_fails_closed(tmp_path: Path) -> None:
    fed = build_federation(tmp_path / "fed", agencies=["police"], background=5)
    listing = tmp_path / "revoked.yaml"
    write(listing, "subjects: []\n")
    v = make_verifier(fed, listing)
    token = fed.token()
    assert v.verify(token)
    write(listing, "subjects: alice\n")
    with pytest.raises(IdentityError, match=r"revocation list is unusable .*subjects must be a "
                                            r"list of strings.*refusing every token"):
        v.verify(token)
    listing.unlink()
    with pytest.raises(IdentityError, match=r"cannot be read .*refusing every token"):
        v.verify(token)
    with pytest.raises(ConfigError, match="revocation_list: file not found"):
        make_verifier(fed, tmp_path / "absent.yaml")


async def test_broker_refuses_a_revoked_analyst_without_restart(tmp_path: Path) -> None:
    fed = build_federation(tmp_path / "fed", agencies=["police"])
    listing = tmp_path / "revoked.yaml"
    write(listing, "subjects: []\n")
    cfg = yaml.safe_load(fed.broker_config.read_text())
    cfg["auth"]["revocation_list"] = str(listing)
    fed.broker_config.write_text(yaml.safe_dump(cfg))
    run = Running(fed)
    await run.start_broker()
    await run.start_agent("police")
    try:
        analyst = run.analyst()
        assert (await analyst.lookup(lookup_request())).answers  # the positive control
        write(listing, "subjects: [a.analyst]\n")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await analyst.lookup(lookup_request())
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "access has been revoked" in (refused.value.details() or "")
    finally:
        await run.stop()
