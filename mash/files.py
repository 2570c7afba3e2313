"""Writing a file so that a reader sees the old content or the new, never half of either.

The one way MASH Exchange replaces a file it owns (keys, certificates, indexes, policy
bundles and their signatures, witness files, state): the data goes to a temporary file of a
name of its own beside the target (so two writers of one file never share one), is flushed
to disk, and is renamed into place; the directory is flushed too, so the rename survives a
crash. A write that fails leaves the old file as it was and no temporary file behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def atomic_writer(path: Path, *, private: bool = False) -> Iterator[BinaryIO]:
    """A file to write `path`'s new content to; it replaces `path` when the block ends
    without an exception. `private`: readable by the owner only (0600), else 0644."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, 0o600 if private else 0o644)
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def write_atomic(path: Path, data: bytes, *, private: bool = False) -> None:
    """Replace `path` with `data` atomically and durably."""
    with atomic_writer(path, private=private) as fh:
        fh.write(data)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # a platform that cannot open a directory: the file itself is flushed
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a directory
    finally:
        os.close(fd)


def file_stamp(*paths: Path) -> tuple[tuple[int, int, int] | None, ...]:
    """What changes when any of these files is rewritten or replaced (mtime, size, inode);
    None for a file that cannot be read. Cheap enough to ask on every TLS handshake."""
    out: list[tuple[int, int, int] | None] = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            out.append(None)
            continue
        out.append((st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(out)
