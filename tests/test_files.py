"""mash.files: the one atomic, durable file write every part of MASH Exchange uses."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from mash import files, signing


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_replaces_the_file_with_the_owner_only_or_the_usual_mode(tmp_path: Path) -> None:
    key, pub = tmp_path / "keys" / "a.key", tmp_path / "keys" / "a.pub"
    files.write_atomic(key, b"secret", private=True)
    files.write_atomic(pub, b"public")
    assert key.read_bytes() == b"secret" and _mode(key) == 0o600
    assert pub.read_bytes() == b"public" and _mode(pub) == 0o644
    files.write_atomic(pub, b"public 2")
    assert pub.read_bytes() == b"public 2"
    assert sorted(p.name for p in key.parent.iterdir()) == ["a.key", "a.pub"]  # no temp files


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "index.npz"
    files.write_atomic(path, b"old")
    with pytest.raises(RuntimeError), files.atomic_writer(path) as fh:
        fh.write(b"half of the new")
        raise RuntimeError("the writer failed")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["index.npz"]


def test_the_data_is_flushed_to_disk_before_the_rename(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The order that makes it durable: the file's fsync, the rename, the directory's fsync."""
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("fsync dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def replace(src: str | Path, dst: str | Path) -> None:
        events.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    files.write_atomic(tmp_path / "state.json", b"{}")
    assert events == ["fsync file", "rename", "fsync dir"]


def test_concurrent_writers_of_one_file_never_collide(tmp_path: Path) -> None:
    """Each write has a temporary file of its own (a shared "<name>.tmp" made two writers of
    one witness file fail with FileNotFoundError)."""
    path = tmp_path / "cosigned" / "broker.json"
    errors: list[BaseException] = []
    contents = [f"writer {n}".encode() * 1000 for n in range(8)]

    def write(data: bytes) -> None:
        try:
            for _ in range(50):
                files.write_atomic(path, data)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(c,)) for c in contents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert path.read_bytes() in contents  # one writer's whole content, never a mix
    assert [p.name for p in path.parent.iterdir()] == ["broker.json"]


def test_a_signed_file_is_written_signature_first(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[str] = []
    real = files.write_atomic

    def record(path: Path, data: bytes, *, private: bool = False) -> None:
        written.append(path.name)
        real(path, data, private=private)

    monkeypatch.setattr(signing, "write_atomic", record)
    signing.write_signed(tmp_path / "bundle.json", b"{}", b"sig")
    assert written == ["bundle.json.sig", "bundle.json"]
    assert (tmp_path / "bundle.json.sig").read_bytes() == b"sig"
