"""`mash blind`: agency keys, linkage keys and the signed directory, including rotation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mash import signing
from mash.blind import directory

MASH = [sys.executable, "-m", "mash"]


def mash(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MASH, *map(str, args)], capture_output=True, text=True)


def test_keys_directory_and_rotation(tmp_path: Path) -> None:
    k = tmp_path / "keys"
    for agency in ("police", "health"):
        assert mash("blind", "keygen", "--agency", agency, "--dir", k).returncode == 0
    assert (k / "police-sealing.key").stat().st_mode & 0o077 == 0
    assert mash("blind", "linkage-key", "--epoch", "1", "--dir", k / "linkage").returncode == 0
    assert mash("policy", "keygen", "--out", k / "authority.key").returncode == 0
    out = tmp_path / "federation-keys.json"
    made = mash("blind", "directory", "--public", k / "police.public.json", "--public",
                k / "health.public.json", "--epoch", "1", "--key", k / "authority.key",
                "--signer", "Key authority", "--out", out)
    assert made.returncode == 0, made.stderr
    signer = signing.load_public_key(k / "authority.pub")
    first = directory.load(out, [signer])
    assert first.version == 1 and set(first.sealing) == {"police", "health"}
    shown = mash("blind", "show", "--directory", out, "--trusted", k / "authority.pub")
    assert shown.returncode == 0 and "linkage epoch 1" in shown.stdout

    # Existing keys are never overwritten by accident.
    again = mash("blind", "keygen", "--agency", "police", "--dir", k)
    assert again.returncode == 2 and "--force" in again.stderr

    # Rotation: police's new keys are published beside the old ones, with a new epoch.
    k2 = tmp_path / "keys-2027"
    assert mash("blind", "keygen", "--agency", "police", "--dir", k2).returncode == 0
    rotated = mash("blind", "directory", "--public", k2 / "police.public.json", "--epoch", "2",
                   "--previous", out, "--key", k / "authority.key", "--signer",
                   "Key authority", "--out", out)
    assert rotated.returncode == 0, rotated.stderr
    second = directory.load(out, [signer])
    assert second.version == 2
    assert len(second.sealing["police"]) == 2 and len(second.sealing["health"]) == 1
    assert {e.epoch for e in second.epochs} == {1, 2}

    # A directory altered after signing is refused, in one line.
    doc = json.loads(out.read_text())
    doc["agencies"]["police"]["sealing"].pop()
    out.write_text(json.dumps(doc))
    refused = mash("blind", "show", "--directory", out, "--trusted", k / "authority.pub")
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
