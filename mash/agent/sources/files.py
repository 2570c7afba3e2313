"""Reading a file that another program may be rewriting (a nightly export, say).

A file is used only if it did not change while it was read: the same file (device and
inode), the same size and modification time before and after, every byte of it read, and,
when it was modified moments before the read began (within the file system's timestamp
granularity, where a rewrite could leave size and time as they were), the same SHA-256
read again afterwards. Anything else is `FileChanged`: the caller keeps what it had and
tries again later.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

# Bytes read from the file at a time (tests shrink it to change a file between chunks).
READ_CHUNK = 1 << 20
# A file modified this recently may still be written within one timestamp tick (1 s on
# some file systems, 2 s on FAT): it is hashed a second time after the read.
RECENT_NS = 2_000_000_000


class FileChanged(Exception):
    """The file changed while it was read; the message says how (never its content)."""


@dataclass
class FileDigest:
    """What was read: as persist.fingerprint records a file (size, mtime_ns, sha256)."""

    size: int
    mtime_ns: int
    sha256: str

    def as_dict(self) -> dict[str, int | str]:
        return {"size": self.size, "mtime_ns": self.mtime_ns, "sha256": self.sha256}


class _HashingReader(io.RawIOBase):
    """A binary file that hashes every byte read through it."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.hash = hashlib.sha256()
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = self._raw.readinto(buffer)  # type: ignore[attr-defined]
        if count:
            self.hash.update(memoryview(buffer)[:count])
            self.bytes_read += count
        return count or 0


@dataclass
class StableRead:
    """The outcome of `stable_text`: the digest, set once the whole file was read unchanged."""

    path: Path
    digest: FileDigest | None = None
    mtime: float = 0.0  # the modification time before the read (the data's as-at time)
    _reader: _HashingReader | None = field(default=None, repr=False)


def _same(before: os.stat_result, after: os.stat_result) -> bool:
    return (before.st_dev, before.st_ino, before.st_size, before.st_mtime_ns) == (
        after.st_dev, after.st_ino, after.st_size, after.st_mtime_ns)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def stable_text(path: Path, encoding: str) -> Iterator[tuple[io.TextIOWrapper, StableRead]]:
    """Open `path` as text; on leaving the block without an error, check the file did not
    change while it was read (raising FileChanged if it did) and set the digest.

    The block must read the file to its end."""
    started_ns = time.time_ns()
    before = os.stat(path)
    read = StableRead(path, mtime=before.st_mtime)
    with path.open("rb", buffering=0) as raw:
        if not _same(before, os.fstat(raw.fileno())):
            raise FileChanged("it was replaced as it was opened")
        reader = read._reader = _HashingReader(raw)
        text = io.TextIOWrapper(io.BufferedReader(reader, buffer_size=READ_CHUNK),
                                encoding=encoding, newline="")
        yield text, read
        opened_after = os.fstat(raw.fileno())
    try:
        after = os.stat(path)
    except FileNotFoundError:
        raise FileChanged("it was removed while it was read") from None
    if not _same(before, opened_after):
        raise FileChanged("it was written to while it was read (its size or modification "
                          "time changed)")
    if not _same(before, after):
        raise FileChanged("it was replaced while it was read")
    if reader.bytes_read != before.st_size:
        raise FileChanged(f"{reader.bytes_read} of its {before.st_size} bytes were read")
    sha = reader.hash.hexdigest()
    if started_ns - before.st_mtime_ns < RECENT_NS and _sha256(path) != sha:
        raise FileChanged("its content changed while it was read")
    read.digest = FileDigest(before.st_size, before.st_mtime_ns, sha)
