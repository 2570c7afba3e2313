"""Signed bundles and hot reload: only a bundle signed by a trusted IG lead comes into force,
and a bad new bundle never replaces the last good one."""

from __future__ import annotations

from pathlib import Path

import pytest

from mash import signing
from mash.agent.disclosure import field_check
from mash.demo.federation import POLICIES
from mash.policy import bundle
from mash.policy.errors import PolicyError
from mash.policy.store import PolicyConfig, PolicyStore
from tests.policy_helpers import copy_policies, edit_mou, police_stages


@pytest.fixture
def keys(tmp_path: Path):
    private, public = signing.generate_key()
    (tmp_path / "ig.key").write_bytes(private)
    (tmp_path / "ig.pub").write_bytes(public)
    return signing.load_private_key(tmp_path / "ig.key"), signing.load_public_key(
        tmp_path / "ig.pub")


def write_signed(path: Path, src: Path, key) -> bundle.Bundle:
    built = bundle.build(src)
    raw = built.to_json()
    path.write_bytes(raw)
    signing.signature_path(path).write_bytes(signing.sign(raw, key, "Test IG lead"))
    return built


def store(path: Path, trusted, validate=None) -> PolicyStore:
    # the config names the signers' key files (keys[1] is read from ig.pub beside the bundle)
    assert trusted == [signing.load_public_key(path.parent / "ig.pub")]
    cfg = PolicyConfig(bundle=path, trusted_signers=[path.parent / "ig.pub"])
    return PolicyStore(cfg, validate=validate) if validate else PolicyStore(cfg)


def test_a_signed_bundle_loads(tmp_path: Path, keys) -> None:
    built = write_signed(tmp_path / "b.json", POLICIES, keys[0])
    s = store(tmp_path / "b.json", [keys[1]])
    assert s.reload() is True
    assert s.revision == built.revision and s.loaded().signer == "Test IG lead"
    assert s.reload() is False  # unchanged bytes: nothing to do


def test_no_bundle_means_no_policy_and_a_reason(tmp_path: Path, keys) -> None:
    s = store(tmp_path / "missing.json", [keys[1]])
    assert s.reload() is False
    with pytest.raises(PolicyError, match="no valid policy bundle is loaded: cannot read"):
        s.loaded()


def test_unsigned_bundle_is_refused(tmp_path: Path, keys) -> None:
    (tmp_path / "b.json").write_bytes(bundle.build(POLICIES).to_json())
    s = store(tmp_path / "b.json", [keys[1]])
    assert not s.reload()
    assert "not signed" in s.error


def test_tampered_bundle_is_refused(tmp_path: Path, keys) -> None:
    path = tmp_path / "b.json"
    write_signed(path, POLICIES, keys[0])
    path.write_bytes(path.read_bytes().replace(b'"keep"', b'"keep" ', 1))
    s = store(path, [keys[1]])
    assert not s.reload()
    assert "altered after signing" in s.error


def test_untrusted_signer_is_refused(tmp_path: Path, keys) -> None:
    stranger = signing.generate_key()[0]
    (tmp_path / "x.key").write_bytes(stranger)
    write_signed(tmp_path / "b.json", POLICIES, signing.load_private_key(tmp_path / "x.key"))
    s = store(tmp_path / "b.json", [keys[1]])
    assert not s.reload()
    assert "does not trust" in s.error


def test_malformed_signature_is_refused(tmp_path: Path, keys) -> None:
    path = tmp_path / "b.json"
    write_signed(path, POLICIES, keys[0])
    signing.signature_path(path).write_text("{not json")
    s = store(path, [keys[1]])
    assert not s.reload() and "malformed" in s.error


def test_hot_reload_replaces_and_a_bad_bundle_never_does(tmp_path: Path, keys) -> None:
    src = copy_policies(tmp_path / "src")
    path = tmp_path / "b.json"
    first = write_signed(path, src, keys[0])
    s = store(path, [keys[1]])
    assert s.reload()
    edit_mou(src, "police-mash-safeguarding",
             lambda d: police_stages(d)["research"]["release"].pop("markers"))
    second = write_signed(path, src, keys[0])
    assert second.revision != first.revision
    assert s.reload() and s.revision == second.revision
    # a tampered third version: refused, the second stays in force and answers
    path.write_bytes(path.read_bytes().replace(b"police", b"p0lice", 1))
    assert not s.reload()
    assert s.revision == second.revision and s.error
    assert s.loaded().purposes()


def test_a_bundle_naming_unmapped_fields_is_refused_by_that_agent(tmp_path: Path, keys) -> None:
    path = tmp_path / "b.json"
    write_signed(path, POLICIES, keys[0])
    s = store(path, [keys[1]], validate=field_check("police", {"markers"}, b""))
    assert not s.reload()
    assert "names field(s)" in s.error and "that police's agent does not map" in s.error


def test_hmac_transform_needs_an_agent_key(tmp_path: Path, keys) -> None:
    src = copy_policies(tmp_path / "src")
    edit_mou(src, "police-mash-safeguarding", lambda d: police_stages(d)["research"][
        "release"].update(markers={"transform": "hmac"}))
    write_signed(tmp_path / "b.json", src, keys[0])
    mapped = {"markers", "last_incident_type", "last_incident_date", "incident_summary",
              "officer_in_case", "restricted"}
    s = store(tmp_path / "b.json", [keys[1]], validate=field_check("police", mapped, b""))
    assert not s.reload() and "no hmac_key_file" in s.error
    s = store(tmp_path / "b.json", [keys[1]],
              validate=field_check("police", mapped, b"k" * 32))
    assert s.reload()
