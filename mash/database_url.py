"""The SQLAlchemy URL of a console database (cases, sessions) from what console.yaml says.

`sqlite:///relative.db` is relative to the config file's directory; `postgresql://` and
`postgres://` use the psycopg (v3) driver that the project installs.
"""

from __future__ import annotations

from pathlib import Path

PREFIXES = ("sqlite:///", "postgresql://", "postgres://", "postgresql+psycopg://")
EXPECTED = "expected sqlite:///path.db or postgresql://..."


def engine_url(url: str, base_dir: Path) -> str:
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        return f"sqlite:///{(base_dir / url.removeprefix('sqlite:///')).resolve()}"
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url
