"""Writing a file so that a reader sees the old content or the new, never half of either."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: Path, data: bytes, private: bool = False) -> None:
    """Write to a temporary file beside `path`, flush it to disk, and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


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
