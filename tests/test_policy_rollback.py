"""No policy rollback, and no unsigned signer names: a real broker and agent on loopback refuse
an older, genuinely signed bundle copied back into place (also after a restart), and a
signature file whose signer's name was edited; newer bundles still load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mash import signing
from mash.demo import federation
from mash.errors import SignatureError
from mash.v1 import answer_pb2
from tests.helpers import Running, build_federation, lookup_request, wait_until

R = answer_pb2


def _changed_policies(tmp_path: Path, title: str) -> Path:
    src = tmp_path / f"policies-{abs(hash(title))}"
    shutil.copytree(federation.POLICIES, src)
    mou = src / "mous" / "police-mash-safeguarding.yaml"
    text = mou.read_text()
    first = next(line for line in text.splitlines() if line.startswith("title:"))
    mou.write_text(text.replace(first, f"title: {title}", 1))
    return src


def _save(root: Path, name: str) -> Path:
    out = root / "saved" / name
    out.mkdir(parents=True)
    for file in ("bundle.json", "bundle.json.sig"):
        shutil.copy2(root / "policy" / file, out / file)
    return out


def _restore(saved: Path, root: Path) -> None:
    for file in ("bundle.json.sig", "bundle.json"):
        shutil.copy2(saved / file, root / "policy" / file)


def _revisions(run: Running) -> tuple[str, str]:
    assert run.broker is not None
    return run.broker.routing.store.revision, run.agents["police"].policy.store.revision


async def test_an_older_signed_bundle_is_refused_and_a_forged_signer_too(tmp_path: Path):
    root = (tmp_path / "fed").resolve()
    fed = build_federation(root, ["police", "health"])
    older = _save(root, "older")
    run = Running(fed)
    await run.start_broker()
    await run.start_agent("police")
    try:
        first = _revisions(run)
        # positive control: a newer bundle (higher serial) loads at the broker and the agent
        federation.sign_policies(root, _changed_policies(tmp_path, "Police and MASH, v2"))
        await wait_until(lambda: _revisions(run) != first and len(set(_revisions(run))) == 1)
        newer = _revisions(run)[0]

        # the older bundle, genuinely signed, copied back: refused by both, the newer stays
        _restore(older, root)
        agent_store = run.agents["police"].policy.store
        assert run.broker is not None
        await wait_until(lambda: bool(agent_store.error and run.broker
                                      and run.broker.routing.store.error))
        assert _revisions(run) == (newer, newer)
        for store in (agent_store, run.broker.routing.store):
            assert "refusing a rollback" in (store.error or "")
        answers = {a.agency_id: a for a in
                   (await run.analyst().lookup(lookup_request())).answers}
        assert answers["police"].policy_revision == newer

        # a newer bundle whose signature file names another signer: refused
        federation.sign_policies(root, _changed_policies(tmp_path, "Police and MASH, v3"))
        genuine = _save(root, "v3")
        sig_path = root / "policy" / "bundle.json.sig"
        doc = json.loads(sig_path.read_text())
        claims = json.loads(doc["signed"])
        claims["signer"] = "Forged Name, Caldicott Guardian"
        doc["signed"] = json.dumps(claims, sort_keys=True, separators=(",", ":"))
        sig_path.write_text(json.dumps(doc))
        await wait_until(lambda: "altered after signing" in (agent_store.error or ""))
        assert _revisions(run) == (newer, newer)
        # ... and the first signature format, which left the name unsigned: refused
        doc = {"algorithm": "Ed25519", "signer": "Forged Name", "key_id": claims["key_id"],
               "signature": doc["signature"]}
        sig_path.write_text(json.dumps(doc))
        await wait_until(lambda: "mash-signature/1" in (agent_store.error or ""))
        # positive control: the genuine signature file loads it, signer as signed
        _restore(genuine, root)
        await wait_until(lambda: _revisions(run)[1] not in (newer, first))
        assert agent_store.current is not None
        assert agent_store.current.signer == "Demo IG lead"
        latest = agent_store.revision

        # restarted with the older bundle in place: the serial is remembered, fail closed
        await run.stop_agent("police")
        _restore(older, root)
        await run.start_agent("police")
        restarted = run.agents["police"].policy.store
        assert restarted.current is None and "refusing a rollback" in (restarted.error or "")
        answers = {a.agency_id: a for a in
                   (await run.analyst().lookup(lookup_request())).answers}
        assert answers["police"].state == R.ANSWER_STATE_NOT_CHECKED
        assert answers["police"].not_checked_reason == R.NOT_CHECKED_REASON_POLICY_ERROR
        state = json.loads((root / "state" / "police-policy.json").read_text())
        assert state["revision"] == latest
    finally:
        await run.stop()


def test_signature_files_cover_the_signers_name(tmp_path: Path):
    private, public = signing.generate_key()
    key_file = tmp_path / "k.pem"
    key_file.write_bytes(private)
    (tmp_path / "k.pub").write_bytes(public)
    key, trusted = signing.load_private_key(key_file), [signing.load_public_key(
        tmp_path / "k.pub")]
    data = b'{"any": "file"}'
    sig = signing.sign(data, key, "Jo Bloggs, IG lead")
    verified = signing.verify(data, sig, trusted)  # positive control
    assert verified.signer == "Jo Bloggs, IG lead" and verified.signed_at
    forged = sig.replace(b"Jo Bloggs, IG lead", b"Forged Name, Caldicott")
    with pytest.raises(SignatureError, match="altered after signing"):
        signing.verify(data, forged, trusted)
    with pytest.raises(SignatureError, match="does not match its signature"):
        signing.verify(data + b" ", sig, trusted)
