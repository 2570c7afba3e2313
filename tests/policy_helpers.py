"""Editable copies of the repository's policies, for tests that change an agreement."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from mash.demo.federation import POLICIES


def copy_policies(dest: Path) -> Path:
    shutil.copytree(POLICIES, dest)
    return dest


def edit_mou(src: Path, agreement: str, change: Callable[[dict[str, Any]], None]) -> None:
    path = src / "mous" / f"{agreement}.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def police_stages(data: dict[str, Any]) -> dict[str, Any]:
    return data["grants"][0]["purposes"]["child_safeguarding"]["stages"]
